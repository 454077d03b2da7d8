"""Settings shared by every environment, driven by environment variables (django-environ).

Nothing secret lives here: production reads SECRET_KEY, DATABASE_URL and REDIS_URL from the
environment. The local defaults point at PostgreSQL and Redis on their default local ports;
`python -m carehub.devstack` points DATABASE_URL / REDIS_URL at embedded servers when
neither is set nor running locally.
"""

import os
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "django_htmx",
    "anymail",
    "carehub.core",
    "carehub.accounts",
    "carehub.clinics",
    "carehub.patients",
    "carehub.observations",
    "carehub.instruments",
    "carehub.pathways",
    "carehub.worklists",
    "carehub.messaging",
    "carehub.checkins",
    "carehub.integrations",
    "carehub.portal",
    "carehub.api",
    "carehub.audit",
    "carehub.fhir",
    "carehub.sandbox",
    "carehub.simulation",
    "carehub.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Cache-Control: no-store on every page and API answer (not static files, /healthz).
    "carehub.core.middleware.NoStoreMiddleware",
    "carehub.audit.middleware.RequestIdMiddleware",
    # Under /api/ every error is a problem, Django's debug pages included.
    "carehub.api.errors.ApiProblemMiddleware",
    # A database outage is a 503 with Retry-After at every door; a patient page never shows a
    # traceback (carehub.web.faults).
    "carehub.web.faults.FaultPagesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "carehub.web.middleware.HtmxLoginRedirectMiddleware",
    "carehub.accounts.session_timeout.SessionTimeoutMiddleware",
    # Staff see times in their clinic's time zone on every page, the admin included.
    "carehub.clinics.display.ClinicTimeZoneMiddleware",
    # A sandbox clinic's requests run at its test clock (ADR 0024).
    "carehub.clinics.clock.ClinicClockMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a lockout into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "carehub.messaging.context_processors.development_pages",
                "carehub.web.context_processors.sandbox_banner",
            ],
        },
    },
]

# Two roles (ADR 0014): DATABASE_URL is the application's (web, workers, beat: no superuser, owns
# nothing, only SELECT/INSERT on append-only tables); DATABASE_OWNER_URL is the role that owns
# the tables and runs `manage.py migrate` and `flush`, which create the application's role and
# grant its rights. Without DATABASE_OWNER_URL everything runs as DATABASE_URL's role. The local
# defaults: the application as carehub_app, the owner as the server's postgres.
_LOCAL_DATABASE = "127.0.0.1:5432/carehub"
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"postgres://carehub_app@{_LOCAL_DATABASE}"),
}
if env.str("DATABASE_OWNER_URL", default=""):
    DATABASE_OWNER = env.db_url("DATABASE_OWNER_URL")
elif env.str("DATABASE_URL", default=""):
    DATABASE_OWNER = None
else:
    DATABASE_OWNER = env.db_url_config(f"postgres://postgres@{_LOCAL_DATABASE}")
# Refuse (carehub.E020) an application role that is a superuser, owns tables, or may TRUNCATE,
# ALTER or disable triggers: on in production (`manage.py check --deploy --database default`).
DATABASE_REFUSE_PRIVILEGED_ROLE = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Service functions own their transactions (atomic(durable=True)); no request-wide transaction.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    # At least 12 characters; the common-password list (about 20,000 passwords seen in breaches)
    # ships with Django and is checked offline.
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2id for new and re-hashed passwords; older PBKDF2/scrypt hashes still verify and are
# upgraded to Argon2 at the user's next successful login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# django-axes first: it refuses a locked-out (username, IP) before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# The web UI's login page (carehub.web, ADR 0007); the admin keeps its own login form, both
# behind the same lockout and session limits.
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"

