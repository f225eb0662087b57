"""Benchmark of a lesson cluster in the web runtime, in one run:

    python -m scripts.bench.lesson [--quick] [--stress-runs 200] [--repeat 3]

Prints
- the web runtime's wall ms per cluster second (`ClusterRuntime`: a producer app at 20/s and a
  group consumer app on a 3-broker cluster with `orders`, 3 partitions RF 3), and the engine
  facade's rows from `scripts.bench.workload`;
- a 10-minute session as a host runs it live (producer app at 20/s, a consumer group, broker 2
  killed at 200 s and restarted at 260 s; the clock in 500 ms ticks, logged as a host logs it,
  live checkpoints kept by `LiveCheckpoints`), then the scrub times to its 60th/300th/590th
  second with checkpoints (`webapp.timeline.replay_until` + rendering the past page's
  fragments) and without (a replay from the start, as before checkpoints), and at the moment
  a first scrub replays the most (before the live checkpoint after the widest gap between
  two), the renderer warmed first as a server's is;
- fork and share-link open times at the same moments: the replays each makes (a fork: the
  prefix and its times, then the new sandbox's host replaying it; a share link: made, decoded
  and checked, its commands timed (read off the log, or replayed as a replay worker process
  does, without this process's checkpoints), then the host's replay), without the database
  rows;
- the past page as a browser asks for it (`GET /sandbox/<id>/timeline/?t=`, through Django's
  middleware and the view: the log read from the database, the timeline's moments, the
  replay, the rendered page) at the same moments, the first request from the live
  checkpoints only, then again (a test database, made and dropped by this run);
- Stress it's runs (default 200), in this process and over worker processes (same report).

Wall time on a shared machine: compare figures of one run only. Without checkpoints the 300th
and 590th second take minutes; `--quick` measures those at the 60th only.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from lessons.scenarios import workloads

SESSION_S = 600
TICK_MS = 500
FLUSH_EVERY_MS = 2_000
KILL_AT_MS, RESTART_AT_MS = 200_000, 260_000
TARGETS_S = (60, 300, 590)

SETUP: list[dict[str, Any]] = [
    *workloads.SETUP,
    workloads.PRODUCER_APP,
    workloads.GROUP_APP,
]


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def _cpu_timed(function: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds (this process's CPU: on a machine others load, wall time also
    counts their work)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    return time.perf_counter() - wall, time.process_time() - cpu, value


# -- the web runtime's cost per cluster second ----------------------------------------------------


def runtime_ms_per_cluster_s(seconds: int, repeat: int) -> float:
    from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec

    figures = []
    for _ in range(repeat):
        runtime = ClusterRuntime.replay(ClusterSpec(seed=19), SETUP)
        runtime.advance(5_000)  # the group formed, the producer warmed up
        elapsed, _ = _timed(lambda r=runtime: r.advance(seconds * 1000))
        figures.append(elapsed * 1000 / seconds)
    return statistics.median(figures)


# -- a 10-minute session, run live ---------------------------------------------------------------


class LiveSession:
    """A host's clock in ticks, its log (advances coalesced and lengthened) and checkpoints."""

    def __init__(self, seed: int) -> None:
        from lessons.scenarios import checkpoints
        from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec

        self.spec = ClusterSpec(seed=seed)
        self.runtime = ClusterRuntime.replay(self.spec, SETUP)
        self.log: list[dict[str, Any]] = [dict(c) for c in SETUP]
        self.live = checkpoints.LiveCheckpoints(self.spec, self.log, [0] * len(self.log))
        self.unlogged = 0
        self.extends = False
        self.work_s = 0.0
        self.checkpoint_s = 0.0

    def flush(self) -> None:
        if not self.unlogged:
            return
        if self.extends:
            self.log[-1] = {"type": "advance", "ms": self.log[-1]["ms"] + self.unlogged}
            self.live.extended(self.unlogged)
        else:
            self.log.append({"type": "advance", "ms": self.unlogged})
            self.live.logged(self.log[-1], self.runtime.now_ms - self.unlogged)
        self.unlogged, self.extends = 0, True

    def command(self, payload: dict[str, Any]) -> None:
        self.flush()
        self.live.logged(payload, self.runtime.now_ms)
        self.log.append(payload)
        self.runtime.apply(payload)
        self.extends = False

    def run(self, until_ms: int) -> None:
        since_flush = 0
        while self.runtime.now_ms < until_ms:
            started = time.thread_time()
            self.runtime.advance(TICK_MS)
            spent = time.thread_time() - started
            self.work_s += spent
            self.unlogged += TICK_MS
            self.checkpoint_s += self.live.maybe_keep(
                self.runtime, unlogged_ms=self.unlogged, extends_last=self.extends, work_s=spent
            )
            since_flush += TICK_MS
            if since_flush >= FLUSH_EVERY_MS:
                self.flush()
                since_flush = 0
        self.flush()


