"""Fan-out built for rooms: one message per state version per process, one encoded frame per
version written to every socket.

Before, every watching socket was a member of the cluster's Channels group, so each state
version became one channel-layer message per socket (in scaled mode: one Redis write per
socket) and one trip through Channels' dispatch and Daphne's send path per socket, each
encoding the same HTML again. Here each process that holds sockets of a cluster joins the
cluster's group once (a relay channel), and when a version arrives it:

- builds the WebSocket frame once (RFC 6455: FIN, text opcode, length, payload; a server does
  not mask) and writes those same bytes to every local Daphne socket's transport;
- keeps the per-socket part to what really differs: the version a socket holds and whether it
  is open;
- skips a socket whose transport already holds BACKLOG_BYTES unsent (its reader is slower than
  the room: Twisted would buffer every version for it, without bound), and brings it up to
  date once it drains, as below;
- keeps the last versions' changes (bounded: HISTORY, HISTORY_BYTES), so a socket that is
  behind (its whole state arrived through its own channel after the relay had passed on newer
  versions, or it skipped some while closing its gap) is brought up to date from them, in
  order, with the frames already built. Only a socket whose gap the history does not cover
  asks the host for the whole state, and at most once per RESYNC_RETRY_S. Before, every
  version that arrived while a socket's whole state was on its way (a join during a connect
  storm, a busy host) made it ask again, each answer a whole state (tens of KB) sent to that
  one socket through the layer.

The relay of a cluster's viewers group also tells the host which sockets still watch: one
`host.viewing` message every KEEPALIVE_S naming all of this process's sockets of the cluster.
Before, every socket sent its own, so a room of 500 sockets was 50 channel-layer messages a
second (Redis writes, then the host's inbox) for nothing but "still here".

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
import random
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

SERVER_SEND_KEY = "dojo.server_send"
# Versions of changes a relay keeps for sockets that are behind, at most HISTORY of them and
# HISTORY_BYTES of text (a room's stage changes are ~40 KB: then about three versions, enough
# for a whole state that arrived a moment after the relay's newer versions). Each watched
# cluster costs each process holding its sockets at most twice that (text and frame).
HISTORY = 32
HISTORY_BYTES = 128 * 1024
# A socket that asked for the whole state does not ask again for this long.
RESYNC_RETRY_S = 2.0
# A socket whose transport holds more than this, unsent (a slow or stalled reader), is
# skipped: Twisted would otherwise buffer every version for it, without bound. Once under it
# again it is brought up to date from the kept changes, or with one whole state.
BACKLOG_BYTES = 256 * 1024
# How soon a skipped socket is looked at again when no new version comes (a paused clock).
BACKLOG_RETRY_S = 0.5
# How often a relay with a keepalive names its sockets to the host (the host forgets a socket
# not named for HostSettings.viewer_ttl_seconds, 30 s).
KEEPALIVE_S = 10.0

# Tells the host the named sockets (channel names) still watch.
Keepalive = Callable[[list[str]], Awaitable[None]]


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


View = Callable[[str], str]


def pending_bytes(transport: Any) -> int:
    """Bytes a Twisted transport holds that the kernel has not taken yet (its socket buffer is
    full: the peer reads slower than we write). Twisted keeps them in `dataBuffer` from
    `offset` on, plus the writes of this reactor turn in `_tempDataBuffer` (`_tempDataLen`)."""
    try:
        return len(transport.dataBuffer) - int(transport.offset) + int(transport._tempDataLen)
    except (AttributeError, TypeError):
        return 0


def send_now(transport: Any, frame: bytes) -> None:
    """Write `frame` to a Twisted TCP transport, straight to its socket when nothing waits in
    its buffer. `transport.write` alone only queues the bytes and asks the reactor to watch
    the socket for writability (an epoll_ctl to add it, a reactor turn to send, an epoll_ctl
    to remove it): per socket per version, that bookkeeping took about as long as the send
    itself in a py-spy profile of a Daphne of the 500-viewer scaled bench. What the kernel
    does not take at once is queued as before, so the order of bytes never changes; a TLS
    connection, a buffer already holding bytes, or any other transport uses `write`."""
    direct = getattr(transport, "writeSomeData", None)
    if (
        direct is None
        or getattr(transport, "TLS", True)  # only Twisted's plain TCP says False
        or not getattr(transport, "connected", False)
        or getattr(transport, "disconnecting", True)
        or getattr(transport, "_writeDisconnected", False)
        or pending_bytes(transport)
    ):
        transport.write(frame)
        return
    sent = direct(frame)
    if not isinstance(sent, int):  # the connection is lost: Twisted finds out on its own
        return
    if sent < len(frame):
        transport.write(frame[sent:])


class Member:
    """One local socket: its consumer, under Daphne its protocol for direct writes, and the
    view of the state it gets (None: the host's text; a workshop learner's stage has no
    buttons it may not use, webapp/workshops/stage.py)."""

    __slots__ = ("protocol", "sink", "view")

    def __init__(self, sink: Sink, protocol: Any, view: View | None = None) -> None:
        self.sink = sink
        self.protocol = protocol
        self.view = view

    def backlogged(self) -> bool:
        """More than BACKLOG_BYTES wait in this socket's transport: it gets no more versions
        until they drain, then the kept changes (or the whole state) bring it up to date."""
        protocol = self.protocol
        if protocol is None or getattr(protocol, "transport", None) is None:
            return False
        return pending_bytes(protocol.transport) > BACKLOG_BYTES

    def write(self, frame: bytes) -> bool:
        """Write the prepared frame; False when this socket needs the ordinary send."""
        protocol = self.protocol
        if protocol is None:
            return False
        transport = protocol.transport
        if getattr(protocol, "state", None) != protocol.STATE_OPEN or transport is None:
            return True  # closing: nothing more to send; its disconnect unsubscribes it
        send_now(transport, frame)
        return True


class Change:
    """One state version's changes as the relay passed them on (its frame built once)."""

    __slots__ = ("_frame", "_views", "base", "html", "version")

    def __init__(self, version: int, base: int, html: str) -> None:
        self.version, self.base, self.html = version, base, html
        self._frame: bytes | None = None
        self._views: dict[View, Change] | None = None

    def viewed(self, view: View | None) -> Change:
        """This change as `view` shows it, cut once for all the sockets of that view."""
        if view is None:
            return self
        if self._views is None:
            self._views = {}
        shown = self._views.get(view)
        if shown is None:
            shown = self._views[view] = Change(self.version, self.base, view(self.html))
        return shown

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.html)
        return self._frame


