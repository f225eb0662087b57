"""Django settings for Kafka Dojo, read from the environment (see README.md for every variable).

With no variable set, the app runs embedded: SQLite, Channels' in-memory layer, the engine
hosts inside the Daphne process, Celery on kombu's filesystem transport.
"""

from __future__ import annotations

import os
from pathlib import Path

from webapp import config

BASE_DIR = Path(__file__).resolve().parent.parent
ENV = os.environ

DATA_DIR = Path(ENV.get("KAFKA_DOJO_DATA_DIR") or BASE_DIR / "var").resolve()

DEBUG = config.env_bool(ENV, "DJANGO_DEBUG", default=False)
SECRET_KEY = config.secret_key(ENV, data_dir=DATA_DIR)
ALLOWED_HOSTS = config.env_list(ENV, "DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = config.env_list(ENV, "DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "webapp.apps.WebappConfig",
    "lessons.apps.LessonsConfig",
    "lessons.drills.apps.DrillsConfig",
    "webapp.accounts.apps.AccountsConfig",
    "webapp.workshops.apps.WorkshopsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise serves /static/ (webapp/static_files.py), unless DJANGO_SERVE_STATIC=0.
    "webapp.static_files.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webapp.workshops.middleware.workshop_cluster_guard",
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

DATABASES = {
    "default": config.database_from_url(
        ENV.get("DATABASE_URL"), default_sqlite_path=DATA_DIR / "db.sqlite3"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CHANNEL_LAYERS = config.channel_layers(ENV.get("REDIS_URL"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(ENV.get("KAFKA_DOJO_STATIC_ROOT") or DATA_DIR / "staticfiles").resolve()
# Daphne serves /static/ itself (WhiteNoise) unless a front proxy does (DJANGO_SERVE_STATIC=0).
DOJO_SERVE_STATIC = config.env_bool(ENV, "DJANGO_SERVE_STATIC", default=True)
if not DOJO_SERVE_STATIC:
    MIDDLEWARE.remove("webapp.static_files.StaticFilesMiddleware")
STORAGES = config.static_storages(ENV)
# `source`: static/ as it is, found by the finders; `collected`: collectstatic's hashed copies.
WHITENOISE_USE_FINDERS = STORAGES["staticfiles"]["BACKEND"] == config.SOURCE_STATIC_STORAGE

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# The engine host: how live clusters run (see webapp/engine_host/).
DOJO_PUBLISH_MAX_HZ = config.env_float(ENV, "KAFKA_DOJO_PUBLISH_MAX_HZ", 10.0)
DOJO_HOST_IDLE_SECONDS = config.env_float(ENV, "KAFKA_DOJO_HOST_IDLE_SECONDS", 60.0)
DOJO_WS_MESSAGES_PER_SECOND = config.env_float(ENV, "KAFKA_DOJO_WS_RATE", 20.0)
# Real Kafka clients: a loopback Kafka listener per simulated broker (webapp/kafka_listener).
DOJO_KAFKA_LISTENERS = config.env_bool(ENV, "KAFKA_DOJO_KAFKA_LISTENERS", default=False)
DOJO_KAFKA_LISTENER_HOST = ENV.get("KAFKA_DOJO_KAFKA_LISTENER_HOST") or "127.0.0.1"
# Limits per visitor and per process (webapp/visitor_limits.py, the host registry and host).
DOJO_SANDBOXES_PER_SESSION = config.env_float(ENV, "KAFKA_DOJO_SANDBOXES_PER_SESSION", 10)
DOJO_SANDBOXES_PER_ADDRESS = config.env_float(ENV, "KAFKA_DOJO_SANDBOXES_PER_ADDRESS", 60)
DOJO_MAX_LIVE_HOSTS = config.env_float(ENV, "KAFKA_DOJO_MAX_LIVE_HOSTS", 40)
# The memory one live cluster's stored records may take (webapp/engine_host/memory.py).
DOJO_HOST_MEMORY_MB = config.env_float(ENV, "KAFKA_DOJO_HOST_MEMORY_MB", 256)
# The time-travel checkpoints one live cluster keeps (lessons/scenarios/checkpoints.py); unset:
# its MAX_LIVE_CHECKPOINTS (128). Fewer: less memory, scrubs that replay further.
DOJO_LIVE_CHECKPOINTS = config.env_count(ENV, "KAFKA_DOJO_LIVE_CHECKPOINTS")
# How long a busy engine thread may hold the GIL before the event loop gets it back (ms).
DOJO_GIL_SWITCH_INTERVAL_MS = config.env_float(ENV, "KAFKA_DOJO_GIL_SWITCH_INTERVAL_MS", 1.0)
# Worker processes that replay share links, saved states and forks off the server's GIL
# (webapp/engine_host/replay_pool.py); 0 replays in a thread of the server instead.
DOJO_REPLAY_WORKERS = int(config.env_float(ENV, "KAFKA_DOJO_REPLAY_WORKERS", 1))
DOJO_MAX_APPS_PER_CLUSTER = config.env_float(ENV, "KAFKA_DOJO_MAX_APPS", 8)
DOJO_MAX_APP_RATE_PER_CLUSTER = config.env_float(ENV, "KAFKA_DOJO_MAX_APP_RATE", 400)
DOJO_REDIS_URL = ENV.get("REDIS_URL") or None
# Where engine hosts run: `process` (in the Daphne that is asked; the embedded default) or
# `worker` (only in `manage.py run_engine_hosts` workers; scaled mode, needs REDIS_URL).
DOJO_HOSTS = config.hosts_mode(ENV)
# Workshops (webapp/workshops/): room size, join attempts a minute per client, histogram rate.
DOJO_WORKSHOP_MAX_PARTICIPANTS = int(
    config.env_float(ENV, "KAFKA_DOJO_WORKSHOP_MAX_PARTICIPANTS", 200)
)
DOJO_WORKSHOP_JOINS_PER_MINUTE = int(
    config.env_float(ENV, "KAFKA_DOJO_WORKSHOP_JOINS_PER_MINUTE", 20)
)
DOJO_WORKSHOP_HISTOGRAM_HZ = config.env_float(ENV, "KAFKA_DOJO_WORKSHOP_HISTOGRAM_HZ", 2.0)

# Celery (read by webapp/celery.py with namespace="CELERY").
_celery = config.celery_settings(ENV, data_dir=DATA_DIR)
CELERY_BROKER_URL = _celery["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = _celery["CELERY_RESULT_BACKEND"]
CELERY_BROKER_TRANSPORT_OPTIONS = _celery["CELERY_BROKER_TRANSPORT_OPTIONS"]
CELERY_WORKER_ENABLE_REMOTE_CONTROL = _celery["CELERY_WORKER_ENABLE_REMOTE_CONTROL"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXTENDED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The periodic sweep of idle rooms and sandboxes (webapp.tasks.delete_idle). Scaled mode runs
# `celery -A webapp beat`; the embedded worker of ./scripts/run runs the same schedule itself
# (`worker -B`), so no extra process is needed.
DOJO_SANDBOX_IDLE_DAYS = config.env_float(ENV, "KAFKA_DOJO_SANDBOX_IDLE_DAYS", 30.0)
DOJO_ROOM_IDLE_DAYS = config.env_float(ENV, "KAFKA_DOJO_ROOM_IDLE_DAYS", 2.0)
DOJO_IDLE_SWEEP_SECONDS = config.env_float(ENV, "KAFKA_DOJO_IDLE_SWEEP_SECONDS", 3600.0)
CELERY_BEAT_SCHEDULE = {
    "delete-idle-rooms-and-sandboxes": {
        "task": "webapp.delete_idle",
        "schedule": DOJO_IDLE_SWEEP_SECONDS,
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celery" / "beat-schedule")
DOJO_CELERY_DIRS = [str(path) for path in config.celery_dirs(_celery)]

LOG_LEVEL = ENV.get("DJANGO_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "webapp": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "lessons": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
