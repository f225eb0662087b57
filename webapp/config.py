"""Turn environment variables into Django settings values.

Pure functions of a mapping, so tests can call them with a dict instead of patching os.environ.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class ConfigError(ValueError):
    """An environment variable holds a value the app cannot use."""


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def env_list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number.") from None


def env_count(env: Mapping[str, str], name: str) -> int | None:
    """A whole number of at least 1, or None when unset (the code's own default)."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be at least 1.")
    return value


# The engines this app ships drivers for (psycopg for PostgreSQL; sqlite3 comes with Python).
SUPPORTED_ENGINES = frozenset({"django.db.backends.sqlite3", "django.db.backends.postgresql"})
# Writers from several threads (Daphne's sync workers, the hosts) wait for the write lock
# instead of failing with "database is locked": transactions take it up front, and a waiting
# writer retries for up to 20 s.
SQLITE_OPTIONS = {"timeout": 20, "transaction_mode": "IMMEDIATE"}


def _sqlite(name: str) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "OPTIONS": dict(SQLITE_OPTIONS),
    }


def database_from_url(url: str | None, *, default_sqlite_path: Path) -> dict[str, Any]:
    """Django DATABASES['default'] from DATABASE_URL, parsed by dj-database-url.

    Unset: SQLite in the data folder. `sqlite:////abs/path.db` (or `sqlite:///:memory:`) keeps
    the SQLite options above; `postgres://user:pass@host:port/name?sslmode=...` (also
    `postgresql://`, `pgsql://`; a unix socket as `postgres:///name?host=/run/postgresql`)
    gets persistent, health-checked connections. Other engines are refused: no driver ships.
    """
    if not url:
        return _sqlite(str(default_sqlite_path))
    import dj_database_url

    try:
        parsed: dict[str, Any] = dict(
            dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
        )
    except (ValueError, dj_database_url.UnknownSchemeError) as error:
        raise ConfigError(f"DATABASE_URL is not usable: {error}") from None
    engine = parsed.get("ENGINE")
    if engine not in SUPPORTED_ENGINES:
        scheme = url.split(":", 1)[0]
        raise ConfigError(
            f"DATABASE_URL scheme {scheme!r} is not supported: use sqlite:///path or "
            "postgres://user:pass@host:5432/name."
        )
    if engine == "django.db.backends.sqlite3":
        return _sqlite(str(parsed["NAME"]) or ":memory:")
    if not parsed.get("NAME"):
        raise ConfigError("DATABASE_URL names no database: use postgres://user:pass@host/name.")
    parsed["PORT"] = str(parsed.get("PORT") or "")
    parsed.pop("DISABLE_SERVER_SIDE_CURSORS", None)
    return parsed


SOURCE_STATIC_STORAGE = "django.contrib.staticfiles.storage.StaticFilesStorage"
COLLECTED_STATIC_STORAGE = "whitenoise.storage.CompressedManifestStaticFilesStorage"


def static_storages(env: Mapping[str, str]) -> dict[str, Any]:
    """STORAGES from KAFKA_DOJO_STATIC: `source` (default: serve static/ as it is, nothing to
    build, works offline) or `collected` (run `manage.py collectstatic` first: hashed names,
    gzip copies, cached for a year)."""
    mode = (env.get("KAFKA_DOJO_STATIC") or "source").strip().lower()
    backends = {"source": SOURCE_STATIC_STORAGE, "collected": COLLECTED_STATIC_STORAGE}
    if mode not in backends:
        raise ConfigError(f"KAFKA_DOJO_STATIC={mode!r}: use source or collected.")
    return {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": backends[mode]},
    }


def hosts_mode(env: Mapping[str, str]) -> str:
    """KAFKA_DOJO_HOSTS: `process` (default) or `worker` (engine hosts in their own workers,
    which reach the Daphne processes through Redis, so REDIS_URL is required)."""
    mode = (env.get("KAFKA_DOJO_HOSTS") or "process").strip().lower()
    if mode not in ("process", "worker"):
        raise ConfigError(f"KAFKA_DOJO_HOSTS={mode!r}: use process or worker.")
    if mode == "worker" and not env.get("REDIS_URL"):
        raise ConfigError(
            "KAFKA_DOJO_HOSTS=worker needs REDIS_URL: the workers and the Daphne processes "
            "meet on the Redis channel layer."
        )
    return mode


REDIS_SOCKET_TIMEOUT_S = 20.0


def channel_layers(redis_url: str | None) -> dict[str, Any]:
    if redis_url:
        return {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    # redis-py 8 reads with a 5 s socket timeout by default, the same as
                    # channels_redis's blocking pop: an idle receive would fail with "Timeout
                    # reading". Reads get REDIS_SOCKET_TIMEOUT_S instead.
                    "hosts": [{"address": redis_url, "socket_timeout": REDIS_SOCKET_TIMEOUT_S}],
                    "capacity": 1000,
                    "expiry": 30,
                },
            }
        }
    # A socket's inbox holds up to 1,000 messages (its commands are rate limited to 20 a
    # second, so their answers always fit); a host's inbox applies back-pressure when full.
    return {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 1000, "expiry": 60},
        }
    }


def celery_settings(env: Mapping[str, str], *, data_dir: Path) -> dict[str, Any]:
    """Celery's broker and result backend: Redis when REDIS_URL is set, else plain files.

    The embedded default uses kombu's filesystem transport, so a real worker process
    (`celery -A webapp worker`, started by ./scripts/run) consumes tasks without any server.
    """
    redis_url = env.get("REDIS_URL")
    broker = env.get("CELERY_BROKER_URL") or redis_url
    if broker:
        return {
            "CELERY_BROKER_URL": broker,
            "CELERY_RESULT_BACKEND": env.get("CELERY_RESULT_BACKEND") or redis_url or None,
            "CELERY_BROKER_TRANSPORT_OPTIONS": {},
            "CELERY_WORKER_ENABLE_REMOTE_CONTROL": True,
        }
    queue_dir = data_dir / "celery" / "queue"
    processed_dir = data_dir / "celery" / "processed"
    results_dir = data_dir / "celery" / "results"
    return {
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_RESULT_BACKEND": env.get("CELERY_RESULT_BACKEND") or f"file://{results_dir}",
        "CELERY_BROKER_TRANSPORT_OPTIONS": {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(processed_dir),
            "control_folder": str(data_dir / "celery" / "control"),
            "store_processed": False,
        },
        # The filesystem transport has no broadcast, which remote control needs.
        "CELERY_WORKER_ENABLE_REMOTE_CONTROL": False,
    }


def celery_dirs(settings: Mapping[str, Any]) -> list[Path]:
    """Folders the filesystem broker and file result backend need to exist."""
    dirs = [Path(p) for p in settings["CELERY_BROKER_TRANSPORT_OPTIONS"].values() if "/" in str(p)]
    backend = settings.get("CELERY_RESULT_BACKEND") or ""
    if backend.startswith("file://"):
        dirs.append(Path(backend.removeprefix("file://")))
    return dirs


def secret_key(env: Mapping[str, str], *, data_dir: Path) -> str:
    """DJANGO_SECRET_KEY, else a random key kept in the data folder (fine for one machine)."""
    key = env.get("DJANGO_SECRET_KEY")
    if key:
        return key
    key_file = data_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key
