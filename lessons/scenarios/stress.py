"""Stress it: many seeded fault schedules against one configuration, judged by the checker.

Each run builds a fresh engine cluster with the stage's shape (brokers, broker config, the topic
with its config) and a producer with the stage's producer config, sends keyed records on the
cluster clock while a schedule drawn from the run's seed kills brokers, cuts the network and
loses responses, then heals everything, reads the topic back and asks `engine.checker.check`
what the clients were told that the logs no longer say. A run is a pure function of its
parameters and seed, so any run can be rebuilt later, for example to open it on the stage at
the moment its first anomaly happened.

Each run is a `ClusterRuntime`: its topic and its faults are commands of the command table,
applied through `ClusterRuntime.apply` exactly as the stage, lessons and scenarios apply them.
Plain functions only (no Django): the Celery task in webapp/tasks.py and the views call them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from typing import Any

from engine import Cluster, TopicPartition
from engine.checker import Anomaly, check
from engine.errors import KafkaError
from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec

logger = logging.getLogger(__name__)

# How one run is shaped; small on purpose: a run must cost a few hundred ms of CPU.
STEP_MS = 100
SCHEDULE_MS = 20_000
SETTLE_MS = 15_000
RECORDS_PER_STEP = 2
KEYS = 5
MAX_PARTITIONS = 3
FAULTS_PER_RUN = (2, 4)
MAX_RUNS = 500
REPORTED_KINDS = ("lost", "duplicated", "reordered", "aborted_read")
KIND_LABELS = {
    "lost": "acknowledged records lost",
    "duplicated": "duplicates",
    "reordered": "records read out of order per key",
    "aborted_read": "aborted records read",
}
PRODUCER_KEYS = (
    "acks",
    "enable.idempotence",
    "retries",
    "max.in.flight.requests.per.connection",
    "delivery.timeout.ms",
    "request.timeout.ms",
    "linger.ms",
)


@dataclass(frozen=True)
class StressConfig:
    """What every run of one experiment shares: the stage's configuration."""

    brokers: int = 3
    controllers: int = 3
    broker_config: dict[str, Any] = field(default_factory=dict)
    topic: str = "orders"
    partitions: int = 3
    replication_factor: int = 3
    topic_config: dict[str, Any] = field(default_factory=dict)
    producer_config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StressConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def describe(self) -> str:
        acks = self.producer_config.get("acks", "all")
        min_isr = self.topic_config.get("min.insync.replicas", 1)
        return (
            f"{self.brokers} brokers, topic {self.topic} ({self.partitions} partitions, "
            f"RF {self.replication_factor}, min.insync.replicas={min_isr}), acks={acks}"
        )


@dataclass(frozen=True)
class Fault:
    at_ms: int
    kind: str  # stop_broker, start_broker, partition_network, heal_network, lose_responses
    broker_id: int = 0
    count: int = 0

    def describe(self) -> str:
        if self.kind == "stop_broker":
            return f"{self.at_ms} ms: kill broker {self.broker_id}"
        if self.kind == "start_broker":
            return f"{self.at_ms} ms: restart broker {self.broker_id}"
        if self.kind == "partition_network":
            return f"{self.at_ms} ms: cut broker {self.broker_id} off from the cluster"
        if self.kind == "heal_network":
            return f"{self.at_ms} ms: heal the network"
        return f"{self.at_ms} ms: lose the next {self.count} responses of broker {self.broker_id}"


@dataclass(frozen=True)
class RunResult:
    seed: int
    anomalies: list[dict[str, Any]]
    counts: dict[str, int]
    acknowledged: int
    faults: list[str]

    @property
    def first_anomaly_ms(self) -> int | None:
        return self.anomalies[0]["time_ms"] if self.anomalies else None


