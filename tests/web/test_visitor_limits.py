"""Limits per visitor and per cluster, each refused with a clear message."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client, override_settings

from webapp import services
from webapp.engine_host.registry import TooManyHosts
from webapp.models import LiveCluster

APP = {"type": "start_producer", "topic": "orders", "rate": 200.0, "keys": 10, "acks": "all"}


@pytest.mark.django_db
@override_settings(DOJO_SANDBOXES_PER_SESSION=3, DOJO_SANDBOXES_PER_ADDRESS=5)
def test_a_session_and_an_address_make_a_bounded_number_of_sandboxes() -> None:
    first = Client()
    made = [first.post("/sandbox/new/").status_code for _ in range(4)]
    assert made == [302, 302, 302, 429]
    refused = first.post("/sandbox/new/")
    assert "You made 3 sandboxes" in refused.content.decode()
    second = Client()  # a new session from the same address
    assert [second.post("/sandbox/new/").status_code for _ in range(3)] == [302, 302, 429]
    assert "from your network" in second.post("/sandbox/new/").content.decode()
    assert LiveCluster.objects.count() == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_apps_and_their_rates_are_bounded_per_cluster(host_registry: Any) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None
    frames = [await host.command(APP, client_id="apps-client", client_seq=i) for i in (1, 2, 3)]
    assert [f["type"] for f in frames] == ["ack", "ack", "error"]
    assert "at most 400 records a second" in frames[2]["message"]
    consumer = {"type": "add_group_consumer", "group": "g", "topic": "orders"}
    answers = [
        (
            await host.command(
                {**consumer, "group": f"g{i}"}, client_id="apps-client", client_seq=10 + i
            )
        )["type"]
        for i in range(8)
    ]
    assert answers == ["ack"] * 6 + ["error"] * 2
    assert len(host.runtime.cluster.apps.apps) == 8


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_process_runs_a_bounded_number_of_live_hosts(host_registry: Any) -> None:
    host_registry.max_hosts = 2
    sandboxes = [await database_sync_to_async(services.sandbox_create)() for _ in range(3)]
    assert await host_registry.ensure(sandboxes[0].id) is not None
    assert await host_registry.ensure(sandboxes[1].id) is not None
    with pytest.raises(TooManyHosts, match="already runs 2 live clusters"):
        await host_registry.ensure(sandboxes[2].id)
    await host_registry.hosts[sandboxes[0].id].stop("idle")
    assert await host_registry.ensure(sandboxes[2].id) is not None
