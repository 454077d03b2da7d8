from django.apps import AppConfig


class CheckinsConfig(AppConfig):
    name = "carehub.checkins"
    label = "checkins"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from carehub.checkins import effects, enrolments, messages

        messages.register()
        effects.register()
        # Suspended and resumed with a paused enrolment, listed in its next-due list, read by a
        # migration plan (carehub.pathways imports nothing of check-ins).
        enrolments.register()
