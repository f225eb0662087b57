"""One loopback TCP listener per simulated broker, speaking Kafka's wire protocol (asyncio).

Free of Django: the listener reads frames, answers ApiVersions itself (it changes nothing), and
hands every other request, decoded into the engine's vocabulary, to a `Gateway` (the engine host
logs it as a command and applies it at a tick boundary). The engine's answers come back through
`deliver` and are written to the client in request order, as a Kafka broker writes them.

Stopping broker N closes its listening socket and its connections; starting it again reopens
the same port. Frames that cannot be read (random bytes, a truncated header, a size over the
limit, an API key or version not served) close that one connection with a log line; nothing
reaches the cluster. Per cluster, connections and requests per second are limited: a
connection over the limit is closed at once, requests over the rate wait (a quota's throttle).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from webapp.kafka_listener import apis, codec
from webapp.kafka_listener.fetch_sessions import FetchSessions

logger = logging.getLogger(__name__)


class Gateway(Protocol):
    def submit(self, connection: int, broker_id: int, request: dict[str, Any]) -> Awaitable[None]:
        """Log and apply one request; the answer arrives later through `deliver`."""
        ...


@dataclass(frozen=True)
class ListenerLimits:
    max_connections: int = 64
    requests_per_second: float = 500.0
    burst: int = 200
    max_frame_bytes: int = codec.MAX_FRAME_BYTES
    max_in_flight: int = 64  # per connection: the listener stops reading beyond this


@dataclass
class _Pending:
    correlation_id: int
    api_key: int
    version: int
    frame: bytes | None = None
    done: bool = False
    context: dict[str, Any] | None = None


@dataclass
class _Connection:
    id: int
    broker_id: int
    writer: asyncio.StreamWriter
    peer: str
    pending: deque[_Pending] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    room: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False


class ClusterListeners:
    """The listeners of one cluster: `sync` opens and closes them as brokers start and stop."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        cluster_id: str,
        host: str = "127.0.0.1",
        limits: ListenerLimits | None = None,
        first_connection_id: int = 1,
        on_change: Callable[[], None] | None = None,
        ports: dict[int, int] | None = None,
        on_ports: Callable[[dict[int, int]], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self.cluster_id = cluster_id
        self.host = host
        self.limits = limits or ListenerLimits()
        # The port of each broker's listener: kept while it is closed, so it reopens there
        # (and, given the ports a sandbox had before, across restarts of the host).
        self.ports: dict[int, int] = dict(ports or {})
        self._on_ports = on_ports
        self.servers: dict[int, asyncio.Server] = {}
        self.connections: dict[int, _Connection] = {}
        self._next_connection = first_connection_id
        self._tokens = float(self.limits.burst)
        self._refilled = time.monotonic()
        self._on_change = on_change
        self.closed_for_errors = 0
        self.requests_seen = 0
        self.fetch_sessions: dict[int, FetchSessions] = {}

    # -- addresses ------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    def bootstrap_servers(self) -> str:
        return ",".join(f"{self.host}:{port}" for _, port in sorted(self.ports.items()))

    def addresses(self) -> apis.Addresses:
        # A stopped broker keeps its address: clients that try it are refused, as by a dead
        # process, until the controller fences it and Metadata stops listing it.
        return apis.Addresses(self.host, dict(self.ports), f"dojo-{self.cluster_id}"[:64])

    # -- life cycle -----------------------------------------------------------------------

    async def sync(self, alive: dict[int, bool]) -> None:
        """Open the listener of every running broker, close those of stopped ones."""
        for broker_id, running in sorted(alive.items()):
            if running and broker_id not in self.servers:
                await self._open(broker_id)
            elif not running and broker_id in self.servers:
                await self._close_broker(broker_id)

    async def _open(self, broker_id: int) -> None:
        port = self.ports.get(broker_id, 0)

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(broker_id, reader, writer)

        try:
            server = await asyncio.start_server(accept, self.host, port, reuse_address=True)
        except OSError as error:
            if port == 0:
                logger.error(
                    "cluster %s: broker %d cannot listen on %s: %s",
                    self.cluster_id,
                    broker_id,
                    self.host,
                    error,
                )
                return
            # Its old port is taken (by another program since): listen on a new one; the
            # page shows the new bootstrap.servers.
            logger.warning(
                "cluster %s: broker %d cannot listen on its port %d again (%s); it takes another",
                self.cluster_id,
                broker_id,
                port,
                error,
            )
            self.ports.pop(broker_id, None)
            await self._open(broker_id)
            return
        self.servers[broker_id] = server
        new_port = server.sockets[0].getsockname()[1]
        changed = self.ports.get(broker_id) != new_port
        self.ports[broker_id] = new_port
        if changed and self._on_ports is not None:
            self._on_ports(dict(self.ports))
        logger.info(
            "cluster %s: broker %d listens on %s:%d",
            self.cluster_id,
            broker_id,
            self.host,
            self.ports[broker_id],
        )
        self._changed()

    async def _close_broker(self, broker_id: int) -> None:
        server = self.servers.pop(broker_id)
        server.close()
        self.fetch_sessions.pop(broker_id, None)  # a stopped broker forgets its sessions
        for connection in [c for c in self.connections.values() if c.broker_id == broker_id]:
            self._drop(connection, "its broker stopped")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)
        logger.info("cluster %s: broker %d's listener closed", self.cluster_id, broker_id)
        self._changed()

    async def close(self) -> None:
        for broker_id in list(self.servers):
            await self._close_broker(broker_id)
        for connection in list(self.connections.values()):
            self._drop(connection, "the cluster host stopped")

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    # -- connections ----------------------------------------------------------------------

    async def _serve(
        self, broker_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = str(writer.get_extra_info("peername"))
        if len(self.connections) >= self.limits.max_connections:
            logger.warning(
                "cluster %s: refused a connection from %s to broker %d: at the limit of %d",
                self.cluster_id,
                peer,
                broker_id,
                self.limits.max_connections,
            )
            writer.close()
            return
        connection = _Connection(self._next_connection, broker_id, writer, peer)
        self._next_connection += 1
        connection.room.set()
        connection.task = asyncio.current_task()
        self.connections[connection.id] = connection
        self._changed()
        try:
            await self._read_loop(connection, reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except codec.FrameError as error:
            self.closed_for_errors += 1
            logger.warning(
                "cluster %s broker %d: closed connection %d from %s: %s",
                self.cluster_id,
                broker_id,
                connection.id,
                peer,
                error,
            )
        except apis.UnsupportedRequest as error:
            logger.warning(
                "cluster %s broker %d: closed connection %d from %s: %s",
                self.cluster_id,
                broker_id,
                connection.id,
                peer,
                error,
            )
        except asyncio.CancelledError:
            pass
        except Exception:
            self.closed_for_errors += 1
            logger.exception(
                "cluster %s broker %d: connection %d failed",
                self.cluster_id,
                broker_id,
                connection.id,
            )
        finally:
            self._drop(connection, "")

    def _drop(self, connection: _Connection, reason: str) -> None:
        if connection.closed:
            return
        connection.closed = True
        if reason:
            logger.info(
                "cluster %s: closed connection %d: %s", self.cluster_id, connection.id, reason
            )
        self.connections.pop(connection.id, None)
        connection.room.set()
        with contextlib.suppress(Exception):
            connection.writer.close()
        task = connection.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        self._changed()

    async def _read_loop(self, connection: _Connection, reader: asyncio.StreamReader) -> None:
        while not connection.closed:
            size_bytes = await reader.readexactly(4)
            (size,) = struct.unpack(">i", size_bytes)
            if size < 0 or size > self.limits.max_frame_bytes:
                raise codec.FrameError(
                    f"a frame of {size} bytes is outside 0..{self.limits.max_frame_bytes}"
                )
            frame = await reader.readexactly(size)
            await self._throttle()
            self.requests_seen += 1
            await self._handle_frame(connection, frame)
            while len(connection.pending) >= self.limits.max_in_flight and not connection.closed:
                connection.room.clear()
                await connection.room.wait()

    async def _throttle(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(
                float(self.limits.burst),
                self._tokens + (now - self._refilled) * self.limits.requests_per_second,
            )
            self._refilled = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self._tokens) / self.limits.requests_per_second)

    async def _handle_frame(self, connection: _Connection, frame: bytes) -> None:
        header = codec.peek_header(frame)
        if header.api_key == apis.API_VERSIONS:
            self._answer_api_versions(connection, frame, header)
            return
        if not apis.supported_version(header.api_key, header.api_version):
            raise codec.FrameError(
                f"API key {header.api_key} version {header.api_version} is not served here"
            )
        if header.api_key in apis.REFUSED and header.api_version in apis.REFUSED[header.api_key]:
            raise apis.UnsupportedRequest(
                f"Produce v{header.api_version} is advertised (for old librdkafka) but refused, "
                "as Kafka 4.0 refuses it"
            )
        request = codec.decode_request(frame)
        engine = apis.to_engine(header.api_key, header.api_version, request.body)
        payload = dict(engine.request)
        payload["correlation_id"] = header.correlation_id
        payload["client_id"] = header.client_id or ""
        context = engine.context
        if header.api_key == apis.FETCH and context is not None:
            sessions = self.fetch_sessions.setdefault(connection.broker_id, FetchSessions())
            prepared = sessions.prepare(
                context["session_id"],
                context["session_epoch"],
                payload["partitions"],
                context["forgotten"],
            )
            if prepared.partitions is None:  # a session error: answered here, nothing logged
                self._answer_now(connection, header, {"partitions": []}, prepared.error)
                return
            payload = apis.with_partitions(payload, prepared.partitions)
            context = {"fetch_session": prepared, "sessions": sessions}
        if engine.expects_response:
            connection.pending.append(
                _Pending(header.correlation_id, header.api_key, header.api_version, context=context)
            )
        # Shielded: closing this connection must not cut a request off between its log entry
        # and its application (the log would then hold a request the live cluster never saw).
        await asyncio.shield(self.gateway.submit(connection.id, connection.broker_id, payload))

    def _answer_now(
        self,
        connection: _Connection,
        header: codec.Header,
        response: dict[str, Any],
        error: str,
    ) -> None:
        body = apis.to_wire(header.api_key, header.api_version, response, self.addresses())
        body["error_code"] = codec.error_code(error)
        entry = _Pending(header.correlation_id, header.api_key, header.api_version)
        entry.frame = codec.encode_response(
            header.api_key, header.api_version, header.correlation_id, body
        )
        entry.done = True
        connection.pending.append(entry)
        self._flush(connection)

    def _answer_api_versions(
        self, connection: _Connection, frame: bytes, header: codec.Header
    ) -> None:
        low, high = apis.SUPPORTED[apis.API_VERSIONS][1:]
        if low <= header.api_version <= high:
            codec.decode_request(frame)  # a malformed body still closes the connection
            body = apis.api_versions_body()
            version = header.api_version
        else:
            # KIP-511: a version this broker does not know gets a v0 answer with the ranges,
            # and the client retries with the highest version listed.
            body = apis.api_versions_body("UNSUPPORTED_VERSION")
            version = 0
        entry = _Pending(header.correlation_id, apis.API_VERSIONS, version)
        entry.frame = codec.encode_response(apis.API_VERSIONS, version, header.correlation_id, body)
        entry.done = True
        connection.pending.append(entry)
        self._flush(connection)

    # -- answers from the engine ----------------------------------------------------------

    def deliver(
        self, connection_id: int, correlation_id: int, response: dict[str, Any] | None
    ) -> None:
        """The engine's answer to one request (None: the broker refused the connection)."""
        connection = self.connections.get(connection_id)
        if connection is None:
            return
        if response is None:
            self._drop(connection, "the broker's process is down")
            return
        for entry in connection.pending:
            if entry.correlation_id == correlation_id and not entry.done:
                try:
                    context = entry.context
                    if context is not None and "fetch_session" in context:
                        prepared = context["fetch_session"]
                        response = context["sessions"].answer(prepared, response)
                        context = {"session_id": prepared.response_session_id}
                    body = apis.to_wire(
                        entry.api_key, entry.version, response, self.addresses(), context
                    )
                    entry.frame = codec.encode_response(
                        entry.api_key, entry.version, correlation_id, body
                    )
                except Exception:
                    logger.exception(
                        "cluster %s: could not encode the answer to API %d v%d",
                        self.cluster_id,
                        entry.api_key,
                        entry.version,
                    )
                    self._drop(connection, "an answer could not be encoded")
                    return
                entry.done = True
                break
        self._flush(connection)

    def _flush(self, connection: _Connection) -> None:
        while connection.pending and connection.pending[0].done:
            entry = connection.pending.popleft()
            if entry.frame is not None and not connection.closed:
                connection.writer.write(entry.frame)
        if len(connection.pending) < self.limits.max_in_flight:
            connection.room.set()
