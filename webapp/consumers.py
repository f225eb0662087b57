"""The WebSocket consumer of a live cluster: validates messages, forwards them to the host.

Client -> server frames are JSON: `{"type": ..., "seq": n, "client": id, ...fields}`.
Server -> client frames are HTML fragments (swapped by id through htmx's ws extension) or JSON
frames `{"type": "ack" | "error", ...}` that the page's glue script shows.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from lessons.scenarios import COMMANDS, commands_for
from webapp import forms, safe_json
from webapp.engine_host import client as host_client
from webapp.engine_host import fanout, store
from webapp.engine_host.host import viewers_group
from webapp.engine_host.registry import TooManyHosts
from webapp.workshops.services import is_workshop_cluster

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024
# Whole numbers a message may carry (seq, counts, ids) and how deep it may nest.
MAX_INT = safe_json.MAX_INT
MAX_DEPTH = 20
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
IGNORED_FIELDS = frozenset({"type", "seq", "client", "HEADERS", "csrfmiddlewaretoken"})


def _message_types() -> tuple[str, ...]:
    """The learner's commands of the table in table order, with "resync" (ask for the whole
    state again) after the clock commands."""
    names = list(commands_for("learner"))
    last_clock = max(i for i, name in enumerate(names) if COMMANDS[name].clock is not None)
    return (*names[: last_clock + 1], "resync", *names[last_clock + 1 :])


MESSAGE_TYPES = _message_types()


class TokenBucket:
    """`rate` messages a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class BadMessage(Exception):
    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def parse_message(text: str) -> Any:
    """A browser frame as JSON, refused with a BadMessage (never an exception of another kind)
    when it is malformed, nested too deeply, holds huge or non-finite numbers or text that
    cannot be encoded (see `webapp.safe_json`)."""
    try:
        return safe_json.loads(text, max_depth=MAX_DEPTH, max_int=MAX_INT)
    except safe_json.BadJSON as bad:
        raise BadMessage(bad.code, bad.message) from None


async def say_viewing(cluster_id: str, channels: list[str]) -> None:
    """A process's keepalive for its sockets of a cluster (one message names all of them; a
    socket that dies without a goodbye is no longer named, and the host stops counting it)."""
    await host_client.host_send(cluster_id, {"type": "host.viewing", "viewers": channels})


def viewing_keepalive(cluster_id: str) -> fanout.Keepalive:
    return functools.partial(say_viewing, cluster_id)


