from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "carehub.sandbox"
    label = "sandbox"
    verbose_name = "Sandbox clinics and their test clocks"
    default_auto_field = "django.db.models.BigAutoField"
