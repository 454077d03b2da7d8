"""Developer and demo settings: conveniences only, no new features."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# A fixed key for local development only; production refuses to start without DJANGO_SECRET_KEY.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-development-key-not-for-production")
# E-mails are recorded (admin → Sent messages), never sent.
EMAIL_BACKEND = "carehub.messaging.channels.RecordingEmailBackend"
# SMS is recorded too (admin → Sent messages, and /dev/sent-messages/); the demo's gateway also
# refuses one fictional number, as a real provider would, so the demo has dead messages.
MESSAGING_SMS_GATEWAY = env.str(
    "MESSAGING_SMS_GATEWAY", default="carehub.demo.gateway.DemoSmsGateway"
)
# The demo clinic's seed (`manage.py seed_demo`) and its SMS gateway: development and tests only,
# never installed by the production settings.
INSTALLED_APPS = [*INSTALLED_APPS, "carehub.demo"]  # noqa: F405
# Webhook receivers on plain http (a local receiver); production requires https.
WEBHOOK_ALLOW_HTTP = True
# The development pages under /dev/ (Sent messages).
DEV_PAGES = True