class Relay:
    """This process's one member of a group: a channel and a loop that hands each message to
    the local sockets."""

    def __init__(self, group: str, keepalive: Keepalive | None = None) -> None:
        self.group = group
        self.keepalive = keepalive
        self.keepalive_task: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()
        self.members: dict[str, Member] = {}
        self.channel = ""
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        # The last versions' changes by the version they apply to (their base), and the
        # length of their text.
        self.changes: dict[int, Change] = {}
        self.kept_bytes = 0
        self.latest: int | None = None
        # Sockets that asked the host for the whole state, and when.
        self.resyncing: dict[str, float] = {}
        # Versions not written to a backlogged socket, and the sockets to look at again.
        self.skipped = 0
        self.retrying: set[str] = set()
        # How many messages this relay took (what a process caches of the group's state is
        # current while this has not moved: see `generation`).
        self.received = 0

    async def start(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        self.channel = await layer.new_channel()
        await layer.group_add(self.group, self.channel)
        self.task = asyncio.get_running_loop().create_task(self._loop(), name=f"relay-{self.group}")
        self.start_keepalive()
        self.ready.set()

    def start_keepalive(self) -> None:
        if self.keepalive is not None and self.keepalive_task is None:
            self.keepalive_task = self.loop.create_task(
                self._keep_alive(), name=f"keepalive-{self.group}"
            )

    async def _keep_alive(self) -> None:
        """Every KEEPALIVE_S, one message naming every local socket that joined the host. The
        first comes after a random part of the interval, so the relays of several processes
        (and of several clusters in one) do not reach the layer together."""
        await asyncio.sleep(random.uniform(0.1, 1.0) * KEEPALIVE_S)
        while True:
            names = [
                name
                for name, member in self.members.items()
                if getattr(member.sink, "joined", True)
            ]
            if names and self.keepalive is not None:
                try:
                    await self.keepalive(names)
                except Exception:
                    logger.warning(
                        "relay %s: keepalive of %d sockets failed", self.group, len(names)
                    )
            await asyncio.sleep(KEEPALIVE_S)

    async def stop(self) -> None:
        for task in (self.task, self.keepalive_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
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
        self.received += 1
        kind = message.get("type")
        if kind == "cluster.state":
            await self._state(message)
        elif kind == "console.output":  # what a tailing console consumer printed
            await self._everyone(json.dumps({"type": kind, "text": str(message.get("text", ""))}))
        elif kind == "room.html":  # a workshop room's prompt, poll, histogram, leaderboard
            await self._everyone(str(message.get("html", "")))
        else:
            if kind == "cluster.rehosted":  # a new host numbers its versions from 1 again
                self.changes.clear()
                self.kept_bytes = 0
                self.latest = None
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

    def _remember(self, change: Change) -> None:
        if self.latest is not None and change.version <= self.latest:
            if change.version < self.latest - HISTORY:
                self.changes.clear()  # numbered from the start again: another host's
                self.kept_bytes = 0
            else:
                return  # already passed on
        self.changes[change.base] = change
        self.kept_bytes += len(change.html)
        self.latest = change.version
        # The oldest go first (dicts keep their order); the newest is always kept.
        while len(self.changes) > 1 and (
            len(self.changes) > HISTORY or self.kept_bytes > HISTORY_BYTES
        ):
            self.kept_bytes -= len(self.changes.pop(next(iter(self.changes))).html)

    def _path(self, held: int, target: int) -> list[Change] | None:
        """The changes that take a socket from version `held` to `target`, if all are kept."""
        path: list[Change] = []
        while held < target:
            change = self.changes.get(held)
            if change is None or change.version > target:
                return None
            path.append(change)
            held = change.version
        return path

    async def _bring_up(self, member: Member, target: int) -> None:
        """Take one socket to version `target`: the kept changes in order, or (a gap the
        history does not cover) the whole state from the host, asked for at most once per
        RESYNC_RETRY_S."""
        sink = member.sink
        if sink.version is None or target <= sink.version:
            return  # its whole state is on its way (then `catch_up`), or it is up to date
        if member.backlogged():
            self.skipped += 1
            self._retry_later(sink.channel_name)
            return  # keeps its version: caught up once its transport drains
        path = self._path(sink.version, target)
        if path is None:
            now = self.loop.time()
            asked = self.resyncing.get(sink.channel_name)
            if asked is not None and now - asked < RESYNC_RETRY_S:
                return
            self.resyncing[sink.channel_name] = now
            # In its own task: a busy host must not hold up everyone else's frame.
            task = self.loop.create_task(sink.relay_resync())
            _resyncs.add(task)
            task.add_done_callback(_resyncs.discard)
            return
        self.resyncing.pop(sink.channel_name, None)
        for change in path:
            if member.backlogged():
                self.skipped += 1
                self._retry_later(sink.channel_name)
                return
            sink.version = change.version
            shown = change.viewed(member.view)
            frame = shown.frame if member.protocol is not None else None
            await self._send(member, frame, shown.html)

    def _retry_later(self, channel: str) -> None:
        """Look at a skipped socket again in BACKLOG_RETRY_S (new versions also do)."""
        if channel in self.retrying:
            return
        self.retrying.add(channel)

        async def retry() -> None:
            await asyncio.sleep(BACKLOG_RETRY_S)
            self.retrying.discard(channel)
            member = self.members.get(channel)
            if member is not None and self.latest is not None:
                await self._bring_up(member, self.latest)

        task = self.loop.create_task(retry())
        _resyncs.add(task)
        task.add_done_callback(_resyncs.discard)

    async def _state(self, message: dict[str, Any]) -> None:
        change = Change(int(message["version"]), int(message["base"]), str(message["html"]))
        self._remember(change)
        for member in list(self.members.values()):
            await self._bring_up(member, change.version)

    async def catch_up(self, sink: Sink) -> None:
        """A socket's whole state just arrived: the changes the relay passed on since."""
        member = self.members.get(sink.channel_name)
        if member is not None and self.latest is not None:
            await self._bring_up(member, self.latest)


_relays: dict[str, Relay] = {}
_resyncs: set[asyncio.Task[None]] = set()


async def subscribe(
    group: str,
    sink: Sink,
    scope: dict[str, Any],
    view: View | None = None,
    *,
    keepalive: Keepalive | None = None,
) -> None:
    """Let this socket receive the group's fan-out (the relay joins the group on first use),
    each state version as `view` shows it. With `keepalive`, the relay names its sockets
    through it every KEEPALIVE_S (one call for all of them; the first subscriber's keepalive
    is the relay's)."""
    relay = _relays.get(group)
    if relay is not None and relay.loop is not asyncio.get_running_loop():
        relay = None  # left over from another event loop (tests run one loop each)
    if relay is None:
        relay = _relays[group] = Relay(group, keepalive)
        relay.members[sink.channel_name] = Member(sink, daphne_protocol(scope), view)
        try:
            await relay.start()
        except BaseException:
            _relays.pop(group, None)
            raise
        return
    relay.members[sink.channel_name] = Member(sink, daphne_protocol(scope), view)
    await relay.ready.wait()
    if keepalive is not None and relay.keepalive is None:
        relay.keepalive = keepalive
        relay.start_keepalive()


async def unsubscribe(group: str, sink: Sink) -> None:
    relay = _relays.get(group)
    if relay is None:
        return
    relay.members.pop(sink.channel_name, None)
    relay.resyncing.pop(sink.channel_name, None)
    if not relay.members and _relays.get(group) is relay:
        del _relays[group]
        await relay.stop()


async def catch_up(group: str, sink: Sink) -> None:
    """Call after a socket took the whole state (`sink.version` set): it gets the versions the
    relay passed on meanwhile, so it does not wait for (or ask again on) the next one."""
    relay = _relays.get(group)
    if relay is not None and relay.loop is asyncio.get_running_loop():
        await relay.catch_up(sink)


def generation(group: str) -> tuple[int, int] | None:
    """Changes when the process's relay of `group` takes a message (or is replaced); None
    while no relay runs here. Something rendered under one generation is still what the group
    would show while the generation stays the same."""
    relay = _relays.get(group)
    if relay is None or relay.loop is not asyncio.get_running_loop():
        return None
    return id(relay), relay.received


def local_members(group: str) -> int:
    """How many sockets of this process receive the group's fan-out (for tests and stats)."""
    relay = _relays.get(group)
    return len(relay.members) if relay is not None else 0
