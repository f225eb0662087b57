"""The WebSocket viewer (see the package's docstring), on autobahn's asyncio flavour: import it
only in a process of its own (in pytest's process txaio is bound to Twisted already).

A `Viewer` is one socket. JSON frames that carry a `seq` answer the command sent with that
`seq` (`Viewer.command`); every other frame is a fragment of the page, handed to
`on_fragment`, which a subclass overrides to note what it needs.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol


class Viewer(WebSocketClientProtocol):
    """One socket: counts frames and bytes, answers waiting commands, hands on the rest."""

    def onConnect(self, response: Any) -> None:  # noqa: N802 (autobahn's names)
        self.frames = 0
        self.bytes = 0
        self.closed = False
        self.close_code: int | None = None

    def onOpen(self) -> None:  # noqa: N802
        self.factory.opened.set_result(self)

    def onMessage(self, payload: bytes, is_binary: bool) -> None:  # noqa: N802
        now = time.perf_counter()
        self.frames += 1
        self.bytes += len(payload)
        if payload[:1] == b"{":
            frame = json.loads(payload)
            waiter = self.factory.waiting.pop(frame.get("seq"), None)
            if waiter is not None and not waiter.done():
                waiter.set_result((now, frame))
            return
        self.on_fragment(payload, now)

    def on_fragment(self, payload: bytes, now: float) -> None:
        """A frame that is not a command's answer (the page's HTML): nothing by default."""

    def onClose(self, was_clean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802
        self.closed = True
        self.close_code = code
        factory = self.factory
        if not factory.opened.done():
            factory.opened.set_exception(ConnectionError(f"closed {code}: {reason}"))
        if not factory.closed_future.done():
            factory.closed_future.set_result(code)

    def send_json(self, message: dict[str, Any]) -> None:
        self.sendMessage(json.dumps(message).encode())

    async def command(
        self, seq: int, body: dict[str, Any], *, timeout_s: float = 10.0
    ) -> tuple[float, dict[str, Any]]:
        """Send `body` with `seq`; (when the answer arrived, the answer). TimeoutError when no
        answer came within `timeout_s`."""
        waiter = asyncio.get_running_loop().create_future()
        self.factory.waiting[seq] = waiter
        self.send_json({**body, "seq": seq})
        try:
            answer: tuple[float, dict[str, Any]] = await asyncio.wait_for(waiter, timeout_s)
        finally:
            self.factory.waiting.pop(seq, None)
        return answer

    async def wait_closed(self, timeout_s: float) -> int | None:
        """The close code, once the server closed the socket (TimeoutError after `timeout_s`)."""
        code: int | None = await asyncio.wait_for(
            asyncio.shield(self.factory.closed_future), timeout_s
        )
        return code


async def open_viewer(
    base: str,
    path: str,
    cookie: str,
    *,
    protocol: type[Viewer] = Viewer,
    timeout_s: float = 30.0,
    validate_utf8: bool = True,
) -> Any:
    """A socket (of class `protocol`) to `path` (e.g. /ws/clusters/<id>/) of the server at `base` (http://host:port),
    with the session `cookie`, once its handshake is done."""
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    factory: Any = WebSocketClientFactory(
        f"ws://{host}:{port}{path}", origin=base.rstrip("/"), headers={"Cookie": cookie}
    )
    if not validate_utf8:
        # The payload is the server's own HTML: skip the client-side UTF-8 check (pure Python).
        factory.setProtocolOptions(utf8validateIncoming=False)
    factory.protocol = protocol
    loop = asyncio.get_running_loop()
    factory.opened = loop.create_future()
    factory.closed_future = loop.create_future()
    factory.waiting = {}
    await loop.create_connection(factory, host, port)
    viewer: Viewer = await asyncio.wait_for(factory.opened, timeout_s)
    return viewer
