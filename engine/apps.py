"""Simulated client applications that run on the cluster's own clock.

A lesson needs traffic without a caller driving every poll: a `ConsumerApp` polls every
`poll_interval_ms`, spends `processing_ms_per_record` on each record and commits by its policy
(`auto`: the consumer's auto commit; `after`: commit once a batch is processed, at-least-once;
`before`: commit as soon as a batch arrives, at-most-once); it can be slowed, crashed and
restarted. A `ProducerApp` sends `rate_per_sec` records with keys drawn from `keys` distinct
keys, a share of them on one hot key.

Apps are created and steered through `cluster.services["apps"]`, whose methods are recorded in
the cluster's log (`apps.*` operations) so `Cluster.from_log` replays them exactly; everything
they do afterwards happens in timers on the cluster's scheduler, so it replays by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from engine.clock import Timer
from engine.errors import KafkaError
from engine.records import ConsumerRecord, TopicPartition

if TYPE_CHECKING:
    from engine.cluster import Cluster
    from engine.consumer import KafkaConsumer
    from engine.producer import KafkaProducer

COMMIT_POLICIES = ("auto", "after", "before")


@contextmanager
def _unrecorded(cluster: Cluster) -> Iterator[None]:
    """Calls an app makes for itself are part of the app's recorded call, not new entries."""
    cluster._depth += 1
    try:
        yield
    finally:
        cluster._depth -= 1


