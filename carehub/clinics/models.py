from django.db import models

from carehub.core.models import TimeStampedModel
from carehub.core.validators import validate_time_zone


class Clinic(TimeStampedModel):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone], help_text="IANA time zone"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
