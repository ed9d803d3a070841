"""The one settings module: every knob comes from the environment (see README, "Configuration")."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from corsheaders.defaults import default_headers
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A .env file beside manage.py is read when present; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

PRODUCTION = env.bool("MEV_PRODUCTION", default=False)
DEBUG = env.bool("MEV_DEBUG", default=False)

DATA_DIR = Path(env.str("MEV_DATA_DIR", default=str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _quickstart_secret_key() -> str:
    """A random key kept in the data directory, so tokens survive a restart of the quick-start.

    Production never takes this path: it must be given MEV_SECRET_KEY.
    """
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env.str("MEV_SECRET_KEY", default="")
    ALLOWED_HOSTS = env.list("MEV_ALLOWED_HOSTS", default=[])
    if len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("MEV_PRODUCTION is on: set MEV_SECRET_KEY to a random string of 32+ characters.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("MEV_PRODUCTION is on: set MEV_ALLOWED_HOSTS (comma-separated host names).")
else:
    SECRET_KEY = env.str("MEV_SECRET_KEY", default="") or _quickstart_secret_key()
    ALLOWED_HOSTS = env.list("MEV_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mev.core",
    "mev.users",
    "mev.resources",
    "mev.workspaces",
    "mev.operations",
    "mev.jobs",
]

MIDDLEWARE = [
    "mev.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mev.urls"
WSGI_APPLICATION = "mev.wsgi.application"
# Routes answer with and without the final slash (contract §1.1), so no redirects are needed.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "mev" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'mev.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("MEV_DB_CONN_MAX_AGE", default=60)
# The contents fast path prepares its one statement on each database connection; false behind a
# pooler that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
MEV_DB_PREPARED_STATEMENTS = env.bool("MEV_DB_PREPARED_STATEMENTS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (gunicorn, worker, beat) share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

AUTH_USER_MODEL = "users.User"
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email",)},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("MEV_PASSWORD_MIN_LENGTH", default=8)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Activation and reset links share one token scheme and last three days (contract §2.1).
PASSWORD_RESET_TIMEOUT = env.int("MEV_TOKEN_LINK_SECONDS", default=3 * 24 * 3600)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("MEV_STATIC_ROOT", default=str(DATA_DIR / "static")))
MEDIA_ROOT = Path(env.str("MEV_MEDIA_ROOT", default=str(DATA_DIR / "files")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- E-mail --------------------------------------------------------------------------------------
_EMAIL_URL = env.str("EMAIL_URL", default="consolemail://")
vars().update(env.email_url_config(_EMAIL_URL))
if _EMAIL_URL.startswith("filemail://"):
    # django-environ drops the leading "/" of the folder; filemail:///var/mail/mev means /var/mail/mev.
    EMAIL_FILE_PATH = _EMAIL_URL.removeprefix("filemail://")
DEFAULT_FROM_EMAIL = env.str("MEV_FROM_EMAIL", default="WebMEV <no-reply@localhost>")
ADMINS = [(a, a) for a in env.list("MEV_ADMIN_EMAILS", default=[])]
FRONTEND_URL = env.str("MEV_FRONTEND_URL", default="http://localhost:4200").rstrip("/")

# --- API -------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["mev.core.authentication.BearerJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["mev.core.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "mev.core.schema.MevAutoSchema",
    "EXCEPTION_HANDLER": "mev.core.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "auth": env.str("MEV_THROTTLE_AUTH", default="20/min"),
        "feedback": env.str("MEV_THROTTLE_FEEDBACK", default="10/hour"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("MEV_ACCESS_TOKEN_MINUTES", default=30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("MEV_REFRESH_TOKEN_DAYS", default=1)),
    # The web client keeps re-using its first refresh token: no rotation, no blacklist (§1.2).
    "ROTATE_REFRESH_TOKENS": False,
    "BLACKLIST_AFTER_ROTATION": False,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": env.str("MEV_JWT_SIGNING_KEY", default="") or SECRET_KEY,
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "WebMEV API",
    "DESCRIPTION": "Upload, validate and analyse genomic data. Authenticate with `Authorization: Bearer <access>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["mev.core.schema.only_canonical_routes"],
}

# --- CORS (contract §1.3) -----------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list(
    "MEV_CORS_ALLOWED_ORIGINS", default=["http://localhost:4200", "http://127.0.0.1:4200"]
)
# django-cors-headers' defaults (accept, authorization, content-type, origin, user-agent, x-csrftoken,
# x-requested-with...) plus what resumable uploads and ranged downloads send.
CORS_ALLOW_HEADERS = [*default_headers, "x-request-id", "upload-offset", "upload-length", "upload-metadata",
                      "tus-resumable", "content-range", "range"]
CORS_EXPOSE_HEADERS = ["Content-Disposition", "X-Request-ID", "Location", "Upload-Offset", "Upload-Length",
                       "Tus-Resumable", "Upload-Resource-Id", "Content-Range", "Accept-Ranges", "Content-Length"]
CORS_ALLOW_CREDENTIALS = False

# --- File storage --------------------------------------------------------------------------------
# `local` keeps files under MEDIA_ROOT; `s3` uses any S3-compatible object store.
MEV_STORAGE = env.str("MEV_STORAGE", default="local")
if MEV_STORAGE not in ("local", "s3"):
    raise ImproperlyConfigured(f"MEV_STORAGE must be 'local' or 's3', not {MEV_STORAGE!r}.")
MEV_S3_BUCKET = env.str("MEV_S3_BUCKET", default="")
MEV_S3_ENDPOINT_URL = env.str("MEV_S3_ENDPOINT_URL", default="")
MEV_S3_REGION = env.str("MEV_S3_REGION", default="")
MEV_S3_PREFIX = env.str("MEV_S3_PREFIX", default="")
if MEV_STORAGE == "s3" and not MEV_S3_BUCKET:
    raise ImproperlyConfigured("MEV_STORAGE=s3 needs MEV_S3_BUCKET.")
# Behind nginx, downloads are answered with X-Accel-Redirect to its internal location.
MEV_DOWNLOAD_ACCEL = env.bool("MEV_DOWNLOAD_ACCEL", default=False)
MEV_DOWNLOAD_ACCEL_PREFIX = env.str("MEV_DOWNLOAD_ACCEL_PREFIX", default="/_protected/")
MEV_SIGNED_URL_SECONDS = env.int("MEV_SIGNED_URL_SECONDS", default=300)
MEV_UPLOAD_EXPIRY_HOURS = env.int("MEV_UPLOAD_EXPIRY_HOURS", default=24)
# A validation requested longer ago than this with no outcome is re-sent (or ended) by the sweep.
MEV_VALIDATION_STUCK_SECONDS = env.int("MEV_VALIDATION_STUCK_SECONDS", default=300)
# Memory (MB) each web worker process may keep for contents requests (footers, small tables, sort
# orders, row means; least recently used dropped first). 0 turns the cache off.
MEV_CONTENTS_CACHE_MB = env.int("MEV_CONTENTS_CACHE_MB", default=256)
# Owners' table pages answered by a WSGI wrapper in front of Django's routing and DRF
# (mev/resources/contents_fastpath.py); false sends every request through Django.
MEV_CONTENTS_FAST_PATH = env.bool("MEV_CONTENTS_FAST_PATH", default=True)

# --- Uploads -------------------------------------------------------------------------------------
MEV_MAX_UPLOAD_BYTES = env.int("MEV_MAX_UPLOAD_BYTES", default=2 * 1024**3)
# Bytes of uploaded files one user may keep (a user's own `storage_quota_bytes` overrides it); 0 = no limit.
MEV_STORAGE_QUOTA_BYTES = env.int("MEV_STORAGE_QUOTA_BYTES", default=50 * 1024**3)
# Resumable uploads one user may have open at once (0 = no limit).
MEV_MAX_OPEN_UPLOADS = env.int("MEV_MAX_OPEN_UPLOADS", default=20)
# Request bodies above this stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
# Partial resumable uploads; with several web hosts this must be a directory they all share.
MEV_UPLOAD_PARTIAL_DIR = env.str("MEV_UPLOAD_PARTIAL_DIR", default=str(Path(FILE_UPLOAD_TEMP_DIR) / "tus"))

# --- Jobs ----------------------------------------------------------------------------------------
MEV_JOBS_DIR = Path(env.str("MEV_JOBS_DIR", default=str(DATA_DIR / "jobs")))
MEV_OPERATIONS_DIR = Path(env.str("MEV_OPERATIONS_DIR", default=str(DATA_DIR / "operations")))
MEV_SWEEP_SECONDS = env.float("MEV_SWEEP_SECONDS", default=2.0)
MEV_SWEEP_BATCH = env.int("MEV_SWEEP_BATCH", default=500)
MEV_MAX_CONCURRENT_JOBS_PER_USER = env.int("MEV_MAX_CONCURRENT_JOBS_PER_USER", default=4)
MEV_SUBMIT_GRACE_SECONDS = env.float("MEV_SUBMIT_GRACE_SECONDS", default=5.0)
MEV_SUBMIT_CLAIM_SECONDS = env.float("MEV_SUBMIT_CLAIM_SECONDS", default=120.0)
MEV_QUEUED_TIMEOUT_SECONDS = env.float("MEV_QUEUED_TIMEOUT_SECONDS", default=3600.0)
MEV_SUBMITTED_TIMEOUT_SECONDS = env.float("MEV_SUBMITTED_TIMEOUT_SECONDS", default=600.0)
MEV_JOB_TIMEOUT_SECONDS = env.int("MEV_JOB_TIMEOUT_SECONDS", default=24 * 3600)
MEV_JOB_MEMORY_BYTES = env.int("MEV_JOB_MEMORY_BYTES", default=8 * 1024**3)
MEV_JOB_CPUS = env.int("MEV_JOB_CPUS", default=1)
MEV_JOB_MAX_CPUS = env.int("MEV_JOB_MAX_CPUS", default=os.cpu_count() or 1)
# How local tools are confined (mev/jobs/runners/sandbox.py): `auto` uses bubblewrap when it runs here (else
# unconfined, with one warning), `bwrap` requires it (jobs fail without it), `none` never confines.
MEV_LOCAL_SANDBOX = env.str("MEV_LOCAL_SANDBOX", default="auto").strip().lower()
if MEV_LOCAL_SANDBOX not in ("auto", "bwrap", "none"):
    raise ImproperlyConfigured(f"MEV_LOCAL_SANDBOX must be 'auto', 'bwrap' or 'none', not {MEV_LOCAL_SANDBOX!r}.")
MEV_FINALIZE_RETRY_SECONDS = env.float("MEV_FINALIZE_RETRY_SECONDS", default=120.0)
MEV_FINALIZE_TIMEOUT_SECONDS = env.float("MEV_FINALIZE_TIMEOUT_SECONDS", default=1800.0)
MEV_RUNNER_ERROR_LIMIT = env.int("MEV_RUNNER_ERROR_LIMIT", default=10)
MEV_OPERATION_GIT_HOSTS = env.list("MEV_OPERATION_GIT_HOSTS", default=["github.com"])
MEV_GIT_TIMEOUT_SECONDS = env.int("MEV_GIT_TIMEOUT_SECONDS", default=300)
# Dropbox imports (POST /resources/dropbox-upload/): allow-listed hosts (`host` or `host:port`), https only;
# the download is capped by MEV_MAX_UPLOAD_BYTES. MEV_DROPBOX_REQUIRE_HTTPS=false is for tests only.
MEV_DROPBOX_HOSTS = env.list("MEV_DROPBOX_HOSTS", default=["dl.dropboxusercontent.com", "www.dropbox.com",
                                                            "dropbox.com"])
MEV_DROPBOX_REQUIRE_HTTPS = env.bool("MEV_DROPBOX_REQUIRE_HTTPS", default=True)
MEV_DROPBOX_TIMEOUT_SECONDS = env.int("MEV_DROPBOX_TIMEOUT_SECONDS", default=60)
# Files per import request, and active imports per user (a quota apart from MEV_MAX_CONCURRENT_JOBS_PER_USER).
MEV_DROPBOX_MAX_FILES = env.int("MEV_DROPBOX_MAX_FILES", default=20)

# --- Remote engines (Cromwell, GA4GH WES) --------------------------------------------------------
MEV_CROMWELL_URL = env.str("MEV_CROMWELL_URL", default="") or None
MEV_CROMWELL_OPTIONS = env.json("MEV_CROMWELL_OPTIONS", default={})
MEV_WES_URL = env.str("MEV_WES_URL", default="") or None
MEV_WES_BASE_PATH = env.str("MEV_WES_BASE_PATH", default="/ga4gh/wes/v1")
MEV_WES_FLAVOR = env.str("MEV_WES_FLAVOR", default="toil")
MEV_WES_WORKFLOW_ENGINE_PARAMETERS = env.json("MEV_WES_WORKFLOW_ENGINE_PARAMETERS", default={})
MEV_ENGINE_SHARED_DIR = env.str("MEV_ENGINE_SHARED_DIR", default="") or None
MEV_ENGINE_S3_PREFIX = env.str("MEV_ENGINE_S3_PREFIX", default="")
MEV_ENGINE_OUTPUT_ROOTS = env.list("MEV_ENGINE_OUTPUT_ROOTS", default=[]) or None
MEV_ENGINE_TIMEOUT_SECONDS = env.float("MEV_ENGINE_TIMEOUT_SECONDS", default=30.0)
MEV_ENGINE_SUBMIT_GRACE_SECONDS = env.float("MEV_ENGINE_SUBMIT_GRACE_SECONDS", default=60.0)
MEV_ENGINE_STARTUP_CHECK = env.bool("MEV_ENGINE_STARTUP_CHECK", default=True)

# --- Celery --------------------------------------------------------------------------------------
# The quick-start broker is kombu's filesystem transport: no server, the queue is a folder.
_BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    (_BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    (_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    (_BROKER_DIR / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "control_folder": str(_BROKER_DIR / "control"),
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "store_processed": False,
        # An idle worker lists a near-empty folder 20 times a second (microseconds each); a message
        # waits 25 ms on average instead of 100 ms at 0.2 s (a job's run and its end are two messages).
        "polling_interval": 0.05,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("MEV_CELERY_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    # The one supervisor of job progress (submit, poll, finalize, time out): contract §7.3.2.
    "sweep-jobs": {"task": "mev.jobs.tasks.sweep_jobs", "schedule": MEV_SWEEP_SECONDS,
                   "options": {"expires": max(MEV_SWEEP_SECONDS * 5, 10.0)}},
    "cleanup-stale-uploads": {"task": "mev.resources.tus.cleanup_stale_uploads", "schedule": 3600.0},
    "cleanup-orphaned-files": {"task": "mev.resources.tasks.cleanup_orphaned_files", "schedule": 86400.0},
    "cleanup-table-cache": {"task": "mev.resources.tasks.cleanup_table_cache", "schedule": 86400.0},
    # Re-sends (or ends readably) validations whose queue message was lost: contract §7.3.8.
    "requeue-stuck-validations": {"task": "mev.resources.tasks.requeue_stuck_validations", "schedule": 60.0,
                                  "options": {"expires": 60.0}},
}

# --- Production hardening ------------------------------------------------------------------------
if PRODUCTION:
    # nginx (or a load balancer in front of it) says whether the client used TLS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = env.bool("MEV_USE_X_FORWARDED_HOST", default=False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("MEV_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_SSL_REDIRECT = env.bool("MEV_SSL_REDIRECT", default=False)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    CSRF_TRUSTED_ORIGINS = env.list("MEV_CSRF_TRUSTED_ORIGINS", default=[])

# --- Logging -------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "mev.core.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env.str("MEV_LOG_LEVEL", default="INFO")},
    "loggers": {"django.request": {"level": "ERROR", "propagate": True}},
}
