"""A frame goes straight to the socket when nothing waits in the Twisted transport's buffer
(no writability watch per socket per version); what the kernel does not take is queued
behind, in order; TLS and a non-empty buffer take Twisted's ordinary `write`."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from twisted.internet import abstract, main

from webapp.engine_host import fanout


class SocketTransport(abstract.FileDescriptor):
    """Twisted's buffering over one end of a real socket pair (no reactor: `doWrite` by hand)."""

    connected = 1
    TLS = False

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.socket = sock
        self.watched = 0  # how often the reactor was asked to watch for writability

    def startWriting(self) -> None:  # noqa: N802 (Twisted's names)
        self.watched += 1

    def stopWriting(self) -> None:  # noqa: N802
        pass

    def writeSomeData(self, data: bytes) -> int | main.ConnectionLost:  # noqa: N802
        try:
            return self.socket.send(memoryview(data)[:131072])
        except BlockingIOError:
            return 0


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    yield ours, theirs
    ours.close()
    theirs.close()


def read_all(sock: socket.socket, size: int, transport: SocketTransport) -> bytes:
    got = b""
    sock.settimeout(2)
    while len(got) < size:
        transport.doWrite()  # what the reactor does once the socket is writable
        got += sock.recv(1 << 20)
    return got


def test_a_frame_to_an_idle_socket_is_sent_at_once_without_a_writability_watch(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    transport = SocketTransport(ours)
    frame = fanout.text_frame("v1")
    fanout.send_now(transport, frame)
    assert transport.watched == 0 and fanout.pending_bytes(transport) == 0
    theirs.settimeout(2)
    assert theirs.recv(100) == frame


def test_what_the_kernel_does_not_take_is_queued_in_order(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    transport = SocketTransport(ours)
    frames = [fanout.text_frame(f"v{i}" + "x" * 300_000) for i in range(3)]
    for frame in frames:
        fanout.send_now(transport, frame)
    assert fanout.pending_bytes(transport) > 0 and transport.watched >= 1
    assert read_all(theirs, sum(map(len, frames)), transport) == b"".join(frames)


def test_tls_and_other_transports_use_twisted_s_write(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    transport = SocketTransport(ours)
    transport.TLS = True  # bytes must go through the TLS layer
    fanout.send_now(transport, b"secret")
    assert transport.watched == 1 and fanout.pending_bytes(transport) == 6

    class Plain:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.written.append(data)

    other = Plain()
    fanout.send_now(other, b"frame")
    assert other.written == [b"frame"]


def test_the_relay_s_write_to_a_daphne_socket_takes_the_direct_path(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    from tests.web.test_fanout import FakeProtocol, FakeSink

    ours, theirs = pair
    protocol = FakeProtocol()
    protocol.transport = SocketTransport(ours)  # type: ignore[assignment]
    member = fanout.Member(FakeSink("socket-1", 0), protocol)
    frame = fanout.text_frame("v2")
    assert member.write(frame)
    assert protocol.transport.watched == 0  # type: ignore[attr-defined]
    theirs.settimeout(2)
    assert theirs.recv(100) == frame