class ConsumerApp:
    kind = "consumer"

    def __init__(
        self,
        cluster: Cluster,
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
        self.cluster = cluster
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
        with _unrecorded(self.cluster):
            self.consumer = self.cluster.consumer(self._consumer_config())
            self.consumer.subscribe(self.topics)
        self.running = True
        self.crashed = False
        self.incarnation += 1
        self.cluster.emit(
            "app_started", {"app": self.id, "kind": self.kind, "client": self.consumer.client_id}
        )
        self._schedule(0)

    def _schedule(self, delay_ms: int) -> None:
        incarnation = self.incarnation
        self.timer = self.cluster.scheduler.call_later(delay_ms, lambda: self._tick(incarnation))

    def _tick(self, incarnation: int) -> None:
        consumer = self.consumer
        if not self.running or incarnation != self.incarnation or consumer is None:
            return
        try:
            records = consumer._poll(0, None)
        except KafkaError as exc:
            self.cluster.emit("app_error", {"app": self.id, "error": type(exc).__name__})
            self._schedule(self.poll_interval_ms)
            return
        if not records:
            self._schedule(self.poll_interval_ms)
            return
        positions = self._positions_after(records)
        if self.commit_policy == "before":
            self._commit(positions)  # at-most-once: a crash while processing loses the batch
        busy = self.processing_ms_per_record * len(records)
        self.in_progress = (self.cluster.now_ms, records)
        self.cluster.scheduler.call_later(
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
            self.cluster.emit("app_processed", {"app": self.id, "records": len(records)})

    def _interrupt(self) -> None:
        """Records are processed one after another: those finished before a crash or stop count."""
        if self.in_progress is None:
            return
        started, records = self.in_progress
        self.in_progress = None
        per_record = self.processing_ms_per_record
        done = len(records) if per_record == 0 else (self.cluster.now_ms - started) // per_record
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

        coordinator._send_commit(owned, done)

    def crash(self) -> None:
        if not self.running or self.consumer is None:
            return
        self._interrupt()
        with _unrecorded(self.cluster):
            self.consumer.crash()
        self.running = False
        self.crashed = True
        self.incarnation += 1
        self.cluster.emit("app_crashed", {"app": self.id})

    def stop(self) -> None:
        if not self.running or self.consumer is None:
            return
        self.incarnation += 1
        self._interrupt()
        with _unrecorded(self.cluster):
            self.consumer.close()
        self.running = False
        self.cluster.emit("app_stopped", {"app": self.id})

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


class ProducerApp:
    kind = "producer"

    def __init__(
        self,
        cluster: Cluster,
        app_id: int,
        topic: str,
        rate_per_sec: float,
        keys: int,
        hot_key_share: float,
        acks: Any,
        idempotence: bool,
        value_bytes: int,
        config: dict[str, Any] | None,
    ) -> None:
        if rate_per_sec <= 0 or keys < 0 or not 0 <= hot_key_share <= 1 or value_bytes < 0:
            raise ValueError(
                "rate must be positive, keys not negative, hot_key_share within [0, 1]"
            )
        self.cluster = cluster
        self.id = app_id
        self.topic = topic
        self.rate_per_sec = float(rate_per_sec)
        self.keys = keys
        self.hot_key_share = float(hot_key_share)
        self.value_bytes = value_bytes
        self.config = {**dict(config or {}), "acks": acks, "enable.idempotence": idempotence}
        with _unrecorded(cluster):
            self.producer: KafkaProducer = cluster.producer(self.config)
        self.running = False
        self.sent = 0
        self.acknowledged = 0
        self.failed = 0
        self.per_key: dict[str, int] = {}
        self.incarnation = 0
        self.start()

    def interval_ms(self) -> int:
        return max(1, round(1000 / self.rate_per_sec))

    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self.incarnation += 1
        self._schedule(0)

    def stop(self) -> None:
        self.running = False
        self.incarnation += 1

    def set_rate(self, rate_per_sec: float) -> None:
        if rate_per_sec <= 0:
            raise ValueError("rate must be positive")
        self.rate_per_sec = float(rate_per_sec)

    def _schedule(self, delay_ms: int) -> None:
        incarnation = self.incarnation
        self.cluster.scheduler.call_later(delay_ms, lambda: self._tick(incarnation))

    def _pick_key(self) -> bytes | None:
        rng = self.cluster.rng
        if self.keys == 0:
            return None
        if self.hot_key_share > 0 and rng.random() < self.hot_key_share:
            return b"hot"
        return f"key-{rng.randrange(self.keys)}".encode()

    def _tick(self, incarnation: int) -> None:
        if not self.running or incarnation != self.incarnation:
            return
        producer = self.producer
        if self.topic not in producer.topics:
            producer.request_metadata_update({self.topic})  # never block inside a timer
        else:
            key = self._pick_key()
            value = (f"{self.id}-{self.sent}-".encode() + b"x" * self.value_bytes)[
                : max(self.value_bytes, 1)
            ]
            try:
                future = producer._send(self.topic, value, key, None, None, None)
            except KafkaError as exc:
                self.failed += 1
                self.cluster.emit("app_error", {"app": self.id, "error": type(exc).__name__})
            else:
                self.sent += 1
                name = "null" if key is None else key.decode()
                self.per_key[name] = self.per_key.get(name, 0) + 1
                future.add_callback(self._on_done)
        self._schedule(self.interval_ms())

    def _on_done(self, metadata: Any, error: KafkaError | None) -> None:
        if error is None:
            self.acknowledged += 1
        else:
            self.failed += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "topic": self.topic,
            "running": self.running,
            "rate_per_sec": self.rate_per_sec,
            "keys": self.keys,
            "hot_key_share": self.hot_key_share,
            "acks": self.config["acks"],
            "idempotence": self.config["enable.idempotence"],
            "client": self.producer.client_id,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "per_key": dict(sorted(self.per_key.items())),
        }


class AppService:
    """`cluster.services["apps"]`: start and steer apps; every call here is recorded."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    @property
    def apps(self) -> list[Any]:
        return self.cluster.apps

    def consumer_app(
        self,
        group_id: str,
        topics: list[str] | str,
        poll_interval_ms: int = 100,
        processing_ms_per_record: int = 0,
        commit: str = "auto",
        config: dict[str, Any] | None = None,
    ) -> ConsumerApp:
        names = [topics] if isinstance(topics, str) else sorted(set(topics))
        self.cluster._record_call(
            "apps.consumer_app",
            {
                "group_id": group_id,
                "topics": names,
                "poll_interval_ms": poll_interval_ms,
                "processing_ms_per_record": processing_ms_per_record,
                "commit": commit,
                "config": config,
            },
        )
        app = ConsumerApp(
            self.cluster,
            len(self.apps) + 1,
            group_id,
            names,
            poll_interval_ms,
            processing_ms_per_record,
            commit,
            config,
        )
        self.apps.append(app)
        return app

    def producer_app(
        self,
        topic: str,
        rate_per_sec: float = 10,
        keys: int = 10,
        hot_key_share: float = 0.0,
        acks: Any = "all",
        idempotence: bool = True,
        value_bytes: int = 20,
        config: dict[str, Any] | None = None,
    ) -> ProducerApp:
        self.cluster._record_call(
            "apps.producer_app",
            {
                "topic": topic,
                "rate_per_sec": rate_per_sec,
                "keys": keys,
                "hot_key_share": hot_key_share,
                "acks": acks,
                "idempotence": idempotence,
                "value_bytes": value_bytes,
                "config": config,
            },
        )
        app = ProducerApp(
            self.cluster,
            len(self.apps) + 1,
            topic,
            rate_per_sec,
            keys,
            hot_key_share,
            acks,
            idempotence,
            value_bytes,
            config,
        )
        self.apps.append(app)
        return app

    def control(self, app_id: int, action: str, value: Any = None) -> None:
        """Steer an app: consumers take crash, restart, stop, start, set_processing_ms,
        set_poll_interval_ms; producers take stop, start, set_rate."""
        self.cluster._record_call(
            "apps.control", {"app_id": app_id, "action": action, "value": value}
        )
        if not 1 <= app_id <= len(self.apps):
            raise ValueError(f"There is no app {app_id}.")
        app = self.apps[app_id - 1]
        allowed = {
            "consumer": (
                "crash",
                "restart",
                "stop",
                "start",
                "set_processing_ms",
                "set_poll_interval_ms",
            ),
            "producer": ("stop", "start", "set_rate"),
        }[app.kind]
        if action not in allowed:
            raise ValueError(f"A {app.kind} app cannot {action!r}; it can {', '.join(allowed)}.")
        method: Callable[..., None] = getattr(app, action)
        if action.startswith("set_"):
            method(value)
        else:
            method()

    def snapshot(self) -> list[dict[str, Any]]:
        return [app.snapshot() for app in self.apps]


def _replay_consumer_app(cluster: Cluster, args: dict[str, Any]) -> None:
    cluster.services["apps"].consumer_app(**args)


def _replay_producer_app(cluster: Cluster, args: dict[str, Any]) -> None:
    cluster.services["apps"].producer_app(**args)


def _replay_control(cluster: Cluster, args: dict[str, Any]) -> None:
    cluster.services["apps"].control(**args)


def install(cluster: Cluster) -> None:
    cluster.services["apps"] = AppService(cluster)


def _register() -> None:
    from engine.cluster import _CUSTOM_OPS, _EXTENSIONS

    if install not in _EXTENSIONS:
        _EXTENSIONS.append(install)
    _CUSTOM_OPS["apps.consumer_app"] = _replay_consumer_app
    _CUSTOM_OPS["apps.producer_app"] = _replay_producer_app
    _CUSTOM_OPS["apps.control"] = _replay_control


_register()
