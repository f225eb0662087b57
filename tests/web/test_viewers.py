"""Viewers are counted honestly: a socket that goes silent stops counting, whatever killed it,
and a host with no viewer stops its clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from webapp import services
from webapp.engine_host import client as host_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_a_viewer_that_vanishes_without_a_goodbye_stops_counting(host_registry: Any) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None
    host.settings.viewer_ttl_seconds = 0.6
    layer = get_channel_layer()
    ghost = await layer.new_channel(prefix="ghost")  # a socket whose process died: no leave
    await host_client.host_send(sandbox.id, {"type": "host.join", "reply_to": ghost})
    await asyncio.sleep(0.2)
    assert list(host.viewers) == [ghost]
    running_at = host.runtime.now_ms
    await asyncio.sleep(0.3)
    assert host.runtime.now_ms > running_at  # watched: the clock runs

    await asyncio.sleep(1.5)  # the ghost never says it still watches
    assert host.viewers == {}
    stopped_at = host.runtime.now_ms
    await asyncio.sleep(0.4)
    assert host.runtime.now_ms == stopped_at  # nobody watches: the clock stands still


async def test_a_viewer_that_keeps_saying_so_keeps_counting(host_registry: Any) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None
    host.settings.viewer_ttl_seconds = 0.6
    layer = get_channel_layer()
    viewer = await layer.new_channel(prefix="viewer")
    await host_client.host_send(sandbox.id, {"type": "host.join", "reply_to": viewer})
    for _ in range(8):
        await asyncio.sleep(0.25)
        await host_client.host_send(sandbox.id, {"type": "host.viewing", "reply_to": viewer})
    assert list(host.viewers) == [viewer]


async def test_one_keepalive_keeps_every_socket_it_names_counted(host_registry: Any) -> None:
    """A process names all its sockets of the cluster in one `host.viewing`: each stays
    counted; one it stops naming goes after the time-to-live."""
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None
    host.settings.viewer_ttl_seconds = 0.6
    layer = get_channel_layer()
    sockets = [await layer.new_channel(prefix="viewer") for _ in range(3)]
    for socket in sockets:
        await host_client.host_send(sandbox.id, {"type": "host.join", "reply_to": socket})
    for _ in range(8):
        await asyncio.sleep(0.25)
        await host_client.host_send(sandbox.id, {"type": "host.viewing", "viewers": sockets[:2]})
    assert sorted(host.viewers) == sorted(sockets[:2])