# --- Login throttling (django-axes, ADR 0007) -----------------------------------------------
# After AXES_FAILURE_LIMIT failed logins for one username from one IP address, that pair is
# refused (HTTP 429) until the cool-off has passed; a successful login clears the failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Password spraying: an address whose failures over every username reach this many within the
# cool-off is refused too (carehub.accounts.login_throttle).
AXES_ADDRESS_FAILURE_LIMIT = env.int("AXES_ADDRESS_FAILURE_LIMIT", default=20)
AXES_HANDLER = "carehub.accounts.login_throttle.AddressThrottlingHandler"
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_RESET_ON_SUCCESS = True
# The lockout answer: problem+json (code `locked_out`) with Retry-After under /api/; elsewhere
# (the web and admin login forms) the page AXES_LOCKOUT_TEMPLATE, saying so and for how long.
AXES_LOCKOUT_CALLABLE = "carehub.api.lockout.lockout_response"
AXES_LOCKOUT_TEMPLATE = "web/locked_out.html"

# --- Staff sessions (ADR 0007) ----------------------------------------------------------------
# carehub.accounts.session_timeout logs a member of staff out after this long without a
# request, and in any case this long after logging in.
SESSION_IDLE_TIMEOUT_SECONDS = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=15 * 60)
SESSION_ABSOLUTE_TIMEOUT_SECONDS = env.int("SESSION_ABSOLUTE_TIMEOUT_SECONDS", default=12 * 3600)
# The last-activity stamp is rewritten at most this often (not on every request).
SESSION_ACTIVITY_RESOLUTION_SECONDS = env.int("SESSION_ACTIVITY_RESOLUTION_SECONDS", default=60)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT_SECONDS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# Paths answered with 401 instead of a redirect to the login page when a session has expired.
SESSION_TIMEOUT_API_PREFIXES = ["/api/"]

# --- Content Security Policy (django-csp, ADR 0007) -------------------------------------------
# Scripts and styles only from our own origin: no inline code anywhere (the admin needs none,
# the check-in pages link a static stylesheet).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# --- HTTP API (carehub.api, /api/v1/) --------------------------------------------------------
# Clients send "Authorization: Token <token>" (django-rest-knox: only a digest of each token is
# stored) or use their admin session; errors are application/problem+json (RFC 9457).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only, within API_MAX_BODY_BYTES and API_JSON_MAX_DEPTH (400 too_large / too_deep).
    "DEFAULT_PARSER_CLASSES": ["carehub.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "carehub.api.exception_handler.problem_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "carehub.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    # drf-spectacular's AutoSchema, naming each API's nested serializers after the API.
    "DEFAULT_SCHEMA_CLASS": "carehub.api.schema.AutoSchema",
}
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env.int("API_TOKEN_TTL_HOURS", default=10)),
    "AUTH_HEADER_PREFIX": "Token",
}
# Request bodies: at most this many bytes (checked before reading), objects and arrays nested
# at most this deep (checked before parsing).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=32)
# How long a write's one-time key (the API's Idempotency-Key, a page form's key) and its first
# answer are kept (carehub.core.idempotency; pruned hourly).
IDEMPOTENCY_KEY_HOURS = env.int("IDEMPOTENCY_KEY_HOURS", default=24)
# /api/schema/ and /api/docs/ for anyone; when off, for signed-in staff only (others: 404).
API_SCHEMA_PUBLIC = env.bool("API_SCHEMA_PUBLIC", default=True)
SPECTACULAR_SETTINGS = {
    "TITLE": "carehub API",
    "DESCRIPTION": "Care coordination for multidisciplinary pain clinics.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A view's description is its own docstring (or an intermediate base's), never AuditedApi's.
    "GET_LIB_DOC_EXCLUDES": "carehub.api.patients.schema_doc_excludes",
    "ENUM_NAME_OVERRIDES": {
        "CheckinStatusEnum": "carehub.checkins.models.CheckinStatus",
        "MessageStatusEnum": "carehub.messaging.models.MessageStatus",
        "DeliveryEventStatusEnum": "carehub.messaging.models.EVENT_STATUS_CHOICES",
        "ChannelEnum": "carehub.patients.models.Channel.values",
        "ChangeTypeEnum": "carehub.integrations.models.ChangeType.choices",
        "PriorityEnum": "carehub.worklists.models.Priority.values",
    },
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
# The languages patients' pages and messages are shipped in (`Patient.language`; ADR 0020).
# Staff pages stay in English: no LocaleMiddleware, the patient-facing views activate the
# patient's language themselves.
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "carehub" / "locale"]
USE_TZ = True

