"""Tidings settings: one module, read from the environment.

Without DATABASE_URL and REDIS_URL this is the embedded default (SQLite, an in-process channel
layer, a Celery broker on the local filesystem). With them set it is the real stack (PostgreSQL,
channels-redis, Celery on Redis). `.env.example` lists every variable.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_durations, env_int, env_list, env_str, env_url

# Lets `admin.ModelAdmin[Account]` and friends be subscripted at run time, for the type checker.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TIDINGS_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    # No secret lives in code. Without DJANGO_SECRET_KEY one is generated once per installation
    # and kept in var/ (git-ignored), so sessions survive restarts of the embedded default.
    # Several web hosts behind a balancer must share DJANGO_SECRET_KEY instead.
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 32 characters long.")
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Origins allowed to open a WebSocket besides the page's own origin (scheme, host and port).
TIDINGS_ALLOWED_ORIGINS = env_list("TIDINGS_ALLOWED_ORIGINS", CSRF_TRUSTED_ORIGINS)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "crm",
    "realtime",
    "feed",
    "notifications",
    "integrations",
    "support",
    "dashboard",
    "privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it is the first to see a view's exception: 503 when PostgreSQL is away.
    "config.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "crm.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "notifications.context_processors.badge",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "sqlite"))
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"].endswith("postgresql") and env_bool("TIDINGS_DB_POOL", True):
        # Under ASGI every HTTP request runs on a thread of its own (ThreadSensitiveContext), so
        # a persistent per-thread connection is never reused: each request paid a new backend and
        # left its connection lingering until garbage collection, and under 1,000 sockets
        # PostgreSQL answered "too many clients" (docs/benchmarks.md). A process-wide pool hands
        # each request, consumer call and task a warm connection and takes it back when Django
        # closes it (request end, database_sync_to_async, Celery's task end). A request waits for
        # a free connection rather than failing: the pool is the process's database budget.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("TIDINGS_DB_POOL_MIN", 2, minimum=0, maximum=100),
            "max_size": env_int("TIDINGS_DB_POOL_MAX", 20, minimum=1, maximum=500),
            "timeout": env_int("TIDINGS_DB_POOL_TIMEOUT", 30, minimum=1, maximum=600),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool requires it
        # Django's backend, its pool's checkout check without a round trip (config/postgresql).
        DATABASES["default"]["ENGINE"] = "config.postgresql"
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "tidings.sqlite3"),
            # Writers wait for each other instead of failing with "database is locked".
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            # Tests on SQLite use a file, not the shared-cache in-memory database: its table locks
            # ignore the timeout above, so the threads of the socket tests failed at random with
            # "database table is locked".
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer and Celery broker -------------------------------------------------
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 30},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "filesystem://"
CELERY_FILESYSTEM_DIR = VAR_DIR / "celery"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Auth, API --------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.JSONFirstNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Connection-rate limit for WebSockets: a ticket is needed per API-client connection.
    "DEFAULT_THROTTLE_RATES": {"realtime-ticket": "60/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tidings API",
    "DESCRIPTION": "Accounts, their activity timelines and the real-time ticket of Tidings.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ActivityKindEnum": "feed.models.Activity.Kind"},
}

# Realtime: how long a WebSocket ticket lives, and how far back a cursor may be served.
TIDINGS_TICKET_TTL_SECONDS = env_int("TIDINGS_TICKET_TTL_SECONDS", 60, minimum=5, maximum=3600)
TIDINGS_CATCHUP_LIMIT = env_int("TIDINGS_CATCHUP_LIMIT", 1000, minimum=10, maximum=100_000)
# Days the outbox keeps events; a cursor older than that gets "resync" (pages reload).
TIDINGS_EVENT_RETENTION_DAYS = env_int("TIDINGS_EVENT_RETENTION_DAYS", 30, minimum=1, maximum=3650)
# The web process's garbage collector (config/asgi.py freezes what is loaded at start-up). The
# young generation's threshold is Python's own (700). A daphne process holding 1,000 sockets
# paused every delivery 210-270 ms for each full collection, and at 700 one came every 20-40
# posts: the last of 1,000 followers' p99 was 287-292 ms. 5,000 made full collections rarer
# (151-162 ms) but young garbage then held about 6 MB more while slow clients stalled, which made
# tests/service/test_slow_client.py's memory bound fail now and then (at 50,000, 12 MB).
TIDINGS_WEB_GC_GEN0_THRESHOLD = env_int(
    "TIDINGS_WEB_GC_GEN0_THRESHOLD", 700, minimum=100, maximum=10_000_000
)
# Young collections between two of the middle generation (Python's default: 10). At 100, what a
# fan-out to 1,000 sockets holds for a moment dies there instead of being promoted, and full
# collections come about once a minute of posting instead of every 4-5 s (docs/benchmarks.md).
TIDINGS_WEB_GC_GEN1_THRESHOLD = env_int(
    "TIDINGS_WEB_GC_GEN1_THRESHOLD", 100, minimum=1, maximum=100_000
)
# Bytes the server may hold for a WebSocket client that stopped reading before it is dropped
# (close 4008; it resumes from its cursor). See realtime/consumers.py.
TIDINGS_WS_SEND_BUFFER_BYTES = env_int(
    "TIDINGS_WS_SEND_BUFFER_BYTES", 1024 * 1024, minimum=16 * 1024, maximum=256 * 1024 * 1024
)

# Support requests: when a request of each priority falls due after it is raised, in hours (h) or
# business days (bd, Monday to Friday, same time of day).
TIDINGS_REQUEST_DUE = env_durations("TIDINGS_REQUEST_DUE", "urgent=4h,high=1bd,normal=3bd,low=5bd")
# Accounts with no customer-facing activity (email, meeting, call) for this long are "going cold".
TIDINGS_COLD_DAYS = env_int("TIDINGS_COLD_DAYS", 14, minimum=1, maximum=365)

# --- Email and notifications ---------------------------------------------------------------
# The embedded default writes each email as a file under var/mail/ (read them there); set
# EMAIL_HOST to send through SMTP instead.
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = env_str("TIDINGS_MAIL_DIR") or str(VAR_DIR / "mail")
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Tidings <tidings@localhost>")
# Links in emails point here; the domain names our Message-IDs.
TIDINGS_BASE_URL = env_str("TIDINGS_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
TIDINGS_EMAIL_DOMAIN = env_str("TIDINGS_EMAIL_DOMAIN", "tidings.localhost")
# Emails wait this long so that what arrives meanwhile for the same person goes in one message,
# and what they read meanwhile is not sent at all.
TIDINGS_EMAIL_BATCH_SECONDS = env_int("TIDINGS_EMAIL_BATCH_SECONDS", 120, maximum=24 * 3600)
# How often the periodic jobs run (reminders, task alerts, email batches, the lost-task sweep).
TIDINGS_SWEEP_SECONDS = env_int("TIDINGS_SWEEP_SECONDS", 60, minimum=1, maximum=3600)
# --- Inbound email (integrations) -----------------------------------------------------------
# The key of X-Tidings-Signature on POST /integrations/email/inbound/raw/. Unset, the endpoint
# refuses every message (403): there is no insecure default.
TIDINGS_INBOUND_SECRET = env_str("TIDINGS_INBOUND_SECRET")
# Larger messages are answered 413 (providers then bounce them to the sender: never dropped).
TIDINGS_INBOUND_MAX_BYTES = env_int(
    "TIDINGS_INBOUND_MAX_BYTES", 30 * 1024 * 1024, minimum=1024, maximum=200 * 1024 * 1024
)
# Accept raw posts on the thread pool, concurrently (True), or on the one thread every sync view
# of the process shares. Tests run in-process switch it off: their database transaction belongs
# to that one thread.
TIDINGS_INBOUND_ACCEPT_IN_POOL = True
# A web process gathers the accepts of this many milliseconds into one drain request (one Redis
# round trip instead of one per accept, integrations/actions/queueing.py); 0: one per accept.
TIDINGS_INBOUND_DRAIN_GATHER_SECONDS = (
    env_int("TIDINGS_INBOUND_DRAIN_GATHER_MS", 50, minimum=0, maximum=5000) / 1000
)
# The domain of the per-account logging addresses, log+<token>@<this domain>.
TIDINGS_INBOUND_DOMAIN = env_str("TIDINGS_INBOUND_DOMAIN", "inbound.tidings.example").lower()
# Mail to this address that matches an account raises a support request there (besides the email).
TIDINGS_SUPPORT_ADDRESS = env_str(
    "TIDINGS_SUPPORT_ADDRESS", f"support@{TIDINGS_INBOUND_DOMAIN}"
).lower()
# The company's own mail domains: a colleague's address never matches an account.
TIDINGS_OWN_DOMAINS = [d.lower() for d in env_list("TIDINGS_OWN_DOMAINS", ["tidings.example"])]
# Only Authentication-Results headers added by this authserv-id (our own provider or MTA) are
# believed; anyone can write such a header into a message they send.
TIDINGS_INBOUND_AUTHSERV_ID = env_str("TIDINGS_INBOUND_AUTHSERV_ID").lower()
# More than this many messages from one sender within the window is a burst (a loop, a
# runaway script): the rest are stored and marked, not put on the timeline.
TIDINGS_INBOUND_BURST_LIMIT = env_int("TIDINGS_INBOUND_BURST_LIMIT", 30, minimum=1)
TIDINGS_INBOUND_BURST_MINUTES = env_int("TIDINGS_INBOUND_BURST_MINUTES", 10, minimum=1)
# Attachments above this size are listed on the email but not kept.
TIDINGS_ATTACHMENT_MAX_BYTES = env_int(
    "TIDINGS_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=0, maximum=200 * 1024 * 1024
)
TIDINGS_ATTACHMENT_DIR = Path(env_str("TIDINGS_ATTACHMENT_DIR") or VAR_DIR / "attachments")
# Provider webhooks (django-anymail). WEBHOOK_SECRET is the "user:password" basic auth every
# provider's webhook URL carries; Mailgun also signs each post with its webhook signing key.
# Unset keys are left out: the webhooks then refuse every post (403) instead of trusting it.
ANYMAIL = {
    name: value
    for name, value in {
        "WEBHOOK_SECRET": env_str("ANYMAIL_WEBHOOK_SECRET"),
        "MAILGUN_WEBHOOK_SIGNING_KEY": env_str("MAILGUN_WEBHOOK_SIGNING_KEY"),
    }.items()
    if value
}
# Mailgun's signature covers a timestamp and a token but the library checks neither's age or
# reuse: posts older than this are refused and each token is accepted once.
TIDINGS_MAILGUN_MAX_AGE_SECONDS = env_int(
    "TIDINGS_MAILGUN_MAX_AGE_SECONDS", 300, minimum=10, maximum=86_400
)
# The SNS topics Amazon SES posts inbound mail to; a notification from any other topic is
# refused, even with a valid Amazon signature (anyone can make an SNS topic).
TIDINGS_SES_TOPIC_ARNS = env_list("TIDINGS_SES_TOPIC_ARNS", [])

# --- Static files, i18n ---------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app folders too, so the embedded default needs no collectstatic.
WHITENOISE_USE_FINDERS = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG and env_bool("TIDINGS_HTTPS", False):
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("TIDINGS_LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
