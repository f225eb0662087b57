"""Benchmark: produce N keyed records and consume them back, end to end.

    python -m scripts.bench.engine --records 20000
    python -m scripts.bench.engine --records 20000 --runs 5

Prints records per second for the engine with RF=1 acks=1, with RF=3 acks=all (as a ratio to
RF=1 in the same run) and for the full run (RF=3, acks=all, idempotent, consumed through a
consumer group while the log cleaner compacts the topic), for mockafka-py (an in-memory fake
of a Kafka client, a dev dependency) doing the same work, and for a bare Python list, with the
ratios; then the cost of fast-forwarding an idle cluster by 7 days and of a snapshot of a
9-broker, 200-partition cluster. This module measures wall time on purpose; nothing else in the
engine does.

`--runs N` instead alternates N rounds of (engine full run, mockafka-py, engine RF=1 acks=1), so
machine noise hits both sides alike, and prints each round's ratios (of wall time, and of CPU
time beside them) and their medians. Every timed run starts after a `gc.collect()`: a finished
engine run leaves its cluster as cyclic garbage, which is not the next run's work.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import time
from collections.abc import Callable
from typing import Any

from engine.cluster import Cluster
from engine.common.records import TopicPartition
from engine.partitioner import partition_for_key

PARTITIONS = 6
# A benchmark needs more room than a learner's sandbox.
BENCH_LIMITS = {"max_retained_records": 10_000_000, "max_retained_bytes": 4 * 1024**3}


def _payloads(count: int) -> list[tuple[bytes, bytes]]:
    return [(b"key-%d" % (i % 1000), b"value-%08d" % i) for i in range(count)]


def run_engine(records: int, replication_factor: int, acks: str) -> int:
    cluster = Cluster(brokers=max(3, replication_factor), seed=1, limits=BENCH_LIMITS)
    cluster.create_topic(
        "bench", PARTITIONS, replication_factor, {"min.insync.replicas": min(2, replication_factor)}
    )
    cluster.history.enabled = False  # the checker's bookkeeping is not part of the workload
    producer = cluster.producer({"acks": acks, "linger.ms": 5})
    for key, value in _payloads(records):
        producer.send("bench", value=value, key=key)
    producer.flush()
    consumer = cluster.consumer({"auto.offset.reset": "earliest", "max.poll.records": 5000})
    consumer.assign([TopicPartition("bench", p) for p in range(PARTITIONS)])
    consumed = 0
    while consumed < records:
        batch = consumer.poll(1000)
        if not batch:
            break
        consumed += len(batch)
    return consumed


def run_full(records: int) -> int:
    """Issue 6's full run: RF=3, acks=all, idempotent producer, a consumer group, and the log
    cleaner compacting the topic while it is written (1,000 distinct keys, small segments)."""
    cluster = Cluster(
        brokers=3, seed=1, limits=BENCH_LIMITS, config={"log.cleaner.backoff.ms": 200}
    )
    cluster.create_topic(
        "bench",
        PARTITIONS,
        3,
        {
            "min.insync.replicas": 2,
            "cleanup.policy": "compact",
            # About eight segments per partition, whatever the record count, so cleaning runs.
            "segment.bytes": max(1024, records * 5 // PARTITIONS),
            "min.cleanable.dirty.ratio": 0.1,
        },
    )
    cluster.history.enabled = False
    producer = cluster.producer(
        {"acks": "all", "enable.idempotence": True, "linger.ms": 5, "batch.size": 4096}
    )
    for key, value in _payloads(records):
        producer.send("bench", value=value, key=key)
    producer.flush()
    consumer = cluster.consumer(
        {"group.id": "bench", "auto.offset.reset": "earliest", "max.poll.records": 5000}
    )
    consumer.subscribe(["bench"])
    ends = {p.partition: p.high_watermark for p in cluster.describe_topic("bench").partitions}
    consumed = 0
    for _ in range(1000):
        consumed += len(consumer.poll(1000))
        positions = {tp.partition: o for tp, o in consumer.positions.items()}
        if len(positions) == PARTITIONS and all(positions[p] >= ends[p] for p in ends):
            break
    consumer.commit()
    compactions = sum(1 for e in cluster.events if e.kind == "log_compacted")
    if compactions == 0:
        raise RuntimeError("the full run expected the cleaner to compact the topic")
    return records


def idle_fast_forward(days: int = 7) -> tuple[float, int]:
    """Seconds and timers to fast-forward an idle 3-broker cluster by `days`."""
    cluster = Cluster(brokers=3, seed=1)
    cluster.create_topic("idle", 6, 3)
    before = cluster.scheduler.executed
    start = time.perf_counter()
    cluster.advance(days * 24 * 3600 * 1000)
    return time.perf_counter() - start, cluster.scheduler.executed - before


def run_mockafka(records: int) -> int:
    # mockafka ships no complete type hints: use it as an untyped module.
    mockafka: Any = importlib.import_module("mockafka")
    admin_client: Any = importlib.import_module("mockafka.admin_client")
    admin = admin_client.FakeAdminClientImpl(clean=True)
    admin.create_topic(
        admin_client.NewTopic("bench", num_partitions=PARTITIONS, replication_factor=1)
    )
    producer = mockafka.FakeProducer()
    for key, value in _payloads(records):
        # mockafka needs the partition spelled out; give it the same one Kafka would choose.
        producer.produce(
            "bench", value=value, key=key, partition=partition_for_key(key, PARTITIONS)
        )
    producer.flush()
    consumer = mockafka.FakeConsumer()
    consumer.subscribe(["bench"])
    consumed = 0
    while consumed < records:
        message = consumer.poll(0)
        if message is None:
            break
        consumed += 1
    return consumed


def run_list(records: int) -> int:
    partitions: list[list[tuple[bytes, bytes]]] = [[] for _ in range(PARTITIONS)]
    for key, value in _payloads(records):
        partitions[partition_for_key(key, PARTITIONS)].append((key, value))
    return sum(1 for partition in partitions for _ in partition)


def _timed(work: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    """The best of `repeat` runs (the least disturbed by other processes), after a warm-up."""
    best = float("inf")
    done = 0
    for _ in range(repeat):
        # A finished run leaves its cluster (reference cycles) for the cyclic garbage collector;
        # collect it now, untimed, so the next run does not pay for freeing the previous one.
        gc.collect()
        start = time.perf_counter()
        done = work()
        best = min(best, time.perf_counter() - start)
    return best, done


def snapshot_cost(repeat: int = 20) -> float:
    cluster = Cluster(brokers=9, seed=1)
    for index in range(4):
        cluster.create_topic(f"topic-{index}", 50, 3)
    producer = cluster.producer({"acks": 1})
    for i in range(2000):
        producer.send(f"topic-{i % 4}", value=b"v", key=b"k%d" % i)
    producer.flush()
    cluster.advance(1000)
    start = time.perf_counter()
    for _ in range(repeat):
        cluster.snapshot()
    return (time.perf_counter() - start) / repeat


def _once(work: Callable[[], int]) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one run (CPU time leaves out the time this process was
    waiting for a core, which on a busy machine is most of the noise)."""
    gc.collect()  # the previous run's garbage is not this run's work (see _timed)
    start, cpu_start = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - start, time.process_time() - cpu_start