def stress_config_from_runtime(runtime: Any, topic: str | None = None) -> StressConfig:
    """The stage's configuration: its brokers, its topic's shape and config, its producer."""
    cluster = runtime.cluster
    names = [t for t in cluster.list_topics() if not t.startswith("__")]
    name = topic if topic in names else (sorted(names)[0] if names else "orders")
    partitions, replication_factor, topic_config = 3, min(3, len(cluster.brokers())), {}
    if name in names:
        description = cluster.describe_topic(name)
        partitions = len(description.partitions)
        replication_factor = len(description.partitions[0].replicas)
        overrides = cluster.controller.topics[name].config
        topic_config = {
            key: value
            for key, value in dict(overrides).items()
            if key in ("min.insync.replicas", "unclean.leader.election.enable")
        }
        if "min.insync.replicas" not in topic_config:
            topic_config["min.insync.replicas"] = description.config.get("min.insync.replicas", 1)
    producer_config: dict[str, Any] = {}
    producer = getattr(runtime, "producer", None)
    if producer is not None:
        config = getattr(producer, "config", {}) or {}
        producer_config = {key: config[key] for key in PRODUCER_KEYS if key in config}
    spec = runtime.spec
    return StressConfig(
        brokers=spec.brokers,
        controllers=spec.controllers,
        broker_config=dict(spec.config or {}),
        topic=name,
        partitions=partitions,
        replication_factor=replication_factor,
        topic_config=_plain(topic_config),
        producer_config=_plain(producer_config),
    )


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe config values (lists such as cleanup.policy become comma-joined strings)."""
    plain: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, (list, tuple, set)):
            value = ",".join(str(v) for v in value)
        plain[key] = value
    return plain


def fault_schedule(config: StressConfig, seed: int) -> list[Fault]:
    """The faults of one run, drawn from its seed: each fault is undone before the run ends."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    brokers = list(range(1, config.brokers + 1))
    at = rng.randrange(500, 1500, STEP_MS)
    for _ in range(rng.randint(*FAULTS_PER_RUN)):
        if at >= SCHEDULE_MS - STEP_MS:
            break
        broker_id = rng.choice(brokers)
        kind = rng.choice(("stop_broker", "partition_network", "lose_responses"))
        # Some faults outlast broker.session.timeout.ms (9 s): the controller moves leadership.
        lasts = rng.randrange(1000, 14000, STEP_MS)
        if kind == "stop_broker":
            faults.append(Fault(at, "stop_broker", broker_id))
            faults.append(Fault(at + lasts, "start_broker", broker_id))
        elif kind == "partition_network":
            faults.append(Fault(at, "partition_network", broker_id))
            faults.append(Fault(at + lasts, "heal_network"))
        else:
            faults.append(Fault(at, "lose_responses", broker_id, count=rng.randint(1, 3)))
        at += rng.randrange(1000, 6000, STEP_MS)
    return sorted(faults, key=lambda f: f.at_ms)


def fault_command(fault: Fault, runtime: ClusterRuntime, topic: str) -> list[dict[str, Any]]:
    """The table's commands for one fault. A fault aimed at "a broker" hits a current leader
    when there is one: that is what hurts."""
    broker_id = fault.broker_id
    if fault.kind in ("stop_broker", "partition_network", "lose_responses"):
        leaders = [p.leader for p in runtime.cluster.describe_topic(topic).partitions]
        current = [b for b in leaders if b > 0]
        if current:
            broker_id = current[fault.broker_id % len(current)]
    if fault.kind == "stop_broker":
        return [{"type": "stop_broker", "broker_id": broker_id}]
    if fault.kind == "start_broker":
        return _restart_stopped(runtime)
    if fault.kind == "partition_network":
        # The broker keeps its clients but loses the other brokers and the controllers.
        return [{"type": "partition_network", "isolate": [str(broker_id), "clients"]}]
    if fault.kind == "heal_network":
        return [{"type": "heal_network"}]
    return [{"type": "lose_responses", "broker_id": broker_id, "count": fault.count}]


def _restart_stopped(runtime: ClusterRuntime) -> list[dict[str, Any]]:
    return [
        {"type": "start_broker", "broker_id": broker.id}
        for broker in runtime.cluster.brokers()
        if not broker.alive
    ]


def stress_runtime(
    config: StressConfig, seed: int, *, until_ms: int | None = None
) -> ClusterRuntime:
    """Build and run one run's runtime (up to `until_ms` of logical time, if given)."""
    runtime = ClusterRuntime(
        ClusterSpec(
            seed=seed,
            brokers=config.brokers,
            controllers=config.controllers,
            config=dict(config.broker_config) or None,
        )
    )
    cluster = runtime.cluster
    topic = config.topic
    partitions = max(1, min(config.partitions, MAX_PARTITIONS))
    runtime.apply(
        {
            "type": "create_topic",
            "name": topic,
            "partitions": partitions,
            "replication_factor": max(1, min(config.replication_factor, config.brokers)),
            "config": dict(config.topic_config) or None,
        }
    )
    producer = cluster.producer(config={**config.producer_config, "client.id": "stress-producer"})
    faults = fault_schedule(config, seed)
    sent = 0
    end = SCHEDULE_MS + SETTLE_MS
    while cluster.now_ms < end:
        if until_ms is not None and cluster.now_ms >= until_ms:
            return runtime
        now = cluster.now_ms
        while faults and faults[0].at_ms <= now:
            for command in fault_command(faults.pop(0), runtime, topic):
                runtime.apply(command)  # a refused fault (KafkaError) is a result, not a stop
        if now < SCHEDULE_MS:
            for _ in range(RECORDS_PER_STEP):
                key = f"key-{sent % KEYS}".encode()
                with contextlib.suppress(KafkaError):
                    producer.send(topic, value=f"v{sent}".encode(), key=key)
                sent += 1
        elif now == SCHEDULE_MS:
            runtime.apply({"type": "heal_network"})
            for command in _restart_stopped(runtime):
                runtime.apply(command)
        step = STEP_MS if until_ms is None else min(STEP_MS, until_ms - now)
        # The engine's own advance: this runtime has no host clients to poll on tick
        # boundaries, and one entry per step keeps the exported log (opened on a stage) short.
        cluster.advance(step)
    # Read everything back, as an application would (read_committed), for the checker.
    consumer = cluster.consumer(
        config={"auto.offset.reset": "earliest", "isolation.level": "read_committed"}
    )
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    for _ in range(4):
        try:
            if not consumer.poll(timeout_ms=200, max_records=1000):
                break
        except KafkaError:
            break
    return runtime


