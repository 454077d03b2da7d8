"""Settings for the test suite: real PostgreSQL and Redis, fast password hashing."""

import os

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="test-key-not-for-production")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Parallel runs on one server (several checkouts, CI next to a developer) need their own names.
_default = DATABASES["default"]  # noqa: F405
_default["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=f"test_{_default['NAME']}")}
# Tests publish to a queue of their own, named after their database: neither a demo worker nor
# another test run on the same Redis ever takes their tasks. Each pytest-xdist worker (`make
# test` runs one per core, ADR 0034) has its own queue too, as pytest-django gives it its own
# database; the Celery workers a test starts are told their queue by name (CELERY_QUEUE).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default=f"carehub-{_default['TEST']['NAME']}")
if _xdist_worker := os.environ.get("PYTEST_XDIST_WORKER"):
    CELERY_TASK_DEFAULT_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-{_xdist_worker}"
# The demo clinic's seed (`manage.py seed_demo`) and its SMS gateway: development and tests only,
# never installed by the production settings.
INSTALLED_APPS = [*INSTALLED_APPS, "carehub.demo"]  # noqa: F405
# Webhook receivers on plain http (a local receiver); production requires https.
WEBHOOK_ALLOW_HTTP = True
# The development pages under /dev/ (Sent messages).
DEV_PAGES = True
