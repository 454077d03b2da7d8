from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "carehub.integrations"
    label = "integrations"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Integrations (change feed and webhooks)"