def stress_cluster(config: StressConfig, seed: int, *, until_ms: int | None = None) -> Cluster:
    """The engine cluster of one run (see `stress_runtime`)."""
    cluster: Cluster = stress_runtime(config, seed, until_ms=until_ms).cluster
    return cluster


def stress_run_one(config: StressConfig, seed: int) -> RunResult:
    cluster = stress_cluster(config, seed)
    anomalies: list[Anomaly] = check(cluster, cluster.history)
    counts = Counter(a.kind for a in anomalies)
    shown = anomalies[:20]
    first_lost = next((a for a in anomalies if a.kind == "lost"), None)
    if first_lost is not None and first_lost not in shown:
        shown.append(first_lost)
    return RunResult(
        seed=seed,
        anomalies=[a.to_dict() for a in shown],
        counts={kind: counts.get(kind, 0) for kind in REPORTED_KINDS}
        | {k: v for k, v in counts.items() if k not in REPORTED_KINDS},
        acknowledged=len(cluster.history.acknowledged),
        faults=[f.describe() for f in fault_schedule(config, seed)],
    )


def run_seeds(base_seed: int, runs: int) -> list[int]:
    rng = random.Random(base_seed)
    return [rng.randrange(2**31) for _ in range(runs)]


def stress_experiment(
    config: StressConfig,
    *,
    runs: int,
    base_seed: int,
    on_progress: Callable[[int, int], None] | None = None,
    processes: int | None = None,
) -> dict[str, Any]:
    """Run `runs` seeded schedules; the report the page shows (JSON-safe). The runs are spread
    over `processes` worker processes (None: one per core; 1: this process only); a run is a
    pure function of its config and seed, so the report never depends on how many."""
    runs = max(1, min(runs, MAX_RUNS))
    totals: Counter[str] = Counter()
    runs_with: Counter[str] = Counter()
    failing: list[dict[str, Any]] = []
    acknowledged = 0
    seeds = run_seeds(base_seed, runs)
    for index, result in enumerate(_run_all(config, seeds, processes)):
        seed = seeds[index]
        acknowledged += result.acknowledged
        totals.update(result.counts)
        runs_with.update(kind for kind, count in result.counts.items() if count)
        if result.anomalies:
            failing.append(
                {
                    "index": index,
                    "seed": seed,
                    "counts": {k: v for k, v in result.counts.items() if v},
                    "first": result.anomalies[0],
                    "first_lost": next((a for a in result.anomalies if a["kind"] == "lost"), None),
                    "faults": result.faults,
                }
            )
        if on_progress is not None:
            on_progress(index + 1, runs)
    return {
        "config": config.to_dict(),
        "description": config.describe(),
        "runs": runs,
        "base_seed": base_seed,
        "acknowledged": acknowledged,
        "totals": {kind: totals.get(kind, 0) for kind in REPORTED_KINDS},
        # How many runs had at least one anomaly of each kind.
        "runs_with": {kind: runs_with.get(kind, 0) for kind in REPORTED_KINDS},
        "failing_runs": failing[:50],
        "failing_count": len(failing),
    }


# -- runs over worker processes ------------------------------------------------------------------

_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def default_processes() -> int:
    return max(1, os.cpu_count() or 1)


def _pool(size: int) -> ProcessPoolExecutor:
    """One pool of `size` processes, kept for the next experiment (forked from a server that
    imported the engine once, so a worker starts in milliseconds and shares no threads)."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or size != _POOL_SIZE:
            if _POOL is not None:
                _POOL.shutdown(wait=False, cancel_futures=True)
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            _POOL = ProcessPoolExecutor(max_workers=size, mp_context=context)
            _POOL_SIZE = size
        return _POOL


def shutdown_pool() -> None:
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True, cancel_futures=True)
            _POOL = None


def _run_chunk(config: StressConfig, seeds: list[int]) -> list[RunResult]:
    return [stress_run_one(config, seed) for seed in seeds]


def _run_all(config: StressConfig, seeds: list[int], processes: int | None) -> Iterator[RunResult]:
    """Every run's result in the order of `seeds`, as each becomes known."""
    size = min(default_processes() if processes is None else max(1, processes), len(seeds))
    if size <= 1:
        for seed in seeds:
            yield stress_run_one(config, seed)
        return
    # Small chunks, in order: progress moves steadily and the last chunks balance the load.
    step = max(1, min(8, len(seeds) // (size * 4)))
    chunks = [seeds[i : i + step] for i in range(0, len(seeds), step)]
    try:
        futures = [_pool(size).submit(_run_chunk, config, chunk) for chunk in chunks]
    except (OSError, RuntimeError, AssertionError) as error:
        # No worker processes here (a daemonic worker, no /dev/shm): the runs go one by one.
        logger.warning("Stress it runs in one process: %s", error)
        for seed in seeds:
            yield stress_run_one(config, seed)
        return
    try:
        for future in futures:
            yield from future.result()
    except BrokenProcessPool:
        shutdown_pool()
        raise
    finally:
        for future in futures:
            future.cancel()
