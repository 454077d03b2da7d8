from django.apps import AppConfig


class WorklistsConfig(AppConfig):
    name = "carehub.worklists"
    label = "worklists"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from carehub.worklists import effects

        effects.register()
