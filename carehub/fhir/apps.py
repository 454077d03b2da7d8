from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "carehub.fhir"
    label = "fhir"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the app's Celery tasks under their names in every process (task_named).
        from carehub.fhir import tasks  # noqa: F401
