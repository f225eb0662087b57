"""Benchmark: what one lesson cluster costs per second of cluster time, through the facade.

    python -m scripts.bench.workload

The lesson workload of issue 19: 3 brokers, topic `orders` with 3 partitions RF 3; an idle
cluster, then a producer app at 20 records/s (one record every 50 ms, acks=all), then also a
consumer app in a group polling every 100 ms. Each row is the median over `--repeat` runs of
the wall milliseconds one cluster second costs, measured over `--seconds` cluster seconds after
a warm-up (the group has joined, the producer has metadata). Then the 7-day idle fast-forward
of a 3-broker cluster: its wall time and how many timers ran. `measure_engine_workloads()`
returns the rows, for benchmarks at the lesson level. This module measures wall time on
purpose; nothing else in the engine does.

`--floor` also prints what the simulated messages and timers alone cost: the requests and
replies the consumer-group workload sends per cluster second, over the engine's own network
and clock, with handlers that do nothing, and its other timers as empty ones. No engine can
simulate that workload's messages for less; the rest of a row is the brokers' and clients'
own work.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from engine.cluster import Cluster
from engine.sim.clock import Scheduler
from engine.sim.network import Network, request

WORKLOADS = ("idle cluster", "+ producer at 20 records/s", "+ consumer group")
WARM_UP_MS = 10_000


@dataclass(frozen=True, slots=True)
class WorkloadRow:
    """One workload: median wall and CPU ms per cluster second (CPU time is the steadier figure
    on a shared machine), and the timers one cluster second ran."""

    name: str
    wall_ms_per_cluster_second: float
    cpu_ms_per_cluster_second: float
    timers_per_cluster_second: float
    runs: tuple[float, ...]


def lesson_cluster(workload: str, seed: int = 1) -> Cluster:
    """The lesson cluster with the apps of `workload` (one of WORKLOADS), warmed up."""
    level = WORKLOADS.index(workload)
    cluster = Cluster(brokers=3, seed=seed)
    cluster.create_topic("orders", 3, 3)
    if level >= 1:
        cluster.apps.producer_app("orders", rate_per_sec=20, acks="all")
    if level >= 2:
        cluster.apps.consumer_app("orders-group", "orders", poll_interval_ms=100)
    cluster.advance(WARM_UP_MS)
    return cluster


def _measure(workload: str, seconds: int) -> tuple[float, float, float]:
    cluster = lesson_cluster(workload)
    before = cluster.scheduler.executed
    start = time.perf_counter()
    cpu_start = time.process_time()
    cluster.advance(seconds * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000
    wall_ms = (time.perf_counter() - start) * 1000
    return wall_ms / seconds, cpu_ms / seconds, (cluster.scheduler.executed - before) / seconds


def measure_engine_workloads(seconds: int = 60, repeat: int = 3) -> list[WorkloadRow]:
    """The three workloads, measured alternately `repeat` times; medians."""
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in WORKLOADS}
    for _ in range(repeat):
        for name in WORKLOADS:
            runs[name].append(_measure(name, seconds))
    return [
        WorkloadRow(
            name,
            statistics.median(wall for wall, _, _ in runs[name]),
            statistics.median(cpu for _, cpu, _ in runs[name]),
            statistics.median(timers for _, _, timers in runs[name]),
            tuple(wall for wall, _, _ in runs[name]),
        )
        for name in WORKLOADS
    ]


def calls_per_cluster_second(workload: str, seconds: int = 60) -> float:
    """The Python function calls one cluster second of `workload` makes (cProfile's count after
    the warm-up): unlike time, a figure the machine's load does not move, for comparing two
    versions of the engine on a busy machine."""
    import cProfile
    import pstats

    cluster = lesson_cluster(workload)
    profile = cProfile.Profile()
    profile.enable()
    cluster.advance(seconds * 1000)
    profile.disable()
    return pstats.Stats(profile).total_calls / seconds  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Floor:
    """What a workload's simulated messages and timers cost alone (see `message_floor`)."""

    requests_per_cluster_second: float
    messages_per_cluster_second: float
    timers_per_cluster_second: float
    wall_ms_per_cluster_second: float
    floor_timers_per_cluster_second: float
    workload_wall_ms_per_cluster_second: float


def workload_traffic(workload: str, seconds: int) -> tuple[float, float, float]:
    """The requests, messages and timers one cluster second of `workload` makes."""
    cluster = lesson_cluster(workload)
    network = cluster.network
    requests = network.requests.total()
    messages = network._next_id
    timers = cluster.scheduler.executed
    cluster.advance(seconds * 1000)
    return (
        (network.requests.total() - requests) / seconds,
        (network._next_id - messages) / seconds,
        (cluster.scheduler.executed - timers) / seconds,
    )


