"""The WebSocket consumer, through the whole ASGI stack (origin check, sessions, routing)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from engine.partitioner import partition_for_key
from tests.web.support import receive_json_frame, receive_until
from webapp import services
from webapp.asgi import application
from webapp.engine_host.host import viewers_group
from webapp.models import LiveCluster

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


def is_full_state(text: str) -> bool:
    return text.startswith('<div id="state-version"') and "data-base" not in text.split(">")[0]


def partition_html(html: str, partition: int) -> str:
    match = re.search(
        rf'<div class="partition" id="partition-orders-{partition}".*?</ol>', html, re.S
    )
    assert match, f"partition {partition} not in the fragment"
    return match.group(0)


@pytest_asyncio.fixture
async def sandbox(host_registry: Any) -> LiveCluster:
    return await database_sync_to_async(services.sandbox_create)()


@pytest_asyncio.fixture
async def socket(sandbox: LiveCluster) -> AsyncIterator[WebsocketCommunicator]:
    communicator = WebsocketCommunicator(application, f"/ws/clusters/{sandbox.id}/", ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    yield communicator
    await communicator.disconnect()


async def test_connect_get_the_full_state_produce_and_see_the_record(
    sandbox: LiveCluster, socket: WebsocketCommunicator
) -> None:
    full = await receive_until(socket, is_full_state)
    for fragment_id in ("clock", "stage", "mirror", "topics", "consumers", "events"):
        assert f'id="{fragment_id}"' in full
    assert "hello-dojo" not in full

    await socket.send_json_to(
        {
            "type": "produce",
            "seq": 1,
            "client": "test-client-1",
            "topic": "orders",
            "key": "customer-42",
            "value": "hello-dojo",
            "count": 1,
        }
    )
    ack = await receive_json_frame(socket, kind="ack")
    assert ack["seq"] == 1
    assert ack["duplicate"] is False
    expected = partition_for_key(b"customer-42", 3)

    def stored(text: str) -> bool:
        # A command is published at once, so a first frame may show the send in flight;
        # the record is stored a few cluster milliseconds later.
        # A version sends only the partitions it changed: wait for the one the key maps to.
        return f'id="partition-orders-{expected}"' in text and "hello-dojo" in partition_html(
            text, expected
        )

    update = await receive_until(socket, stored)
    # The records panel comes part by part: a partition left out of the update did not change
    # (and the full state had no record); one that is in it must not show the record.
    for other in {0, 1, 2} - {expected}:
        if f'id="partition-orders-{other}"' in update:
            assert "hello-dojo" not in partition_html(update, other)


async def test_the_same_command_sent_twice_is_acknowledged_as_a_duplicate(
    socket: WebsocketCommunicator,
) -> None:
    await receive_until(socket, is_full_state)
    message = {"type": "produce", "seq": 5, "client": "test-client-1", "value": "once"}
    await socket.send_json_to({**message, "topic": "orders", "count": 1})
    assert (await receive_json_frame(socket, kind="ack"))["duplicate"] is False
    await socket.send_json_to({**message, "topic": "orders", "count": 1})
    assert (await receive_json_frame(socket, kind="ack"))["duplicate"] is True


BAD_MESSAGES = [
    ('{"type": "produce", "seq": 1', "malformed", "Malformed JSON"),
    ("[1, 2, 3]", "malformed", "JSON object"),
    ('{"type": "launch_missiles", "seq": 1}', "unknown_type", "Unknown message type"),
    ('{"seq": 1}', "unknown_type", "Unknown message type None"),
    ('{"type": "produce", "seq": "one", "value": "v"}', "bad_seq", "seq"),
    ('{"type": "produce", "seq": 1, "client": "x"}', "bad_client", "client"),
    (
        '{"type": "produce", "seq": 1, "topic": "orders", "value": "v", "count": 500}',
        "invalid",
        "count: Send at most 100 records at a time.",
    ),
    ('{"type": "produce", "seq": 1, "topic": "orders", "count": 1}', "invalid", "Type a value"),
    ('{"type": "stop_broker", "seq": 1, "broker_id": 9}', "invalid", "There is no broker 9"),
    ('{"type": "speed", "seq": 1, "speed": 3}', "invalid", "Speed must be one of"),
    ('{"type": "produce", "seq": 1, "value": {"nested": true}}', "invalid", "strings or numbers"),
    ('{"type": "produce", "seq": 1, "value": "' + "x" * 17_000 + '"}', "too_large", "16384"),
]


async def test_each_bad_message_gets_a_clear_error_and_the_socket_keeps_working(
    socket: WebsocketCommunicator,
) -> None:
    await receive_until(socket, is_full_state)
    for text, code, words in BAD_MESSAGES:
        await socket.send_to(text_data=text)
        frame = await receive_json_frame(socket, kind="error")
        assert frame["code"] == code, (text[:60], frame)
        assert words in frame["message"], (text[:60], frame)
    await socket.send_to(bytes_data=b"\x00\x01")
    frame = await receive_json_frame(socket, kind="error")
    assert frame["code"] == "binary"

    invalid = json.loads(BAD_MESSAGES[6][0])
    await socket.send_json_to(invalid)
    frame = await receive_json_frame(socket, kind="error")
    assert frame["fields"] == {"count": ["Send at most 100 records at a time."]}
    assert frame["seq"] == 1

    await socket.send_json_to(
        {
            "type": "produce",
            "seq": 2,
            "client": "test-client-9",
            "topic": "orders",
            "value": "still-alive",
            "count": 1,
        }
    )
    assert (await receive_json_frame(socket, kind="ack"))["seq"] == 2
    await receive_until(socket, lambda text: "still-alive" in text)


async def test_a_socket_that_floods_is_rate_limited(socket: WebsocketCommunicator) -> None:
    await receive_until(socket, is_full_state)
    for _ in range(60):
        await socket.send_to(text_data='{"type": "nothing"}')
    codes = []
    for _ in range(60):
        frame = await receive_json_frame(socket, kind="error")
        codes.append(frame["code"])
    assert "rate_limited" in codes
    assert codes[0] == "unknown_type"


async def test_a_resync_or_a_version_gap_brings_the_full_state(
    sandbox: LiveCluster, socket: WebsocketCommunicator
) -> None:
    await receive_until(socket, is_full_state)
    await socket.send_json_to({"type": "resync"})
    await receive_until(socket, is_full_state)

    layer = get_channel_layer()
    await layer.group_send(
        viewers_group(sandbox.id),
        {"type": "cluster.state", "version": 10_000, "base": 9_999, "html": "<p>lost</p>"},
    )
    text = await receive_until(socket, lambda t: is_full_state(t) or "lost" in t)
    assert is_full_state(text), "a gap must bring the full state, not the partial update"


async def test_a_page_from_another_site_cannot_open_the_socket(sandbox: LiveCluster) -> None:
    communicator = WebsocketCommunicator(
        application, f"/ws/clusters/{sandbox.id}/", [(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_a_socket_for_an_unknown_cluster_is_closed(host_registry: Any) -> None:
    communicator = WebsocketCommunicator(application, "/ws/clusters/nosuchcluster/", ORIGIN)
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4404
