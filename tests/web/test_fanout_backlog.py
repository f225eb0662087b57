"""A socket whose reader is slower than the room: Twisted would buffer every version for it,
without bound. The relay skips a socket whose transport holds over BACKLOG_BYTES unsent, and
once it drains brings it up to date from the kept changes (or, past the history, with one
whole state from the host), never asking while it is still backlogged."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
from channels.layers import get_channel_layer
from twisted.internet import abstract

from tests.web.test_fanout import FakeProtocol, FakeSink, fake_handle_reply, parse_frame
from tests.web.test_fanout_history import settle, state
from webapp.engine_host import fanout


class Trickle(abstract.FileDescriptor):
    """Twisted's own write buffering, on a "socket" that takes `room` bytes per doWrite."""

    connected = 1

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room
        self.sent = 0

    def startWriting(self) -> None:  # noqa: N802 (Twisted's name): no reactor here
        pass

    def writeSomeData(self, data: Any) -> int:  # noqa: N802
        taken = min(self.room, len(data))
        self.sent += taken
        return taken


def test_pending_bytes_is_what_twisted_holds_unsent() -> None:
    transport = Trickle(room=1000)
    for _ in range(5):
        transport.write(b"x" * 700)
    assert fanout.pending_bytes(transport) == 3500
    transport.doWrite()  # the kernel took 1000: the rest waits at an offset
    assert fanout.pending_bytes(transport) == 2500
    transport.write(b"y" * 100)
    assert fanout.pending_bytes(transport) == 2600
    while fanout.pending_bytes(transport):
        transport.doWrite()
    assert transport.sent == 3600
    assert fanout.pending_bytes(object()) == 0  # not Twisted's: never counted as backlogged


class SlowProtocol(FakeProtocol):
    """A socket whose transport holds bytes its reader has not taken."""

    def __init__(self) -> None:
        super().__init__()
        self.transport = Trickle(room=0)
        self.transport.written = []  # type: ignore[attr-defined]
        original = self.transport.write

        def write(data: bytes) -> None:
            self.transport.written.append(data)  # type: ignore[attr-defined]
            original(data)

        self.transport.write = write  # type: ignore[method-assign]

    def drain(self) -> None:
        self.transport.room = 1 << 30
        self.transport.doWrite()


def on_daphne(protocol: FakeProtocol) -> dict[str, Any]:
    return {fanout.SERVER_SEND_KEY: functools.partial(fake_handle_reply, protocol)}


@pytest.mark.asyncio
async def test_a_backlogged_socket_is_skipped_then_caught_up_from_the_kept_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "BACKLOG_BYTES", 1000)
    monkeypatch.setattr(fanout, "BACKLOG_RETRY_S", 0.05)
    layer = get_channel_layer()
    group = "dojo.cluster.backlog-test"
    fast_protocol, slow_protocol = FakeProtocol(), SlowProtocol()
    fast, slow = FakeSink("socket-fast", version=0), FakeSink("socket-slow", version=0)
    await fanout.subscribe(group, fast, on_daphne(fast_protocol))
    await fanout.subscribe(group, slow, on_daphne(slow_protocol))
    big = "x" * 600
    for version in (1, 2, 3, 4):
        await layer.group_send(group, {**state(version), "html": f"v{version}{big}"})
    await settle(layer, group)
    assert len(fast_protocol.transport.written) == 4 and fast.version == 4
    # Two frames (1.2 KB) went before its backlog passed 1,000 bytes; then it was skipped.
    assert len(slow_protocol.transport.written) == 2 and slow.version == 2  # type: ignore[attr-defined]
    assert fanout.pending_bytes(slow_protocol.transport) > 1000
    await asyncio.sleep(0.2)  # still backlogged: no more frames, no whole state asked for
    assert len(slow_protocol.transport.written) == 2 and slow.resyncs == 0  # type: ignore[attr-defined]

    slow_protocol.drain()  # its reader caught up; no new version needed to notice
    for _ in range(100):
        if slow.version == 4:
            break
        await asyncio.sleep(0.01)
    texts = [parse_frame(f)[1][:2] for f in slow_protocol.transport.written]  # type: ignore[attr-defined]
    assert texts == ["v1", "v2", "v3", "v4"] and slow.resyncs == 0
    for sink in (fast, slow):
        await fanout.unsubscribe(group, sink)


@pytest.mark.asyncio
async def test_past_the_history_a_drained_socket_asks_for_the_whole_state_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "BACKLOG_BYTES", 1000)
    monkeypatch.setattr(fanout, "BACKLOG_RETRY_S", 0.05)
    monkeypatch.setattr(fanout, "HISTORY", 2)
    layer = get_channel_layer()
    group = "dojo.cluster.backlog-gap-test"
    slow_protocol = SlowProtocol()
    slow = FakeSink("socket-slow", version=0)
    await fanout.subscribe(group, slow, on_daphne(slow_protocol))
    for version in range(1, 9):
        await layer.group_send(group, {**state(version), "html": f"v{version}" + "x" * 600})
    await settle(layer, group)
    assert slow.version == 2 and slow.resyncs == 0
    slow_protocol.drain()
    for _ in range(100):
        if slow.resyncs:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert slow.resyncs == 1 and slow.version == 2  # the whole state comes from the host
    await fanout.unsubscribe(group, slow)
