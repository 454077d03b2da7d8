from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "carehub.web"
    label = "web"
    verbose_name = "Staff web UI"
