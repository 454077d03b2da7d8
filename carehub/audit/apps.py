from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Who saw or changed which patient's data, when, from where: an append-only trail."""

    name = "carehub.audit"
    label = "audit"
    default_auto_field = "django.db.models.BigAutoField"
