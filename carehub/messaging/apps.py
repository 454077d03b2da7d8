from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "carehub.messaging"
    label = "messaging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The publish guard applies to every task of every process that loads the apps.
        # E-mail delivery statuses: anymail's tracking webhooks raise this signal.
        from anymail.signals import tracking

        from carehub.messaging import effects, publish_guard, tasks  # noqa: F401  (tasks: by name)
        from carehub.messaging.checks import warn_if_opted_out  # registers carehub.E010
        from carehub.messaging.models import Purpose
        from carehub.messaging.provider_reports import tracking_received
        from carehub.messaging.services import (
            register_renderer,
            register_suppressor,
            render_digest,
            task_reminder_suppressor,
        )

        tracking.connect(tracking_received, dispatch_uid="carehub.messaging.tracking")
        register_suppressor(Purpose.TASK_REMINDER, task_reminder_suppressor)
        register_renderer(Purpose.DIGEST, render_digest)
        effects.register()
        warn_if_opted_out()
