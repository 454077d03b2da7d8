from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models, transaction


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

    def set_unusable_password(self) -> None:
        super().set_unusable_password()
        self._password_replaced = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saving a new password revokes every API token of the user, as Django's session auth
        hash ends their other web sessions; every door of a password change (services, the
        admin's password form, `manage.py changepassword`) calls `set_password` and saves.
        Django keeps the raw password in `_password` from `set_password` until the save; the
        rehash of an upgraded hasher at login clears it first, so it revokes nothing."""
        replaced = getattr(self, "_password", None) is not None or getattr(
            self, "_password_replaced", False
        )
        with transaction.atomic():
            super().save(*args, **kwargs)
            if replaced:
                # django-rest-knox's AuthToken rows (reverse accessor of its user key).
                self.auth_token_set.all().delete()  # type: ignore[attr-defined]
        self._password_replaced = False