STATIC_URL = "static/"
# Local and test runs serve static files from the apps (finders); production collects them.
WHITENOISE_USE_FINDERS = True

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

# --- Celery -----------------------------------------------------------------------------------
# Redis carries messages only; what is due lives in PostgreSQL (see README, "Reliability").
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Priorities (ADR 0016): Redis keeps one list per step of `priority_steps` for each queue, and a
# worker takes from the lowest-numbered list first (0 first, with prefetch 1 and acks_late a
# worker holds only the task it runs). Tasks go out at CELERY_TASK_DEFAULT_PRIORITY; work a fault
# interrupted (released or republished claims) and the messaging sweep at
# MESSAGING_RECOVERY_PRIORITY, ahead of any backlog.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "priority_steps": [0, 3, 6, 9]}
CELERY_TASK_DEFAULT_PRIORITY = env.int("CELERY_TASK_DEFAULT_PRIORITY", default=6)
MESSAGING_RECOVERY_PRIORITY = env.int("MESSAGING_RECOVERY_PRIORITY", default=0)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="carehub")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# How often beat runs the sweeps of due work (pathway timers, check-ins to open): the longest a
# due timer or check-in waits. Each run is one index scan of what is due (see P3 in the
# benchmarks), so a short interval costs little.
SCHEDULER_INTERVAL_SECONDS = env.int("SCHEDULER_INTERVAL_SECONDS", default=5)


def _every(seconds: int, task: str, **options: Any) -> dict[str, Any]:
    """A beat entry: `task` every `seconds`, sent with `options` (e.g. its priority)."""
    return {
        "task": task,
        "schedule": timedelta(seconds=seconds),
        **({"options": options} if options else {}),
    }


CELERY_BEAT_SCHEDULE = {
    "scheduler-heartbeat": _every(30, "carehub.core.scheduler_heartbeat"),
    "pathway-timers": _every(SCHEDULER_INTERVAL_SECONDS, "carehub.pathways.timers_fire"),
    "idempotency-keys-prune": _every(3600, "carehub.core.idempotency_keys_prune"),
    "session-notes-overdue": _every(3600, "carehub.worklists.session_notes_overdue"),
    "checkins-open": _every(SCHEDULER_INTERVAL_SECONDS, "carehub.checkins.open_due"),
    "checkins-close": _every(60, "carehub.checkins.close_expired"),
    "outbox-sweep": _every(
        env.int("OUTBOX_SWEEP_INTERVAL_SECONDS", default=15), "carehub.pathways.outbox_sweep"
    ),
    "messaging-dispatch": _every(
        env.int("MESSAGING_DISPATCH_INTERVAL_SECONDS", default=10), "carehub.messaging.dispatch"
    ),
    # Ahead of a send backlog: the sweep is what takes a dead worker's claims over.
    "messaging-sweep": _every(
        env.int("MESSAGING_SWEEP_INTERVAL_SECONDS", default=10),
        "carehub.messaging.sweep",
        priority=MESSAGING_RECOVERY_PRIORITY,
    ),
    "webhooks-send": _every(
        env.int("WEBHOOK_SEND_INTERVAL_SECONDS", default=5), "carehub.integrations.webhooks_send"
    ),
    "messaging-digests": _every(
        env.int("MESSAGING_DIGEST_INTERVAL_SECONDS", default=300), "carehub.messaging.digests"
    ),
    "messaging-task-reminders": _every(
        env.int("MESSAGING_TASK_REMINDER_INTERVAL_SECONDS", default=900),
        "carehub.messaging.task_reminders",
    ),
}


# A therapist's progress note is overdue this long after an attended session.
SESSION_NOTES_DUE_HOURS = env.int("SESSION_NOTES_DUE_HOURS", default=48)

