"""All SkinSight settings, read from the environment in this one module.

Defaults make a fresh checkout run on one machine with no set-up (SQLite, the local Redis-protocol and S3
servers that `make run` starts). Each `*_URL` switches a service to a real deployment. `SKINSIGHT_ENV=production`
refuses to start without a secret key or with debug on.
"""

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("SKINSIGHT_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


ENVIRONMENT = os.environ.get("SKINSIGHT_ENV", "development")
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when SKINSIGHT_ENV=production.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when SKINSIGHT_ENV=production.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# Proxies whose X-Forwarded-For names the client (webapp.config.proxy); "*" trusts any.
FORWARDED_ALLOW_IPS = env_list("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The port of the WebSocket server (deploy.commands.live) when no proxy routes /ws/ to it at the
# pages' own address: `make run`, compose. Empty: the pages' own origin.
LIVE_PORT = env_int("LIVE_PORT", 0) or None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "webapp.storage",
    "webapp.accounts",
    "webapp.intake",
    "webapp.cases",
    "webapp.guidance",
    "webapp.audit",
    "webapp.modelops",
    "webapp.reruns",
    "webapp.reconcile",
    "webapp.pages",
    "webapp.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webapp.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webapp.audit.middleware.AuditMiddleware",
    "webapp.outages.OutageMiddleware",
]

ROOT_URLCONF = "webapp.config.urls"
WSGI_APPLICATION = "webapp.config.wsgi.application"
ASGI_APPLICATION = "webapp.config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "webapp" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.modelops.context_processors.model_status",
                "webapp.live.live_port",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'skinsight.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
# PostgreSQL connections from a pool per process (Django's own psycopg pool): under ASGI every request
# runs on a fresh thread, so without a pool each one opens (and closes) a connection of its own.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them instead
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_SIZE,
        # While the database is down a request waits this long for a connection, then gets 503.
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 5),
    }
# A session left idle inside a transaction is ended by the server after this many seconds (0: never):
# a worker host cut off mid-transaction would otherwise hold its rows' locks until TCP notices, hours
# later, and every other worker's claim of those cases would wait on them.
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT = env_int("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", 60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # Added to any libpq options DATABASE_URL already carries (``?options=...``), not in their place.
    _options = DATABASES["default"]["OPTIONS"].get("options", "")
    DATABASES["default"]["OPTIONS"]["options"] = (
        f"{_options} -c idle_in_transaction_session_timeout="
        f"{DATABASE_IDLE_IN_TRANSACTION_TIMEOUT * 1000}"
    ).strip()
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The web server and the workers write concurrently: wait for locks instead of failing. A
    # transaction also takes the write lock when it begins: one that read first and wrote later
    # could not wait for it (SQLite answers "database is locked" at once, to avoid a deadlock),
    # which under `make run` sent a batch whose heat-map neighbour was writing into a 5 s retry.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "cases:history"
LOGOUT_REDIRECT_URL = "pages:home"

# Failed sign-ins (page and token API) per account and per client address within the window; past
# them, tries wait for the window to end (webapp/accounts/login_throttle.py). Never a permanent lock.
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 15 * 60)
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 5)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 50)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "webapp" / "static"]

