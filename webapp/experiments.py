"""Stress experiments of a live cluster: their rows, their progress, opening a failing run.

The Celery task (webapp/tasks.py) runs `stress_run_execute` in a worker and writes progress to
the `StressRun` row; `stress_progress_watch`, running in the web process that started the run,
reads that row and pushes the rendered progress fragment to the cluster's host, which sends it
to every watching socket as part of its next state version (so it reaches the browser through
the cluster's Channels group in the embedded mode too, where the worker cannot reach the
in-memory channel layer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from lessons.scenarios import stress
from lessons.scenarios.runtime import ClusterSpec
from webapp import timeline
from webapp.engine_host import store
from webapp.models import LiveCluster, StressRun

logger = logging.getLogger(__name__)

RUNS_SHOWN = 3
PROGRESS_WRITE_S = 0.25
WATCH_POLL_S = 0.4
WATCH_LIMIT_S = 15 * 60
STRESS_FRAGMENT_ID = "stress-runs"


def stress_config_for_cluster(
    *, cluster_id: str, acks: str = "", min_insync_replicas: int | None = None
) -> stress.StressConfig:
    """The stage's current configuration (by replaying its log), with the form's overrides."""
    stored = store.cluster_load(cluster_id=cluster_id)
    runtime, _ = timeline.replay_until(spec=stored.spec, commands=stored.commands)
    config = stress.stress_config_from_runtime(runtime)
    producer_config = dict(config.producer_config)
    topic_config = dict(config.topic_config)
    if acks:
        producer_config["acks"] = acks
        if acks not in ("all", "-1") and producer_config.get("enable.idempotence") in (
            True,
            "true",
        ):
            # Kafka refuses an idempotent producer without acks=all: the learner asked for acks.
            producer_config["enable.idempotence"] = False
    if min_insync_replicas is not None:
        topic_config["min.insync.replicas"] = min_insync_replicas
    return stress.StressConfig.from_dict(
        {**config.to_dict(), "producer_config": producer_config, "topic_config": topic_config}
    )


def stress_run_create(
    *, cluster_id: str, config: stress.StressConfig, runs: int, base_seed: int | None = None
) -> StressRun:
    run = StressRun(
        cluster_id=cluster_id,
        config=config.to_dict(),
        runs=max(1, min(runs, stress.MAX_RUNS)),
    )
    if base_seed is not None:
        run.base_seed = base_seed
    run.save()
    return run


def stress_run_execute(*, run_id: str) -> dict[str, Any]:
    """Run the experiment of a `StressRun` row, writing its progress and report to the row."""
    run = StressRun.objects.get(pk=run_id)
    StressRun.objects.filter(pk=run_id).update(status=StressRun.Status.RUNNING, done=0)
    last_write = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last_write
        now = time.monotonic()
        if done == total or now - last_write >= PROGRESS_WRITE_S:
            last_write = now
            StressRun.objects.filter(pk=run_id).update(done=done)

    try:
        report = stress.stress_experiment(
            stress.StressConfig.from_dict(run.config),
            runs=run.runs,
            base_seed=run.base_seed,
            on_progress=progress,
        )
    except Exception as error:
        logger.exception("stress run %s failed", run_id)
        StressRun.objects.filter(pk=run_id).update(
            status=StressRun.Status.FAILED, error=f"{type(error).__name__}: {error}"
        )
        raise
    StressRun.objects.filter(pk=run_id).update(
        status=StressRun.Status.DONE, done=run.runs, report=report
    )
    return report


def _run_view(run: StressRun) -> dict[str, Any]:
    report = run.report or {}
    totals = report.get("totals", {})
    return {
        "id": run.id,
        "status": run.status,
        "finished": run.finished,
        "done": run.done,
        "runs": run.runs,
        "percent": run.percent,
        "error": run.error,
        "report": report,
        "description": stress.StressConfig.from_dict(run.config).describe(),
        "rows": [
            {"kind": kind, "label": label, "count": totals.get(kind, 0)}
            for kind, label in stress.KIND_LABELS.items()
        ],
    }


def stress_runs_fragment(*, cluster_id: str) -> str:
    runs = StressRun.objects.filter(cluster_id=cluster_id).order_by("-created_at")[:RUNS_SHOWN]
    return render_to_string(
        "sandbox/fragments/stress_runs.html", {"runs": [_run_view(r) for r in runs]}
    )


@dataclass(frozen=True)
class RunLog:
    """One run of an experiment as a sandbox replays it: its spec, its engine log as
    commands, and the logical time its last command ends (the read-back included)."""

    spec: ClusterSpec
    commands: list[dict[str, Any]]
    end_ms: int


def run_log(config: stress.StressConfig, seed: int) -> RunLog:
    runtime = stress.stress_runtime(config, seed)
    log = runtime.cluster.export_log()
    commands = [{"type": "engine", "entry": entry} for entry in log[1:]]
    return RunLog(spec=runtime.spec, commands=commands, end_ms=runtime.cluster.now_ms)


def _record_exists(run: RunLog, anomaly: dict[str, Any], at_ms: int) -> bool:
    """Whether the anomaly's record is in its partition's log at `at_ms`, on the stage that
    "Open on the stage" shows: the sandbox's own replay of the run's log."""
    runtime, _ = timeline.replay_until(spec=run.spec, commands=run.commands, at_ms=at_ms)
    topic, partition, offset = anomaly["topic"], int(anomaly["partition"]), int(anomaly["offset"])
    try:
        description = runtime.cluster.describe_topic(topic)
    except Exception:  # the topic is not there yet
        return False
    for p in description.partitions:
        if p.partition == partition:
            return int(p.log_end_offset) > offset
    return False


def anomaly_visible_ms(
    config: stress.StressConfig, seed: int, anomaly: dict[str, Any], run: RunLog | None = None
) -> int:
    """The first moment (on the 10 ms grid) at which the anomaly can be seen on the stage.

    A duplicate's or a reordered record's time is when it was created by the producer; the
    copy that makes the anomaly is written later (after a retry, possibly only during the
    read-back after the schedule), so opening the stage at the anomaly's own time would show a
    log without it. The moment is found by bisecting replays of the run's log, the same replay
    the opened sandbox makes (from checkpoints, so each is short). Losses open at the event
    that lost the record (an unclean election or a truncation), which is already when the loss
    is visible.
    """
    start = timeline.snap_to_tick(int(anomaly["time_ms"]))
    if anomaly.get("kind") not in ("duplicated", "reordered", "offset_reused", "changed"):
        return start
    run = run or run_log(config, seed)
    if _record_exists(run, anomaly, start):
        return start
    high = run.end_ms
    if not _record_exists(run, anomaly, high):
        return start
    low = start  # not visible at low, visible at high
    while high - low > 10:
        middle = timeline.snap_to_tick((low + high) // 2)
        if middle <= low:
            middle = low + 10
        if _record_exists(run, anomaly, middle):
            high = middle
        else:
            low = middle
    return high


def stress_run_open(
    *, run_id: str, index: int, session_key: str = "", lost: bool = False
) -> tuple[LiveCluster, int]:
    """A new sandbox replaying one run of the experiment, and the time of its first anomaly
    (with `lost`: of its first lost acknowledged record)."""
    run = StressRun.objects.get(pk=run_id)
    failing = {f["index"]: f for f in (run.report or {}).get("failing_runs", [])}
    config = stress.StressConfig.from_dict(run.config)
    if index in failing:
        anomaly = (lost and failing[index].get("first_lost")) or failing[index]["first"]
        seed = int(failing[index]["seed"])
        log = run_log(config, seed)
        at_ms = anomaly_visible_ms(config, seed, anomaly, log)
    else:
        seeds = stress.run_seeds(run.base_seed, run.runs)
        if not 0 <= index < len(seeds):
            raise StressRun.DoesNotExist(f"run {index} is not part of this experiment")
        seed, at_ms = seeds[index], 0
        log = run_log(config, seed)
    spec, commands = log.spec, log.commands
    sandbox = timeline.sandbox_from_log(spec=spec, commands=commands, session_key=session_key)
    return sandbox, at_ms


async def stress_progress_watch(*, run_id: str, cluster_id: str) -> None:
    """Push the experiment's progress fragment to the cluster's watchers until it finishes."""
    from webapp.engine_host import client as host_client

    load = database_sync_to_async(
        lambda: StressRun.objects.filter(pk=run_id).values_list("done", "status").first()
    )
    render = database_sync_to_async(stress_runs_fragment)
    deadline = time.monotonic() + WATCH_LIMIT_S
    last: tuple[int, str] | None = None
    while time.monotonic() < deadline:
        state = await load()
        if state is None:
            return
        if state != last:
            last = state
            html = await render(cluster_id=cluster_id)
            await host_client.host_send(
                cluster_id, {"type": "host.fragment", "id": STRESS_FRAGMENT_ID, "html": html}
            )
            if state[1] in (StressRun.Status.DONE, StressRun.Status.FAILED):
                return
        await asyncio.sleep(WATCH_POLL_S)
