"""What producers and consumers share: a node on the network and a metadata cache
(Kafka's `NetworkClient` and `Metadata`), refreshed from whichever broker answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.common.metadata import NO_LEADER
from engine.sim.clock import Timer
from engine.sim.network import DISCONNECTED, request

if TYPE_CHECKING:
    from engine.coordinator.group.group_coordinator import GroupCoordinator
    from engine.coordinator.transaction.transaction_coordinator import TransactionCoordinator
    from engine.server.broker import Broker
    from engine.sim.context import MetadataSource, SimContext

REQUEST_TIMED_OUT = "REQUEST_TIMED_OUT"


def group_coordinator_at(broker: Broker) -> GroupCoordinator:
    """The group coordinator hosted on a broker (every broker hosts one)."""
    coordinator = broker.group_coordinator
    if coordinator is None:
        raise RuntimeError(f"broker {broker.id} has no group coordinator wired")
    return coordinator


def transaction_coordinator_at(broker: Broker) -> TransactionCoordinator:
    """The transaction coordinator hosted on a broker (every broker hosts one)."""
    coordinator = broker.transaction_coordinator
    if coordinator is None:
        raise RuntimeError(f"broker {broker.id} has no transaction coordinator wired")
    return coordinator


@dataclass(slots=True)
class PartitionInfo:
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class ClientBase:
    """A client process: its network identity, requests with timeouts, and metadata."""

    kind = "client"

    def __init__(
        self,
        ctx: SimContext,
        metadata_response: MetadataSource,
        config: dict[str, Any],
        client_number: int,
    ) -> None:
        self.ctx = ctx
        self.metadata_response = metadata_response
        self.config = config
        self.client_number = client_number
        self.node = f"client-{self.kind}-{client_number}"
        self.client_id = str(config.get("client.id") or f"{self.kind}-{client_number}")
        self.topics: dict[str, list[PartitionInfo]] = {}
        self.topic_errors: dict[str, str] = {}
        self.wanted_topics: set[str] = set()
        self.metadata_in_flight = False
        self.metadata_version = 0
        self._metadata_retry: Timer | None = None
        self._metadata_expiry: Timer | None = None
        self.last_metadata_ms = -(10**12)
        self.alive = True
        self._next_broker = 0
        self._next_request = 0
        self._open_requests: dict[int, dict[int, Callable[[object], None]]] = {}
        self._connections: dict[int, int] = {}
        self._dead_connections: set[tuple[int, int]] = set()

    @property
    def now_ms(self) -> int:
        return self.ctx.scheduler.now_ms

    # --- requests ----------------------------------------------------------------------------

    def send_request(
        self,
        broker_id: int,
        kind: str,
        handle: Callable[[Broker, Callable[[object], None]], None],
        on_reply: Callable[[object], None],
        timeout_ms: int | None = None,
    ) -> None:
        """Send to a broker; `on_reply` gets the response, DISCONNECTED, or REQUEST_TIMED_OUT.

        Requests to one broker share one connection, and responses on a connection arrive in
        order: once a response is lost (Cluster.lose_responses) the connection is dead, so every
        later response on it is lost too, until the client's request timeout closes it and fails
        the requests still open on it (Kafka's NetworkClient), which the client then retries.
        """
        broker = self.ctx.nodes.broker_by_id(broker_id)
        finished = [False]
        timeout = int(self.config["request.timeout.ms"]) if timeout_ms is None else timeout_ms
        timer: list[Timer] = []
        self._next_request += 1
        request_id = self._next_request
        open_requests = self._open_requests.setdefault(broker_id, {})
        connection = self._connections.get(broker_id, 0)

        def reply(response: object) -> None:
            if finished[0] or not self.alive:
                return
            finished[0] = True
            open_requests.pop(request_id, None)
            if timer:
                timer[0].cancel()
            on_reply(response)

        def lose_reply() -> bool:
            if (broker_id, connection) in self._dead_connections:
                return True
            if broker.lose_reply():
                self._dead_connections.add((broker_id, connection))
                return True
            return False

        def expire() -> None:
            if finished[0] or not self.alive:
                return
            finished[0] = True
            open_requests.pop(request_id, None)
            if self._connections.get(broker_id, 0) == connection:
                self._close_connection(broker_id)
            on_reply(REQUEST_TIMED_OUT)

        open_requests[request_id] = reply
        request(
            self.ctx.network,
            self.node,
            broker_id,
            kind,
            lambda: broker.alive,
            lambda respond: handle(broker, respond),
            reply,
            lose_reply,
        )
        timer.append(self.ctx.scheduler.call_later(timeout, expire))

    def _close_connection(self, broker_id: int) -> None:
        """A request timed out: close the connection; requests still open on it fail now."""
        connection = self._connections.get(broker_id, 0)
        self._connections[broker_id] = connection + 1
        self._dead_connections.discard((broker_id, connection))
        waiting = self._open_requests.get(broker_id, {})
        for request_id in sorted(waiting):
            self.ctx.scheduler.call_later(0, _disconnect(waiting[request_id]))

    def on_broker_stopped(self, broker_id: int) -> None:
        """The broker's process died: its connections close, so requests waiting there (a
        long-poll fetch, an acks=all produce) fail at once with a disconnect, not a timeout."""
        if not self.ctx.network.reachable(self.node, broker_id):
            return  # no reset reaches a client on the other side of a partition
        waiting = self._open_requests.get(broker_id, {})
        for request_id in sorted(waiting):
            self.ctx.scheduler.call_later(
                self.ctx.network.latency_ms, _disconnect(waiting[request_id])
            )

    def pick_broker(self) -> int | None:
        """The next broker to ask for metadata: round robin over the cluster's brokers that this
        client can reach (Kafka's least-loaded node, with every node equally loaded)."""
        ids = self.ctx.nodes.broker_ids()
        for step in range(len(ids)):
            candidate = ids[(self._next_broker + step) % len(ids)]
            if (
                self.ctx.network.reachable(self.node, candidate)
                and self.ctx.nodes.broker_by_id(candidate).alive
            ):
                self._next_broker = (self._next_broker + step + 1) % len(ids)
                return candidate
        return None

    # --- metadata ----------------------------------------------------------------------------

    def leader_for(self, topic: str, partition: int) -> int:
        infos = self.topics.get(topic)
        if infos is None or partition >= len(infos):
            return NO_LEADER
        return infos[partition].leader

    def request_metadata_update(self, topics: set[str] | None = None) -> None:
        if topics:
            self.wanted_topics |= topics
        if self.metadata_in_flight or (
            self._metadata_retry is not None and not self._metadata_retry.cancelled
        ):
            return
        broker_id = self.pick_broker()
        if broker_id is None:
            self._retry_metadata()
            return
        self.metadata_in_flight = True
        wanted = sorted(self.wanted_topics)
        allow_create = self.allow_auto_create_topics()

        def handle(broker: Broker, reply: Callable[[object], None]) -> None:
            reply(self.metadata_response(broker, wanted, allow_create))

        def on_reply(response: object) -> None:
            self.metadata_in_flight = False
            if response is DISCONNECTED or response == REQUEST_TIMED_OUT:
                self._retry_metadata()
                return
            assert isinstance(response, tuple)
            topics, errors = response
            self.topics.update(topics)
            for name in topics:
                self.topic_errors.pop(name, None)
            for name, error in errors.items():
                self.topic_errors[name] = error
                self.topics.pop(name, None)
            self.metadata_version += 1
            self.last_metadata_ms = self.now_ms
            self._schedule_metadata_expiry()
            # Topics wanted since this request left count too: they were not asked for yet.
            incomplete = [
                name
                for name in sorted(self.wanted_topics)
                if name not in topics or any(p.leader == NO_LEADER for p in topics[name])
            ]
            self.on_metadata_update()
            if incomplete:
                self._retry_metadata()

        self.send_request(broker_id, "metadata", handle, on_reply)

    def _schedule_metadata_expiry(self) -> None:
        """Kafka's NetworkClient.poll asks `DefaultMetadataUpdater.maybeUpdate` on every turn of
        the client's I/O loop, which refreshes the metadata once `metadata.max.age.ms` passed
        since the last update, even while the application sends or polls nothing."""
        if not self.refreshes_metadata_in_background():
            return
        if self._metadata_expiry is not None:
            self._metadata_expiry.cancel()
        age = int(self.config["metadata.max.age.ms"])
        updated = self.last_metadata_ms

        def expire() -> None:
            self._metadata_expiry = None
            if (
                self.alive
                and self.last_metadata_ms == updated
                and self.refreshes_metadata_in_background()
            ):
                self.request_metadata_update()

        self._metadata_expiry = self.ctx.scheduler.call_later(age, expire)

    def refreshes_metadata_in_background(self) -> bool:
        """Hook: whether an I/O thread runs while the application is idle (a producer's
        Sender; a group consumer's heartbeat thread)."""
        return False

    def _retry_metadata(self) -> None:
        if self._metadata_retry is not None and not self._metadata_retry.cancelled:
            return
        backoff = int(self.config["retry.backoff.ms"])

        def retry() -> None:
            self._metadata_retry = None
            if self.alive and self.needs_metadata():
                self.request_metadata_update()

        self._metadata_retry = self.ctx.scheduler.call_later(backoff, retry)

    def needs_metadata(self) -> bool:
        return any(
            name not in self.topics or any(p.leader == NO_LEADER for p in self.topics[name])
            for name in self.wanted_topics
        )

    def allow_auto_create_topics(self) -> bool:
        return True

    def on_metadata_update(self) -> None:
        """Hook: a new metadata response arrived."""


def _disconnect(reply: Callable[[object], None]) -> Callable[[], None]:
    return lambda: reply(DISCONNECTED)
