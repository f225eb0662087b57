"""Benchmark: the engine's memory per record produced, through the facade.

    python -m scripts.bench.record_memory
    python -m scripts.bench.record_memory --rate 2 --seconds 600   # a workshop's pace
    python -m scripts.bench.record_memory --at-bound 5             # a full cluster, 5 minutes

A 3-broker cluster, `orders` with 3 partitions RF 3, a producer app at `--rate` records a
second with acks=all; after a warm-up, `--seconds` cluster seconds run under tracemalloc. Prints
the bytes the run kept per record produced (every replica's copy, the producer's records, the
checker's history), then the allocating lines that grew most. Memory, not time: the figure
does not depend on the machine's load (it does on the Python version).

`--at-bound MINUTES` instead runs a cluster at its record bound (20,000 records; two producer
apps at 200/s refused from then on, a group consumer) under tracemalloc from the start, and
prints each cluster minute the memory traced and the events held and dropped: what a full
cluster's memory does while its apps go on.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc

from engine.cluster import Cluster

WARM_UP_MS = 5_000


def bytes_per_record(rate: int, seconds: int, top: int = 0) -> tuple[float, list[str]]:
    cluster = Cluster(brokers=3, seed=1)
    cluster.create_topic("orders", 3, 3)
    app = cluster.apps.producer_app("orders", rate_per_sec=rate, acks="all")
    tracemalloc.start(1)
    try:
        cluster.advance(WARM_UP_MS)
        gc.collect()
        before_bytes = tracemalloc.get_traced_memory()[0]
        before = tracemalloc.take_snapshot() if top else None
        sent = app.sent
        cluster.advance(seconds * 1000)
        gc.collect()
        after_bytes = tracemalloc.get_traced_memory()[0]
        lines = []
        if before is not None:
            after = tracemalloc.take_snapshot()
            lines = [str(stat) for stat in after.compare_to(before, "lineno")[:top]]
    finally:
        tracemalloc.stop()
    return (after_bytes - before_bytes) / max(app.sent - sent, 1), lines


def at_bound(minutes: int, step_ms: int = 60_000) -> list[float]:
    """The traced MiB after each cluster minute (or `step_ms`) of a cluster at its bound."""
    tracemalloc.start(1)
    traced: list[float] = []
    try:
        cluster = Cluster(brokers=3, seed=1, limits={"max_retained_records": 20_000})
        cluster.create_topic("orders", 3, 3)
        for _ in range(2):
            cluster.apps.producer_app("orders", rate_per_sec=200, acks="all")
        cluster.apps.consumer_app("readers", "orders", poll_interval_ms=100)
        for minute in range(1, minutes + 1):
            cluster.advance(step_ms)
            gc.collect()
            traced.append(tracemalloc.get_traced_memory()[0] / 2**20)
            print(
                f"  minute {minute}: {traced[-1]:.1f} MiB traced, "
                f"{len(cluster.events):,} events held, {cluster.events_dropped:,} dropped"
            )
    finally:
        tracemalloc.stop()
    return traced


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200, help="records a second")
    parser.add_argument("--seconds", type=int, default=60, help="cluster seconds measured")
    parser.add_argument("--top", type=int, default=12, help="allocating lines shown")
    parser.add_argument(
        "--at-bound", type=int, default=0, metavar="MINUTES", help="a full cluster instead"
    )
    args = parser.parse_args(argv)
    if args.at_bound:
        print("3 brokers, orders 3x RF3, at its record bound (20,000), two apps at 200/s refused:")
        traced = at_bound(args.at_bound)
        return traced[-1] - traced[0]
    per_record, lines = bytes_per_record(args.rate, args.seconds, args.top)
    print(
        f"3 brokers, orders 3x RF3, a producer app at {args.rate}/s acks=all, "
        f"{args.seconds} cluster s: {per_record:,.0f} bytes kept per record produced"
    )
    for line in lines:
        print(f"  {line}")
    return per_record


if __name__ == "__main__":
    main()
