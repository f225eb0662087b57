"""No silent loss: commands from many sockets at once each get an answer (applied, refused
with a reason, or rate limited), and every acknowledged produce is in the command log."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from tests.web.support import json_frame
from webapp import services
from webapp.asgi import application
from webapp.models import ClusterCommand

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
SOCKETS = 25
PER_SOCKET = 40  # the socket's burst: none of these is rate limited


async def answers(socket: WebsocketCommunicator, wanted: int) -> dict[int, dict[str, Any]]:
    seen: dict[int, dict[str, Any]] = {}
    while len(seen) < wanted:
        try:
            text = await socket.receive_from(timeout=10)
        except TimeoutError:
            break  # nothing more is coming: the rest were lost
        frame = json_frame(text)
        if frame is not None and frame.get("type") in ("ack", "error"):
            seen[int(frame["seq"])] = frame
    return seen


async def test_commands_from_many_sockets_at_once_are_each_answered(host_registry: Any) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    sockets = []
    for _ in range(SOCKETS):
        socket = WebsocketCommunicator(application, f"/ws/clusters/{sandbox.id}/", ORIGIN)
        connected, _ = await socket.connect()
        assert connected
        sockets.append(socket)

    async def send_all(index: int, socket: WebsocketCommunicator) -> None:
        for seq in range(1, PER_SOCKET + 1):
            message = {
                "type": "produce",
                "seq": seq,
                "client": f"loss-client-{index:03d}",
                "topic": "orders",
                "value": f"s{index}-{seq}",
                "count": 1,
            }
            await socket.send_to(text_data=json.dumps(message))

    await asyncio.gather(*(send_all(i, s) for i, s in enumerate(sockets)))
    got = await asyncio.gather(*(answers(s, PER_SOCKET) for s in sockets))
    frames = [frame for per_socket in got for frame in per_socket.values()]
    assert len(frames) == SOCKETS * PER_SOCKET
    acked = [f for f in frames if f["type"] == "ack"]
    # Whatever was not applied says why (busy or rate limited), never silence.
    assert all(f.get("code") in ("busy", "rate_limited") for f in frames if f["type"] == "error")
    logged = await ClusterCommand.objects.filter(cluster_id=sandbox.id, kind="produce").acount()
    assert logged == len(acked)
    assert len(acked) >= SOCKETS * PER_SOCKET * 0.9
    for socket in sockets:
        await socket.disconnect()
