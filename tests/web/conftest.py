"""Fixtures for the web layer's tests (helpers live in tests/web/support.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from celery import Celery
from channels.layers import channel_layers
from django.apps import apps

from tests.web.support import (
    LiveServer,
    celery_client,
    celery_worker_process,
    launched_chromium,
    migrate,
    running_daphne,
    server_env,
)


@pytest.fixture(autouse=True)
def fresh_channel_layers() -> Iterator[None]:
    """Each test gets new channel layers: their queues belong to one event loop."""
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.fixture(autouse=True)
def fresh_visitor_counts() -> Iterator[None]:
    """Sandboxes made by earlier tests (all from 127.0.0.1) do not count against this one."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest_asyncio.fixture
async def host_registry() -> AsyncIterator[Any]:
    """The process's engine-host registry for this test's loop, shut down afterwards."""
    from webapp.engine_host.registry import get_registry

    registry = get_registry()
    yield registry
    await registry.shutdown()
    app_config = apps.get_app_config("webapp")
    if getattr(app_config, "host_registry", None) is registry:
        app_config.host_registry = None


@pytest.fixture
def daphne_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real Daphne in a subprocess, on a free port, with its own SQLite database.

    (Not named `live_server`: that name belongs to pytest-django.)
    """
    env = server_env(tmp_path)
    migrate(env)
    with running_daphne(tmp_path, env) as server:
        yield server


@pytest.fixture
def stage_server(daphne_server: LiveServer) -> LiveServer:
    return daphne_server


@pytest.fixture
def embedded_worker(tmp_path: Path) -> Iterator[Celery]:
    """A real `celery -A webapp worker` process and a client app on the same folders.

    The worker logs to tmp_path/worker.log.
    """
    from webapp import config

    celery_conf = config.celery_settings({}, data_dir=tmp_path)
    for folder in config.celery_dirs(celery_conf):
        folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "CELERY_"))}
    env |= {"KAFKA_DOJO_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    with celery_worker_process(env, tmp_path / "worker.log"):
        yield celery_client(celery_conf)


@pytest.fixture
def server_and_worker(tmp_path: Path) -> Iterator[LiveServer]:
    """Daphne and a Celery worker sharing one data folder (database and queue folders)."""
    env = server_env(tmp_path, without_celery=True)
    migrate(env)
    with (
        celery_worker_process(env, tmp_path / "worker.log"),
        running_daphne(tmp_path, env) as server,
    ):
        yield server


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium (Playwright), headless, launched with the project's flags."""
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
def chromium(browser: Any) -> Any:
    return browser
