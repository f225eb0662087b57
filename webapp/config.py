"""Turn environment variables into Django settings values.

Pure functions of a mapping, so tests can call them with a dict instead of patching os.environ.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

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


def _sqlite(name: str) -> dict[str, Any]:
    # Writers from several threads (Daphne's sync workers, the hosts) wait for the write lock
    # instead of failing with "database is locked": transactions take it up front, and a
    # waiting writer retries for up to 20 s.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }


def database_from_url(url: str | None, *, default_sqlite_path: Path) -> dict[str, Any]:
    """Django DATABASES['default'] from DATABASE_URL (sqlite:///path or postgres://...)."""
    if not url:
        return _sqlite(str(default_sqlite_path))
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:///:memory:
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        return _sqlite(path or ":memory:")
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ConfigError("DATABASE_URL names no database: use postgres://user:pass@host/name.")
        options = dict(parse_qsl(parts.query))
        config: dict[str, Any] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
        if options:
            config["OPTIONS"] = options
        return config
    raise ConfigError(
        f"DATABASE_URL scheme {scheme!r} is not supported: use sqlite:///path or postgres://..."
    )


def channel_layers(redis_url: str | None) -> dict[str, Any]:
    if redis_url:
        return {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [redis_url], "capacity": 1000, "expiry": 30},
            }
        }
    return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


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
