"""The fan-out: one channel-layer message per state version per process, one encoded frame per
version written to every Daphne socket, per-socket work limited to the version check."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import struct
import subprocess
import sys
from typing import Any

import pytest
from channels.layers import get_channel_layer

from tests.web.support import ROOT, room_bench
from webapp.engine_host import fanout


def parse_frame(frame: bytes) -> tuple[int, str]:
    """(opcode byte, text) of an unmasked server frame, per RFC 6455 section 5.2."""
    first, second = frame[0], frame[1]
    assert second & 0x80 == 0, "a server frame is not masked"
    size, offset = second & 0x7F, 2
    if size == 126:
        (size,) = struct.unpack("!H", frame[2:4])
        offset = 4
    elif size == 127:
        (size,) = struct.unpack("!Q", frame[2:10])
        offset = 10
    assert len(frame) == offset + size
    return first, frame[offset:].decode("utf-8")


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_a_text_frame_has_the_length_form_rfc_6455_gives_its_size(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)
    first, decoded = parse_frame(fanout.text_frame(text))
    assert first == 0x81 and decoded == text


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


class FakeProtocol:
    """What the fan-out needs of Daphne's WebSocket protocol."""

    STATE_OPEN = 1

    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.state = self.STATE_OPEN

    def sendMessage(self, payload: bytes, binary: bool) -> None:  # noqa: N802 (autobahn's name)
        raise AssertionError("the prepared frame is written, not sent message by message")


async def fake_handle_reply(protocol: FakeProtocol, message: dict[str, Any]) -> None:
    raise AssertionError("not used for fan-out frames")


class FakeSink:
    def __init__(self, name: str, version: int | None) -> None:
        self.channel_name = name
        self.version = version
        self.texts: list[str] = []
        self.resyncs = 0

    async def relay_text(self, text: str) -> None:
        self.texts.append(text)

    async def relay_resync(self) -> None:
        self.resyncs += 1


@pytest.mark.asyncio
async def test_one_layer_message_and_one_encoded_frame_reach_every_socket() -> None:
    layer = get_channel_layer()
    group = "dojo.cluster.fanout-test"
    protocols = [FakeProtocol() for _ in range(50)]
    sinks = [FakeSink(f"socket-{i}", version=4) for i in range(50)]
    plain = FakeSink("socket-test", version=4)  # not on Daphne: the ordinary send
    behind = FakeSink("socket-behind", version=2)  # missed a version
    joining = FakeSink("socket-joining", version=None)  # its full state is on its way
    for sink, protocol in zip(sinks, protocols, strict=True):
        scope = {fanout.SERVER_SEND_KEY: functools.partial(fake_handle_reply, protocol)}
        await fanout.subscribe(group, sink, scope)
    for sink in (plain, behind, joining):
        await fanout.subscribe(group, sink, {})
    assert fanout.local_members(group) == 53
    # The process is one member of the group, whatever the number of sockets.
    assert len(layer.groups[group]) == 1

    await layer.group_send(
        group, {"type": "cluster.state", "version": 5, "base": 4, "html": "<p>v5</p>"}
    )
    for _ in range(100):
        if plain.texts:
            break
        await asyncio.sleep(0.01)
    frames = [p.transport.written for p in protocols]
    assert all(len(w) == 1 for w in frames)
    assert all(w[0] is frames[0][0] for w in frames), "one encoded frame for every socket"
    assert parse_frame(frames[0][0]) == (0x81, "<p>v5</p>")
    assert all(s.version == 5 for s in sinks)
    assert plain.texts == ["<p>v5</p>"] and plain.version == 5
    assert behind.resyncs == 1 and behind.version == 2 and not behind.texts
    assert joining.texts == [] and joining.version is None

    await layer.group_send(group, {"type": "console.output", "text": "offset 3"})
    for _ in range(100):
        if len(plain.texts) == 2:
            break
        await asyncio.sleep(0.01)
    assert json.loads(plain.texts[1]) == {"type": "console.output", "text": "offset 3"}
    assert json.loads(parse_frame(protocols[0].transport.written[1])[1])["text"] == "offset 3"

    for sink in [*sinks, plain, behind, joining]:
        await fanout.unsubscribe(group, sink)
    assert fanout.local_members(group) == 0
    assert not layer.groups.get(group)


CHECK_DAPHNE = """
import functools, inspect, json
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from webapp.engine_host import fanout

source = inspect.getsource(Server.create_application)
protocol = WebSocketProtocol()
send = functools.partial(Server.handle_reply, protocol)  # the shape Daphne passes
found = fanout.daphne_protocol({fanout.SERVER_SEND_KEY: send})
print(json.dumps({
    "partial": "partial(self.handle_reply, protocol)" in source,
    "found": found is protocol,
    "open_state": protocol.STATE_OPEN,
}))
"""


def test_daphne_passes_its_protocol_under_send_so_frames_can_be_written_directly() -> None:
    """If a Daphne release changed this, the fan-out would fall back to ordinary sends (still
    correct, but per-socket encoding again): this test says so."""
    done = subprocess.run(
        [sys.executable, "-c", CHECK_DAPHNE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings"},
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["partial"] and answer["found"]


def test_the_room_benchmark_runs_against_a_real_daphne_without_errors() -> None:
    """A short run of scripts/bench/room.py: every viewer sees every command's version through
    the prepared frames (no timing is asserted)."""
    result = room_bench()
    assert result["viewers"] == 4 and result["commands"] >= 5
    assert result["errors"] == {
        "connect_failed": 0,
        "refused": 0,
        "unanswered": 0,
        "sockets_closed": 0,
        "versions_never_seen": 0,
    }
    assert result["command_to_each_viewer_ms"]["n"] == 4 * result["commands"]
    assert result["server_rss_mb"]["start"] and result["server_rss_mb"]["end"]
