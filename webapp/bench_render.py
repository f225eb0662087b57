"""Benchmark: the cost of rendering one state version of a 9-broker, 200-partition cluster.

    python -m webapp.bench_render [--repeat 10]

Builds a sandbox runtime with 9 brokers, 4 topics of 50 partitions (RF 3), a consumer and
2,000 records, then times (best of `--repeat`) what the host does once per state version:
`render.render_fragments` plus the charts fragment. The baseline, measured in the same run on
the same state, is `json.dumps(cluster.snapshot())`; the ratio is what to watch, since it does
not depend on the machine. Each version renders once whatever the number of watching sockets
(tests/web/test_charts.py counts renders), so this is the whole per-version cost.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any


def _best(work: Callable[[], Any], repeat: int) -> float:
    work()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def build_runtime(brokers: int = 9, topics: int = 4, partitions: int = 50) -> Any:
    from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec

    runtime = ClusterRuntime(ClusterSpec(seed=1, brokers=brokers))
    for index in range(topics):
        runtime.apply(
            {
                "type": "create_topic",
                "name": f"topic-{index}",
                "partitions": partitions,
                "replication_factor": 3,
            }
        )
    runtime.apply(
        {"type": "add_consumer", "name": "reader", "topic": "topic-0", "poll_interval_ms": 100}
    )
    for index in range(20):
        runtime.apply(
            {
                "type": "produce",
                "topic": f"topic-{index % topics}",
                "key": f"key-{index}",
                "value": "v",
                "count": 100,
            }
        )
        runtime.advance(50)
    runtime.advance(1_000)
    return runtime


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from webapp import charts
    from webapp.engine_host import render

    runtime = build_runtime()
    metrics = charts.MetricsHistory()
    for _ in range(charts.MAX_SAMPLES):
        runtime.advance(charts.SAMPLE_EVERY_MS)
        metrics.observe(runtime)
    clock = render.ClockView(now_ms=runtime.now_ms, paused=True, speed=1.0, viewers=1)
    partitions = sum(
        len(runtime.cluster.describe_topic(name).partitions)
        for name in runtime.cluster.list_topics()
        if not name.startswith("__")
    )

    def render_version() -> None:
        render.render_fragments(runtime, clock)
        metrics._html_version = -1  # force the charts to render too, as on a new sample
        metrics.render()

    baseline = _best(lambda: json.dumps(runtime.cluster.snapshot()), args.repeat)
    rendered = _best(render_version, args.repeat)
    html_bytes = sum(len(h) for h in render.render_fragments(runtime, clock).values())
    results = {
        "brokers": len(runtime.cluster.brokers()),
        "partitions": partitions,
        "render_ms": round(rendered * 1000, 2),
        "baseline_json_snapshot_ms": round(baseline * 1000, 2),
        "ratio": round(rendered / baseline, 2),
        "html_kib": round(html_bytes / 1024, 1),
    }
    print(
        f"{results['brokers']} brokers, {partitions} partitions: one state version renders in "
        f"{results['render_ms']} ms ({results['html_kib']} KiB of HTML); "
        f"json.dumps(snapshot()) takes {results['baseline_json_snapshot_ms']} ms; "
        f"ratio {results['ratio']}x"
    )
    return results


if __name__ == "__main__":
    main()