# --- Observations -----------------------------------------------------------------------------
# Clocks of phones and other servers drift: an observation (observed_at, performed_at,
# assessed_at) may be stamped at most this far ahead of carehub's clock. Anything later is refused:
# facts are read "as of now", so a future observation would be missing to the pathway.
OBSERVATION_MAX_FUTURE_SKEW_SECONDS = env.int("OBSERVATION_MAX_FUTURE_SKEW_SECONDS", default=5)

# --- Web UI (carehub.web) ---------------------------------------------------------------------
# A patient whose active pathway has had no state change for this many weeks is "stalled" on the
# caseload dashboard.
WEB_STALLED_AFTER_WEEKS = env.int("WEB_STALLED_AFTER_WEEKS", default=6)
# Rows per caseload page unless the user picks another size (10 to 100).
WEB_CASELOAD_PAGE_SIZE = env.int("WEB_CASELOAD_PAGE_SIZE", default=50)
# Rows per page of a therapist's workspace (/my/): patients and open tasks (1 to 100).
WEB_WORKSPACE_PAGE_SIZE = env.int("WEB_WORKSPACE_PAGE_SIZE", default=50)

# --- Check-ins --------------------------------------------------------------------------------
# The site URL: links in messages (a check-in's `/c/<token>`) are built on it, so it must be the
# address patients reach this install at (scheme, host and port, e.g. https://care.example.org).
# `make demo` sets it from the port it serves (http://127.0.0.1:$PORT).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# Check-ins are due at this local time of day (moved into each patient's send window).
CHECKIN_SEND_TIME = time.fromisoformat(env.str("CHECKIN_SEND_TIME", default="10:00"))
# An occurrence stays open until the next is due, at most this long.
CHECKIN_ANSWER_WINDOW_HOURS = env.int("CHECKIN_ANSWER_WINDOW_HOURS", default=72)
# This many missed check-ins in a row of one series create a task for the coordinator.
CHECKIN_MISSES_BEFORE_TASK = env.int("CHECKIN_MISSES_BEFORE_TASK", default=2)
# The patient-facing name of each instrument's check-in: `carehub.instruments.catalogue`.

# --- Outbox -----------------------------------------------------------------------------------
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=5)
# Webhooks (carehub/integrations/sender.py): attempts before a delivery is dead, the backoff
# between attempts, the per-request timeout, how long a claim may stay unanswered before its
# sender is presumed dead, how many deliveries one claim takes, and whether plain-http
# receivers are allowed (development and tests only; production receivers use https).
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_LEASE_SECONDS = env.int("WEBHOOK_LEASE_SECONDS", default=120)
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=50)
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
OUTBOX_RETRY_BASE_SECONDS = env.int("OUTBOX_RETRY_BASE_SECONDS", default=5)
OUTBOX_RETRY_MAX_SECONDS = env.int("OUTBOX_RETRY_MAX_SECONDS", default=600)
# A running effect whose worker has not finished within the lease is taken over.
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=300)
# A pending row older than this was not published after commit (crash, broker outage).
OUTBOX_REPUBLISH_AFTER_SECONDS = env.int("OUTBOX_REPUBLISH_AFTER_SECONDS", default=30)
# A timer whose dispatch fails is retried with backoff (base, 2 * base ... capped, jittered) and
# is dead after TIMER_MAX_ATTEMPTS failures (a coordinator task is opened; admin: Retry).
TIMER_MAX_ATTEMPTS = env.int("TIMER_MAX_ATTEMPTS", default=5)
TIMER_RETRY_BASE_SECONDS = env.float("TIMER_RETRY_BASE_SECONDS", default=10)
TIMER_RETRY_MAX_SECONDS = env.float("TIMER_RETRY_MAX_SECONDS", default=600)
# /healthz reports the scheduler as late when its last heartbeat is older than this.
SCHEDULER_LAG_WARN_SECONDS = env.int("SCHEDULER_LAG_WARN_SECONDS", default=120)

