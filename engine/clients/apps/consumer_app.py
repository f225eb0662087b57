"""A simulated consumer application on the cluster's clock (see `engine.clients.apps.app_service`).

It polls every `poll_interval_ms`, spends `processing_ms_per_record` on each record and commits
by its policy (`auto`: the consumer's auto commit; `after`: commit once a batch is processed,
at-least-once; `before`: commit as soon as a batch arrives, at-most-once); it can be slowed,
crashed and restarted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.common.records import ConsumerRecord, TopicPartition
from engine.errors import CommitFailedError, KafkaError, error_for_name
from engine.sim.clock import Timer

if TYPE_CHECKING:
    from engine.clients.consumer.kafka_consumer import KafkaConsumer
    from engine.sim.context import SimContext

COMMIT_POLICIES = ("auto", "after", "before")


class ConsumerApp:
    kind = "consumer"

    def __init__(
        self,
        ctx: SimContext,
        new_consumer: Callable[[dict[str, Any]], KafkaConsumer],
        app_id: int,
        group_id: str,
        topics: list[str],
        poll_interval_ms: int,
        processing_ms_per_record: int,
        commit: str,
        config: dict[str, Any] | None,
    ) -> None:
        if commit not in COMMIT_POLICIES:
            raise ValueError(f"commit must be one of {', '.join(COMMIT_POLICIES)}, not {commit!r}")
        if poll_interval_ms < 1 or processing_ms_per_record < 0:
            raise ValueError("poll_interval_ms must be at least 1 and processing time not negative")
        self.ctx = ctx
        self.new_consumer = new_consumer
        self.id = app_id
        self.group_id = group_id
        self.topics = sorted(topics)
        self.poll_interval_ms = poll_interval_ms
        self.processing_ms_per_record = processing_ms_per_record
        self.commit_policy = commit
        self.config = dict(config or {})
        self.running = False
        self.crashed = False
        self.processed = 0
        self.duplicates = 0
        self.seen: set[tuple[str, int, int]] = set()
        self.commits_failed = 0
        self.consumer: KafkaConsumer | None = None
        self.timer: Timer | None = None
        self.incarnation = 0
        # The batch being processed and when its processing started.
        self.in_progress: tuple[int, list[ConsumerRecord]] | None = None
        self.start()

    def _consumer_config(self) -> dict[str, Any]:
        config = {"auto.offset.reset": "earliest", **self.config, "group.id": self.group_id}
        config["enable.auto.commit"] = self.commit_policy == "auto"
        return config

    def start(self) -> None:
        if self.running:
            return
        with self.ctx.unrecorded():
            self.consumer = self.new_consumer(self._consumer_config())
            self.consumer.subscribe(self.topics)
        self.running = True
        self.crashed = False
        self.incarnation += 1
        self.ctx.emit(
            "app_started", {"app": self.id, "kind": self.kind, "client": self.consumer.client_id}
        )
        self._schedule(0)

    def _schedule(self, delay_ms: int) -> None:
        incarnation = self.incarnation
        self.timer = self.ctx.scheduler.call_later(delay_ms, lambda: self._tick(incarnation))

    def _tick(self, incarnation: int) -> None:
        consumer = self.consumer
        if not self.running or incarnation != self.incarnation or consumer is None:
            return
        try:
            records = consumer._poll(0, None)
        except KafkaError as exc:
            self.ctx.emit("app_error", {"app": self.id, "error": type(exc).__name__})
            self._schedule(self.poll_interval_ms)
            return
        if not records:
            self._schedule(self.poll_interval_ms)
            return
        positions = self._positions_after(records)
        if self.commit_policy == "before":
            self._commit(positions)  # at-most-once: a crash while processing loses the batch
        busy = self.processing_ms_per_record * len(records)
        self.in_progress = (self.ctx.now_ms, records)
        self.ctx.scheduler.call_later(
            busy, lambda: self._processed(incarnation, records, positions)
        )

    def _positions_after(self, records: list[ConsumerRecord]) -> dict[TopicPartition, int]:
        positions: dict[TopicPartition, int] = {}
        for record in records:
            positions[TopicPartition(record.topic, record.partition)] = record.offset + 1
        return positions

    def _processed(
        self, incarnation: int, records: list[ConsumerRecord], positions: dict[TopicPartition, int]
    ) -> None:
        if not self.running or incarnation != self.incarnation:
            return  # crashed or stopped while processing: the batch was never finished
        self.in_progress = None
        self._count(records)
        if self.commit_policy == "after":
            self._commit(positions)  # at-least-once: a crash before this repeats the batch
        self._schedule(self.poll_interval_ms)

    def _count(self, records: list[ConsumerRecord]) -> None:
        for record in records:
            key = (record.topic, record.partition, record.offset)
            if key in self.seen:
                self.duplicates += 1
            self.seen.add(key)
        self.processed += len(records)
        if records:
            self.ctx.emit("app_processed", {"app": self.id, "records": len(records)})

    def _interrupt(self) -> None:
        """Records are processed one after another: those finished before a crash or stop count."""
        if self.in_progress is None:
            return
        started, records = self.in_progress
        self.in_progress = None
        per_record = self.processing_ms_per_record
        done = len(records) if per_record == 0 else (self.ctx.now_ms - started) // per_record
        self._count(records[: min(done, len(records))])

    def _commit(self, positions: dict[TopicPartition, int]) -> None:
        consumer = self.consumer
        if consumer is None or consumer.coordinator is None:
            return
        coordinator = consumer.coordinator
        owned = {tp: offset for tp, offset in positions.items() if tp in consumer.assigned}
        if not owned or coordinator.generation < 0:
            self.commits_failed += 1
            return

        def done(error: str) -> None:
            if error:
                self.commits_failed += 1

        coordinator.offsets.send_commit(owned, done)

    def commit(self) -> None:
        """Commit the consumer's current positions now, asynchronously (Kafka's commitAsync):
        the call returns at once; the broker's `offsets_committed` event says it landed, an
        `app_error` event says it failed."""
        consumer = self.consumer
        if not self.running or consumer is None or consumer.coordinator is None:
            raise ValueError(f"Consumer app {self.id} is not running.")
        positions = {
            tp: consumer.positions[tp]
            for tp in sorted(consumer.assigned)
            if tp in consumer.positions
        }
        if not positions or consumer.coordinator.generation < 0:
            self.commits_failed += 1
            self.ctx.emit("app_error", {"app": self.id, "error": CommitFailedError.__name__})
            return

        def done(error: str) -> None:
            if error:
                self.commits_failed += 1
                name = error_for_name(error).__name__
                self.ctx.emit("app_error", {"app": self.id, "error": name})

        consumer.coordinator.offsets.send_commit(positions, done)

    def crash(self) -> None:
        if not self.running or self.consumer is None:
            return
        self._interrupt()
        with self.ctx.unrecorded():
            self.consumer.crash()
        self.running = False
        self.crashed = True
        self.incarnation += 1
        self.ctx.emit("app_crashed", {"app": self.id})

    def stop(self) -> None:
        if not self.running or self.consumer is None:
            return
        self.incarnation += 1
        self._interrupt()
        with self.ctx.unrecorded():
            self.consumer.close(timeout_ms=0)  # never block inside a timer or a control call
        self.running = False
        self.ctx.emit("app_stopped", {"app": self.id})

    def restart(self) -> None:
        self.crash() if self.running else None
        self.start()

    def set_processing_ms(self, value: int) -> None:
        if value < 0:
            raise ValueError("processing time cannot be negative")
        self.processing_ms_per_record = value

    def set_poll_interval_ms(self, value: int) -> None:
        if value < 1:
            raise ValueError("poll interval must be at least 1 ms")
        self.poll_interval_ms = value

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "group_id": self.group_id,
            "topics": self.topics,
            "running": self.running,
            "crashed": self.crashed,
            "commit": self.commit_policy,
            "poll_interval_ms": self.poll_interval_ms,
            "processing_ms_per_record": self.processing_ms_per_record,
            "client": self.consumer.client_id if self.consumer else None,
            "processed": self.processed,
            "duplicates": self.duplicates,
            "commits_failed": self.commits_failed,
        }
