from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "carehub.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The admin has registered every app's admins by now (its own ready() runs first).
        from carehub.core import checks  # noqa: F401  (registers carehub.E020)
        from carehub.core.admin_scope import restrict_third_party_admins

        restrict_third_party_admins()

        # A connection that failed because the database was unavailable or read-only is closed
        # at the end of its request or task instead of being kept for CONN_MAX_AGE.
        from django.db.backends.signals import connection_created

        from carehub.core.connections import install

        connection_created.connect(install, dispatch_uid="carehub.core.connections.install")
