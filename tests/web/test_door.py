"""Bad text is refused at the door: an error frame, one log line, nothing logged to the
cluster's command log, and the socket and the host keep serving."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from tests.web.support import receive_json_frame, receive_until
from webapp import services
from webapp.asgi import application
from webapp.models import ClusterCommand, LiveCluster

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


def is_full_state(text: str) -> bool:
    return text.startswith('<div id="state-version"') and "data-base" not in text.split(">")[0]


@pytest_asyncio.fixture
async def sandbox(host_registry: Any) -> LiveCluster:
    return await database_sync_to_async(services.sandbox_create)()


@pytest_asyncio.fixture
async def socket(sandbox: LiveCluster) -> AsyncIterator[WebsocketCommunicator]:
    communicator = WebsocketCommunicator(application, f"/ws/clusters/{sandbox.id}/", ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    await receive_until(communicator, is_full_state)
    yield communicator
    await communicator.disconnect()


async def logged_commands(sandbox: LiveCluster) -> int:
    return await ClusterCommand.objects.filter(cluster_id=sandbox.id).acount()


def produce(seq: int, **fields: Any) -> str:
    body = {"type": "produce", "seq": seq, "client": "door-client-1", "topic": "orders"}
    body.update({"value": "v", "count": 1}, **fields)
    import json

    return json.dumps(body)  # ensure_ascii: a lone surrogate travels as the \ud800 escape


async def still_serving(socket: WebsocketCommunicator, seq: int) -> None:
    await socket.send_to(text_data=produce(seq, value=f"alive-{seq}"))
    ack = await receive_json_frame(socket, kind="ack")
    assert ack["seq"] == seq, ack


async def test_a_lone_surrogate_gets_an_error_frame_and_never_reaches_the_log(
    sandbox: LiveCluster, socket: WebsocketCommunicator, caplog: pytest.LogCaptureFixture
) -> None:
    before = await logged_commands(sandbox)
    for fields in ({"key": "\ud800"}, {"value": "a\udfffb"}, {"topic": "\ud83d"}):
        await socket.send_to(text_data=produce(1, **fields))
        frame = await receive_json_frame(socket, kind="error")
        assert frame["code"] == "bad_text", frame
    assert await logged_commands(sandbox) == before
    assert not any("\ud800" in r.getMessage() or "\udfff" in r.getMessage() for r in caplog.records)
    await still_serving(socket, 1)
    # The sandbox's timeline replays its log fine (a surrogate in it failed every replay).
    response = await AsyncClient().get(f"/sandbox/{sandbox.id}/timeline/")
    assert response.status_code == 200


async def test_a_huge_seq_is_refused_and_does_not_poison_the_client(
    socket: WebsocketCommunicator,
) -> None:
    for seq in (2**63, 2**64 + 5, 2**53):
        await socket.send_to(text_data=produce(seq))
        frame = await receive_json_frame(socket, kind="error")
        assert frame["code"] in ("bad_seq", "invalid"), frame
    # The same client id goes on with small numbers: nothing was recorded for it.
    await still_serving(socket, 1)
    await still_serving(socket, 2)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('{"type": "produce", "seq": 1, "deep": ' + "[" * 999 + "]" * 999 + "}", "malformed"),
        ("[" * 5000 + "]" * 5000, "malformed"),
        ('{"type": "produce", "seq": 1, "count": ' + "9" * 4301 + "}", "invalid"),
        ('{"type": "produce", "seq": ' + "7" * 5000 + "}", "invalid"),
        ('{"type": "step", "seq": 1, "ms": Infinity}', "malformed"),
        ('{"type": "start_producer", "seq": 1, "topic": "orders", "rate": NaN}', "malformed"),
        ('{"type": "produce", "seq": 1, "count": 1e400, "value": "v"}', "invalid"),
        (
            '{"type": "app_control", "seq": 1, "app_id": 99999999999999999, "action": "stop"}',
            "invalid",
        ),
    ],
)
async def test_deep_or_huge_json_gets_one_log_line_and_no_traceback(
    socket: WebsocketCommunicator, caplog: pytest.LogCaptureFixture, text: str, code: str
) -> None:
    caplog.set_level(logging.INFO)
    caplog.clear()
    await socket.send_to(text_data=text)
    frame = await receive_json_frame(socket, kind="error")
    assert frame["code"] == code, frame
    consumer_lines = [r for r in caplog.records if r.name == "webapp.consumers"]
    assert len(consumer_lines) == 1, [r.getMessage()[:120] for r in consumer_lines]
    assert all(r.exc_info is None for r in caplog.records), "a traceback was logged"
    await still_serving(socket, 7)


@pytest.mark.parametrize("path", ["/ws/", "/ws/clusters/", "/nothing/here/", "/ws/clusters/a/b/"])
async def test_an_unmatched_websocket_path_is_declined_cleanly(
    host_registry: Any, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    communicator = WebsocketCommunicator(application, path, ORIGIN)
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4404
    assert all(r.exc_info is None for r in caplog.records)