def alternating(records: int, runs: int) -> dict[str, Any]:
    """`runs` rounds of engine full run, mockafka-py, engine RF=1 acks=1, one after the other;
    each round's ratios compare runs made seconds apart, the medians summarise the rounds."""
    run_engine(500, 3, "all")  # warm-up: imports, extension modules, caches
    run_full(3000)  # ... and the group consumer's modules, imported on first use
    run_mockafka(500)
    full_ratios: list[float] = []
    rf1_ratios: list[float] = []
    full_cpu_ratios: list[float] = []
    rf1_cpu_ratios: list[float] = []
    print(f"{runs} alternating rounds, {records} keyed records to {PARTITIONS} partitions")
    for round_number in range(1, runs + 1):
        full, full_cpu = _once(lambda: run_full(records))
        mock, mock_cpu = _once(lambda: run_mockafka(records))
        rf1, rf1_cpu = _once(lambda: run_engine(records, 1, "1"))
        # Same record count on both sides: the ratio of rates is the inverse ratio of times.
        full_ratios.append(mock / full)
        rf1_ratios.append(mock / rf1)
        full_cpu_ratios.append(mock_cpu / full_cpu)
        rf1_cpu_ratios.append(mock_cpu / rf1_cpu)
        print(
            f"  round {round_number}: full run {full:.3f} s, mockafka-py {mock:.3f} s, "
            f"RF=1 {rf1:.3f} s; full run / mockafka-py = {mock / full:.2f} "
            f"(CPU {mock_cpu / full_cpu:.2f}), RF=1 / mockafka-py = {mock / rf1:.2f} "
            f"(CPU {mock_cpu / rf1_cpu:.2f})"
        )
    full_median = statistics.median(full_ratios)
    rf1_median = statistics.median(rf1_ratios)
    full_cpu_median = statistics.median(full_cpu_ratios)
    rf1_cpu_median = statistics.median(rf1_cpu_ratios)
    print(
        f"  median engine full run / mockafka-py = {full_median:.2f} "
        f"(CPU time: {full_cpu_median:.2f})"
    )
    print(f"  median engine RF=1 / mockafka-py = {rf1_median:.2f} (CPU time: {rf1_cpu_median:.2f})")
    return {
        "records": records,
        "full_ratios": full_ratios,
        "rf1_ratios": rf1_ratios,
        "full_median": full_median,
        "rf1_median": rf1_median,
        "full_cpu_median": full_cpu_median,
        "rf1_cpu_median": rf1_cpu_median,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--skip-mockafka", action="store_true")
    parser.add_argument(
        "--runs",
        type=int,
        default=0,
        help="alternate this many rounds of full run / mockafka-py / RF=1 and print the medians",
    )
    args = parser.parse_args(argv)
    n = args.records
    if args.runs > 0:
        if args.skip_mockafka:
            parser.error("--runs compares with mockafka-py; it cannot skip it")
        return alternating(n, args.runs)
    results: dict[str, Any] = {"records": n}
    rows: list[tuple[str, float, int]] = []
    run_engine(500, 3, "all")  # warm-up: imports, extension modules, caches
    seconds, done = _timed(lambda: run_engine(n, 1, "1"))
    rows.append(("engine RF=1 acks=1", seconds, done))
    seconds, done = _timed(lambda: run_engine(n, 3, "all"))
    rows.append(("engine RF=3 acks=all", seconds, done))
    seconds, done = _timed(lambda: run_full(n), repeat=1)
    rows.append(("engine full run", seconds, done))
    if not args.skip_mockafka:
        seconds, done = _timed(lambda: run_mockafka(n))
        rows.append(("mockafka-py", seconds, done))
    seconds, done = _timed(lambda: run_list(n))
    rows.append(("python list", seconds, done))
    rates = {name: done / seconds for name, seconds, done in rows}
    base = rates["engine RF=1 acks=1"]
    print(f"produce {n} keyed records to {PARTITIONS} partitions and consume them back")
    for name, seconds, done in rows:
        rate = rates[name]
        print(
            f"  {name:<22} {rate:>12,.0f} records/s  ({seconds:.3f} s, {done} consumed)"
            f"  engine RF=1 / this = {base / rate:.3f}"
        )
    print(f"  RF=3 acks=all / RF=1 acks=1 = {rates['engine RF=3 acks=all'] / base:.3f}")
    print(
        f"  full run (RF=3 acks=all idempotent, group, compaction) / RF=1 acks=1 = "
        f"{rates['engine full run'] / base:.3f}"
    )
    if "mockafka-py" in rates:
        print(f"  engine RF=1 / mockafka-py = {base / rates['mockafka-py']:.2f}")
        print(
            f"  engine full run / mockafka-py = "
            f"{rates['engine full run'] / rates['mockafka-py']:.2f}"
        )
    idle_seconds, idle_timers = idle_fast_forward()
    print(
        f"  fast-forward an idle 3-broker cluster by 7 days: {idle_seconds:.2f} s, "
        f"{idle_timers} timers"
    )
    results.update(idle_seconds=idle_seconds, idle_timers=idle_timers)
    cost = snapshot_cost()
    print(
        f"  snapshot of 9 brokers, 200 partitions (RF=3): {cost * 1000:.2f} ms "
        f"({1 / cost:.0f} per second)"
    )
    results.update(rates=rates, snapshot_ms=cost * 1000)
    return results


if __name__ == "__main__":
    main()
