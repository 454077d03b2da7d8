from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "carehub.sandbox"
    label = "sandbox"
    verbose_name = "Sandbox clinics and their test clocks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the app's Celery tasks under their names in every process (task_named).
        from carehub.sandbox import tasks  # noqa: F401
