"""A simulated producer application on the cluster's clock (see `engine.clients.apps.app_service`):
it sends `rate_per_sec` records with keys drawn from `keys` distinct keys, a share of them on one
hot key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
        self.ctx.scheduler.call_later(delay_ms, lambda: self._tick(incarnation))

    def _pick_key(self) -> bytes | None:
        rng = self.ctx.rng
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
                self.ctx.emit("app_error", {"app": self.id, "error": type(exc).__name__})
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
