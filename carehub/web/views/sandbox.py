"""A sandbox clinic's test clock page (ADR 0024): where the clock stands, the advance under way,
and (for the clinic admin) a form to advance it. The same service as the API's
`POST /clinic/test-clock/advance`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from carehub.accounts.requests import StaffHttpRequest
from carehub.audit.models import Action
from carehub.audit.services import audit_record
from carehub.care_access import Operation, can
from carehub.clinics.models import Clinic
from carehub.core.exceptions import NotFound
from carehub.sandbox.selectors import SandboxClock, sandbox_clock_get
from carehub.sandbox.services import sandbox_clock_advance
from carehub.web.access import staff_page
from carehub.web.actions import Once, renew_key, run_once
from carehub.web.forms import ClockAdvanceForm

if TYPE_CHECKING:
    from carehub.accounts.requests import StaffUser

NOT_A_SANDBOX = (
    "This clinic is a production clinic: it lives on the real clock. Only a sandbox clinic has "
    "a test clock."
)


def _clock(user: StaffUser) -> SandboxClock:
    found = sandbox_clock_get(clinic_id=user.clinic_id)
    if not found.is_sandbox:
        raise NotFound(NOT_A_SANDBOX)
    return found


def _page(
    request: StaffHttpRequest, form: ClockAdvanceForm | None = None, status: int = 200
) -> HttpResponse:
    user = request.user
    found = _clock(user)
    audit_record(
        request=request,
        action=Action.TEST_CLOCK_VIEW,
        detail={"page": "test_clock", "test_clock": found.now.isoformat() if found.now else None},
    )
    return render(
        request,
        "web/test_clock.html",
        {
            "clock": found,
            "form": form or ClockAdvanceForm(),
            "may_advance": can(user, Operation.TEST_CLOCK_ADVANCE),
            "nav": "test_clock",
        },
        status=status,
    )


@require_GET
@staff_page(Operation.TEST_CLOCK_VIEW, Action.TEST_CLOCK_VIEW)
def test_clock_view(request: StaffHttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@staff_page(Operation.TEST_CLOCK_ADVANCE, Action.TEST_CLOCK_ADVANCE)
def test_clock_advance_view(request: StaffHttpRequest) -> HttpResponse:
    user = request.user
    before = _clock(user)
    form = ClockAdvanceForm(request.POST)
    if not form.is_valid():
        renew_key(form)
        return _page(request, form, status=400)
    clinic = Clinic.objects.get(pk=before.clinic_id)

    def perform(once: Once) -> str:
        advanced = sandbox_clock_advance(clinic_id=clinic.pk, user=user, by=form.duration())
        assert advanced.advance_to is not None
        audit_record(
            request=request,
            action=Action.TEST_CLOCK_ADVANCE,
            obj=advanced,
            detail={
                "from": before.now.isoformat() if before.now else None,
                "to": advanced.advance_to.isoformat(),
            },
        )
        return (
            f"Advancing the test clock by {form.cleaned_data['amount']} "
            f"{form.cleaned_data['unit']}: everything due on the way happens in order. "
            "Reload this page to follow it."
        )

    result = run_once(
        request, form=form, action=Action.TEST_CLOCK_ADVANCE, target=clinic, perform=perform
    )
    if not result.ok:
        # A target refused (backwards, too far) is the amount's error; a conflict (another
        # advance under way) the form's.
        form.add_error("amount" if result.kind == "invalid" else None, result.message)
        renew_key(form)
        return _page(request, form, status=result.status)
    messages.success(request, result.message)
    return redirect("web:test-clock")
