from django.apps import AppConfig


class InstrumentsConfig(AppConfig):
    """The instrument library: registry, system check and the `instrument` command."""

    name = "carehub.instruments"
    label = "instruments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from carehub.instruments import checks  # noqa: F401  (registers the system check)
