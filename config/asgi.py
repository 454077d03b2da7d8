import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_asgi_application()

# gunicorn runs no system checks: refuse the recording backends here (carehub.E010).
from carehub.messaging.checks import refuse_unsafe_start  # noqa: E402

refuse_unsafe_start()
