"""Production settings: security hardening only; every value comes from the environment."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

DEBUG = False
# The default settings of manage.py, Celery and WSGI/ASGI: a process started without
# DJANGO_SETTINGS_MODULE lands here and must not start on a made-up key.
try:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
except ImproperlyConfigured:
    raise ImproperlyConfigured(
        "Set DJANGO_SECRET_KEY: these are the production settings (config.settings.production), "
        "the default when DJANGO_SETTINGS_MODULE is unset. For development set "
        "DJANGO_SETTINGS_MODULE=config.settings.local."
    ) from None
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The API schema and docs only for signed-in staff.
API_SCHEMA_PUBLIC = env.bool("API_SCHEMA_PUBLIC", default=False)
STATIC_ROOT = BASE_DIR / "staticfiles"  # noqa: F405
WHITENOISE_USE_FINDERS = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
)
# Recording development backends refuse to start (carehub.E010) unless explicitly allowed,
# with a warning at start-up; the development pages under /dev/ are never mounted.
MESSAGING_ALLOW_RECORDING_BACKENDS = env.bool("MESSAGING_ALLOW_RECORDING_BACKENDS", default=False)
MESSAGING_WARN_RECORDING_BACKENDS = True
DEV_PAGES = False
# The application's database role must not be able to bypass the append-only tables (ADR 0014).
DATABASE_REFUSE_PRIVILEGED_ROLE = env.bool("DATABASE_REFUSE_PRIVILEGED_ROLE", default=True)
# The owner only from the environment (the migrate process's), never a local default.
DATABASE_OWNER = (
    env.db_url("DATABASE_OWNER_URL") if env.str("DATABASE_OWNER_URL", default="") else None
)
