from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "carehub.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the login receiver that starts a session's idle and absolute clocks.
        from carehub.accounts import session_timeout  # noqa: F401