class ClusterConsumer(AsyncWebsocketConsumer):
    cluster_id: str
    version: int | None

    async def connect(self) -> None:
        self.cluster_id = str(self.scope["url_route"]["kwargs"]["cluster_id"])
        self.version = None
        self.default_client = "ws-" + secrets.token_hex(8)
        rate = float(settings.DOJO_WS_MESSAGES_PER_SECOND)
        self.bucket = TokenBucket(rate=rate, burst=rate * 2)
        self.joined = False
        size = await database_sync_to_async(store.cluster_size)(cluster_id=self.cluster_id)
        self.brokers, self.controllers = size or (None, 0)
        if self.brokers is not None and await database_sync_to_async(is_workshop_cluster)(
            self.cluster_id
        ):
            # A workshop's cluster is reached only through its room socket (roles checked).
            await self.close(code=4403)
            return
        if self.brokers is None:
            logger.info("socket for unknown cluster %s refused", self.cluster_id)
            await self.close(code=4404)
            return
        await self.accept()
        # State versions reach this socket through the process's relay (one frame per version),
        # which also says to the host, for all this process's sockets at once, that they watch.
        await fanout.subscribe(
            viewers_group(self.cluster_id),
            self,
            self.scope,
            keepalive=viewing_keepalive(self.cluster_id),
        )
        try:
            await host_client.host_send(
                self.cluster_id, {"type": "host.join", "reply_to": self.channel_name}
            )
        except TooManyHosts as full:
            logger.warning("socket for %s refused: %s", self.cluster_id, full)
            await self._send_frame(
                {"type": "error", "code": "server_full", "message": full.message}
            )
            await fanout.unsubscribe(viewers_group(self.cluster_id), self)
            await self.close(code=4503)
            return
        self.joined = True

    async def disconnect(self, code: int) -> None:
        if getattr(self, "cluster_id", None):  # idempotent: also after a connect that failed
            await fanout.unsubscribe(viewers_group(self.cluster_id), self)
        if not getattr(self, "joined", False):
            return
        try:
            await host_client.host_send(
                self.cluster_id, {"type": "host.leave", "reply_to": self.channel_name}
            )
        except Exception:
            logger.exception("could not tell the host of %s that a viewer left", self.cluster_id)

    # -- from the browser -----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        seq: Any = None
        try:
            message = self._parse(text_data, bytes_data)
            seq = message.get("seq")
            await self._dispatch(message)
        except BadMessage as bad:
            logger.warning(
                "socket %s on %s: %s (%s)",
                self.channel_name,
                self.cluster_id,
                bad.code,
                bad.message,
            )
            await self._send_frame(
                {
                    "type": "error",
                    "code": bad.code,
                    "message": bad.message,
                    "seq": seq if isinstance(seq, int) else None,
                    **bad.extra,
                }
            )
        except host_client.HostBusy:
            logger.warning("socket %s on %s: host busy", self.channel_name, self.cluster_id)
            await self._send_frame(
                {
                    "type": "error",
                    "code": "busy",
                    "seq": seq if isinstance(seq, int) else None,
                    "message": "The cluster is busy and did not take this command; "
                    "send it again in a moment.",
                }
            )
        except Exception:
            logger.exception("socket %s on %s failed", self.channel_name, self.cluster_id)
            await self._send_frame(
                {
                    "type": "error",
                    "code": "internal",
                    "seq": seq if isinstance(seq, int) else None,
                    "message": "The server could not handle that message; "
                    "the cluster keeps running.",
                }
            )

    def _parse(self, text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
        if text_data is None:
            size = len(bytes_data or b"")
            if size > MAX_FRAME_BYTES:
                raise BadMessage(
                    "too_large",
                    f"Message too large: {size} bytes; the limit is {MAX_FRAME_BYTES} bytes.",
                )
            raise BadMessage("binary", "Binary frames are not supported: send JSON text.")
        size = len(text_data.encode("utf-8", errors="replace"))
        if size > MAX_FRAME_BYTES:
            raise BadMessage(
                "too_large",
                f"Message too large: {size} bytes; the limit is {MAX_FRAME_BYTES} bytes.",
            )
        if not self.bucket.take():
            raise BadMessage("rate_limited", "Too many messages: slow down and try again.")
        message = parse_message(text_data)
        if not isinstance(message, dict):
            raise BadMessage("malformed", 'A message must be a JSON object with a "type".')
        return message

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
            raise BadMessage(
                "unknown_type",
                f"Unknown message type {kind!r}; expected one of: {', '.join(MESSAGE_TYPES)}.",
            )
        if kind == "resync":
            await host_client.host_send(
                self.cluster_id, {"type": "host.sync", "reply_to": self.channel_name}
            )
            return
        seq = message.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise BadMessage("bad_seq", 'Every command needs "seq", a whole number from 1 up.')
        if seq > MAX_INT:
            raise BadMessage("bad_seq", f'"seq" is at most {MAX_INT}.')
        client_id = message.get("client", self.default_client)
        if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
            raise BadMessage(
                "bad_client", "\"client\" must be 8 to 64 letters, digits, '-' or '_'."
            )
        command = self._validate(kind, message)
        await host_client.host_send(
            self.cluster_id,
            {
                "type": "host.command",
                "reply_to": self.channel_name,
                "client": client_id,
                "seq": seq,
                "command": command,
            },
        )

    def _validate(self, kind: str, message: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in message.items() if k not in IGNORED_FIELDS}
        if any(not isinstance(v, str | int | float) or isinstance(v, bool) for v in data.values()):
            raise BadMessage("invalid", "Field values must be strings or numbers.")
        form = forms.command_form(
            kind, data, brokers=self.brokers or 0, controllers=self.controllers or 0
        )
        if not form.is_valid():
            raise BadMessage(
                "invalid",
                forms.form_errors_text(form),
                fields={name: [str(e) for e in errs] for name, errs in form.errors.items()},
            )
        return form.to_command()

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame))

    # -- from the host (channel layer) ----------------------------------------------------

    async def cluster_full(self, event: dict[str, Any]) -> None:
        self.version = int(event["version"])
        await self.send(text_data=event["html"])
        # The versions the process's relay passed on while this was on its way.
        await fanout.catch_up(viewers_group(self.cluster_id), self)

    async def cluster_state(self, event: dict[str, Any]) -> None:
        if self.version is None:
            return  # the full state is on its way
        if event["version"] <= self.version:
            return
        if event["base"] != self.version:
            # A version went missing between host and socket: ask for the whole state.
            await host_client.host_send(
                self.cluster_id, {"type": "host.sync", "reply_to": self.channel_name}
            )
            return
        self.version = int(event["version"])
        await self.send(text_data=event["html"])

    async def cluster_rehosted(self, event: dict[str, Any]) -> None:
        """A new host runs the cluster (scaled mode: its worker restarted): join it, and take
        its whole state (its version numbers start again)."""
        if not getattr(self, "joined", False):
            return
        self.version = None
        await host_client.host_send(
            self.cluster_id, {"type": "host.join", "reply_to": self.channel_name}
        )

    # -- from the process's relay (webapp/engine_host/fanout.py) ----------------------------

    async def relay_text(self, text: str) -> None:
        """A fan-out frame for a socket the relay cannot write to directly."""
        await self.send(text_data=text)

    async def relay_resync(self) -> None:
        await host_client.host_send(
            self.cluster_id, {"type": "host.sync", "reply_to": self.channel_name}
        )

    async def relay_event(self, event: dict[str, Any]) -> None:
        """A fan-out event this socket acts on itself (the relay has no frame for it)."""
        if event.get("type") == "cluster.rehosted":
            await self.cluster_rehosted(event)

    async def client_frame(self, event: dict[str, Any]) -> None:
        await self._send_frame(event["frame"])

    async def console_output(self, event: dict[str, Any]) -> None:
        """What a tailing console consumer printed (the console panel appends it)."""
        await self._send_frame({"type": "console.output", "text": str(event.get("text", ""))})


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Any WebSocket path no route matches: refused cleanly (the handshake is declined)."""

    async def connect(self) -> None:
        logger.info("socket for unknown path %r refused", str(self.scope.get("path", ""))[:200])
        await self.close(code=4404)
