"""Simulated client applications that run on the cluster's own clock.

A lesson needs traffic without a caller driving every poll: a `ConsumerApp` polls every
`poll_interval_ms`, spends `processing_ms_per_record` on each record and commits by its policy
(`auto`: the consumer's auto commit; `after`: commit once a batch is processed, at-least-once;
`before`: commit as soon as a batch arrives, at-most-once); it can be slowed, crashed and
restarted. A `ProducerApp` sends `rate_per_sec` records with keys drawn from `keys` distinct
keys, a share of them on one hot key.

Apps are created and steered through `cluster.apps`, whose methods are recorded in
the cluster's log (`apps.*` operations) so `Cluster.from_log` replays them exactly; everything
they do afterwards happens in timers on the cluster's scheduler, so it replays by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.clients.consumer.kafka_consumer import KafkaConsumer
    from engine.clients.producer.kafka_producer import KafkaProducer
    from engine.sim.context import SimContext

from engine.clients.apps.consumer_app import ConsumerApp
from engine.clients.apps.producer_app import ProducerApp


class AppService:
    """`cluster.apps`: start and steer apps; every call here is recorded."""

    def __init__(
        self,
        ctx: SimContext,
        new_producer: Callable[[dict[str, Any]], KafkaProducer],
        new_consumer: Callable[[dict[str, Any]], KafkaConsumer],
    ) -> None:
        self.ctx = ctx
        self.new_producer = new_producer
        self.new_consumer = new_consumer
        self.apps: list[ConsumerApp | ProducerApp] = []

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
        self.ctx.record_call(
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
            self.ctx,
            self.new_consumer,
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
        self.ctx.record_call(
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
            self.ctx,
            self.new_producer,
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
        set_poll_interval_ms, commit (asynchronous); producers take stop, start, set_rate."""
        self.ctx.record_call("apps.control", {"app_id": app_id, "action": action, "value": value})
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
                "commit",
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
