from django.db import transaction

from carehub.accounts.models import User
from carehub.messaging.models import Message
from carehub.pathways.models import Enrolment, OutboxEffect
from carehub.patients.models import CareTeamMembership

PATIENT = "patient"
CARE_TEAM = "care_team"


def recipients_for(*, enrolment: Enrolment, audience: list[str]) -> tuple[list[User], bool]:
    """Staff on the patient's care team with one of the roles (or all for 'care_team'), and
    whether the patient is a recipient."""
    memberships = CareTeamMembership.objects.filter(
        patient_id=enrolment.patient_id, ended_at__isnull=True, staff__is_active=True
    ).select_related("staff")
    if CARE_TEAM not in audience:
        memberships = memberships.filter(staff__role__in=audience)
    staff = sorted({m.staff for m in memberships}, key=lambda user: user.pk)
    return staff, PATIENT in audience


@transaction.atomic
def message_record(
    *,
    enrolment: Enrolment,
    audience: list[str],
    body: str,
    urgency: str,
    why: str,
    source_effect: OutboxEffect | None = None,
) -> list[Message]:
    """Record the messages a notification produces (one per recipient, once per effect)."""
    staff, to_patient = recipients_for(enrolment=enrolment, audience=audience)
    defaults = {
        "clinic_id": enrolment.clinic_id,
        "patient_id": enrolment.patient_id,
        "body": body,
        "urgency": urgency,
        "why": why[:300],
    }
    recipients: list[dict[str, object]] = [{"to_staff": user} for user in staff]
    if to_patient:
        recipients.append({"to_patient": True})
    messages = []
    for recipient in recipients:
        message, _ = Message.objects.get_or_create(
            source_effect=source_effect, **recipient, defaults=defaults
        )
        messages.append(message)
    return messages