def _empty_traffic(requests: int, other_timers: int, seconds: int) -> tuple[float, float]:
    """Wall ms per cluster second of `requests` request-reply pairs and `other_timers` empty
    timers per cluster second, spread evenly, over the engine's network (its latency and
    jitter defaults) and clock; and the timers it ran per cluster second."""
    scheduler = Scheduler()
    network = Network(scheduler, Random(1), 1, 2)
    nodes = ("client-1", 0, 1, 2)

    def nothing(_: object = None) -> None:
        pass

    def send(index: int) -> None:
        source = nodes[index % 4]
        destination = nodes[(index + 1) % 4]
        request(
            network, source, destination, "fetch", lambda: True, lambda reply: reply(""), nothing
        )

    def every(per_second: int, action: Callable[[int], None]) -> None:
        # One timer at a time, each scheduling the next, as the workload's ticks do.
        if per_second <= 0:
            return
        step = 1000 / per_second

        def tick(index: int) -> None:
            action(index)
            scheduler.call_at(int((index + 1) * step), lambda: tick(index + 1))

        scheduler.call_at(0, lambda: tick(0))

    every(requests, send)
    every(other_timers, lambda _: nothing())
    start = time.perf_counter()
    scheduler.run_until(seconds * 1000 - 1)
    wall_ms = (time.perf_counter() - start) * 1000
    return wall_ms / seconds, scheduler.executed / seconds


def message_floor(workload: str = WORKLOADS[-1], seconds: int = 60, repeat: int = 3) -> Floor:
    """`workload`'s requests (each with its reply) and its other timers, per cluster second,
    run with handlers that do nothing, alternating with the workload itself; medians."""
    requests, messages, timers = workload_traffic(workload, seconds)
    # Each request and each reply is one timer (its arrival), and each request is sent from a
    # timer of its own here; the workload's other timers (its clients' ticks, fetch waits) are
    # empty ones. So the floor runs no more timers than the workload.
    other = max(0, int(timers - messages - requests))
    floors: list[float] = []
    walls: list[float] = []
    floor_timers = 0.0
    for _ in range(repeat):
        wall_ms, floor_timers = _empty_traffic(int(requests), other, seconds)
        floors.append(wall_ms)
        walls.append(_measure(workload, seconds)[0])
    return Floor(
        requests,
        messages,
        timers,
        statistics.median(floors),
        floor_timers,
        statistics.median(walls),
    )


def idle_fast_forward(days: int = 7, repeat: int = 3) -> tuple[float, float, int]:
    """Median wall and CPU seconds and the timers to fast-forward an idle 3-broker cluster
    (topic `orders`, 3 partitions RF 3) by `days`."""
    walls: list[float] = []
    cpus: list[float] = []
    timers = 0
    for _ in range(repeat):
        cluster = Cluster(brokers=3, seed=1)
        cluster.create_topic("orders", 3, 3)
        cluster.advance(1000)
        before = cluster.scheduler.executed
        start = time.perf_counter()
        cpu_start = time.process_time()
        cluster.advance(days * 24 * 3600 * 1000)
        cpus.append(time.process_time() - cpu_start)
        walls.append(time.perf_counter() - start)
        timers = cluster.scheduler.executed - before
    return statistics.median(walls), statistics.median(cpus), timers


def main(argv: list[str] | None = None) -> list[WorkloadRow]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="cluster seconds measured")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per workload")
    parser.add_argument(
        "--calls",
        action="store_true",
        help="also count the Python function calls per cluster second (independent of load)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run the consumer-group workload's messages and timers alone (empty handlers)",
    )
    args = parser.parse_args(argv)
    lesson_cluster(WORKLOADS[-1]).advance(2000)  # warm-up: imports and caches
    rows = measure_engine_workloads(args.seconds, args.repeat)
    print(
        f"lesson workload through the facade (3 brokers, orders 3x RF3), "
        f"{args.seconds} cluster s, median of {args.repeat}"
    )
    print(
        f"  {'workload':<30} {'wall ms / cluster s':>20} {'CPU ms / cluster s':>19}"
        f" {'timers / cluster s':>19}"
    )
    for row in rows:
        print(
            f"  {row.name:<30} {row.wall_ms_per_cluster_second:>20.3f}"
            f" {row.cpu_ms_per_cluster_second:>19.3f} {row.timers_per_cluster_second:>19.1f}"
        )
    if args.calls:
        for name in WORKLOADS:
            calls = calls_per_cluster_second(name, args.seconds)
            print(f"  {name:<30} {calls:>12,.0f} Python function calls / cluster s")
    if args.floor:
        floor = message_floor(WORKLOADS[-1], args.seconds, args.repeat)
        print(
            f"  {WORKLOADS[-1]}: {floor.requests_per_cluster_second:.1f} requests,"
            f" {floor.messages_per_cluster_second:.1f} messages and"
            f" {floor.timers_per_cluster_second:.1f} timers per cluster s; alone, with handlers"
            f" that do nothing ({floor.floor_timers_per_cluster_second:.1f} timers):"
            f" {floor.wall_ms_per_cluster_second:.3f} ms per cluster s"
            f" (the workload, alternating: {floor.workload_wall_ms_per_cluster_second:.3f})"
        )
    wall, cpu, timers = idle_fast_forward()
    print(f"  7 idle days fast-forwarded: {wall:.3f} s wall, {cpu:.3f} s CPU, {timers} timers")
    return rows


if __name__ == "__main__":
    main()
