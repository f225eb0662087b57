"""A live cluster's in-memory state: the engine `Cluster` plus the clients the host owns.

Everything here is synchronous, deterministic and free of Django: the same seed and the same
command log always give the same engine calls in the same order, whether the commands arrive
live or are replayed from the database after a restart.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import Cluster, TopicPartition
from engine.errors import KafkaError
from webapp.engine_host import actions
from webapp.engine_host.limits import MAX_PRODUCE_COUNT, TICK_MS

logger = logging.getLogger(__name__)

# Engine log operations a command log may carry as `{"type": "engine", "entry": {...}}`.
ENGINE_LOG_OPS = frozenset(
    {
        "cluster.advance",
        "cluster.create_topic",
        "cluster.producer",
        "cluster.consumer",
        "cluster.stop_broker",
        "cluster.start_broker",
        "cluster.shutdown_broker",
        "cluster.partition_network",
        "cluster.heal_network",
        "cluster.lose_responses",
        "producer.send",
        "consumer.assign",
        "consumer.poll",
    }
)


# Commands whose job is to move the clock (every other one returns without running time;
# a controlled shutdown lets the other brokers learn the new leaders, a few ms).
CLOCK_MOVING_COMMANDS = frozenset({"advance", "engine", "shutdown_broker"})


@dataclass(frozen=True)
class ClusterSpec:
    """What a cluster is built from before its first command."""

    seed: int
    brokers: int = 3
    controllers: int = 3
    config: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of one command. `error` holds Kafka's error name when the engine refused."""

    ok: bool
    message: str = ""
    error: str | None = None
    retriable: bool = False


@dataclass(frozen=True)
class Notice:
    time_ms: int
    level: str  # "info" or "error"
    text: str


@dataclass
class HostConsumer:
    """A standalone consumer the host drives: polls its topic every `poll_interval_ms`."""

    name: str
    topic: str
    client: Any
    poll_interval_ms: int
    max_records: int
    partitions: list[TopicPartition]
    next_poll_ms: int = 0
    records_read: int = 0
    positions: dict[int, int] = field(default_factory=dict)
    last_error: str = ""


@dataclass
class PendingSend:
    future: Any
    key: str | None
    value: str


@dataclass
class WaitingSend:
    """A record whose topic the producer has no metadata for yet. Kafka's `send()` blocks up to
    `max.block.ms` for it; a host never blocks, so the record waits here and is handed to the
    producer at the first tick the metadata is there (or fails once `max.block.ms` ran out)."""

    producer: Any
    topic: str
    key: str | None
    value: str
    deadline_ms: int


def kafka_error_text(error: BaseException) -> str:
    """`NotEnoughReplicasException: <the engine's sentence> (<why it happens>)` for a learner:
    Kafka's Java name, as in Kafka's logs, and the error's plain explanation."""
    message = str(error).strip()
    name = str(getattr(error, "kafka_name", "") or type(error).__name__)
    text = f"{name}: {message}" if message and message not in (name, type(error).__name__) else name
    explanation = str(getattr(error, "explanation", "") or "")
    if explanation and explanation not in text:
        text += f" ({explanation})"
    return text


