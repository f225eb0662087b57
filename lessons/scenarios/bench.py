"""How fast a scenario runs: `python -m lessons.scenarios.bench [file.yaml ...] [--repeat N]`.

Loads each scenario once, runs it N times (default 5) and prints the cluster time it covers, the
best and median wall time of a run, and whether every expectation held. No wall clock enters the
run itself: the figures only measure how fast the engine goes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from lessons.scenarios.runner import run_scenario
from lessons.scenarios.scenario import load_scenario

DEFAULT = Path(__file__).with_name("examples") / "leader-failover.yaml"


def measure(path: Path, repeat: int) -> dict[str, float | int | bool]:
    scenario = load_scenario(path)
    times = []
    passed = True
    cluster_ms = 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = run_scenario(scenario)
        times.append(time.perf_counter() - started)
        passed = passed and result.passed
        cluster_ms = result.runtime.now_ms
    return {
        "cluster_ms": cluster_ms,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "passed": passed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=[DEFAULT])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    for path in args.files:
        figures = measure(path, args.repeat)
        print(
            f"{path}: {figures['cluster_ms'] / 1000:.0f} s of cluster time in "
            f"{figures['best_s'] * 1000:.0f} ms (best of {args.repeat}), "
            f"median {figures['median_s'] * 1000:.0f} ms; "
            f"{'every expectation held' if figures['passed'] else 'an expectation failed'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
