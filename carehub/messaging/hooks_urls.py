"""The providers' delivery-status callbacks, under /hooks/ (see `webhooks.py`)."""

from anymail.urls import urlpatterns as anymail_urlpatterns
from django.urls import include, path
from django.urls.resolvers import URLPattern

from carehub.messaging.webhooks import anymail_tracking, http_status_view, twilio_status_view


def _tracking_patterns() -> list[URLPattern]:
    """anymail's tracking webhooks (`<esp>/tracking/`), each behind `anymail_tracking`; not its
    inbound ones (carehub receives no e-mail)."""
    return [
        URLPattern(p.pattern, anymail_tracking(p.callback), p.default_args, p.name)
        for p in anymail_urlpatterns
        if isinstance(p, URLPattern) and p.name and p.name.endswith("_tracking_webhook")
    ]


app_name = "hooks"
urlpatterns = [
    path("sms/twilio/status", twilio_status_view, name="twilio_status"),
    path("sms/http/status", http_status_view, name="http_status"),
    path("email/", include((_tracking_patterns(), "anymail"))),
]