# --- Messaging --------------------------------------------------------------------------------
# Messages are rows; the dispatcher (beat, every MESSAGING_DISPATCH_INTERVAL_SECONDS) publishes
# the due ones, a send task delivers each once (see ADR 0006).
MESSAGING_DISPATCH_INTERVAL_SECONDS = env.int("MESSAGING_DISPATCH_INTERVAL_SECONDS", default=10)
MESSAGING_DISPATCH_BATCH_SIZE = env.int("MESSAGING_DISPATCH_BATCH_SIZE", default=500)
MESSAGING_MAX_ATTEMPTS = env.int("MESSAGING_MAX_ATTEMPTS", default=5)
MESSAGING_RETRY_BASE_SECONDS = env.float("MESSAGING_RETRY_BASE_SECONDS", default=5)
MESSAGING_RETRY_MAX_SECONDS = env.float("MESSAGING_RETRY_MAX_SECONDS", default=600)
# A send task renews the lease of its unsent claims every third of this, from a thread of its
# own (so a provider call longer than the lease does not lose it); a sending message whose
# lease was not renewed for this long (its worker was killed, or cut off from the database) is
# taken over by the sweeper (ADR 0016).
MESSAGING_LEASE_SECONDS = env.int("MESSAGING_LEASE_SECONDS", default=15)
# A send task that meets a transient database or broker error is retried by Celery with backoff
# (base, 2 * base ... capped at this, jittered); a batch interrupted mid-way first waits for the
# database this many times (0.5 s doubling up to 4 s) to record what it sent and release the rest.
MESSAGING_TASK_RETRY_BASE_SECONDS = env.float("MESSAGING_TASK_RETRY_BASE_SECONDS", default=2)
MESSAGING_TASK_RETRY_MAX_SECONDS = env.float("MESSAGING_TASK_RETRY_MAX_SECONDS", default=30)
MESSAGING_SETTLE_TRIES = env.int("MESSAGING_SETTLE_TRIES", default=5)
# A queued message no worker started within this is published again (lost publish or message).
MESSAGING_REQUEUE_AFTER_SECONDS = env.int("MESSAGING_REQUEUE_AFTER_SECONDS", default=60)
# ... unless the broker's send queue holds enough tasks to carry every queued row: those rows
# are then waiting their turn behind a backlog, and go again only after this long.
MESSAGING_REQUEUE_BEHIND_BACKLOG_SECONDS = env.int(
    "MESSAGING_REQUEUE_BEHIND_BACKLOG_SECONDS", default=300
)
# A send task takes up to this many due messages (claimed in one transaction, then sent one by
# one); what a batch has not sent after MESSAGING_SEND_BATCH_SECONDS is released and published
# again (keep it under CELERY_TASK_SOFT_TIME_LIMIT; lower the batch for a slow SMS provider).
MESSAGING_SEND_BATCH_SIZE = env.int("MESSAGING_SEND_BATCH_SIZE", default=50)
MESSAGING_SEND_BATCH_SECONDS = env.float("MESSAGING_SEND_BATCH_SECONDS", default=60)
MESSAGING_PATIENT_DAILY_BUDGET = env.int("MESSAGING_PATIENT_DAILY_BUDGET", default=3)
# The SMS provider (a carehub.messaging.channels.SmsGateway); the recording one sends nothing.
MESSAGING_SMS_GATEWAY = env.str(
    "MESSAGING_SMS_GATEWAY", default="carehub.messaging.channels.RecordingSmsGateway"
)
# Production refuses to start on a recording gateway or e-mail backend (carehub.E010) unless
# this is true (then it logs a warning at start-up); development, demo and tests record.
MESSAGING_ALLOW_RECORDING_BACKENDS = True
MESSAGING_WARN_RECORDING_BACKENDS = False
# The development pages under /dev/ (what the recording backends "sent"): never in production.
DEV_PAGES = False
MESSAGING_EMAIL_SUBJECT = env.str(
    "MESSAGING_EMAIL_SUBJECT", default="A message from your care team"
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="webmaster@localhost")

