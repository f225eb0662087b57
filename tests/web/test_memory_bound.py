"""A cluster over its memory bound stops its own clock and refuses more records, says so on its
stage, and goes on when it holds less again; replays of share links leave the server's process."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async

from lessons.scenarios import ClusterSpec
from webapp import services, timeline
from webapp.engine_host import memory, replay_pool

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

APP = {"type": "start_producer", "topic": "orders", "rate": 200.0, "keys": 10, "acks": "all"}
PRODUCE = {"type": "produce", "topic": "orders", "key": "k", "value": "v", "count": 1}


async def test_a_cluster_over_its_memory_bound_stops_its_clock_and_says_so(
    host_registry: Any,
) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None
    assert (await host.command(APP, client_id="memory-client", client_seq=1))["type"] == "ack"
    assert (await host.command({"type": "speed", "speed": "20"}))["type"] == "ack"
    host.viewers["watcher"] = time.monotonic()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while memory.stored_records(host.runtime) < 500:
        assert loop.time() < deadline, "the producer app stored nothing"
        await asyncio.sleep(0.1)

    # The bound falls below what the cluster holds: within a keeper round the clock stops.
    host.settings.memory_bound_bytes = memory.cluster_memory_bytes(host.runtime) // 2
    while host.memory_stopped is None:
        assert loop.time() < deadline, "the host never noticed its memory bound"
        await asyncio.sleep(0.1)
    async with host.lock:  # a tick in flight (it holds the lock) has landed
        stopped_at = host.runtime.now_ms
    await asyncio.sleep(1.5)
    assert host.runtime.now_ms == stopped_at  # no cluster time runs while over the bound
    assert "Cluster stopped" in host.published.full_html  # said on its stage
    assert "MiB" in host.published.full_html

    frame = await host.command(PRODUCE, client_id="memory-client", client_seq=2)
    assert frame["type"] == "error" and frame["code"] == "limit", frame
    assert "Cluster stopped" in frame["message"]
    frame = await host.command(APP, client_id="memory-client", client_seq=3)
    assert frame["type"] == "error" and frame["code"] == "limit", frame
    # Commands that add no records still apply (they are how a learner gets back under).
    frame = await host.command({"type": "stop_broker", "broker_id": 3}, client_id="m", client_seq=1)
    assert frame["type"] == "ack", frame

    # Holding less again (here: a larger bound), the clock runs and the stage says nothing.
    host.settings.memory_bound_bytes = 2**40
    while host.memory_stopped is not None:
        assert loop.time() < deadline + 10
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    assert host.runtime.now_ms > stopped_at
    assert "Cluster stopped" not in host.published.full_html


async def test_the_memory_estimate_grows_with_stored_records(host_registry: Any) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None
    empty = memory.cluster_memory_bytes(host.runtime)
    for seq in range(1, 4):
        body = {**PRODUCE, "count": 100}
        assert (await host.command(body, client_id="grow", client_seq=seq))["type"] == "ack"
    host.viewers["watcher"] = time.monotonic()
    await asyncio.sleep(1.5)  # the produces are sent and replicated on the live clock
    stored = memory.stored_records(host.runtime)
    assert stored >= 300  # 300 records on at least one replica
    grown = memory.cluster_memory_bytes(host.runtime) - empty
    assert grown >= stored * memory.PYTHON_BYTES_PER_RECORD


async def test_share_link_replays_run_in_another_process() -> None:
    try:
        worker = await replay_pool.worker_pid()
        assert worker != os.getpid()
        log = list(services.sandbox_setup_commands(brokers=3))
        log += [APP, {"type": "advance", "ms": 3000}]
        spec = ClusterSpec(seed=5)
        there = await replay_pool.run(timeline.command_times, spec=spec, commands=log)
        assert there == timeline.command_times(spec=spec, commands=log)
        # An error raised in the worker is raised here.
        with pytest.raises(TypeError):
            await replay_pool.run(int, base="not a number")
    finally:
        replay_pool.shutdown()
    # Shut down, the workers are gone; the next replay starts a new one.
    assert await replay_pool.worker_pid() not in (worker, os.getpid())
    replay_pool.shutdown()