# Sessions: idle logout after 30 minutes of inactivity (HIPAA 164.312 automatic logoff).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Probes (load balancers, Kubernetes) call the health check over plain HTTP, inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Redis: Celery broker and the Channels layer -------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": os.environ.get("CHANNELS_REDIS_URL", REDIS_URL),
                    # A WebSocket waits for pushes with a blocking pop of 5 s; redis-py 8's default
                    # read timeout is also 5 s, so an idle page's consumer crashed when the two met.
                    "socket_timeout": 30,
                }
            ]
        },
    }
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
# One cache for every web process (the API's upload throttle counts there: a per-process cache would
# multiply each limit by the number of processes).
CACHES = {
    "default": {
        "BACKEND": "webapp.config.cache.ProcessRedisCache",
        "LOCATION": os.environ.get("CACHE_REDIS_URL", REDIS_URL),
        "KEY_PREFIX": "skinsight-cache",
    }
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Late acknowledgement: a job whose worker dies is redelivered, never lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Inference jobs run in micro-batches (workers/batching.py): each child may have a whole batch
# waiting for it. The training worker takes nothing in advance (--disable-prefetch).
INFERENCE_BATCH_SIZE = env_int("INFERENCE_BATCH_SIZE", 8)
# How long a job may wait for others while every inference child is busy (an idle child takes
# it at once).
INFERENCE_BATCH_WAIT_MS = env_int("INFERENCE_BATCH_WAIT_MS", 20)
CELERY_WORKER_PREFETCH_MULTIPLIER = INFERENCE_BATCH_SIZE
CELERY_TASK_DEFAULT_QUEUE = "inference"
# Queues get what each needs. Classification jobs are short and acknowledged late: a job whose worker
# died is redelivered after the visibility timeout, so that timeout is kept short (it must exceed a job's
# time limit plus its longest retry back-off, or a job still waiting would be delivered twice).
# Training runs last hours: they are acknowledged when they start, never redelivered, and guarded by
# their database row instead (claimed once, heartbeat, failed by the reaper when their worker dies).
# Heat maps are Keras work (gradients) that would hold up classification: their own queue and worker.
CELERY_TASK_ROUTES = {
    "cases.explain": {"queue": "explain"},
    "cases.*": {"queue": "inference"},
    "modelops.train": {"queue": "training"},
    "modelops.evaluate": {"queue": "training"},
    "modelops.import_model": {"queue": "training"},
    "modelops.reap_stale_runs": {"queue": "inference"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 15 * 60),
    # A message held by a worker that stopped (killed, or its host cut off) is put back by another
    # worker's sweep, run every interval x throttle seconds once the visibility timeout has passed.
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
# Children load and warm up the model before taking jobs; that takes longer than Celery's 4 s default.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_int("CELERY_WORKER_PROC_ALIVE_TIMEOUT", 120)

# --- S3-compatible object storage --------------------------------------------------------------------
S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL", "http://127.0.0.1:8333")
S3_BUCKET = os.environ.get("S3_BUCKET", "skinsight")
S3_ACCESS_KEY_ID = os.environ.get("S3_ACCESS_KEY_ID", "skinsight")
S3_SECRET_ACCESS_KEY = os.environ.get("S3_SECRET_ACCESS_KEY", "skinsight-local-secret")
S3_REGION = os.environ.get("S3_REGION", "us-east-1")
# Objects are private: webapp/storage/store.py (the one owner of the bucket, through one boto3 client per
# process) reads and writes them, and the web app streams them to authorised users only.
STORAGES = {
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Uploads -----------------------------------------------------------------------------------------
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 20 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", 50_000_000)
# A JPEG is decoded at up to 1/8 scale, so its declared size may be larger: phones take 50, 108 and
# 200-megapixel photos, and a 256-megapixel one decodes to at most 4 megapixels here.
UPLOAD_MAX_JPEG_PIXELS = env_int("UPLOAD_MAX_JPEG_PIXELS", 256_000_000)
UPLOAD_MAX_SIDE = env_int("UPLOAD_MAX_SIDE", 2048)
# Refuse photos too small, dark, washed out, blurred or unlike skin, asking for a retake
# (webapp/intake/quality.py). A deployment that screens photos itself may turn it off.
UPLOAD_QUALITY_GATE = env_bool("UPLOAD_QUALITY_GATE", True)
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
URL_FETCH_TIMEOUT = float(os.environ.get("URL_FETCH_TIMEOUT", "10"))
URL_FETCH_MAX_REDIRECTS = env_int("URL_FETCH_MAX_REDIRECTS", 3)
# Only for tests and closed networks: addresses that URL uploads may reach despite being private.
URL_FETCH_ALLOWED_NETWORKS = [
    ipaddress.ip_network(net) for net in env_list("URL_FETCH_ALLOWED_NETWORKS")
]

# --- Metrics and health -----------------------------------------------------------------------------
# Prometheus scrapes /metrics with this bearer token (empty: administrators' sessions only).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Set (by `make run` and the images) where several processes share one host's metrics.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
# The first admin account (`manage.py ensure_admin`); no password: one is generated and printed.
ADMIN_USERNAME = os.environ.get("ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "")
# Each inference worker serves /metrics and /healthz on this port (0: not served).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)
# Inference children note here which model version they hold warm; the health check reads it.
WORKER_HEALTH_DIR = Path(os.environ.get("WORKER_HEALTH_DIR", VAR_DIR / "worker-health"))

# --- Models ------------------------------------------------------------------------------------------
MODEL_CACHE_DIR = Path(os.environ.get("MODEL_CACHE_DIR", VAR_DIR / "model-cache"))
# Loaded models kept per worker process: the active one and the one before it (rollback, re-runs).
MODEL_CACHE_VERSIONS = env_int("MODEL_CACHE_VERSIONS", 2)
# How often each inference and heat-map child looks for a newly activated model to load before its
# jobs need it (0: only when a job needs it).
MODEL_WATCH_SECONDS = env_int("MODEL_WATCH_SECONDS", 5)
# ONNX Runtime threads per inference process: by default the cores shared out between the worker's
# children, so that two children never fight over one core.
INFERENCE_THREADS = env_int(
    "INFERENCE_THREADS", max(1, (os.cpu_count() or 1) // env_int("WORKER_CONCURRENCY", 1))
)
CLASSIFY_SOFT_TIME_LIMIT = env_int("CLASSIFY_SOFT_TIME_LIMIT", 120)
CLASSIFY_TIME_LIMIT = env_int("CLASSIFY_TIME_LIMIT", 180)
CLASSIFY_MAX_RETRIES = env_int("CLASSIFY_MAX_RETRIES", 8)
# A job that has killed its worker this many times is failed with a reason instead of retried forever.
CLASSIFY_MAX_ATTEMPTS = env_int("CLASSIFY_MAX_ATTEMPTS", 3)
CLASSIFY_MAX_BACKOFF = env_int("CLASSIFY_MAX_BACKOFF", 300)
# Make a Grad-CAM heat map for every new prediction (a follow-up job on the "explain" queue).
HEATMAPS = env_bool("HEATMAPS", True)
if (
    CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    <= CLASSIFY_TIME_LIMIT + CLASSIFY_MAX_BACKOFF
):
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must exceed CLASSIFY_TIME_LIMIT plus the longest retry back-off "
        f"({CLASSIFY_TIME_LIMIT + CLASSIFY_MAX_BACKOFF} s), or a waiting job is delivered twice."
    )

# --- Retraining ------------------------------------------------------------------------------------
TRAINING_WORK_DIR = Path(os.environ.get("TRAINING_WORK_DIR", VAR_DIR / "training"))
PRETRAINED_WEIGHTS_DIR = os.environ.get("PRETRAINED_WEIGHTS_DIR") or None
# Server folders that may be registered as datasets; empty allows any absolute folder.
DATASET_FOLDER_ROOTS = [Path(p) for p in env_list("DATASET_FOLDER_ROOTS")]
TRAINING_MIN_IMAGES_PER_CLASS = env_int("TRAINING_MIN_IMAGES_PER_CLASS", 10)
TRAINING_TIME_LIMIT = env_int("TRAINING_TIME_LIMIT", 24 * 3600)
# A running run writes a heartbeat this often; one silent for the timeout is failed by the reaper.
TRAINING_HEARTBEAT_SECONDS = env_int("TRAINING_HEARTBEAT_SECONDS", 5)
TRAINING_HEARTBEAT_TIMEOUT = env_int("TRAINING_HEARTBEAT_TIMEOUT", 120)
# A queued run nobody claimed for this long is sent again (its message was lost with the broker).
TRAINING_REQUEUE_AFTER = env_int("TRAINING_REQUEUE_AFTER", 10 * 60)
# Share of the first registered dataset's lesions frozen as the evaluation set, and its seed.
EVALUATION_SET_FRACTION = float(os.environ.get("EVALUATION_SET_FRACTION", "0.15"))
EVALUATION_SET_SEED = env_int("EVALUATION_SET_SEED", 0)
# Promotion is refused when balanced accuracy or melanoma sensitivity on the evaluation set falls by
# more than this (absolute) below the active model's, unless the admin writes a reason.
PROMOTION_MAX_DROP = float(os.environ.get("PROMOTION_MAX_DROP", "0.02"))
# Largest model file an admin may upload for import (DenseNet169 bundles are about 60 MB).
MODEL_IMPORT_MAX_BYTES = env_int("MODEL_IMPORT_MAX_BYTES", 1024 * 1024 * 1024)
REAPER_INTERVAL_SECONDS = env_int("REAPER_INTERVAL_SECONDS", 60)
# The reconciler sends again the jobs of cases and heat maps stuck this long with no message in the broker
# (lost with a restarted Redis, or not sent while it was down).
CASE_REQUEUE_AFTER = env_int("CASE_REQUEUE_AFTER", 120)
CELERY_BEAT_SCHEDULE = {
    "reap-stale-training-runs": {
        "task": "modelops.reap_stale_runs",
        "schedule": REAPER_INTERVAL_SECONDS,
    },
    "reconcile-cases": {
        "task": "cases.reconcile",
        "schedule": REAPER_INTERVAL_SECONDS,
    },
}

# --- REST API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous API call then gets 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Bodies are JSON; the views that take files (uploads, model imports) accept multipart too.
    "DEFAULT_PARSER_CLASSES": ["webapp.api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "webapp.api.schema.SkinSightAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "webapp.api.pagination.StrictPageNumberPagination",
    "PAGE_SIZE": 50,
    # Uploads through the API per user: patients UPLOAD_RATE, clinicians and admins (who upload for
    # many patients) UPLOAD_RATE_CLINICIAN; over it, 429 with Retry-After.
    "DEFAULT_THROTTLE_RATES": {
        "uploads": os.environ.get("UPLOAD_RATE", "60/hour"),
        "clinician_uploads": os.environ.get("UPLOAD_RATE_CLINICIAN", "1000/hour"),
    },
    "EXCEPTION_HANDLER": "webapp.api.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SkinSight API",
    "DESCRIPTION": "Upload skin-lesion photos and read classification results. "
    "Decision support only, not a diagnosis.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Requests get components of their own: what a client must send (required, non-blank, files)
    # differs from what it reads back.
    "COMPONENT_SPLIT_REQUEST": True,
    # A review's diagnosis and a guidance version's dx are the same seven classes: one enum.
    "ENUM_NAME_OVERRIDES": {"DiagnosisEnum": "ml.classes.CLASS_CHOICES"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "webapp.api.schema.describe_what_serializers_cannot",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