# --- Delivery providers (README "Delivery providers", ADR 0015) --------------------------------
# MESSAGING_SMS_GATEWAY above takes `twilio`, `http` or `recording` (or a dotted path); e-mail
# goes through DJANGO_EMAIL_BACKEND, e.g. anymail.backends.postmark.EmailBackend with its
# settings in ANYMAIL_* variables. Providers report delivery statuses to this public address
# (+ /hooks/sms/twilio/status, /hooks/sms/http/status, /hooks/email/<esp>/tracking/).
# (Empty counts as unset: docker-compose passes every provider variable, set or not.)
MESSAGING_CALLBACK_BASE_URL = env.str("MESSAGING_CALLBACK_BASE_URL", default="") or PUBLIC_BASE_URL
# Every call to a provider: connect (nothing sent yet) and read timeouts, in seconds.
MESSAGING_PROVIDER_CONNECT_TIMEOUT_SECONDS = env.float(
    "MESSAGING_PROVIDER_CONNECT_TIMEOUT_SECONDS", default=5
)
MESSAGING_PROVIDER_READ_TIMEOUT_SECONDS = env.float(
    "MESSAGING_PROVIDER_READ_TIMEOUT_SECONDS", default=15
)
# A provider's Retry-After is honoured up to this long.
MESSAGING_RETRY_AFTER_MAX_SECONDS = env.float("MESSAGING_RETRY_AFTER_MAX_SECONDS", default=3600)
# A status report no message claims after this many days is closed as unmatched.
MESSAGING_PROVIDER_REPORT_PENDING_DAYS = env.int(
    "MESSAGING_PROVIDER_REPORT_PENDING_DAYS", default=7
)
# Twilio (MESSAGING_SMS_GATEWAY=twilio): the account, and a sender number or messaging service.
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID", default="")
# Empty: https://api.twilio.com. Otherwise where the SDK's requests go (a proxy, a test double).
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
# A generic HTTP provider (MESSAGING_SMS_GATEWAY=http): see carehub/messaging/providers/http.py.
SMS_HTTP_URL = env.str("SMS_HTTP_URL", default="")
SMS_HTTP_AUTH_HEADER = env.str("SMS_HTTP_AUTH_HEADER", default="")
SMS_HTTP_BODY_TEMPLATE = env.str(
    "SMS_HTTP_BODY_TEMPLATE",
    default='{"to": "{to}", "from": "{from}", "text": "{body}", "reference": "{reference}", '
    '"status_callback": "{callback_url}"}',
)
SMS_HTTP_FROM = env.str("SMS_HTTP_FROM", default="")
SMS_HTTP_ID_FIELD = env.str("SMS_HTTP_ID_FIELD", default="id")
SMS_HTTP_CALLBACK_SECRET = env.str("SMS_HTTP_CALLBACK_SECRET", default="")
SMS_HTTP_CALLBACK_MAX_AGE_SECONDS = env.int("SMS_HTTP_CALLBACK_MAX_AGE_SECONDS", default=300)
# django-anymail: every ANYMAIL_<NAME> variable is ANYMAIL["<NAME>"] (e.g.
# ANYMAIL_POSTMARK_SERVER_TOKEN, ANYMAIL_WEBHOOK_SECRET=user:password for the tracking webhooks).
ANYMAIL: dict[str, object] = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_")
}
ANYMAIL.setdefault(
    "REQUESTS_TIMEOUT",
    (MESSAGING_PROVIDER_CONNECT_TIMEOUT_SECONDS, MESSAGING_PROVIDER_READ_TIMEOUT_SECONDS),
)

# --- Pathways ---------------------------------------------------------------------------------
# Directories of pathway definition files (YAML); the built-in ones ship in
# carehub/pathways/definitions.
PATHWAY_DIRS = [BASE_DIR / "carehub" / "pathways" / "definitions"] + [
    Path(p) for p in env.list("PATHWAY_EXTRA_DIRS", default=[])
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"redact_link_tokens": {"()": "carehub.core.logging.RedactLinkTokens"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_link_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Django's own loggers (request errors, runserver's access log) go through the same
    # filtered handler instead of Django's defaults.
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Twilio's SDK logs every request at INFO (URLs with message ids, its answers): warnings
        # only, so no phone number reaches the logs.
        "twilio": {"level": "WARNING"},
    },
}
