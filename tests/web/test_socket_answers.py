"""The socket's answers to bad input are the ones it gave before the command table: every frame
below was recorded from the socket of the code before it (tests/web/data/socket_answers.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from tests.web.support import json_frame, receive_until
from webapp import services
from webapp.asgi import application

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
RECORDED = Path(__file__).with_name("data") / "socket_answers.json"

LONG = "x" * 1001


def bad(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "seq": 1, "client": "answers-test-1", **fields})


BAD_INPUT = [
    "{not json",
    "[1, 2]",
    '{"seq": 1}',
    bad("launch_missiles"),
    bad("advance", ms=100),
    bad("engine"),
    bad("add_consumer", name="x", topic="orders"),
    '{"type": "produce", "seq": 0, "value": "v"}',
    '{"type": "produce", "seq": true, "value": "v"}',
    '{"type": "produce", "seq": 1, "client": "no", "value": "v"}',
    bad("produce", topic="orders", value={"nested": True}),
    bad("produce", topic="orders", value=True),
    bad("produce", topic="orders", count=1),
    bad("produce", topic="orders", value="v"),
    bad("produce", topic="orders", value="v", count=0),
    bad("produce", topic="orders", value="v", count=500),
    bad("produce", topic="orders", value="v", count="two"),
    bad("produce", topic="orders", value="v", count=1.5),
    bad("produce", topic="bad topic!", value="v", count=1),
    bad("produce", topic="..", value="v", count=1),
    bad("produce", topic="orders", key="k" * 201, value="v", count=1),
    bad("produce", topic="orders", value=LONG, count=1),
    bad("produce", value="v", count=1),
    bad("stop_broker", broker_id=9),
    bad("stop_broker", broker_id=0),
    bad("stop_broker", broker_id="x"),
    bad("stop_broker"),
    bad("start_broker", broker_id=4),
    bad("shutdown_broker", broker_id=7),
    bad("speed", speed=3),
    bad("speed"),
    bad("step", ms=15),
    bad("step", ms=0),
    bad("step", ms=70000),
    bad("step", ms="abc"),
    bad("stop_controller", controller_id=104),
    bad("start_controller", controller_id="abc"),
    bad("stop_controller"),
    bad("lose_responses", broker_id=1, count=0),
    bad("lose_responses", broker_id=1, count=101),
    bad("lose_responses", broker_id=1),
    bad("partition_network", isolate=""),
    bad("partition_network", isolate="zk"),
    bad("partition_network", isolate="3, 999"),
    bad("partition_network"),
    bad("start_producer", topic="orders", rate=0, acks="all"),
    bad("start_producer", topic="orders", rate=500, acks="all"),
    bad("start_producer", topic="orders", rate="fast", acks="all"),
    bad("start_producer", topic="orders", rate=5, acks="2"),
    bad("start_producer", topic="orders", rate=5),
    bad("start_producer", topic="orders", rate=5, acks="all", keys=0),
    bad("set_acks", acks="2"),
    bad("set_acks"),
    bad(
        "add_group_consumer",
        group="bad group!",
        topic="orders",
        commit="auto",
        strategy="range",
        isolation="read_uncommitted",
    ),
    bad(
        "add_group_consumer",
        group="g",
        topic="orders",
        commit="auto",
        strategy="x",
        isolation="read_uncommitted",
    ),
    bad("add_group_consumer", group="g", topic="orders"),
    bad("app_control", app_id=1, action="explode"),
    bad("app_control", app_id=0, action="stop"),
    bad("app_control", app_id="x", action="stop"),
    bad("commit_group", app_id="x"),
    bad("commit_group"),
    bad("reset_offsets", group="g", topic="orders", to="yesterday"),
    bad("reset_offsets", group="g", topic="orders"),
    bad("create_topic", name="a b", partitions=1, replication_factor=1),
    bad("create_topic", name="t", partitions=1, replication_factor=5),
    bad("create_topic", name="t", partitions=0, replication_factor=1),
    bad("create_topic", name="t", partitions=65, replication_factor=1),
    bad("create_topic", name="t"),
    bad("create_topic", partitions=1, replication_factor=1),
    bad("add_partitions", topic="orders", total=1),
    bad("add_partitions", topic="orders", total=65),
    bad("alter_topic_config", topic="orders", key="min.insync.replicas", value="x"),
    bad("alter_topic_config", topic="orders", key="cleanup.policy", value="forever"),
    bad("alter_topic_config", topic="orders", key="unclean.leader.election.enable", value="maybe"),
    bad("alter_topic_config", topic="orders", key="foo", value="1"),
    bad("alter_topic_config", topic="orders", key="retention.ms"),
]


async def answers() -> list[dict[str, Any]]:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    socket = WebsocketCommunicator(application, f"/ws/clusters/{sandbox.id}/", ORIGIN)
    connected, _ = await socket.connect()
    assert connected
    frames = []
    try:
        for text in BAD_INPUT:
            await socket.send_to(text_data=text)
            reply = await receive_until(
                socket, lambda t: (f := json_frame(t)) is not None and f.get("type") == "error"
            )
            frames.append(json.loads(reply))
    finally:
        await socket.disconnect()
    return frames


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_every_bad_input_gets_the_answer_it_got_before_the_command_table(
    host_registry: Any, settings: Any
) -> None:
    settings.DOJO_WS_MESSAGES_PER_SECOND = 1000  # the rate limit is not what this is about
    got = await answers()
    if os.environ.get("RECORD_SOCKET_ANSWERS"):
        RECORDED.write_text(json.dumps(dict(zip(BAD_INPUT, got, strict=True)), indent=1) + "\n")
    recorded = json.loads(RECORDED.read_text())
    assert list(recorded) == BAD_INPUT
    for text, frame in zip(BAD_INPUT, got, strict=True):
        assert frame == recorded[text], text
