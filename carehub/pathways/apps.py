from django.apps import AppConfig


class PathwaysConfig(AppConfig):
    """Django adapter around the pure `workflows` engine: registry, checks, commands."""

    name = "carehub.pathways"
    label = "pathways"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from carehub.observations.services import register_session_roles
        from carehub.pathways import (
            checks,  # noqa: F401  (registers the system check)
            deactivation,
            tasks,  # noqa: F401  (registers its tasks by name)
        )
        from carehub.pathways.registry import session_roles

        deactivation.register()
        # Who may log a therapy session: the senders the definitions name for its event.
        register_session_roles(session_roles)
