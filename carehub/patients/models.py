from datetime import time

from django.conf import settings
from django.db import models

from carehub.core.models import TimeStampedModel
from carehub.core.validators import validate_time_zone


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "E-mail"
    IN_APP = "in_app", "In-app"


class Language(models.TextChoices):
    """Languages the patient-facing pages and messages are shipped in (settings.LANGUAGES)."""

    ENGLISH = "en", "English"
    SPANISH = "es", "Español"


class Patient(TimeStampedModel):
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField("MRN", max_length=64, help_text="Medical record number in this clinic")
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    date_of_birth = models.DateField(null=True, blank=True)
    time_zone = models.CharField(
        max_length=64, validators=[validate_time_zone], help_text="IANA time zone"
    )
    language = models.CharField(
        max_length=8,
        choices=Language.choices,
        default=Language.ENGLISH,
        db_default=Language.ENGLISH,  # rows written by SQL (bench data, COPY) get one too
        help_text="Language of the patient's pages and messages",
    )
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164, e.g. +447700900123")
    preferred_channel = models.CharField(
        max_length=16, choices=Channel.choices, default=Channel.SMS
    )
    fallback_channel = models.CharField(
        max_length=16, choices=Channel.choices, blank=True, default=Channel.EMAIL
    )
    # Messages to the patient are sent only inside this local-time window (quiet hours outside).
    send_window_start = models.TimeField(default=time(9, 0))
    send_window_end = models.TimeField(default=time(20, 0))
    # The patient's own login (portal and API), if they have one: see patient_account_create.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="patient_record",
    )
    # Deactivated (patient_deactivate): no longer under the clinic's care through carehub. The
    # record stays (observations, steps and audit rows point at it); it cannot be enrolled.
    active = models.BooleanField(default=True, db_default=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivation_reason = models.CharField(max_length=300, blank=True, default="", db_default="")

    class Meta:
        ordering = ["family_name", "given_name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "mrn"], name="patient_mrn_unique_in_clinic"),
            models.CheckConstraint(
                condition=models.Q(send_window_start__lt=models.F("send_window_end")),
                name="patient_send_window_ordered",
            ),
        ]
        indexes = [
            # The caseload's keyset order (carehub.web.selectors.caseload.caseload_page).
            models.Index(
                fields=["clinic", "family_name", "given_name", "id"], name="patient_caseload_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.given_name} {self.family_name} ({self.mrn})"


class CareTeamMembership(TimeStampedModel):
    """A member of staff on a patient's care team, for a period."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="care_team")
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="care_team_memberships"
    )
    is_primary = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "staff"],
                condition=models.Q(ended_at__isnull=True),
                name="care_team_one_active_membership",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.staff} on {self.patient}"
