"""Benchmark: what a workshop learner's stage view (webapp/workshops/stage.py) costs per state
version, against rendering that version.

    PYTHONPATH=. python -m scripts.bench.room_view [--repeat 20]

Builds a room's cluster as a room starts it (the sandbox's three brokers, topic and consumer),
produces records, renders one state version (`render.render_fragments`, what the host does
once per version), then cuts the node buttons out of that version's text as the fan-out does
once per version for the learners' sockets. Prints the CPU time of each (best of `--repeat`)
and their ratio: the cut is paid once per version, whatever the number of learners.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any


def _best_cpu(work: Callable[[], Any], repeat: int) -> float:
    work()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec
    from webapp import services
    from webapp.engine_host.render import ClockView, render_fragments
    from webapp.workshops.stage import stage_view

    runtime = ClusterRuntime(ClusterSpec(seed=1, brokers=services.SANDBOX_BROKERS))
    for payload in services.sandbox_setup_commands(brokers=services.SANDBOX_BROKERS):
        runtime.apply(payload)
    runtime.apply({"type": "produce", "topic": "orders", "value": "x", "count": 50})
    runtime.advance(2_000)
    clock = ClockView(now_ms=runtime.now_ms, paused=False, speed=1.0, viewers=200)
    text = "".join(render_fragments(runtime, clock).values())
    cut = stage_view([])
    assert cut is not None
    render_s = _best_cpu(lambda: render_fragments(runtime, clock), args.repeat)
    cut_s = _best_cpu(lambda: cut(text), args.repeat * 10)
    buttons = text.count('class="stage-action"')
    print(
        f"version text: {len(text)} chars, {buttons} node buttons; learner's cut: {len(cut(text))}"
    )
    print(f"render one version: {render_s * 1000:.2f} ms CPU")
    print(f"cut it for the learners: {cut_s * 1000:.3f} ms CPU")
    print(f"cut / render: {cut_s / render_s:.4f}")


if __name__ == "__main__":
    main()