def live_session() -> LiveSession:
    session = LiveSession(seed=19)
    session.run(KILL_AT_MS)
    session.command({"type": "stop_broker", "broker_id": 2})
    session.run(RESTART_AT_MS)
    session.command({"type": "start_broker", "broker_id": 2})
    session.run(SESSION_S * 1000)
    return session


# -- scrub, fork, share ------------------------------------------------------------------------


def scrub(session: LiveSession, at_ms: int) -> tuple[float, float, int | None]:
    """What the past page computes: the moment (`timeline.replay_until`, from the nearest
    checkpoint) and its rendered fragments. Wall s, CPU s, the checkpoint's ms."""
    from lessons.scenarios import checkpoints
    from webapp.engine_host import render

    def run() -> int | None:
        replayed = checkpoints.replay(session.spec, session.log, at_ms)
        runtime = replayed.runtime
        clock = render.ClockView(now_ms=runtime.now_ms, paused=True, speed=1.0, viewers=0)
        render.render_fragments(runtime, clock, readonly=True)
        return replayed.from_checkpoint_ms

    return _cpu_timed(run)


def scrub_from_start(session: LiveSession, at_ms: int) -> float:
    from lessons.scenarios import checkpoints
    from webapp.engine_host import render

    def run() -> None:
        runtime = checkpoints.replay(
            session.spec, session.log, at_ms, store=checkpoints.CheckpointStore(), keep=False
        ).runtime
        clock = render.ClockView(now_ms=runtime.now_ms, paused=True, speed=1.0, viewers=0)
        render.render_fragments(runtime, clock, readonly=True)

    return _timed(run)[0]


def fork(session: LiveSession, at_ms: int, store: Any = None) -> tuple[float, float]:
    """`timeline.sandbox_fork`'s replay (prefix and times), then the new host's replay. Wall
    and CPU s."""
    from lessons.scenarios import checkpoints

    def run() -> None:
        replayed = checkpoints.replay(session.spec, session.log, at_ms, store=store, keep_end=True)
        checkpoints.replay(session.spec, replayed.prefix, store=store)

    return _cpu_timed(run)[:2]


def share_open(session: LiveSession, at_ms: int, store: Any = None) -> tuple[float, float]:
    """A share link made at `at_ms`, then opened: decoded and checked (the replay budget), its
    commands timed (`command_times`) and the new sandbox's host replay."""
    from lessons.scenarios import checkpoints
    from webapp import timeline

    replayed = checkpoints.replay(session.spec, session.log, at_ms, store=store, keep_end=True)
    token = timeline.share_token_encode(spec=session.spec, commands=replayed.prefix)

    def run() -> None:
        spec, commands = timeline.share_token_decode(token)
        if timeline.logged_times(commands) is None:
            # `command_times` in a replay worker process: none of this process's checkpoints.
            checkpoints.replay(spec, commands, store=checkpoints.CheckpointStore(), keep=False)
        checkpoints.replay(spec, commands, store=store)  # the host's replay

    return _cpu_timed(run)[:2]


def warm_renderer(session: LiveSession) -> None:
    """Render the live stage once and resolve its URLs: a server has (its templates compiled,
    its code loaded, its URL patterns read by the request that asks for the past page)."""
    from django.urls import get_resolver

    from webapp.engine_host import render

    get_resolver().reverse_dict  # noqa: B018

    runtime = session.runtime
    clock = render.ClockView(now_ms=runtime.now_ms, paused=False, speed=1.0, viewers=1)
    render.render_fragments(runtime, clock, readonly=True)


