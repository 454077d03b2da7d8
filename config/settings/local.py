"""Developer and demo settings: conveniences only, no new features."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# A fixed key for local development only; production refuses to start without DJANGO_SECRET_KEY.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-development-key-not-for-production")
# E-mails are recorded (admin → Sent messages), never sent.
EMAIL_BACKEND = "carehub.messaging.channels.RecordingEmailBackend"
