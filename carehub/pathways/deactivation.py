"""What pathways say about a patient's own lifecycle (carehub.patients.services): a patient still
on a pathway (an enrolment active or paused) is not deactivated; each enrolment is discharged
first, with its reason, so every track leaves by the definition's own transitions. Registered
from PathwaysConfig.ready()."""

from __future__ import annotations

from typing import Any

from carehub.pathways.models import Enrolment, EnrolmentStatus
from carehub.patients.models import Patient
from carehub.patients.services import register_deactivation_blocker


def running_enrolments(patient: Patient) -> tuple[str, dict[str, Any]] | None:
    running = list(
        Enrolment.objects.filter(
            patient=patient, status__in=[EnrolmentStatus.ACTIVE, EnrolmentStatus.PAUSED]
        ).values("public_id", "definition_key", "status")
    )
    if not running:
        return None
    return (
        "The patient is still on a pathway: discharge them first.",
        {"enrolments": [{**row, "public_id": str(row["public_id"])} for row in running]},
    )


def register() -> None:
    register_deactivation_blocker(running_enrolments)
