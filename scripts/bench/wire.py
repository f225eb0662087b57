"""Benchmark: a real Kafka client (kafka-python) through the wire listeners to a simulated cluster.

    python -m scripts.bench.wire --records 2000

Runs the listeners' Django-free core (`webapp/kafka_listener/server.py`) in front of a
`ClusterRuntime` with a 3-broker cluster and a topic of 3 partitions, RF=3, the cluster clock
running in real time at 1x in 10 ms ticks, and an in-memory command log kept the way the web
app's host keeps it in the database (time coalesced into `advance` entries before each
`wire_request`). Prints the records per second a kafka-python producer gets acknowledged
(acks=all, idempotent), the records per second a kafka-python group consumer reads (from its
first poll, so the group's 3 s initial rebalance delay, Kafka's default, is included), how many
requests a consumer that has caught up and keeps polling logs per second, and whether replaying
the log rebuilds an equal cluster. This module measures wall time on purpose.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from engine.server.remote_requests import to_json
from lessons.scenarios import COMMANDS, ClusterRuntime, ClusterSpec, Limits, validate
from lessons.scenarios.limits import TICK_MS
from webapp.kafka_listener.server import ClusterListeners, ListenerLimits

SPEC = ClusterSpec(seed=7)


class MemoryHost:
    """What the engine host does for the listeners, with the log in a list."""

    def __init__(self) -> None:
        self.runtime = ClusterRuntime(SPEC)
        self.log: list[dict[str, Any]] = []
        self.pending_ms = 0
        self.lock = asyncio.Lock()
        self.wire_requests = 0
        self.apply(
            {"type": "create_topic", "name": "orders", "partitions": 3, "replication_factor": 3}
        )
        self.listeners = ClusterListeners(
            self, cluster_id="bench", limits=ListenerLimits(requests_per_second=10_000)
        )
        self.runtime.cluster.remote.sink = self.listeners.deliver

    def apply(self, payload: dict[str, Any]) -> None:
        if self.pending_ms:
            self.log.append({"type": "advance", "ms": self.pending_ms})
            self.pending_ms = 0
        self.log.append(payload)
        result = self.runtime.apply(payload)
        assert result.ok, result

    async def submit(self, connection: int, broker_id: int, request: dict[str, Any]) -> None:
        payload, errors = validate(
            COMMANDS["wire_request"],
            {"connection": connection, "broker_id": broker_id, "request": to_json(request)},
            runtime_limits=Limits(),
        )
        assert not errors, errors
        async with self.lock:
            self.wire_requests += 1
            self.apply(payload)

    async def clock(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        owed = 0.0
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = loop.time()
            owed += (now - last) * 1000.0
            last = now
            whole = int(owed) // TICK_MS * TICK_MS
            if whole <= 0:
                continue
            owed -= whole
            async with self.lock:
                self.runtime.advance(whole)
                self.pending_ms += whole
            await self.listeners.sync({b.id: b.alive for b in self.runtime.cluster.brokers()})


def produce(bootstrap: str, records: int) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    started = time.perf_counter()
    futures = [producer.send("orders", key=b"k%d" % i, value=b"v%d" % i) for i in range(records)]
    producer.flush(timeout=300)
    for future in futures:
        future.get(timeout=60)
    elapsed = time.perf_counter() - started
    producer.close(timeout=5)
    return elapsed


def consume(bootstrap: str, records: int) -> tuple[float, Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        "orders", bootstrap_servers=bootstrap, group_id="bench", auto_offset_reset="earliest"
    )
    started = time.perf_counter()
    seen = 0
    while seen < records and time.perf_counter() - started < 300:
        seen += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
    return time.perf_counter() - started, consumer


def keep_polling(consumer: Any, seconds: float) -> None:
    """A consumer that has read everything keeps polling (long-poll fetches, heartbeats)."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        consumer.poll(timeout_ms=200)


async def run(records: int, idle_s: float) -> None:
    host = MemoryHost()
    stop = asyncio.Event()
    await host.listeners.sync({1: True, 2: True, 3: True})
    clock = asyncio.create_task(host.clock(stop))
    bootstrap = host.listeners.bootstrap_servers()
    produce_s = await asyncio.to_thread(produce, bootstrap, records)
    consume_s, consumer = await asyncio.to_thread(consume, bootstrap, records)
    before = host.wire_requests
    await asyncio.to_thread(keep_polling, consumer, idle_s)
    idle_requests = host.wire_requests - before
    await asyncio.to_thread(consumer.close)
    stop.set()
    await clock
    await host.listeners.close()
    async with host.lock:
        host.apply({"type": "advance", "ms": 0})
        live = host.runtime.cluster.snapshot()
    replayed = ClusterRuntime.replay(SPEC, host.log).cluster.snapshot()
    print(f"records                     {records}")
    print(f"produced (acks=all, RF=3)   {records / produce_s:,.0f} records/s ({produce_s:.2f} s)")
    print(f"consumed in a group         {records / consume_s:,.0f} records/s ({consume_s:.2f} s)")
    print(f"caught-up consumer logs     {idle_requests / idle_s:.1f} requests/s")
    print(f"commands in the log         {len(host.log)} ({host.wire_requests} wire requests)")
    print(f"replay gives an equal snapshot: {replayed == live}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.records, args.idle_seconds))


if __name__ == "__main__":
    main()
