"""Settings for `make bench` only (see bench/ and docs/adr/0008-benchmarks.md).

The test settings (real PostgreSQL and Redis, fast password hashing, no debug), plus
django-celery-beat, which the scheduler comparison (P2) needs and carehub itself never uses.
The bench points DATABASE_URL, REDIS_URL and CELERY_QUEUE at names of its own before Django
starts, so a benchmark never shares a database, a Redis db or a queue with a demo or a test run.
"""

from .test import *  # noqa: F403
from .test import env

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_beat"]  # noqa: F405
# Delivered e-mails are recorded like SMS (RecordedMessage), so the bench counts both.
EMAIL_BACKEND = "carehub.messaging.channels.RecordingEmailBackend"
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="carehub-bench")
# beat's database scheduler reads this; carehub's own scheduler does not use it.
DJANGO_CELERY_BEAT_TZ_AWARE = True
