"""The "Sent messages" page of a development or demo install: what the recording SMS gateway and
e-mail backend "sent" for the clinic's patients and staff (nothing leaves the machine).

Only when those recording backends are configured (404 otherwise), only for logged-in staff,
only the messages of their own clinic. Check-in links in the bodies stay usable (it is how the
demo opens a patient's link); the page sends no Referer, and request logs never carry a body.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from carehub.accounts.models import STAFF_ROLES
from carehub.audit.models import Action, Outcome
from carehub.audit.services import audit_record
from carehub.messaging.models import DeliveryChannel
from carehub.messaging.selectors import recorded_messages_for_clinic, recording_backends_configured


@never_cache
@require_GET
def sent_messages_view(request: HttpRequest) -> HttpResponse:
    if not recording_backends_configured():
        raise Http404("No recording backends are configured.")
    return _sent_messages(request)


@login_required
def _sent_messages(request: HttpRequest) -> HttpResponse:
    user = request.user
    if getattr(user, "role", "") not in STAFF_ROLES or getattr(user, "clinic_id", None) is None:
        audit_record(
            request=request, action=Action.SENT_MESSAGES_VIEW, outcome=Outcome.DENIED, detail={}
        )
        return render(request, "messaging/sent_messages_refused.html", status=403)
    channel = request.GET.get("channel", "")
    if channel not in DeliveryChannel.values:
        channel = ""
    rows = recorded_messages_for_clinic(clinic_id=user.clinic_id, channel=channel)  # type: ignore[union-attr]
    patients = {m.patient for _, m in rows if m is not None and m.patient is not None}
    audit_record(
        request=request, action=Action.SENT_MESSAGES_VIEW, patients=patients,
        detail={"channel": channel, "rows": len(rows)},
    )  # fmt: skip
    response = render(
        request,
        "messaging/sent_messages.html",
        {"rows": rows, "channel": channel, "channels": DeliveryChannel.choices, "nav": "sent"},
    )
    response["Referrer-Policy"] = "no-referrer"
    return response
