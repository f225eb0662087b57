"""Determinism: the same constructor and the same calls, in the same order, give equal snapshots."""

from __future__ import annotations

from typing import Any

from engine import Cluster, TopicPartition


def workload(seed: int) -> Cluster:
    cluster = Cluster(brokers=3, seed=seed)
    cluster.create_topic("t", 3, 3, {"min.insync.replicas": 2})
    producer = cluster.producer({"acks": "all"})
    loose = cluster.producer({"acks": 1, "enable.idempotence": False})
    for i in range(40):
        producer.send("t", value=b"v%d" % i, key=b"k%d" % (i % 7))
        loose.send("t", value=b"n%d" % i)  # null keys: the sticky partitioner draws from the RNG
        if i == 10:
            cluster.stop_broker(2)
        if i == 20:
            cluster.partition_network([{1, "clients"}])
        if i == 30:
            cluster.heal_network()
            cluster.start_broker(2)
        cluster.advance(37)
    producer.flush()
    loose.flush()
    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("t", p) for p in range(3)])
    for _ in range(5):
        consumer.poll(300)
    cluster.advance(60_000)
    return cluster


def test_the_same_calls_give_equal_snapshots() -> None:
    assert workload(5).snapshot() == workload(5).snapshot()


def test_the_same_calls_give_the_same_events() -> None:
    first: list[Any] = [(e.time_ms, e.kind, e.data) for e in workload(8).events]
    second: list[Any] = [(e.time_ms, e.kind, e.data) for e in workload(8).events]
    assert first == second


def test_another_seed_gives_another_run() -> None:
    assert workload(5).snapshot() != workload(6).snapshot()


def test_a_snapshot_is_json_safe() -> None:
    import json

    snapshot = workload(3).snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot


def test_the_engine_uses_neither_wall_clock_nor_module_random() -> None:
    import pathlib
    import re

    engine = pathlib.Path(__file__).resolve().parents[2] / "engine"
    for path in engine.glob("*.py"):
        if path.name == "bench.py":
            continue  # the benchmark measures wall time on purpose
        text = path.read_text()
        assert not re.search(r"\btime\.(time|monotonic|perf_counter)\(|datetime\.now\(", text), (
            path.name
        )
        assert not re.search(r"\brandom\.(random|randint|choice|shuffle|randrange)\(", text), (
            path.name
        )
