"""A cluster that needs more work than its budget slows its own clock, says so on its stage,
and the event loop keeps answering meanwhile (the engine runs in a worker thread)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async

from webapp import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

APP = {"type": "start_producer", "topic": "orders", "rate": 200.0, "keys": 10, "acks": "all"}


async def test_an_overloaded_cluster_runs_slower_and_says_so(host_registry: Any) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None
    host.settings.work_budget_per_s = 0.05
    for index in range(2):  # the most producer-app rate one cluster may have (400/s)
        frame = await host.command(APP, client_id="budget-client", client_seq=index + 1)
        assert frame["type"] == "ack", frame
    assert (await host.command({"type": "speed", "speed": "20"}))["type"] == "ack"
    host.viewers["watcher"] = time.monotonic()

    loop = asyncio.get_running_loop()
    started_ms, started = host.runtime.now_ms, loop.time()
    lags = []
    while loop.time() - started < 4.0:
        before = loop.time()
        await asyncio.sleep(0.01)
        lags.append(loop.time() - before - 0.01)
    rate = (host.runtime.now_ms - started_ms) / ((loop.time() - started) * 1000)

    assert rate < 10, rate  # 20x was asked; the budget holds it well below
    assert host.throttled_to is not None and host.throttled_to < 18
    # The stage says so from the next published state version (the publisher may be a beat
    # behind on a loaded machine): wait for it rather than racing it.
    for _ in range(100):
        if host.published is not None and "too much work" in host.published.full_html:
            break
        await asyncio.sleep(0.05)
    assert host.published is not None and "too much work" in host.published.full_html
    lags.sort()
    assert lags[int(len(lags) * 0.95)] < 0.1, lags[-5:]  # the loop kept answering


async def test_a_light_cluster_runs_at_full_speed_and_says_nothing(host_registry: Any) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None
    host.viewers["watcher"] = time.monotonic()
    await asyncio.sleep(2.5)
    assert host.throttled_to is None
    assert "too much work" not in host.published.full_html