def widest_gap_ms(store: Any) -> tuple[int, int]:
    """The moment just before the live checkpoint that follows the widest gap between two of
    them (a first scrub there replays the most), and that gap."""
    times = sorted({c.time_ms for c in store._items.values()})
    gap, at = max((b - a, b) for a, b in itertools.pairwise(times))
    return at - TICK_MS, gap


def _pair(figures: list[tuple[float, float]]) -> str:
    wall = statistics.median(f[0] for f in figures)
    cpu = statistics.median(f[1] for f in figures)
    return f"{wall * 1000:,.0f}/{cpu * 1000:,.0f}"


def _keep_only(store: Any, positions: set[Any]) -> None:
    """Drop the checkpoints kept since (scrubs, forks, shares): back to the live ones."""
    with store._lock:
        for position in [p for p in store._items if p not in positions]:
            store._forget(store._items.pop(position))


def past_pages(
    session: LiveSession, moments: list[int], live: set[Any], repeat: int
) -> list[tuple[int, tuple[float, float], list[tuple[float, float]]]]:
    """The past page's HTTP request at each moment: first from the live checkpoints only,
    then `repeat` times again. Wall and CPU s (CPU: every thread of this process)."""
    from django.db import connection
    from django.test import Client

    from lessons.scenarios import checkpoints
    from webapp import timeline
    from webapp.engine_host import store as cluster_store
    from webapp.models import LiveCluster

    name = connection.creation.create_test_db(verbosity=0)
    try:
        sandbox = LiveCluster.objects.create(
            kind=LiveCluster.Kind.SANDBOX,
            seed=session.spec.seed,
            brokers=session.spec.brokers,
            controllers=session.spec.controllers,
            engine_config={},
            paused=True,
        )
        times = timeline.logged_times(session.log) or [0] * len(session.log)
        for seq, (payload, time_ms) in enumerate(zip(session.log, times, strict=True), start=1):
            cluster_store.cluster_command_append(
                cluster_id=sandbox.id, seq=seq, payload=payload, logical_time_ms=time_ms
            )
        client = Client(HTTP_HOST="localhost")
        store = checkpoints.default_store()
        _keep_only(store, live)
        # The page flushes the cluster's host first: it keeps its live runtime at the log's
        # end then (`LiveCheckpoints.keep_end`), where the page's timeline replays to.
        keep_end = getattr(session.live, "keep_end", None)
        if keep_end is not None:
            keep_end(session.runtime)
            live = set(store._items)
        client.get(f"/sandbox/{sandbox.id}/timeline/?t=0")  # a server's first request
        rows = []
        for at_ms in moments:
            _keep_only(store, live)
            url = f"/sandbox/{sandbox.id}/timeline/?t={at_ms}"
            first = _cpu_timed(lambda u=url: client.get(u))
            assert first[2].status_code == 200, first[2].status_code
            again = [_cpu_timed(lambda u=url: client.get(u))[:2] for _ in range(repeat)]
            rows.append((at_ms, first[:2], again))
        return rows
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


# -- Stress it -----------------------------------------------------------------------------------


def stress_runs(runs: int) -> tuple[float, float, int, bool]:
    from lessons.scenarios import stress

    config = stress.StressConfig()
    processes = stress.default_processes()
    stress.stress_experiment(config, runs=processes, base_seed=1)  # start the worker pool
    serial_s, alone = _timed(
        lambda: stress.stress_experiment(config, runs=runs, base_seed=7, processes=1)
    )
    spread_s, spread = _timed(lambda: stress.stress_experiment(config, runs=runs, base_seed=7))
    return serial_s, spread_s, processes, alone == spread


# -- the report ----------------------------------------------------------------------------------


