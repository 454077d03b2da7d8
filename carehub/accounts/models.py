from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    """Staff roles. Pathway definitions name these in approval gates and task disciplines."""

    CLINIC_ADMIN = "clinic_admin", "Clinic admin"
    COORDINATOR = "coordinator", "Care coordinator / nurse"
    PHYSICIAN = "physician", "Pain physician"
    PHYSICAL_THERAPIST = "physical_therapist", "Physical therapist"
    PSYCHOLOGIST = "psychologist", "Psychologist (CBT/ACT)"
    PHARMACIST = "pharmacist", "Pharmacist"


class User(AbstractUser):
    """A member of staff. Staff belong to one clinic; superusers (operators) may have none."""

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
