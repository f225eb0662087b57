"""A simulated producer application on the cluster's clock (see `engine.clients.apps.app_service`):
it sends `rate_per_sec` records with keys drawn from `keys` distinct keys, a share of them on one
hot key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.clients.producer.kafka_producer import SendWouldBlock
from engine.errors import KafkaError

if TYPE_CHECKING:
    from engine.clients.producer.kafka_producer import KafkaProducer
    from engine.sim.context import SimContext


class ProducerApp:
    kind = "producer"

    def __init__(
        self,
        ctx: SimContext,
        new_producer: Callable[[dict[str, Any]], KafkaProducer],
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
        self.ctx = ctx
        self.id = app_id
        self.topic = topic
        self.rate_per_sec = float(rate_per_sec)
        self.keys = keys
        self.hot_key_share = float(hot_key_share)
        self.value_bytes = value_bytes
        self.config = {**dict(config or {}), "acks": acks, "enable.idempotence": idempotence}
        # The app's own producer is part of the app's recorded call, not a new entry.
        with ctx.unrecorded():
            self.producer: KafkaProducer = new_producer(self.config)
        self.running = False
        self.sent = 0
        self.acknowledged = 0
        self.failed = 0
        self.per_key: dict[str, int] = {}
        self.incarnation = 0
        # A send waiting for buffer memory, as the application's thread would sit in send():
        # the record it holds, since when, and which retry timer is the live one.
        self._held: tuple[bytes | None, bytes] | None = None
        self.blocked_since_ms: int | None = None
        self._retry_token = 0
        self._needed = 0
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
        self._held = None
        self.blocked_since_ms = None

    def set_rate(self, rate_per_sec: float) -> None:
        if rate_per_sec <= 0:
            raise ValueError("rate must be positive")
        self.rate_per_sec = float(rate_per_sec)

    def _schedule(self, delay_ms: int) -> None:
        incarnation = self.incarnation
        self.ctx.scheduler.call_later(delay_ms, lambda: self._tick(incarnation))

    def _pick_key(self) -> bytes | None:
        rng = self.ctx.rng
        if self.keys == 0:
            return None
        if self.hot_key_share > 0 and rng.random() < self.hot_key_share:
            return b"hot"
        return f"key-{rng.randrange(self.keys)}".encode()

    def _tick(self, incarnation: int, token: int | None = None) -> None:
        if not self.running or incarnation != self.incarnation:
            return
        if token is not None and token != self._retry_token:
            return  # the other of the two wake-ups of a blocked send already ran
        producer = self.producer
        if self.topic not in producer.topics:
            producer.request_metadata_update({self.topic})  # never block inside a timer
        else:
            if self._held is None:
                key = self._pick_key()
                value = (f"{self.id}-{self.sent}-".encode() + b"x" * self.value_bytes)[
                    : max(self.value_bytes, 1)
                ]
                self._held = (key, value)
            key, value = self._held
            try:
                future = producer._send(self.topic, value, key, None, None, None, blocking=False)
            except SendWouldBlock as wait:
                if self._wait_for_memory(wait.needed, incarnation):
                    return  # blocked in send(): no new record until memory comes back
            except KafkaError as exc:
                self._held = None
                self.failed += 1
                self.ctx.emit("app_error", {"app": self.id, "error": type(exc).__name__})
            else:
                self._unblocked(future)
                self.sent += 1
                name = "null" if key is None else key.decode()
                self.per_key[name] = self.per_key.get(name, 0) + 1
                future.add_callback(self._on_done)
        self._schedule(self.interval_ms())

    def _wait_for_memory(self, needed: int, incarnation: int) -> bool:
        """Kafka's send() waiting in BufferPool.allocate: wake when a batch's buffer comes back
        or when max.block.ms runs out. False: it ran out, the record failed."""
        producer = self.producer
        now = self.ctx.now_ms
        max_block_ms = int(producer.config["max.block.ms"])
        self._needed = needed
        if self.blocked_since_ms is None:
            self.blocked_since_ms = now
            producer.emit_buffer_event(
                "producer_buffer_blocked", needed, None, max_block_ms=max_block_ms, app=self.id
            )
        waited = now - self.blocked_since_ms
        if waited >= max_block_ms:
            self._held = None
            self.blocked_since_ms = None
            self.failed += 1
            producer.buffer_exhausted_records += 1
            producer.emit_buffer_event(
                "producer_buffer_exhausted", needed, None, waited_ms=waited, app=self.id
            )
            return False
        self._retry_token += 1
        token = self._retry_token
        scheduler = self.ctx.scheduler
        producer.buffer_pool.wait_for_memory(
            lambda: scheduler.call_later(0, lambda: self._tick(incarnation, token))
        )
        scheduler.call_at(
            self.blocked_since_ms + max_block_ms, lambda: self._tick(incarnation, token)
        )
        return True

    def _unblocked(self, future: Any) -> None:
        self._held = None
        self._retry_token += 1
        if self.blocked_since_ms is not None:
            waited = self.ctx.now_ms - self.blocked_since_ms
            self.blocked_since_ms = None
            self.producer.emit_buffer_event(
                "producer_buffer_unblocked", self._needed, future, waited_ms=waited, app=self.id
            )

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
            "blocked_since_ms": self.blocked_since_ms,
            "per_key": dict(sorted(self.per_key.items())),
        }