class ClusterRuntime:
    """The engine cluster and host-owned clients, changed only through `apply`."""

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.cluster = Cluster(
            brokers=spec.brokers,
            seed=spec.seed,
            config=dict(spec.config) if spec.config else None,
            controllers=spec.controllers,
        )
        self.producer: Any = None
        self.consumers: dict[str, HostConsumer] = {}
        self.pending_sends: list[PendingSend] = []
        self.waiting_sends: deque[WaitingSend] = deque()
        # Answers that arrive later on the cluster clock (an asynchronous commit or reset).
        self.later: list[tuple[str, str]] = []
        self.acked_sends = 0
        self.failed_sends = 0
        self.notices: deque[Notice] = deque(maxlen=12)
        self.applied = 0
        # Slow motion: the host sets `watch_messages`; time then moves 1 ms at a time and every
        # message seen in flight is kept a moment (id -> (message, last seen ms)) for the stage.
        self.watch_messages = False
        self.recent_messages: dict[Any, tuple[dict[str, Any], int]] = {}

    @property
    def now_ms(self) -> int:
        return int(self.cluster.now_ms)

    @classmethod
    def replay(cls, spec: ClusterSpec, commands: Iterable[Mapping[str, Any]]) -> ClusterRuntime:
        runtime = cls(spec)
        for payload in commands:
            runtime.apply(payload)
        return runtime

    # -- commands -------------------------------------------------------------------------

    def apply(self, payload: Mapping[str, Any]) -> ApplyResult:
        """Apply one logged command. Engine refusals become results, never exceptions."""
        self.applied += 1
        kind = payload.get("type")
        handler = getattr(self, f"_apply_{kind}", None)
        if handler is None and kind in actions.HANDLERS:
            handler = functools.partial(actions.HANDLERS[kind], self)
        if handler is None:
            return ApplyResult(ok=False, message=f"Unknown command type {kind!r}.", error="unknown")
        started_ms = self.now_ms
        try:
            result: ApplyResult = handler(payload)
        except KafkaError as error:
            text = kafka_error_text(error)
            self._notice("error", text)
            return ApplyResult(
                ok=False,
                message=text,
                error=type(error).__name__,
                retriable=bool(getattr(error, "retriable", False)),
            )
        except Exception as error:  # an engine bug must not take the host down
            logger.exception("command %r failed inside the engine", payload)
            text = f"The simulator failed on this command ({type(error).__name__}: {error})."
            self._notice("error", text)
            return ApplyResult(ok=False, message=text, error="internal")
        finally:
            ran = self.now_ms - started_ms
            if ran and kind not in CLOCK_MOVING_COMMANDS:
                # A command must return at once and leave time to the clock: say so loudly.
                logger.warning("command %r ran %d ms of cluster time", kind, ran)
        return result

    def _apply_create_topic(self, payload: Mapping[str, Any]) -> ApplyResult:
        self.cluster.create_topic(
            payload["name"],
            partitions=int(payload.get("partitions", 1)),
            replication_factor=int(payload.get("replication_factor", 1)),
            config=payload.get("config") or None,
        )
        return ApplyResult(ok=True, message=f"Created topic {payload['name']}.")

    def _apply_add_consumer(self, payload: Mapping[str, Any]) -> ApplyResult:
        name = str(payload["name"])
        topic = str(payload["topic"])
        description = self.cluster.describe_topic(topic)
        partitions = [TopicPartition(topic, p.partition) for p in description.partitions]
        client = self.cluster.consumer(
            config={
                "client.id": name,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        client.assign(partitions)
        self.consumers[name] = HostConsumer(
            name=name,
            topic=topic,
            client=client,
            poll_interval_ms=int(payload.get("poll_interval_ms", 500)),
            max_records=int(payload.get("max_records", 1)),
            partitions=partitions,
            next_poll_ms=self.now_ms,
        )
        return ApplyResult(ok=True, message=f"Consumer {name} reads {topic}.")

    def _apply_produce(self, payload: Mapping[str, Any]) -> ApplyResult:
        topic = str(payload["topic"])
        key = payload.get("key") or None
        value = str(payload.get("value", ""))
        count = max(1, min(int(payload.get("count", 1)), MAX_PRODUCE_COUNT))
        if topic not in self.cluster.list_topics():
            # Checked here: the producer would block up to max.block.ms waiting for metadata.
            text = f"UnknownTopicOrPartitionError: topic {topic!r} does not exist in this cluster."
            self._notice("error", text)
            return ApplyResult(ok=False, message=text, error="UnknownTopicOrPartitionError")
        if self.producer is None:
            self.producer = self.cluster.producer(config={"client.id": "dojo-producer"})
        producer = self.producer
        must_wait = topic not in producer.topics or any(
            w.producer is producer and w.topic == topic for w in self.waiting_sends
        )
        plural = "record" if count == 1 else "records"
        if must_wait:
            # No metadata yet: Kafka's send() would block here for up to max.block.ms.
            producer.request_metadata_update({topic})
            deadline = self.now_ms + int(producer.config["max.block.ms"])
        for index in range(count):
            record_value = value if count == 1 else f"{value}-{index + 1}"
            if must_wait:
                self.waiting_sends.append(WaitingSend(producer, topic, key, record_value, deadline))
            else:
                self._send(producer, topic, key, record_value)
        if must_wait:
            return ApplyResult(
                ok=True,
                message=f"Sending {count} {plural} to {topic} once the producer has its metadata.",
            )
        self._settle_sends()
        return ApplyResult(ok=True, message=f"Sent {count} {plural} to {topic}.")

    def _send(self, producer: Any, topic: str, key: str | None, value: str) -> None:
        future = producer.send(
            topic, value=value.encode(), key=key.encode() if key is not None else None
        )
        self.pending_sends.append(PendingSend(future=future, key=key, value=value))

    def _release_waiting_sends(self) -> None:
        """Hand waiting records to their producer once it knows the topic, in order; fail those
        whose max.block.ms ran out, as Kafka's blocked send() would."""
        while self.waiting_sends:
            waiting = self.waiting_sends[0]
            if waiting.topic in waiting.producer.topics:
                self.waiting_sends.popleft()
                self._send(waiting.producer, waiting.topic, waiting.key, waiting.value)
            elif self.now_ms >= waiting.deadline_ms:
                self.waiting_sends.popleft()
                self.failed_sends += 1
                self._notice(
                    "error",
                    f"Send of {waiting.value!r} failed: TimeoutException: Topic "
                    f"{waiting.topic} not present in metadata after "
                    f"{waiting.producer.config['max.block.ms']} ms.",
                )
            else:
                return

    def _apply_stop_broker(self, payload: Mapping[str, Any]) -> ApplyResult:
        broker_id = int(payload["broker_id"])
        self.cluster.stop_broker(broker_id)
        self._notice("info", f"Broker {broker_id} crashed (killed without a controlled shutdown).")
        return ApplyResult(ok=True, message=f"Broker {broker_id} stopped.")

    def _apply_start_broker(self, payload: Mapping[str, Any]) -> ApplyResult:
        broker_id = int(payload["broker_id"])
        self.cluster.start_broker(broker_id)
        self._notice("info", f"Broker {broker_id} restarted.")
        return ApplyResult(ok=True, message=f"Broker {broker_id} started.")

    def _apply_advance(self, payload: Mapping[str, Any]) -> ApplyResult:
        self.advance(int(payload["ms"]))
        return ApplyResult(ok=True)

    def _apply_engine(self, payload: Mapping[str, Any]) -> ApplyResult:
        """One entry of an engine log (`Cluster.export_log`), e.g. a "Stress it" run opened on
        the stage. Only written by the server (never accepted from a socket)."""
        entry = payload.get("entry")
        if not isinstance(entry, Mapping) or entry.get("op") not in ENGINE_LOG_OPS:
            return ApplyResult(ok=False, message="Unsupported engine log entry.", error="unknown")
        self.cluster.apply_logged(dict(entry))
        return ApplyResult(ok=True)

    # -- time -----------------------------------------------------------------------------

    def advance(self, ms: int) -> None:
        """Move the clock `ms` forward in TICK_MS quanta, polling host consumers when due."""
        if ms < 0:
            raise ValueError("time cannot go backwards")
        target = self.now_ms + ms
        while self.now_ms < target:
            boundary = (self.now_ms // TICK_MS + 1) * TICK_MS
            before = self.now_ms
            if self.watch_messages:  # the engine splits time identically either way
                boundary = before + 1
            else:
                # Boundaries where nothing is due do nothing: jump to the first one that may.
                boundary = max(boundary, self._next_busy_boundary())
            self.cluster.advance(min(boundary, target) - before)
            if self.watch_messages:
                self._watch_messages()
            if self.now_ms <= before:  # an engine that does not move would loop forever
                raise RuntimeError(f"cluster.advance did not move the clock from {before} ms")
            # Host clients act on TICK_MS boundaries only, so a slow-motion clock that moves
            # 1 ms at a time (to show messages in flight) makes the same calls as replay.
            if self.now_ms % TICK_MS == 0:
                self._poll_due_consumers()
                if self.waiting_sends:
                    self._release_waiting_sends()
                self._settle_sends()
                self._tell_later()

    def _next_busy_boundary(self) -> int:
        """The first TICK_MS boundary at which a host client may act: a timer of the engine is
        due by then (it may answer a send or a reset), a host consumer polls, or a waiting
        record's max.block.ms runs out. Every boundary before it would do nothing, so jumping
        there makes the same engine calls as stepping tick by tick."""
        candidates = [consumer.next_poll_ms for consumer in self.consumers.values()]
        due = self.cluster.scheduler.next_due_ms()
        if due is not None:
            candidates.append(due)
        if self.waiting_sends:
            candidates.append(min(w.deadline_ms for w in self.waiting_sends))
        if not candidates:
            return 1 << 62
        return -(-min(candidates) // TICK_MS) * TICK_MS

    def _watch_messages(self) -> None:
        now = self.now_ms
        for message in self.cluster.snapshot()["network"].get("in_flight", []):
            self.recent_messages[message.get("id")] = (message, now)
        for key in [k for k, (_, seen) in self.recent_messages.items() if now - seen > 30]:
            del self.recent_messages[key]

    def _poll_due_consumers(self) -> None:
        for consumer in self.consumers.values():
            if self.now_ms < consumer.next_poll_ms:
                continue
            consumer.next_poll_ms = self.now_ms + consumer.poll_interval_ms
            try:
                records = consumer.client.poll(timeout_ms=0, max_records=consumer.max_records)
                consumer.records_read += len(records)
                # Positions follow the records read: `position()` may block (and so advance
                # the clock) while an offset lookup is in flight.
                for record in records:
                    following = int(record.offset) + 1
                    if following > consumer.positions.get(record.partition, -1):
                        consumer.positions[record.partition] = following
                consumer.last_error = ""
            except KafkaError as error:
                consumer.last_error = kafka_error_text(error)

    def _settle_sends(self) -> None:
        still_pending: list[PendingSend] = []
        for send in self.pending_sends:
            if not send.future.done():
                still_pending.append(send)
                continue
            try:
                send.future.get()
                self.acked_sends += 1
            except KafkaError as error:
                self.failed_sends += 1
                self._notice("error", f"Send of {send.value!r} failed: {kafka_error_text(error)}")
        self.pending_sends = still_pending

    def _tell_later(self) -> None:
        """Notices for answers that arrived on the cluster clock since the last tick."""
        later, self.later = self.later, []
        for level, text in later:
            self._notice(level, text)

    def _notice(self, level: str, text: str) -> None:
        self.notices.append(Notice(time_ms=self.now_ms, level=level, text=text))
