"""Messages carehub decided to send. Until delivery channels exist, notifications are recorded
here (the development message log) and shown to staff; nothing leaves the system."""

from django.conf import settings
from django.db import models

from carehub.core.models import TimeStampedModel


class Message(TimeStampedModel):
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="messages"
    )
    # Exactly one recipient: a member of staff, or the patient.
    to_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_patient = models.BooleanField(default=False)
    body = models.TextField()
    urgency = models.CharField(max_length=16, default="routine")
    why = models.CharField(max_length=300, help_text="Why this was sent")
    source_effect = models.ForeignKey(
        "pathways.OutboxEffect", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(to_patient=True, to_staff__isnull=True)
                | models.Q(to_patient=False, to_staff__isnull=False),
                name="message_one_recipient",
            ),
            models.UniqueConstraint(
                fields=["source_effect", "to_staff"],
                condition=models.Q(source_effect__isnull=False, to_staff__isnull=False),
                name="message_once_per_effect_and_staff",
            ),
            models.UniqueConstraint(
                fields=["source_effect"],
                condition=models.Q(source_effect__isnull=False, to_patient=True),
                name="message_once_per_effect_to_patient",
            ),
        ]

    def __str__(self) -> str:
        return self.body[:60]
