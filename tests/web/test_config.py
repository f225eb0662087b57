"""Settings come from the environment: each variable switches what the README says it does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from webapp import config

ROOT = Path(__file__).resolve().parents[2]


def test_sqlite_file_in_the_data_folder_by_default(tmp_path: Path) -> None:
    database = config.database_from_url(None, default_sqlite_path=tmp_path / "db.sqlite3")
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(tmp_path / "db.sqlite3")


def test_database_url_switches_to_postgresql() -> None:
    database = config.database_from_url(
        "postgres://dojo:s%40cret@db.internal:5433/kafka_dojo?sslmode=require",
        default_sqlite_path=Path("unused"),
    )
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["NAME"], database["USER"], database["PASSWORD"]) == (
        "kafka_dojo",
        "dojo",
        "s@cret",
    )
    assert (database["HOST"], database["PORT"]) == ("db.internal", "5433")
    assert database["OPTIONS"] == {"sslmode": "require"}


def test_database_url_can_name_an_sqlite_file() -> None:
    database = config.database_from_url("sqlite:////tmp/x.db", default_sqlite_path=Path("unused"))
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == "/tmp/x.db"
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"  # no "database is locked"


def test_unsupported_database_url_is_refused_with_a_clear_message() -> None:
    with pytest.raises(config.ConfigError, match="mysql"):
        config.database_from_url("mysql://x/y", default_sqlite_path=Path("unused"))


def test_redis_url_switches_the_channel_layer() -> None:
    assert config.channel_layers(None)["default"]["BACKEND"] == (
        "channels.layers.InMemoryChannelLayer"
    )
    redis_layer = config.channel_layers("redis://127.0.0.1:6390/2")["default"]
    assert redis_layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert redis_layer["CONFIG"]["hosts"] == [
        {"address": "redis://127.0.0.1:6390/2", "socket_timeout": config.REDIS_SOCKET_TIMEOUT_S}
    ]


def test_celery_runs_on_files_without_redis_and_on_redis_with_it(tmp_path: Path) -> None:
    embedded = config.celery_settings({}, data_dir=tmp_path)
    assert embedded["CELERY_BROKER_URL"] == "filesystem://"
    assert embedded["CELERY_RESULT_BACKEND"].startswith("file://" + str(tmp_path))
    assert all(Path(folder).is_relative_to(tmp_path) for folder in config.celery_dirs(embedded))
    scaled = config.celery_settings({"REDIS_URL": "redis://r:6379/0"}, data_dir=tmp_path)
    assert scaled["CELERY_BROKER_URL"] == "redis://r:6379/0"
    assert scaled["CELERY_RESULT_BACKEND"] == "redis://r:6379/0"


def test_booleans_accept_common_words_and_refuse_others() -> None:
    assert config.env_bool({"X": "yes"}, "X", default=False) is True
    assert config.env_bool({"X": "0"}, "X", default=True) is False
    assert config.env_bool({}, "X", default=True) is True
    with pytest.raises(config.ConfigError, match="DJANGO_DEBUG"):
        config.env_bool({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG", default=False)


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = config.secret_key({}, data_dir=tmp_path)
    assert len(first) >= 50
    assert config.secret_key({}, data_dir=tmp_path) == first
    assert config.secret_key({"DJANGO_SECRET_KEY": "given"}, data_dir=tmp_path) == "given"


def _settings_in_subprocess(env: dict[str, str]) -> dict[str, object]:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, "
        "'db': s.DATABASES['default']['ENGINE'], "
        "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'broker': s.CELERY_BROKER_URL, "
        "'secret': s.SECRET_KEY, 'kafka_listeners': s.DOJO_KAFKA_LISTENERS}))"
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS"))}
    full_env |= {"DJANGO_SETTINGS_MODULE": "webapp.settings", **env}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_settings_module_reads_the_environment(tmp_path: Path) -> None:
    embedded = _settings_in_subprocess({"KAFKA_DOJO_DATA_DIR": str(tmp_path)})
    assert embedded["debug"] is False
    assert embedded["db"] == "django.db.backends.sqlite3"
    assert embedded["layer"] == "channels.layers.InMemoryChannelLayer"
    assert embedded["broker"] == "filesystem://"
    assert embedded["kafka_listeners"] is False  # real Kafka clients: off unless switched on

    scaled = _settings_in_subprocess(
        {
            "KAFKA_DOJO_DATA_DIR": str(tmp_path),
            "DJANGO_DEBUG": "1",
            "DJANGO_SECRET_KEY": "from-env",
            "DJANGO_ALLOWED_HOSTS": "dojo.example, 10.0.0.5",
            "DATABASE_URL": "postgres://u:p@h/n",
            "REDIS_URL": "redis://127.0.0.1:6399/0",
            "KAFKA_DOJO_KAFKA_LISTENERS": "1",
        }
    )
    assert scaled["debug"] is True
    assert scaled["secret"] == "from-env"
    assert scaled["hosts"] == ["dojo.example", "10.0.0.5"]
    assert scaled["db"] == "django.db.backends.postgresql"
    assert scaled["layer"] == "channels_redis.core.RedisChannelLayer"
    assert scaled["broker"] == "redis://127.0.0.1:6399/0"
    assert scaled["kafka_listeners"] is True


def test_database_url_through_dj_database_url_keeps_its_forms() -> None:
    socket = config.database_from_url(
        "postgres:///dojo?host=/run/postgresql", default_sqlite_path=Path("unused")
    )
    assert (socket["NAME"], socket["OPTIONS"]) == ("dojo", {"host": "/run/postgresql"})
    assert (socket["CONN_MAX_AGE"], socket["CONN_HEALTH_CHECKS"]) == (60, True)
    memory = config.database_from_url("sqlite:///:memory:", default_sqlite_path=Path("unused"))
    assert memory["NAME"] == ":memory:"
    assert memory["OPTIONS"] == {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    with pytest.raises(config.ConfigError, match="unknown"):
        config.database_from_url("nosuchdb://x/y", default_sqlite_path=Path("unused"))
    with pytest.raises(config.ConfigError, match="names no database"):
        config.database_from_url("postgres://u:p@h", default_sqlite_path=Path("unused"))


def test_hosts_mode_and_static_mode_are_checked() -> None:
    assert config.hosts_mode({}) == "process"
    assert config.hosts_mode({"KAFKA_DOJO_HOSTS": "worker", "REDIS_URL": "redis://x"}) == "worker"
    with pytest.raises(config.ConfigError, match="needs REDIS_URL"):
        config.hosts_mode({"KAFKA_DOJO_HOSTS": "worker"})
    with pytest.raises(config.ConfigError, match="process or worker"):
        config.hosts_mode({"KAFKA_DOJO_HOSTS": "daphne"})
    assert config.static_storages({})["staticfiles"]["BACKEND"] == config.SOURCE_STATIC_STORAGE
    collected = config.static_storages({"KAFKA_DOJO_STATIC": "collected"})
    assert collected["staticfiles"]["BACKEND"] == config.COLLECTED_STATIC_STORAGE
    with pytest.raises(config.ConfigError, match="source or collected"):
        config.static_storages({"KAFKA_DOJO_STATIC": "cdn"})


def test_a_count_setting_is_a_whole_number_of_at_least_one_or_unset() -> None:
    name = "KAFKA_DOJO_LIVE_CHECKPOINTS"
    assert config.env_count({}, name) is None
    assert config.env_count({name: " "}, name) is None
    assert config.env_count({name: "32"}, name) == 32
    with pytest.raises(config.ConfigError, match="whole number"):
        config.env_count({name: "2.5"}, name)
    with pytest.raises(config.ConfigError, match="at least 1"):
        config.env_count({name: "0"}, name)
