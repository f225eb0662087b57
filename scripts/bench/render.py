"""Benchmark: the host's fragment rendering, as the host renders it against Django's localized
`render_to_string` (same process, alternating), in CPU milliseconds per `render_fragments`.

    python -m scripts.bench.render                 # 40-record sandbox, 5 x 60 renders each

Prints each round's figures, the medians and their ratio, and whether the HTML is the same.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40)
    parser.add_argument("--renders", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.template import loader

    from tests.web.support import sandbox_runtime
    from webapp.engine_host import render

    runtime, _ = sandbox_runtime(seed=5)
    for i in range(args.records):
        runtime.apply(
            {"type": "produce", "topic": "orders", "key": f"k{i % 7}", "value": "v", "count": 1}
        )
        runtime.advance(200)
    clock = render.ClockView(now_ms=runtime.now_ms, paused=False, speed=1.0, viewers=500)
    hosts = render.render_to_string
    ways = {"host": hosts, "django_localized": loader.render_to_string}
    figures: dict[str, list[float]] = {name: [] for name in ways}
    outputs = {}
    for _ in range(args.rounds):
        for name, way in ways.items():
            render.render_to_string = way  # type: ignore[assignment]
            started = time.thread_time()
            for _ in range(args.renders):
                outputs[name] = render.render_fragments(runtime, clock)
            figures[name].append(1000 * (time.thread_time() - started) / args.renders)
    render.render_to_string = hosts
    for name, values in figures.items():
        print(f"{name}: CPU ms per render_fragments {[round(v, 2) for v in values]}")
    host_ms = statistics.median(figures["host"])
    django_ms = statistics.median(figures["django_localized"])
    print(
        f"median host {host_ms:.2f} ms / django_localized {django_ms:.2f} ms = "
        f"{host_ms / django_ms:.2f}; same HTML: {outputs['host'] == outputs['django_localized']}"
    )
    print("load average:", Path("/proc/loadavg").read_text().strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
