"""Fan-out built for rooms: one message per state version per process, one encoded frame per
version written to every socket.

Before, every watching socket was a member of the cluster's Channels group, so each state
version became one channel-layer message per socket (in scaled mode: one Redis write per
socket) and one trip through Channels' dispatch and Daphne's send path per socket, each
encoding the same HTML again. Here each process that holds sockets of a cluster joins the
cluster's group once (a relay channel), and when a version arrives it:

- builds the WebSocket frame once (RFC 6455: FIN, text opcode, length, payload; a server does
  not mask) and writes those same bytes to every local Daphne socket's transport;
- keeps the per-socket part to what really differs: the version a socket holds (a socket that
  missed one asks the host for the whole state) and whether it is open.

A socket not served by Daphne (Channels' test communicator) gets the same text through its
consumer's ordinary `send`. Sandboxes and workshop rooms share this path (webapp/consumers.py,
webapp/workshops/consumers.py); the host is unchanged apart from the group it sends to holding
relays instead of sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

SERVER_SEND_KEY = "dojo.server_send"


def text_frame(text: str) -> bytes:
    """One unfragmented, unmasked WebSocket text frame (RFC 6455 section 5.2)."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def capture_server_send(app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """ASGI middleware (outermost, WebSocket only): keeps the server's own `send` in the scope,
    so the fan-out can find Daphne's protocol under it and write prepared frames."""

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "websocket":
            scope = {**scope, SERVER_SEND_KEY: send}
        await app(scope, receive, send)

    return middleware


def daphne_protocol(scope: dict[str, Any]) -> Any:
    """Daphne's WebSocket protocol of this socket (Daphne passes `partial(server.handle_reply,
    protocol)` as `send`), or None under any other server."""
    send = scope.get(SERVER_SEND_KEY)
    if not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    needed = ("transport", "STATE_OPEN", "sendMessage")
    return protocol if all(hasattr(protocol, name) for name in needed) else None


class Sink(Protocol):
    """A watching socket as the relay sees it (implemented by ClusterConsumer)."""

    channel_name: str
    version: int | None

    async def relay_text(self, text: str) -> None: ...

    async def relay_resync(self) -> None: ...


class Member:
    """One local socket: its consumer and, under Daphne, its protocol for direct writes."""

    __slots__ = ("protocol", "sink")

    def __init__(self, sink: Sink, protocol: Any) -> None:
        self.sink = sink
        self.protocol = protocol

    def write(self, frame: bytes) -> bool:
        """Write the prepared frame; False when this socket needs the ordinary send."""
        protocol = self.protocol
        if protocol is None:
            return False
        transport = protocol.transport
        if getattr(protocol, "state", None) != protocol.STATE_OPEN or transport is None:
            return True  # closing: nothing more to send; its disconnect unsubscribes it
        transport.write(frame)
        return True


class Relay:
    """This process's one member of a group: a channel and a loop that hands each message to
    the local sockets."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.loop = asyncio.get_running_loop()
        self.members: dict[str, Member] = {}
        self.channel = ""
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        self.channel = await layer.new_channel()
        await layer.group_add(self.group, self.channel)
        self.task = asyncio.get_running_loop().create_task(self._loop(), name=f"relay-{self.group}")
        self.ready.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        layer = get_channel_layer()
        if layer is not None and self.channel:
            with contextlib.suppress(Exception):
                await layer.group_discard(self.group, self.channel)

    async def _loop(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        while True:
            message = await layer.receive(self.channel)
            try:
                await self.deliver(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("relay %s failed to deliver %r", self.group, message.get("type"))

    async def deliver(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "cluster.state":
            await self._state(message)
        elif kind == "console.output":  # what a tailing console consumer printed
            await self._everyone(json.dumps({"type": kind, "text": str(message.get("text", ""))}))
        elif kind == "room.html":  # a workshop room's prompt, poll, histogram, leaderboard
            await self._everyone(str(message.get("html", "")))
        else:
            # An event each socket acts on itself (a room moving to another cluster).
            for member in list(self.members.values()):
                handler = getattr(member.sink, "relay_event", None)
                if handler is None:
                    logger.warning("relay %s: a socket ignored %r", self.group, kind)
                else:
                    await handler(message)

    async def _send(self, member: Member, frame: bytes | None, text: str) -> None:
        """One socket's share: the prepared frame, or its consumer's own send. A socket that
        fails (it is going away) never keeps the others from their frame."""
        try:
            if frame is None or not member.write(frame):
                await member.sink.relay_text(text)
        except Exception:
            logger.warning(
                "relay %s: socket %s missed a frame", self.group, member.sink.channel_name
            )

    async def _everyone(self, text: str) -> None:
        frame: bytes | None = None
        for member in list(self.members.values()):
            if frame is None and member.protocol is not None:
                frame = text_frame(text)
            await self._send(member, frame, text)

    async def _state(self, message: dict[str, Any]) -> None:
        version, base, html = int(message["version"]), int(message["base"]), str(message["html"])
        frame: bytes | None = None
        for member in list(self.members.values()):
            sink = member.sink
            if sink.version is None or version <= sink.version:
                continue  # the full state is on its way, or this one is old
            if base != sink.version:
                # A version went missing: this socket asks for the whole state (in its own
                # task: a busy host must not hold up everyone else's frame).
                task = asyncio.get_running_loop().create_task(sink.relay_resync())
                _resyncs.add(task)
                task.add_done_callback(_resyncs.discard)
                continue
            sink.version = version
            if frame is None and member.protocol is not None:
                frame = text_frame(html)  # once per version, for every socket
            await self._send(member, frame, html)


_relays: dict[str, Relay] = {}
_resyncs: set[asyncio.Task[None]] = set()


async def subscribe(group: str, sink: Sink, scope: dict[str, Any]) -> None:
    """Let this socket receive the group's fan-out (the relay joins the group on first use)."""
    relay = _relays.get(group)
    if relay is not None and relay.loop is not asyncio.get_running_loop():
        relay = None  # left over from another event loop (tests run one loop each)
    if relay is None:
        relay = _relays[group] = Relay(group)
        relay.members[sink.channel_name] = Member(sink, daphne_protocol(scope))
        try:
            await relay.start()
        except BaseException:
            _relays.pop(group, None)
            raise
        return
    relay.members[sink.channel_name] = Member(sink, daphne_protocol(scope))
    await relay.ready.wait()


async def unsubscribe(group: str, sink: Sink) -> None:
    relay = _relays.get(group)
    if relay is None:
        return
    relay.members.pop(sink.channel_name, None)
    if not relay.members and _relays.get(group) is relay:
        del _relays[group]
        await relay.stop()


def local_members(group: str) -> int:
    """How many sockets of this process receive the group's fan-out (for tests and stats)."""
    relay = _relays.get(group)
    return len(relay.members) if relay is not None else 0
