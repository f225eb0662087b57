"""A sandbox survives losing its host: it is rebuilt from its seed and command log."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from webapp import services
from webapp.engine_host.leases import LocalLeaseStore
from webapp.engine_host.registry import HostRegistry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def all_records(runtime: Any) -> list[tuple[int, int, bytes | None, bytes | None]]:
    cluster = runtime.cluster
    return [
        (p.partition, r.offset, r.key, r.value)
        for p in cluster.describe_topic("orders").partitions
        for r in cluster.read("orders", p.partition, offset=0)
    ]


async def test_records_survive_a_restart_through_replay(host_registry: Any) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    for seq, key in enumerate(["alice", "bob", "carol"], start=1):
        command = {
            "type": "produce",
            "topic": "orders",
            "key": key,
            "value": f"order-{seq}",
            "count": 2,
        }
        assert (await host.command(command, client_id="client-0001", client_seq=seq))[
            "type"
        ] == "ack"
        await host.advance_live(730)  # the live clock, logged later as one coalesced advance
    assert (
        await host.command(
            {"type": "stop_broker", "broker_id": 2}, client_id="client-0001", client_seq=4
        )
    )["type"] == "ack"
    await host.advance_live(12_000)
    before = host.runtime
    records = all_records(before)
    assert len(records) == 6

    await host_registry.shutdown()  # the server goes away; only the database remains
    assert sandbox.id not in host_registry.hosts

    restarted = HostRegistry(layer=get_channel_layer(), leases=LocalLeaseStore())
    try:
        rebuilt = await restarted.ensure(sandbox.id)
        assert rebuilt is not None and rebuilt is not host
        assert all_records(rebuilt.runtime) == records
        assert rebuilt.runtime.now_ms == before.now_ms
        assert rebuilt.runtime.cluster.snapshot() == before.cluster.snapshot()
        assert rebuilt.runtime.consumers["reader"].positions == (
            before.consumers["reader"].positions
        )
        # The dedupe memory is in the log too: a command resent after the restart is not redone.
        again = await rebuilt.command(
            {"type": "stop_broker", "broker_id": 2}, client_id="client-0001", client_seq=4
        )
        assert again["duplicate"] is True
    finally:
        await restarted.shutdown()
