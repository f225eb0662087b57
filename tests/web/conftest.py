"""Fixtures for the web layer's tests (helpers live in tests/web/support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from channels.layers import channel_layers
from django.apps import apps


@pytest.fixture(autouse=True)
def fresh_channel_layers() -> Iterator[None]:
    """Each test gets new channel layers: their queues belong to one event loop."""
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


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
