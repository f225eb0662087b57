"""The stage's actions: validated by forms, applied by the runtime, replayed identically."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec
from tests.web import support
from tests.web.support import receive_json_frame
from webapp import forms, services
from webapp.asgi import application
from webapp.models import LiveCluster

SPEC = ClusterSpec(seed=11, brokers=3)
ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


def sandbox_runtime() -> tuple[ClusterRuntime, list[dict[str, Any]]]:
    return support.sandbox_runtime(SPEC.seed)


def run(runtime: ClusterRuntime, log: list[dict[str, Any]], command: dict[str, Any]) -> Any:
    log.append(command)
    return runtime.apply(command)


def advance(runtime: ClusterRuntime, log: list[dict[str, Any]], ms: int) -> None:
    run(runtime, log, {"type": "advance", "ms": ms})


def validated(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    form = forms.action_form(kind, data, brokers=3)
    assert form.is_valid(), form.errors
    return form.to_command()


def test_every_action_applies_and_replays_to_the_same_cluster() -> None:
    runtime, log = sandbox_runtime()
    advance(runtime, log, 1_000)
    commands = [
        validated("start_producer", {"topic": "orders", "rate": "10", "acks": "1"}),
        validated(
            "add_group_consumer",
            {
                "group": "billing",
                "topic": "orders",
                "commit": "after",
                "strategy": "sticky",
                "isolation": "read_committed",
            },
        ),
        validated("shutdown_broker", {"broker_id": "3"}),
        validated("stop_controller", {"controller_id": "101"}),
        validated("partition_network", {"isolate": "2, clients"}),
        validated("heal_network", {}),
        validated("lose_responses", {"broker_id": "1", "count": "2"}),
        validated("start_controller", {"controller_id": "101"}),
        validated("commit_group", {"app_id": "2"}),
        validated("app_control", {"app_id": "2", "action": "crash"}),
        validated(
            "create_topic", {"name": "payments", "partitions": "2", "replication_factor": "2"}
        ),
        validated("add_partitions", {"topic": "payments", "total": "4"}),
        validated(
            "alter_topic_config", {"topic": "orders", "key": "min.insync.replicas", "value": "2"}
        ),
        validated("set_acks", {"acks": "0"}),
    ]
    for command in commands:
        result = run(runtime, log, command)
        assert result.ok, (command, result.message)
        advance(runtime, log, 700)
    assert [b.alive for b in runtime.cluster.brokers()] == [True, True, False]
    assert runtime.cluster.describe_topic("orders").config["min.insync.replicas"] in (2, "2")
    assert len(runtime.cluster.describe_topic("payments").partitions) == 4

    replayed = ClusterRuntime.replay(SPEC, log)
    assert replayed.cluster.snapshot() == runtime.cluster.snapshot()


def test_engine_refusals_carry_the_kafka_name_and_the_explanation() -> None:
    runtime, log = sandbox_runtime()
    result = run(runtime, log, validated("add_partitions", {"topic": "orders", "total": "2"}))
    assert not result.ok
    assert result.error == "InvalidPartitionsError"
    assert result.message.startswith("InvalidPartitionsException: ")
    assert "(" in result.message  # the error's plain explanation follows
    group_busy = run(
        runtime,
        log,
        validated(
            "add_group_consumer",
            {
                "group": "g",
                "topic": "orders",
                "commit": "auto",
                "strategy": "range",
                "isolation": "read_uncommitted",
            },
        ),
    )
    assert group_busy.ok
    advance(runtime, log, 2_000)
    refused = run(
        runtime,
        log,
        validated("reset_offsets", {"group": "g", "topic": "orders", "to": "earliest"}),
    )
    assert not refused.ok
    assert "GroupNotEmptyException" in refused.message


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("shutdown_broker", {"broker_id": "7"}, "There is no broker 7"),
        ("stop_controller", {"controller_id": "104"}, "There is no controller 104"),
        ("partition_network", {"isolate": "3, 999"}, "There is no node 999"),
        ("partition_network", {"isolate": "zk"}, "is not a node"),
        ("start_producer", {"topic": "orders", "rate": "0", "acks": "all"}, "at least 0.1"),
        (
            "create_topic",
            {"name": "a b", "partitions": "1", "replication_factor": "1"},
            "topic name",
        ),
        (
            "create_topic",
            {"name": "t", "partitions": "1", "replication_factor": "5"},
            "needs 5 brokers",
        ),
        (
            "alter_topic_config",
            {"topic": "orders", "key": "min.insync.replicas", "value": "x"},
            "whole number",
        ),
        (
            "alter_topic_config",
            {"topic": "orders", "key": "cleanup.policy", "value": "forever"},
            "cleanup.policy is",
        ),
        ("reset_offsets", {"group": "g", "topic": "orders", "to": "yesterday"}, "earliest"),
        ("app_control", {"app_id": "1", "action": "explode"}, "Select a valid choice"),
    ],
)
def test_bad_action_input_gets_a_clear_message(
    kind: str, data: dict[str, Any], message: str
) -> None:
    form = forms.action_form(kind, data, brokers=3)
    assert not form.is_valid()
    assert message in forms.form_errors_text(form)


@pytest_asyncio.fixture
async def socket(host_registry: Any) -> AsyncIterator[WebsocketCommunicator]:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    communicator = WebsocketCommunicator(application, f"/ws/clusters/{sandbox.id}/", ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    yield communicator
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_action_over_the_socket_is_logged_before_it_is_applied(
    socket: WebsocketCommunicator,
) -> None:
    await socket.send_json_to(
        {"type": "partition_network", "seq": 1, "client": "stage-test-1", "isolate": "9"}
    )
    error = await receive_json_frame(socket, kind="error")
    assert error["code"] == "invalid"
    assert "There is no node 9" in error["message"]

    await socket.send_json_to(
        {"type": "stop_controller", "seq": 2, "client": "stage-test-1", "controller_id": 102}
    )
    ack = await receive_json_frame(socket, kind="ack")
    assert ack["seq"] == 2
    assert "Controller 102 stopped" in ack["message"]
    cluster = await database_sync_to_async(LiveCluster.objects.get)()
    payloads = await database_sync_to_async(
        lambda: [c.payload for c in cluster.commands.order_by("seq")]
    )()
    assert {"type": "stop_controller", "controller_id": 102} in payloads
