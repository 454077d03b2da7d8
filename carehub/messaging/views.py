"""The "Sent messages" page of a development or demo install: what the recording SMS gateway and
e-mail backend "sent" for the patients the viewer may see (nothing leaves the machine).

Mounted only when DEV_PAGES is on (never in production), answering only when the recording
backends are configured (404 otherwise), only to staff, only about the patients in their scope
(`care_access.messages_visible_to`). The recorded rows keep check-in links redacted; "Open the
check-in" mints a fresh link for an open check-in (only its hash is stored, like every link) and
sends the browser there. Request logs never carry a body.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from carehub.accounts.models import STAFF_ROLES
from carehub.audit.models import Action, Outcome
from carehub.audit.services import audit_record
from carehub.checkins.services import checkin_link_reissue
from carehub.core.exceptions import NotFound
from carehub.messaging.models import DeliveryChannel
from carehub.messaging.selectors import (
    recorded_message_get_for_user,
    recorded_messages_for_user,
    recording_backends_configured,
)


def _refused(request: HttpRequest) -> HttpResponse | None:
    user = request.user
    if getattr(user, "role", "") not in STAFF_ROLES or getattr(user, "clinic_id", None) is None:
        audit_record(
            request=request, action=Action.SENT_MESSAGES_VIEW, outcome=Outcome.DENIED, detail={}
        )
        return render(request, "messaging/sent_messages_refused.html", status=403)
    return None


@never_cache
@require_GET
def sent_messages_view(request: HttpRequest) -> HttpResponse:
    if not recording_backends_configured():
        raise Http404("No recording backends are configured.")
    return _sent_messages(request)


@login_required
def _sent_messages(request: HttpRequest) -> HttpResponse:
    if (refused := _refused(request)) is not None:
        return refused
    channel = request.GET.get("channel", "")
    if channel not in DeliveryChannel.values:
        channel = ""
    rows = recorded_messages_for_user(user=request.user, channel=channel)  # type: ignore[arg-type]
    patients = {m.patient for _, m in rows if m.patient is not None}
    audit_record(
        request=request,
        action=Action.SENT_MESSAGES_VIEW,
        patients=patients,
        detail={"channel": channel, "rows": len(rows)},
    )
    response = render(
        request,
        "messaging/sent_messages.html",
        {"rows": rows, "channel": channel, "channels": DeliveryChannel.choices, "nav": "sent"},
    )
    # `strict-origin` (not `no-referrer`): the "Open the check-in" POST needs its Origin header
    # for Django's CSRF check; the page's own URL carries nothing secret.
    response["Referrer-Policy"] = "strict-origin"
    return response


@never_cache
@require_POST
def open_checkin_view(request: HttpRequest, recorded_id: int) -> HttpResponse:
    if not recording_backends_configured():
        raise Http404("No recording backends are configured.")
    return _open_checkin(request, recorded_id)


@login_required
def _open_checkin(request: HttpRequest, recorded_id: int) -> HttpResponse:
    if (refused := _refused(request)) is not None:
        return refused
    try:
        recorded, message = recorded_message_get_for_user(
            user=request.user,  # type: ignore[arg-type]
            recorded_id=recorded_id,
        )
    except NotFound:
        raise Http404("No such message.") from None
    token = checkin_link_reissue(subject_key=message.subject_key) if message.to_patient else None
    audit_record(
        request=request,
        action=Action.SENT_MESSAGES_VIEW,
        patients=[message.patient] if message.patient else [],
        detail={"recorded": recorded.pk, "link": "reissued" if token else "none"},
    )
    if token is None:
        return render(request, "messaging/sent_messages_closed.html", status=410)
    return HttpResponseRedirect(f"/c/{token}")
