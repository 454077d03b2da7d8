from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "carehub.portal"
    label = "portal"
    verbose_name = "Patient portal"
