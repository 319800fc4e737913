"""CarbonPark settings: one file, everything from the environment.

DATABASE_URL   postgresql://user:pass@host:port/db (default: the embedded PostgreSQL under var/)
REDIS_URL      redis://host:port/db               (default: the embedded Redis under var/)
MQTT_URL       mqtt://host:port                   (default: the embedded broker, see issue 3)
SECRET_KEY, CARBONPARK_MASTER_KEY                  (default: generated once under var/, never in git)
TIME_ZONE      default Asia/Shanghai
DEBUG          default off
CARBONPARK_ENV=production  behind the TLS front (docs/production-settings.md): ALLOWED_HOSTS required,
               secure cookies, HSTS, HTTPS redirect, X-Forwarded-Proto trusted; `check --deploy` is clean
PUBLIC_BASE_URL            base of the links the API hands out (default: relative links)
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from carbonpark.dburl import parse_database_url
from carbonpark.embedded import VAR_DIR, embedded_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def _secret(name: str) -> str:
    """A secret from the environment; on the embedded default, one generated once and kept in var/."""
    value = os.environ.get(name)
    if value:
        return value
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / name.lower()
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


PRODUCTION = os.environ.get("CARBONPARK_ENV", "").strip().lower() == "production"
DEBUG = _env_bool("DEBUG") and not PRODUCTION
SECRET_KEY = _secret("SECRET_KEY")
CARBONPARK_MASTER_KEY = _secret("CARBONPARK_MASTER_KEY")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "" if PRODUCTION else "*").split(",") if h.strip()]
if PRODUCTION and (not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS):
    raise ImproperlyConfigured("CARBONPARK_ENV=production needs ALLOWED_HOSTS: the host names the portal and API "
                               "answer to, comma-separated (e.g. carbon.example.com), never *")
if PRODUCTION:
    # the supervisor's and the monitoring's probes of /healthz and /metrics on loopback
    ALLOWED_HOSTS += [h for h in ("localhost", "127.0.0.1", "[::1]") if h not in ALLOWED_HOSTS]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# Production sits behind the buffering TLS front (deploy/nginx): it terminates TLS and sets X-Forwarded-Proto,
# which is trusted only there. Every value can be tuned from the environment (docs/production-settings.md).
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    # probes of the supervisor and monitoring talk plain HTTP to gunicorn on loopback
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 86400)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Content Security Policy (django-csp 4), in every mode so the tests see what production serves: scripts only
# from this origin or with the per-request nonce (no inline handlers), no plugins, no framing. Inline styles
# stay allowed (the admin's own templates carry style blocks; styles cannot run code).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

INSTALLED_APPS = [
    "carbonpark.apps.PortalAdminConfig",  # django.contrib.admin with the portal's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "simple_history",
    "django_celery_beat",
    "csp",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.catalog",
    "apps.sources",
    "apps.quality",
    "apps.entry",
    "apps.ingestion",
    "apps.corrections",
    "apps.batch",
    "apps.uploads",
    "apps.pulls",
    "apps.integrations",
    "apps.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Chunked bodies read under the size limit, NUL refused in query strings, database down → 503 JSON.
    "apps.core.middleware.RequestGuardMiddleware",
    # gunicorn serves the portal's CSS/JS and Swagger UI's assets itself (compressed, cached).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "apps.core.middleware.PortalLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.CSPMiddleware",  # django-csp's, its usual header built once per process
    "simple_history.middleware.HistoryRequestMiddleware",
    # Log-ins: a session idle too long ends; django-axes answers a locked-out log-in (keep it last).
    "apps.accounts.middleware.IdleSessionMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "carbonpark.urls"
WSGI_APPLICATION = "carbonpark.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL") or embedded_database_url()
DATABASES = {"default": {**parse_database_url(DATABASE_URL), "CONN_MAX_AGE": 600, "CONN_HEALTH_CHECKS": True}}
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME") or None}
# A database host that stops answering (not refusing) fails a request in seconds (503 E1015), instead of
# holding a web worker until gunicorn's timeout.
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", int(os.environ.get("DATABASE_CONNECT_TIMEOUT", "5")))
# The gevent web workers (carbonpark/gunicorn.conf.py sets CARBONPARK_DB_POOL) run one request per greenlet: they
# share a bounded psycopg pool per process instead of one persistent connection per greenlet (client connection).
# Django's pool checks each connection when it is taken: after a PostgreSQL restart no request gets a dead one.
if os.environ.get("CARBONPARK_DB_POOL"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        # A request waits at most 5 s for a connection (PostgreSQL down: the API's 503 comes after 5 s, not 30 s);
        # gunicorn.conf.py lets fewer requests into Django at once than the pool holds, so load never waits here.
        # A connection attempt that keeps failing gives up after 5 s instead of backing off for minutes, so the next
        # request after an outage tries again at once: the web recovers within a second of PostgreSQL.
        # DATABASE_POOL_TIMEOUT changes both (tests of an outage use 1 s).
        "min_size": 1, "max_size": int(os.environ["CARBONPARK_DB_POOL"]),
        "timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT", "5")),
        "reconnect_timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT", "5"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MQTT_URL = os.environ.get("MQTT_URL", "")
MQTT_PROTOCOL = int(os.environ.get("MQTT_PROTOCOL", "5"))  # 5 = MQTT v5, 4 = v3.1.1
MQTT_CA_FILE = os.environ.get("MQTT_CA_FILE", "")  # the CA that signed the broker's certificate (mqtts://)
# 1: consumers join the shared subscription (several split the stream); 0: one consumer, plain subscriptions,
# which Mosquitto 2.0 restores after a restart (deploy/mosquitto/README.md).
MQTT_SHARED_SUBSCRIPTION = os.environ.get("MQTT_SHARED_SUBSCRIPTION", "0") == "1"
KEY_ROTATION_DAYS = int(os.environ.get("KEY_ROTATION_DAYS", "30"))  # R-5.2.2.6: at most every 30 days
KEY_RETIRED_DECRYPT_HOURS = int(os.environ.get("KEY_RETIRED_DECRYPT_HOURS", "96"))
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("CACHE_PREFIX", "carbonpark"),
    }
}

# django-guardian's stand-in user for anonymous object permissions: not used (no park right is anonymous), and
# its row would be offered to park administrators as a person to make a member.
ANONYMOUS_USER_NAME = None
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username+address before any password is checked (accounts section below).
    "apps.accounts.auth_events.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": int(os.environ.get("PASSWORD_MIN_LENGTH", "10"))}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request until collectstatic ran
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# A readings batch is at most 10 000 records (interfaces.md §3), about 2 MB of JSON; 16 MB leaves room
# for verbose clients while a 50 MB body is refused before it is read (E1004).
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
READINGS_MAX_BATCH = 10_000
# Monthly partitions of the readings table (apps/ingestion/partitions.py): made this many months ahead by the
# daily beat task. Retention: unset keeps every reading; N detaches partitions whose month is over N months
# old, archives each as CSV (gzip) under READINGS_ARCHIVE_DIR, then drops it (audited).
READINGS_PARTITIONS_AHEAD = int(os.environ.get("READINGS_PARTITIONS_AHEAD", "3"))
READINGS_RETENTION_MONTHS = int(os.environ["READINGS_RETENTION_MONTHS"]) if os.environ.get(
    "READINGS_RETENTION_MONTHS") else None
READINGS_ARCHIVE_DIR = os.environ.get("READINGS_ARCHIVE_DIR", str(VAR_DIR / "archive" / "readings"))

# Uploaded files (evidence of corrections, later of forms): under MEDIA_ROOT, served by no public URL.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
EVIDENCE_MAX_BYTES = int(os.environ.get("EVIDENCE_MAX_BYTES", str(20 * 1024 * 1024)))
# Resumable uploads (apps/uploads, tus 1.0.0, docs/uploads.md): the largest file accepted, checked at creation
# (the loader checks the same limit after decompression), how long an unfinished upload is kept after its last
# byte, and how long one PATCH holds an upload before another may take it over (renewed while bytes arrive).
UPLOAD_MAX_BYTES = int(os.environ.get("UPLOAD_MAX_BYTES", str(100 * 1024 * 1024)))
UPLOAD_EXPIRES_HOURS = float(os.environ.get("UPLOAD_EXPIRES_HOURS", "24"))
# Days a loaded (or failed) upload's file is kept on disk; 0 keeps it for good (apps.uploads.services.remove_old_files).
UPLOAD_RETENTION_DAYS = float(os.environ.get("UPLOAD_RETENTION_DAYS", "0"))
UPLOAD_LEASE_SECONDS = float(os.environ.get("UPLOAD_LEASE_SECONDS", "60"))
# Corrections (apps/corrections): the most readings one request may revise.
CORRECTIONS_MAX_READINGS = int(os.environ.get("CORRECTIONS_MAX_READINGS", "1000000"))
# Filling gaps (apps/quality/filling, R-9.3.2.1, docs/gaps.md): how long a gap of a source that can resend waits
# for real readings after the resend command; the longest gap filled by linear interpolation, by a profile (0: no
# profiles); gaps looked at per run; minor anomalies repaired by interpolation, over the hits of checks
# after storage of the last GAP_REPAIR_LOOKBACK_S.
GAP_REFETCH_WAIT_S = int(os.environ.get("GAP_REFETCH_WAIT_S", "600"))
GAP_INTERPOLATE_MAX_S = int(os.environ.get("GAP_INTERPOLATE_MAX_S", "3600"))
GAP_PROFILE_MAX_S = int(os.environ.get("GAP_PROFILE_MAX_S", str(7 * 86400)))
GAP_FILL_BATCH = int(os.environ.get("GAP_FILL_BATCH", "500"))
GAP_REPAIR_ANOMALIES = os.environ.get("GAP_REPAIR_ANOMALIES", "1").lower() not in ("0", "false", "no", "")
GAP_REPAIR_LOOKBACK_S = int(os.environ.get("GAP_REPAIR_LOOKBACK_S", "172800"))
# Deadlines (apps/quality/deadlines): an overdue item still overdue this many working days after its due time is
# escalated to the park's administrators (R-6.2.b–d).
DEADLINE_ESCALATE_WORKDAYS = int(os.environ.get("DEADLINE_ESCALATE_WORKDAYS", "1"))
# ... and the overdue list judges the periods due within this many days (each item's latest due period always).
DEADLINE_LOOKBACK_DAYS = int(os.environ.get("DEADLINE_LOOKBACK_DAYS", "31"))
# Checks of a period after storage (balance groups, ratios; docs/post-checks.md) judge an hour, day or month only
# this many seconds after it ended, so that late readings of the sub-meters are in.
POST_CHECK_SETTLE_S = float(os.environ.get("POST_CHECK_SETTLE_S", "600"))

# Batch files (apps/batch, interfaces.md §7): the limit after decompression (zip and gzip bombs refused), the
# compression ratio past which a file is taken for a bomb, the rejection reports' folder, and the legacy shared
# folder (R-7.4.1.2: {parkCode}/{category}/{yyyy}/{MM}/, scanned by the beat task scan-batch-folder).
BATCH_MAX_BYTES = int(os.environ.get("BATCH_MAX_BYTES", str(100 * 1024 * 1024)))
BATCH_MAX_RATIO = int(os.environ.get("BATCH_MAX_RATIO", "200"))
BATCH_REPORT_ROOT = Path(os.environ.get("BATCH_REPORT_ROOT", str(VAR_DIR / "batch-reports")))
BATCH_FOLDER_ROOT = Path(os.environ.get("BATCH_FOLDER_ROOT", str(VAR_DIR / "batch-inbox")))
# A file in the shared folder is taken once its size and modification time have not changed for this long
# (a writer still copying it changes them), or at once when a "<name>.done" marker stands beside it.
BATCH_FOLDER_SETTLE_SECONDS = int(os.environ.get("BATCH_FOLDER_SETTLE_SECONDS", "60"))
# Pull connectors (apps/pulls, docs/pulls.md): REST pulls use https (TLS ≥ 1.2, R-8.1.2.2); plain http only when
# this is on (a lab, a local fake platform), never in production.
PULLS_ALLOW_PLAIN_HTTP = _env_bool("PULLS_ALLOW_PLAIN_HTTP") and not PRODUCTION

# E-mail (approvers are told of corrections awaiting them): Django's SMTP backend, settings from the environment.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS")
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "carbonpark@localhost")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Signed in, then the operation's park action (each view's access_rules; apps/accounts/permissions.py).
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.ParkAccess"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.openapi.CarbonParkAutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.DefaultPagination",
    "PAGE_SIZE": 100,
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CarbonPark API",
    "DESCRIPTION": "Data access for the carbon management system of zero-carbon parks "
                   "(零碳园区碳管理系统数据接入技术规范). Error codes: GET /api/v1/errors.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"CollectionMethodEnum": "apps.catalog.models.CollectionMethod",
                            # the API's ChoiceField of the values alone (labels = values): named by the values
                            "SubmissionStateEnum": ["draft", "submitted", "approved", "returned"],
                            "CorrectionStateEnum": "apps.corrections.models.Correction.State",
                            "CommandStateEnum": "apps.sources.models.Command.State",
                            "UploadStateEnum": ["receiving", "received", "loading", "loaded", "failed", "expired"]},
    # Swagger UI's assets come from the sidecar wheel, not a CDN: the portal works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
# Per-source poll schedules live in the database (django-celery-beat): one periodic task per polled source,
# kept in step by apps.sources.services.polling; the static jobs of carbonpark/celery.py are synced into it.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Links the API hands out (pagination next/previous) are built from this base, never from the request's Host
# header; unset, they are relative to the server (/api/v1/...), e.g. PUBLIC_BASE_URL=https://carbon.example.com
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "")

# A valid API token is remembered by each web process for this many seconds (apps/accounts/authentication.py), so
# that a device posting one reading per request pays no token query each time; a token withdrawn in another
# process is refused within this time (in the same process at once). 0: look every token up on every request.
API_TOKEN_CACHE_SECONDS = float(os.environ.get("API_TOKEN_CACHE_SECONDS", "5"))

# How long an Idempotency-Key is remembered (interfaces.md §3); retries come within hours, not weeks.
IDEMPOTENCY_TTL_HOURS = int(os.environ.get("IDEMPOTENCY_TTL_HOURS", "72"))
# Third-party platforms' open API (interfaces.md §6, docs/third-party-platforms.md): the published rate limit per
# app_id (R-7.4.1.3; a platform's own override in its registration), the signature's timestamp window (±5 min),
# bearer token lifetime, suspension thresholds (R-7.4.3.2), push size limits; plain-http URLs only for testing.
OPEN_RATE_LIMIT_PER_MIN = int(os.environ.get("OPEN_RATE_LIMIT_PER_MIN", "100"))
OPEN_AUTH_WINDOW_S = int(os.environ.get("OPEN_AUTH_WINDOW_S", "300"))
OPEN_TOKEN_TTL_S = int(os.environ.get("OPEN_TOKEN_TTL_S", "7200"))
OPEN_AUTH_FAILURES_SUSPEND = int(os.environ.get("OPEN_AUTH_FAILURES_SUSPEND", "3"))
OPEN_PUSH_FAILURES_SUSPEND = int(os.environ.get("OPEN_PUSH_FAILURES_SUSPEND", "10"))
OPEN_DATA_MAX_RECORDS = int(os.environ.get("OPEN_DATA_MAX_RECORDS", "10000"))
# A re-pushed different value is a correction within this many seconds of the first push (R-7.4.3.1); records
# flagged backfill are accepted this long after the platform's recovery (R-7.4.3.3). apps/integrations/resubmit.py.
OPEN_CORRECTION_WINDOW_S = int(os.environ.get("OPEN_CORRECTION_WINDOW_S", "300"))
OPEN_BACKFILL_WINDOW_S = int(os.environ.get("OPEN_BACKFILL_WINDOW_S", "86400"))
OPEN_DATA_MAX_BYTES = int(os.environ.get("OPEN_DATA_MAX_BYTES", str(8 * 1024 * 1024)))
OPEN_ALLOW_HTTP_URLS = _env_bool("OPEN_ALLOW_HTTP_URLS")
# Outbound HTTP to third parties (callbacks, probes): connect ≤ 30 s, read ≤ 60 s (R-8.1.2.2); callbacks are tried
# CALLBACK_MAX_ATTEMPTS times with back-off from CALLBACK_BACKOFF_S (doubling, capped at an hour, a Retry-After
# honoured), then kept as dead letters to replay; a probe slower than PROBE_SLOW_S (≥ 5 s, R-7.4.4.2) is an outage.
OUTBOUND_CONNECT_TIMEOUT_S = float(os.environ.get("OUTBOUND_CONNECT_TIMEOUT_S", "10"))
OUTBOUND_READ_TIMEOUT_S = float(os.environ.get("OUTBOUND_READ_TIMEOUT_S", "30"))
CALLBACK_MAX_ATTEMPTS = int(os.environ.get("CALLBACK_MAX_ATTEMPTS", "8"))
CALLBACK_BACKOFF_S = float(os.environ.get("CALLBACK_BACKOFF_S", "30"))
PROBE_SLOW_S = float(os.environ.get("PROBE_SLOW_S", "5"))
# Open alarms of these kinds pop up on every portal page until dismissed (apps/quality/popups.py, R-7.4.4.2).
PORTAL_POPUP_ALARM_KINDS = [k.strip() for k in os.environ.get("PORTAL_POPUP_ALARM_KINDS", "integration").split(",")
                            if k.strip()]
# SMS alerts (R-7.4.4.2): an HTTP SMS provider; empty sends none. apps/integrations/sms.py says what it is sent.
SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "")
SMS_GATEWAY_TOKEN = os.environ.get("SMS_GATEWAY_TOKEN", "")
SMS_BACKEND = os.environ.get("SMS_BACKEND", "apps.integrations.sms.HttpSmsGateway")

# Health and metrics (docs/operations-health.md). HEALTH_EXPECT: the processes /healthz requires, comma
# separated, from mqtt, hj212, worker, beat (default all; e.g. "mqtt,worker,beat" without the HJ 212 listener).
HEALTH_EXPECT = [c.strip() for c in os.environ.get("HEALTH_EXPECT", "mqtt,hj212,worker,beat").split(",") if c.strip()]
HEARTBEAT_INTERVAL_S = float(os.environ.get("HEARTBEAT_INTERVAL_S", "5"))  # how often each process beats
HEALTH_STALE_S = float(os.environ.get("HEALTH_STALE_S", "30"))  # a heartbeat older than this: stalled
HEALTH_MQTT_LAG_S = float(os.environ.get("HEALTH_MQTT_LAG_S", "60"))  # oldest uncommitted MQTT message
HEALTH_FORGET_S = float(os.environ.get("HEALTH_FORGET_S", "600"))  # an instance silent this long is dropped
# /metrics answers loopback clients, or any client presenting "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Celery queues whose depth /metrics reports (Redis list lengths).
METRICS_CELERY_QUEUES = [q.strip() for q in os.environ.get("METRICS_CELERY_QUEUES", "celery").split(",") if q.strip()]
# prometheus_client's multiprocess mode: every process of one machine writes its counters under this
# directory and /metrics adds them up. The run command sets it and empties it at start.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")

# Accounts (issue #8, R-7.1.2): log-in lockout, sessions that end. Every log-in, failure, lockout and log-out is
# an audit record (apps.accounts.auth_events → apps.accounts.services).
# django-axes: LOGIN_FAILURE_LIMIT failed log-ins for one user name from one address lock that pair out for
# LOGIN_COOLOFF_MINUTES (another address, or the same address with another name, is not locked). A success resets.
AXES_ENABLED = _env_bool("LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the lock ends LOGIN_COOLOFF_MINUTES after it began
AXES_LOCKOUT_CALLABLE = "apps.accounts.auth_events.lockout_response"
# Behind the TLS front the client's address is the X-Real-IP nginx sets (deploy/nginx), never a client's header.
AXES_CLIENT_IP_CALLABLE = "apps.accounts.auth_events.client_ip"
AXES_VERBOSE = False
# The audit trail already records every log-in and log-out (axes' own access log would repeat it), and axes'
# admin pages have no Chinese: locks are seen in the audit trail (auth.lockout) and lifted with
# `manage.py axes_reset_username NAME` (docs/audit-trail.md).
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
# Sessions: at most SESSION_HOURS after log-in, SESSION_IDLE_MINUTES without a request (0: no idle limit), and
# gone when the browser closes unless SESSION_EXPIRE_AT_BROWSER_CLOSE=0.
SESSION_COOKIE_AGE = int(float(os.environ.get("SESSION_HOURS", "8")) * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = _env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", True)
SESSION_IDLE_SECONDS = int(float(os.environ.get("SESSION_IDLE_MINUTES", "60")) * 60)
