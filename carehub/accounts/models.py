from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    """Account roles: the staff roles (which pathway definitions name in approval gates and task
    disciplines) and `patient`, an account linked to one patient record (`Patient.user`)."""

    CLINIC_ADMIN = "clinic_admin", "Clinic admin"
    COORDINATOR = "coordinator", "Care coordinator / nurse"
    PHYSICIAN = "physician", "Pain physician"
    PHYSICAL_THERAPIST = "physical_therapist", "Physical therapist"
    PSYCHOLOGIST = "psychologist", "Psychologist (CBT/ACT)"
    PHARMACIST = "pharmacist", "Pharmacist"
    PATIENT = "patient", "Patient"


STAFF_ROLES: frozenset[str] = frozenset(Role.values) - {Role.PATIENT}


class User(AbstractUser):
    """A member of staff or a patient. Both belong to one clinic; superusers (operators) may have
    none. A patient's account is linked to their record through `Patient.user`."""

    clinic = models.ForeignKey(
        "clinics.Clinic", on_delete=models.PROTECT, null=True, blank=True, related_name="staff"
    )
    role = models.CharField(max_length=32, choices=Role.choices, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role="") | models.Q(clinic__isnull=False),
                name="staff_role_needs_clinic",
            ),
        ]

    def __str__(self) -> str:
        return self.get_full_name() or self.username