def _copy_mib(kept: Any) -> float:
    """A checkpoint's own bytes (its pickle and the slots of the snapshots it shares)."""
    return float(kept.copy.own_bytes) / 2**20


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="replays from the start: 60th s")
    parser.add_argument("--stress-runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="medians of this many runs")
    parser.add_argument(
        "--time-travel", action="store_true", help="only the session, scrub, fork and share"
    )
    args = parser.parse_args(argv)
    _django()
    from lessons.scenarios import checkpoints
    from scripts.bench import workload

    if not args.time_travel:
        # The engine's own rows first (idle / + producer / + group, and the 7-day
        # fast-forward), through the facade, in this same run.
        workload.main(["--seconds", "30", "--repeat", str(args.repeat)])

        print("web runtime (ClusterRuntime), producer app 20/s + group consumer app:")
        figure = runtime_ms_per_cluster_s(20, args.repeat)
        print(f"  {figure:.1f} wall ms per cluster second (median of {args.repeat} x 20 s)")

    store = checkpoints.default_store()
    store.clear()
    elapsed, session = _timed(live_session)
    print(
        f"10-minute session run live: {elapsed:.1f} s wall, engine {session.work_s:.1f} s, "
        f"live checkpoints {session.checkpoint_s:.1f} s ({session.live.kept} kept, "
        f"{len(store)} in the store, {store.size_bytes / 2**20:.0f} MiB); log of "
        f"{len(session.log)} commands"
    )
    warm_renderer(session)
    live = set(store._items)
    worst_ms, gap_ms = widest_gap_ms(store)
    print("scrub (replay + render of the past page), fork, share-link open; ms wall/CPU:")
    print(
        f"  {'moment':>8} {'1st scrub':>12} {'from':>8} {'again':>12} "
        f"{'fork':>12} {'share':>12} {'scrub from start':>18}"
    )
    moments = [worst_ms, *(seconds * 1000 for seconds in TARGETS_S)]
    for at_ms in moments:
        # The first from a live checkpoint (it keeps one at the moment), then from that one.
        first_s, first_cpu, from_ms = scrub(session, at_ms)
        scrubs = [scrub(session, at_ms)[:2] for _ in range(args.repeat)]
        forks = [fork(session, at_ms) for _ in range(args.repeat)]
        shares = [share_open(session, at_ms) for _ in range(args.repeat)]
        start = "(--quick)"
        if not args.quick or at_ms == TARGETS_S[0] * 1000:
            start = _ms(scrub_from_start(session, at_ms))
        print(
            f"  {at_ms / 1000:>6.1f} s {_pair([(first_s, first_cpu)]):>12} "
            f"{(from_ms or 0) / 1000:>6.1f} s {_pair(scrubs):>12} "
            f"{_pair(forks):>12} {_pair(shares):>12} {start:>18}"
        )
    print(
        f"  (the first row: before the live checkpoint after the widest gap, {gap_ms / 1000:.1f} s"
        ", between two)"
    )
    empty = checkpoints.CheckpointStore(max_count=0)
    at_ms = TARGETS_S[0] * 1000
    print(
        f"  without checkpoints at {TARGETS_S[0]} s: fork {_pair([fork(session, at_ms, empty)])}"
        f", share-link open {_pair([share_open(session, at_ms, empty)])}"
    )
    kept = max(store._items.values(), key=lambda c: c.time_ms)
    loads = [_cpu_timed(kept.restore)[:2] for _ in range(args.repeat)]
    dumps = [_cpu_timed(lambda: checkpoints.dump_runtime(session.runtime))[:2] for _ in loads]
    load_wall, load_cpu = (statistics.median(f[i] for f in loads) for i in (0, 1))
    dump_wall, dump_cpu = (statistics.median(f[i] for f in dumps) for i in (0, 1))
    print(
        f"  the latest checkpoint ({kept.time_ms / 1000:.0f} s, "
        f"{_copy_mib(kept):.1f} MiB): restored in {_ms(load_wall)} (CPU "
        f"{_ms(load_cpu)}), taken in {_ms(dump_wall)} (CPU {_ms(dump_cpu)})"
    )

    print("past page, GET /sandbox/<id>/timeline/?t= (from the live checkpoints); ms wall/CPU:")
    for at_ms, first, again in past_pages(session, moments, live, args.repeat):
        print(f"  {at_ms / 1000:>6.1f} s   first {_pair([first]):>12}   again {_pair(again):>12}")

    if args.time_travel:
        return 0
    serial_s, spread_s, processes, same = stress_runs(args.stress_runs)
    print(
        f"Stress it, {args.stress_runs} runs: {serial_s:.1f} s in one process, {spread_s:.1f} s "
        f"over {processes} processes ({serial_s / spread_s:.2f}x; "
        f"{'same report' if same else 'REPORTS DIFFER'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
