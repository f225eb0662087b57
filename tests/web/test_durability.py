"""What viewers saw survives a crash: no state is published before the command and the time
that produced it are in the log, so a host that dies without cleaning up (as under kill -9)
is rebuilt by replay at or past the last state any viewer saw."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async

from lessons.scenarios import ClusterRuntime
from webapp import services
from webapp.engine_host import store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

APP = {"type": "start_producer", "topic": "orders", "rate": 50.0, "keys": 10, "acks": "all"}


def records(runtime: ClusterRuntime) -> int:
    topic = runtime.cluster.describe_topic("orders")
    return sum(p.high_watermark for p in topic.partitions)


async def test_a_crashed_host_replays_to_at_least_what_viewers_saw(host_registry: Any) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None
    assert (await host.command(APP, client_id="durable-client", client_seq=1))["type"] == "ack"
    seen: list[tuple[int, int]] = []
    publish = host._publish

    def watched_publish(*rendered: Any) -> Any:
        update = publish(*rendered)
        seen.append((host.runtime.now_ms, records(host.runtime)))
        return update

    host._publish = watched_publish  # type: ignore[method-assign]
    host.viewers["watcher"] = time.monotonic()
    await asyncio.sleep(3.0)  # a producer app runs; viewers get versions at up to 10 a second

    # kill -9: the host's tasks die where they stand, nothing is flushed or released.
    for task in host._tasks:
        task.cancel()
    host.running = False
    last_seen_ms, last_seen_records = seen[-1]
    assert last_seen_records > 0

    stored = await database_sync_to_async(store.cluster_load)(cluster_id=sandbox.id)
    rebuilt = await asyncio.to_thread(ClusterRuntime.replay, stored.spec, stored.commands)
    assert rebuilt.now_ms >= last_seen_ms
    assert records(rebuilt) >= last_seen_records
    # Flushing before each publish lengthens one advance entry rather than adding rows.
    assert len(stored.commands) <= 6, [c["type"] for c in stored.commands]
