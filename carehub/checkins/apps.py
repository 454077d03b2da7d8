from django.apps import AppConfig


class CheckinsConfig(AppConfig):
    name = "carehub.checkins"
    label = "checkins"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from carehub.checkins import effects, messages

        messages.register()
        effects.register()
