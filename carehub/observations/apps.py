from django.apps import AppConfig


class ObservationsConfig(AppConfig):
    name = "carehub.observations"
    label = "observations"
    verbose_name = "Observations"
    default_auto_field = "django.db.models.BigAutoField"
