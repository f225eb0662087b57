"""A live cluster's in-memory state: the engine `Cluster` plus the clients the host owns.

The stage's host, Stress it, the scenario runner, lessons, drills and tests all drive a cluster
through this one runtime, and only through `apply` (a command of the table) and `advance`.
Everything here is synchronous, deterministic and free of Django: the same seed and the same
command log always give the same engine calls in the same order, whether the commands arrive
live or are replayed from the database after a restart.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import Cluster, TopicPartition
from engine.errors import KafkaError
from lessons.scenarios.limits import TICK_MS
from lessons.scenarios.results import ApplyResult

logger = logging.getLogger(__name__)


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
    sent_ms: int = 0  # cluster time of the send: delivery.timeout.ms runs from here


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
    tombstone: bool = False  # a null value (the stage shows it as "null (tombstone)")


def kafka_error_text(error: BaseException) -> str:
    """`NotEnoughReplicasException: <the engine's sentence>. <why it happens>` for a learner:
    Kafka's Java name, as in Kafka's logs, then two plain sentences (never nested brackets)."""
    message = str(error).strip()
    name = str(getattr(error, "kafka_name", "") or type(error).__name__)
    text = f"{name}: {message}" if message and message not in (name, type(error).__name__) else name
    explanation = str(getattr(error, "explanation", "") or "").strip()
    if explanation and explanation not in text:
        text = text.rstrip(". ") + ". " + explanation
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
        # Transactional producer apps by transactional.id (the `transaction` command), and the
        # ids whose current instance has a transaction open.
        self.transactional_producers: dict[str, Any] = {}
        self.open_transactions: set[str] = set()
        self.transactional_instances: dict[str, int] = {}
        self.notices: deque[Notice] = deque(maxlen=12)
        self.applied = 0
        # Slow motion: the host sets `watch_messages`; time then moves 1 ms at a time and every
        # message seen in flight is kept a moment (id -> (message, last seen ms)) for the stage.
        self.watch_messages = False
        self.recent_messages: dict[Any, tuple[dict[str, Any], int]] = {}
        # The Kafka CLI console (the `console` command): its session, made on first use, and
        # what a tool still running (a tailing consumer) printed since the stage last took it.
        self.console: Any = None
        self.console_output: list[str] = []

    @property
    def now_ms(self) -> int:
        return int(self.cluster.now_ms)

    @classmethod
    def replay(cls, spec: ClusterSpec, commands: Iterable[Mapping[str, Any]]) -> ClusterRuntime:
        runtime = cls(spec)
        for payload in commands:
            runtime.apply(payload)
        runtime.console_output.clear()  # a replay's console printed to nobody
        return runtime

    # -- commands -------------------------------------------------------------------------

    def apply(self, payload: Mapping[str, Any]) -> ApplyResult:
        """Apply one command of the table (a validated payload, or one read back from a log).
        Engine refusals become results, never exceptions."""
        from lessons.scenarios.commands import COMMANDS

        self.applied += 1
        kind = payload.get("type")
        spec = COMMANDS.get(kind) if isinstance(kind, str) else None
        if spec is None or spec.apply is None:
            return ApplyResult(ok=False, message=f"Unknown command type {kind!r}.", error="unknown")
        started_ms = self.now_ms
        try:
            result: ApplyResult = spec.apply(self, payload)
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

    def _send(
        self, producer: Any, topic: str, key: str | None, value: str, *, tombstone: bool = False
    ) -> None:
        future = producer.send(
            topic,
            value=None if tombstone else value.encode(),
            key=key.encode() if key is not None else None,
        )
        self.pending_sends.append(
            PendingSend(future=future, key=key, value=value, sent_ms=self.now_ms)
        )

    def _release_waiting_sends(self) -> None:
        """Hand waiting records to their producer once it knows the topic, in order; fail those
        whose max.block.ms ran out, as Kafka's blocked send() would."""
        while self.waiting_sends:
            waiting = self.waiting_sends[0]
            if waiting.topic in waiting.producer.topics:
                self.waiting_sends.popleft()
                self._send(
                    waiting.producer,
                    waiting.topic,
                    waiting.key,
                    waiting.value,
                    tombstone=waiting.tombstone,
                )
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

    def refuse(self, message: str) -> ApplyResult:
        """A command the runtime turns down before the engine sees it (noticed on the stage)."""
        self._notice("error", message)
        return ApplyResult(ok=False, message=message, error="refused")

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
                if self.console is not None:
                    from lessons.scenarios.console_command import tick_console

                    tick_console(self)

    def _next_busy_boundary(self) -> int:
        """The first TICK_MS boundary at which a host client may act: a timer of the engine is
        due by then (it may answer a send or a reset), a host consumer polls, or a waiting
        record's max.block.ms runs out. Every boundary before it would do nothing, so jumping
        there makes the same engine calls as stepping tick by tick."""
        if self.console is not None:
            return 0  # a console tails on every tick: no jumping
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
                self._notice("error", f"Send of “{send.value}” failed: {kafka_error_text(error)}")
        self.pending_sends = still_pending

    def _tell_later(self) -> None:
        """Notices for answers that arrived on the cluster clock since the last tick."""
        later, self.later = self.later, []
        for level, text in later:
            self._notice(level, text)

    def _notice(self, level: str, text: str) -> None:
        self.notices.append(Notice(time_ms=self.now_ms, level=level, text=text))
