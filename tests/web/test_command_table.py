"""Every command of the table works through the path the browser uses, and every list that the
web layer derives from the table (socket types, forms, logged and clock commands, timeline,
stage forms) names it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from lessons.scenarios import CLOCK_COMMANDS, COMMANDS, LOGGED_COMMANDS, ClusterRuntime
from tests.web.support import json_frame, receive_until
from webapp import consumers, forms, services, timeline
from webapp.asgi import application
from webapp.engine_host import client as host_client
from webapp.engine_host import host as host_module
from webapp.engine_host.host import ClusterHost
from webapp.models import LiveCluster

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]

Check = Callable[[ClusterHost, int], Any]  # (host, cluster ms before the command)


def broker(host: ClusterHost, broker_id: int) -> Any:
    return next(b for b in host.runtime.cluster.brokers() if b.id == broker_id)


def controller(host: ClusterHost, controller_id: int) -> Any:
    return next(c for c in host.runtime.cluster.controllers() if c.id == controller_id)


def apps(host: ClusterHost) -> list[Any]:
    return list(host.runtime.cluster.services["apps"].apps)


def network(host: ClusterHost) -> dict[str, Any]:
    return dict(host.runtime.cluster.snapshot()["network"])


def records_on(host: ClusterHost, topic: str) -> int:
    return sum(p.log_end_offset for p in host.runtime.cluster.describe_topic(topic).partitions)


# (message the browser sends, milliseconds of cluster time to run afterwards, effect)
LEARNER_STEPS: list[tuple[dict[str, Any], int, Check]] = [
    ({"type": "pause"}, 0, lambda h, before: h.paused),
    (
        {"type": "produce", "topic": "orders", "key": "k", "value": "v", "count": "2"},
        1_000,
        lambda h, before: records_on(h, "orders") == 2,
    ),
    ({"type": "step", "ms": "200"}, 0, lambda h, before: h.runtime.now_ms == before + 200),
    ({"type": "speed", "speed": "2"}, 0, lambda h, before: h.speed == 2.0),
    ({"type": "stop_broker", "broker_id": "3"}, 0, lambda h, before: not broker(h, 3).alive),
    ({"type": "start_broker", "broker_id": "3"}, 8_000, lambda h, before: broker(h, 3).alive),
    (
        {"type": "stop_controller", "controller_id": "101"},
        0,
        lambda h, before: not controller(h, 101).alive,
    ),
    (
        {"type": "start_controller", "controller_id": "101"},
        2_000,
        lambda h, before: controller(h, 101).alive,
    ),
    ({"type": "partition_network", "isolate": "3"}, 0, lambda h, before: network(h).get("groups")),
    ({"type": "heal_network"}, 8_000, lambda h, before: not network(h).get("groups")),
    (
        {"type": "start_producer", "topic": "orders", "rate": "10", "acks": "all"},
        0,
        lambda h, before: [a.kind for a in apps(h)] == ["producer"],
    ),
    (
        {"type": "set_acks", "acks": "1"},
        0,
        lambda h, before: h.runtime.producer.client_id == "dojo-producer-acks-1",
    ),
    (
        {
            "type": "add_group_consumer",
            "group": "billing",
            "topic": "orders",
            "commit": "after",
            "strategy": "range",
            "isolation": "read_uncommitted",
        },
        10_000,
        lambda h, before: h.runtime.cluster.describe_group("billing").state == "Stable",
    ),
    (
        {"type": "commit_group", "app_id": "2"},
        0,
        lambda h, before: sum(h.runtime.cluster.describe_group("billing").offsets.values()) > 0,
    ),
    (
        {"type": "app_control", "app_id": "2", "action": "stop"},
        2_000,
        lambda h, before: not apps(h)[1].running,
    ),
    (
        {"type": "reset_offsets", "group": "billing", "topic": "orders", "to": "earliest"},
        0,
        lambda h, before: set(h.runtime.cluster.describe_group("billing").offsets.values()) == {0},
    ),
    (
        {"type": "create_topic", "name": "payments", "partitions": "2", "replication_factor": "3"},
        0,
        lambda h, before: "payments" in h.runtime.cluster.list_topics(),
    ),
    (
        {"type": "add_partitions", "topic": "payments", "total": "4"},
        0,
        lambda h, before: len(h.runtime.cluster.describe_topic("payments").partitions) == 4,
    ),
    (
        {
            "type": "alter_topic_config",
            "topic": "payments",
            "key": "retention.ms",
            "value": "60000",
        },
        0,
        lambda h, before: (
            str(h.runtime.cluster.describe_topic("payments").config["retention.ms"]) == "60000"
        ),
    ),
    (
        {
            "type": "transaction",
            "transactional_id": "ledger-app",
            "topic": "payments",
            "count": "2",
            "outcome": "commit",
        },
        2_000,
        lambda h, before: any(
            e.kind == "transaction_committed" and e.data["transactional_id"] == "ledger-app"
            for e in h.runtime.cluster.events
        ),
    ),
    (
        {"type": "lose_responses", "broker_id": "1", "count": "2"},
        0,
        lambda h, before: h.runtime.cluster.broker_by_id(1).lost_responses == 2,
    ),
    (
        {"type": "shutdown_broker", "broker_id": "2"},
        10_000,
        lambda h, before: not broker(h, 2).alive,
    ),
    ({"type": "resume"}, 0, lambda h, before: not h.paused),
]

# Commands no browser sends: the host writes them (advance), the server does (engine, when a
# Stress it run opens on the stage) or a new sandbox's setup does (add_consumer).
SERVER_STEPS: list[tuple[dict[str, Any], Check]] = [
    (
        {"type": "add_consumer", "name": "second", "topic": "payments", "poll_interval_ms": 100},
        lambda h, before: "second" in h.runtime.consumers,
    ),
    ({"type": "advance", "ms": 500}, lambda h, before: True),
    (  # what POST /sandbox/<id>/console/ sends
        {
            "type": "console",
            "line": "kafka-topics.sh --bootstrap-server localhost:9092 --create --topic typed",
        },
        lambda h, before: "typed" in h.runtime.cluster.list_topics(),
    ),
    (
        {"type": "engine", "entry": {"op": "cluster.partition_network", "groups": [[1]]}},
        lambda h, before: network(h).get("groups"),
    ),
    (
        {
            "type": "wire_request",
            "connection": 1,
            "broker_id": 1,
            "request": {"api": "metadata", "topics": None, "correlation_id": 1},
        },
        lambda h, before: h.runtime.cluster.remote.connections[1].requests == {"metadata": 1},
    ),
]


@pytest.mark.django_db
def test_every_command_of_the_table_is_in_every_list_derived_from_it() -> None:
    page = Client()
    response = page.get("/sandbox/", follow=True)
    html = response.content.decode()
    for name, spec in COMMANDS.items():
        assert (name in LOGGED_COMMANDS) == spec.logged, name
        assert (name in CLOCK_COMMANDS) == (spec.clock is not None), name
        assert (name in host_module.LOGGED_COMMANDS) == spec.logged, name
        assert (name in host_module.CLOCK_COMMANDS) == (spec.clock is not None), name
        assert timeline._known_command(name) == spec.logged, name
        if "learner" in spec.roles:
            assert name in consumers.MESSAGE_TYPES, name
            assert name in forms.FORMS, name
            assert forms.FORMS[name].spec is spec, name
            on_stage = (
                f'data-set-type="{name}"' in html
                or f'name="type" value="{name}"' in html
                or any(a.node for a in spec.node_actions)
            )
            assert on_stage, f"{name} has no form or button on the stage"
        else:
            assert name not in consumers.MESSAGE_TYPES, name
    assert set(consumers.MESSAGE_TYPES) == {
        n for n, s in COMMANDS.items() if "learner" in s.roles
    } | {"resync"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_every_command_takes_effect_through_the_socket_consumer_host_and_runtime(
    host_registry: Any,
) -> None:
    driven = {step[0]["type"] for step in LEARNER_STEPS} | {s[0]["type"] for s in SERVER_STEPS}
    assert driven == set(COMMANDS), "a command of the table is not driven by this test"

    sandbox = await database_sync_to_async(services.sandbox_create)(seed=5)
    socket = WebsocketCommunicator(application, f"/ws/clusters/{sandbox.id}/", ORIGIN)
    connected, _ = await socket.connect()
    assert connected
    try:
        host = await host_registry.ensure(sandbox.id)
        assert host is not None
        for seq, (message, run_ms, took_effect) in enumerate(LEARNER_STEPS, start=1):
            before = host.runtime.now_ms
            await socket.send_json_to({**message, "seq": seq, "client": "table-test-01"})
            text = await receive_until(
                socket,
                lambda t, seq=seq: (f := json_frame(t)) is not None and f.get("seq") == seq,
                timeout_s=15,
            )
            frame = json_frame(text)
            assert frame is not None and frame["type"] == "ack", (message, frame)
            if run_ms:
                host.paused = True  # the test runs the clock itself
                await host.advance_live(run_ms)
            assert took_effect(host, before), (message, frame)
        for payload, took_effect in SERVER_STEPS:
            frame = await host_client.host_request(
                sandbox.id, {"type": "host.command", "command": payload}
            )
            assert frame is not None and frame["type"] == "ack", (payload, frame)
            assert took_effect(host, host.runtime.now_ms), payload
    finally:
        await socket.disconnect()

    # Every logged command is in the log, and the log replays to the same cluster.
    cluster = await database_sync_to_async(LiveCluster.objects.get)(pk=sandbox.id)
    async with host.lock:
        await host._flush_advance_locked()
        live = host.runtime.cluster.snapshot()
    log = await database_sync_to_async(
        lambda: [c.payload for c in cluster.commands.order_by("seq")]
    )()
    assert {p["type"] for p in log} == LOGGED_COMMANDS
    spec = host.runtime.spec
    assert ClusterRuntime.replay(spec, log).cluster.snapshot() == live


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_command_from_the_table_only_the_server_writes_is_refused_on_the_socket(
    host_registry: Any,
) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    socket = WebsocketCommunicator(application, f"/ws/clusters/{sandbox.id}/", ORIGIN)
    connected, _ = await socket.connect()
    assert connected
    try:
        for seq, kind in enumerate(("advance", "engine", "add_consumer"), start=1):
            await socket.send_json_to({"type": kind, "seq": seq, "ms": 100})
            text = await receive_until(
                socket, lambda t: (f := json_frame(t)) is not None and f.get("type") == "error"
            )
            frame = json_frame(text)
            assert frame is not None and frame["code"] == "unknown_type"
    finally:
        await socket.disconnect()
