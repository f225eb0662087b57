"""Stress it's report for one configuration, as the README quotes it:

    python -m scripts.bench.stress [--runs 200] [--base-seed 42] [--acks all] [--min-isr 2]
                                   [--processes 1] [--quiet]

Runs `lessons.scenarios.stress.stress_experiment` on the stage's default shape (3 brokers,
`orders` with 3 partitions RF 3) with the given `acks` and `min.insync.replicas`, and prints
the wall time, the acknowledged records, the checker's totals (lost, duplicated, reordered,
aborted reads), how many runs had an anomaly (of each kind), and for each such run (the first
50) its index, seed, counts and fault schedule. The counts are a pure function of the
arguments; the time is not (compare times of one machine and one run only).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from lessons.scenarios import stress


def config_for(acks: str, min_isr: int) -> stress.StressConfig:
    return stress.StressConfig(
        topic_config={"min.insync.replicas": min_isr}, producer_config={"acks": acks}
    )


def measure(
    *, runs: int, base_seed: int, acks: str, min_isr: int, processes: int | None
) -> tuple[float, dict[str, Any]]:
    config = config_for(acks, min_isr)
    start = time.perf_counter()
    report = stress.stress_experiment(config, runs=runs, base_seed=base_seed, processes=processes)
    return time.perf_counter() - start, report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--base-seed", type=int, default=42)
    parser.add_argument("--acks", default="all", choices=("0", "1", "all"))
    parser.add_argument("--min-isr", type=int, default=2)
    parser.add_argument(
        "--processes", type=int, default=1, help="worker processes (0: one per core)"
    )
    parser.add_argument("--quiet", action="store_true", help="totals only, no run list")
    args = parser.parse_args(argv)
    elapsed, report = measure(
        runs=args.runs,
        base_seed=args.base_seed,
        acks=args.acks,
        min_isr=args.min_isr,
        processes=args.processes or None,
    )
    runs = report["runs"]
    print(f"{report['description']}: {runs} runs from base seed {args.base_seed}")
    print(f"  {elapsed:.1f} s ({elapsed * 1000 / runs:.0f} ms a run)")
    print(f"  acknowledged records: {report['acknowledged']:,}")
    totals = ", ".join(f"{kind} {count:,}" for kind, count in report["totals"].items())
    print(f"  anomalies: {totals}")
    print(f"  runs with an anomaly: {report['failing_count']} of {runs}")
    with_kind = ", ".join(f"{kind} {count}" for kind, count in report["runs_with"].items())
    print(f"  runs with each kind: {with_kind}")
    if args.quiet:
        return
    for failing in report["failing_runs"]:
        print(f"    run {failing['index']} (seed {failing['seed']}): {failing['counts']}")
        print(f"      faults: {'; '.join(failing['faults'])}")


if __name__ == "__main__":
    main()
