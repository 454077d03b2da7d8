from django.db import transaction

from carehub.clinics.models import Clinic


@transaction.atomic
def clinic_create(*, name: str, slug: str, time_zone: str = "UTC") -> Clinic:
    clinic = Clinic(name=name, slug=slug, time_zone=time_zone)
    clinic.full_clean()
    clinic.save()
    return clinic
