"""Pages of time travel, share links and "Stress it" (the logic lives in webapp/timeline.py,
webapp/stress.py and webapp/experiments.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import aget_object_or_404, get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp import experiments, timeline, visitor_limits
from webapp.engine_host import client as host_client
from webapp.engine_host import render as stage_render
from webapp.engine_host import replay_pool, store
from webapp.models import LiveCluster, SharedState, StressRun
from webapp.views import SESSION_SANDBOX, _session_key, too_many_sandboxes

logger = logging.getLogger(__name__)

# Fragments shown beside the stage on the past page; every other one is part of the stage.
SIDE_FRAGMENTS = ("consumers", "events", "notices")
# Watchers of running experiments, kept referenced until they finish.
_watchers: set[asyncio.Task[None]] = set()


def _int_param(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


# -- time travel -----------------------------------------------------------------------------


def _past_page(
    request: HttpRequest, sandbox: LiveCluster, at: int | None, asked: str | None = None
) -> HttpResponse:
    stored = store.cluster_load(cluster_id=sandbox.id)
    times = [
        int(t) for t in sandbox.commands.order_by("seq").values_list("logical_time_ms", flat=True)
    ]
    points, end_ms = timeline.timeline_points(
        spec=stored.spec, commands=stored.commands, times=times
    )
    problem = ""
    if asked is not None and (at is None or at < 0):
        problem = (
            f"“{asked[:40]}” is not a moment: t is a whole number of milliseconds from 0 to "
            f"{end_ms}. Showing the latest logged moment instead."
        )
        at = None
    elif at is not None and at > end_ms:
        problem = (
            f"Nothing is logged after {end_ms} ms yet, so t = {at} ms shows the latest moment."
        )
    at_ms = end_ms if at is None else min(timeline.snap_to_tick(at), end_ms)
    runtime, _ = timeline.replay_until(spec=stored.spec, commands=stored.commands, at_ms=at_ms)
    clock = stage_render.ClockView(
        now_ms=runtime.now_ms, paused=True, speed=sandbox.speed, viewers=0
    )
    fragments = stage_render.render_fragments(runtime, clock, readonly=True)
    context = {
        "sandbox": sandbox,
        "at_ms": runtime.now_ms,
        "seconds": runtime.now_ms / 1000,
        "end_ms": end_ms,
        "end_seconds": end_ms / 1000,
        "points": points,
        "fragments": fragments,
        "main_fragments": [h for k, h in fragments.items() if k not in SIDE_FRAGMENTS],
        "problem": problem,
        "anomaly": _stress_anomaly(request),
    }
    status = 400 if problem and asked is not None and _int_param(asked) is None else 200
    return render(request, "sandbox/fragments/timeline_past.html", context, status=status)


@require_GET
async def sandbox_timeline(request: HttpRequest, cluster_id: str) -> HttpResponse:
    """The sandbox as it was at `?t=<ms>` (default: the end of its log), read-only."""
    sandbox = await aget_object_or_404(LiveCluster, pk=cluster_id)
    await host_client.flush_host(sandbox.id)
    asked = request.GET.get("t")
    return await sync_to_async(_past_page)(request, sandbox, _int_param(asked), asked)


@require_POST
def sandbox_fork(request: HttpRequest, cluster_id: str) -> HttpResponse:
    sandbox = get_object_or_404(LiveCluster, pk=cluster_id)
    at_ms = _int_param(request.POST.get("t"))
    if at_ms is None or at_ms < 0:
        return HttpResponseBadRequest("Say from which moment to fork (t, in ms).")
    refusal = _sandbox_refusal(request)
    if refusal:
        return too_many_sandboxes(refusal)
    fork = timeline.sandbox_fork(
        cluster_id=sandbox.id, at_ms=at_ms, session_key=_session_key(request)
    )
    request.session[SESSION_SANDBOX] = fork.id
    return redirect("sandbox-detail", cluster_id=fork.id)


# -- share links -----------------------------------------------------------------------------


def _share_page(request: HttpRequest, sandbox: LiveCluster, at_ms: int | None) -> HttpResponse:
    link = timeline.share_link_create(cluster_id=sandbox.id, at_ms=at_ms)
    context = {
        "sandbox": sandbox,
        "link": link,
        "url": request.build_absolute_uri(link.path),
        "seconds": link.time_ms / 1000,
    }
    return render(request, "sandbox/fragments/timeline_share.html", context)


@require_POST
async def sandbox_share(request: HttpRequest, cluster_id: str) -> HttpResponse:
    sandbox = await aget_object_or_404(LiveCluster, pk=cluster_id)
    await host_client.flush_host(sandbox.id)
    at_ms = _int_param(request.POST.get("t"))
    return await sync_to_async(_share_page)(request, sandbox, at_ms)


def _share_error(request: HttpRequest, error: Exception) -> HttpResponse:
    template = "sandbox/fragments/timeline_share_error.html"
    return render(request, template, {"error": error}, status=400)


def _open_shared(
    request: HttpRequest, spec: Any, commands: list[dict[str, Any]], times: list[int]
) -> HttpResponse:
    sandbox = timeline.sandbox_from_log(
        spec=spec, commands=commands, session_key=_session_key(request), times=times
    )
    request.session[SESSION_SANDBOX] = sandbox.id
    return redirect("sandbox-detail", cluster_id=sandbox.id)


async def _open_checked(
    request: HttpRequest, spec: Any, commands: list[dict[str, Any]]
) -> HttpResponse:
    # The replay that times the commands is CPU work (bounded by the replay budget): it runs
    # in a replay worker process, so it holds neither the event loop, nor the thread Django's
    # sync views share, nor this process's GIL (webapp/engine_host/replay_pool.py).
    refusal = await sync_to_async(_sandbox_refusal)(request)
    if refusal:
        return too_many_sandboxes(refusal)
    times = timeline.logged_times(commands)  # read off the log: nothing to replay
    if times is None:  # read off a checkpoint kept at the log's end (the link's own, say)
        times = await asyncio.to_thread(timeline.kept_times, spec=spec, commands=commands)
    if times is None:
        times = await replay_pool.run(timeline.command_times, spec=spec, commands=commands)
    return await sync_to_async(_open_shared)(request, spec, commands, times)


def _sandbox_refusal(request: HttpRequest) -> str | None:
    return visitor_limits.sandbox_refusal(request, _session_key(request))


@require_GET
async def share_open(request: HttpRequest, token: str) -> HttpResponse:
    """Open a share link: a new sandbox replaying the seed and log inside the link."""
    try:
        spec, commands = await asyncio.to_thread(timeline.share_token_decode, token)
    except timeline.ShareError as error:
        return await sync_to_async(_share_error)(request, error)
    return await _open_checked(request, spec, commands)


@require_GET
async def shared_open(request: HttpRequest, shared_id: str) -> HttpResponse:
    """Open a saved share link (a log too long for the URL)."""
    try:
        spec, commands = await sync_to_async(timeline.shared_state_load)(shared_id=shared_id)
    except SharedState.DoesNotExist as error:
        raise Http404("No such shared state.") from error
    except timeline.ShareError as error:
        return await sync_to_async(_share_error)(request, error)
    return await _open_checked(request, spec, commands)


# -- Stress it -------------------------------------------------------------------------------


@require_GET
def sandbox_stress_runs(request: HttpRequest, cluster_id: str) -> HttpResponse:
    sandbox = get_object_or_404(LiveCluster, pk=cluster_id)
    return HttpResponse(experiments.stress_runs_fragment(cluster_id=sandbox.id))


def _stress_start(cluster_id: str, runs: int, acks: str, min_isr: int | None) -> StressRun:
    from webapp.tasks import stress_experiment

    config = experiments.stress_config_for_cluster(
        cluster_id=cluster_id, acks=acks, min_insync_replicas=min_isr
    )
    run = experiments.stress_run_create(cluster_id=cluster_id, config=config, runs=runs)
    stress_experiment.delay(run_id=run.id)
    return run


@require_POST
async def sandbox_stress(request: HttpRequest, cluster_id: str) -> HttpResponse:
    """Start "Stress it" as a Celery task; its progress reaches the page through the host."""
    sandbox = await aget_object_or_404(LiveCluster, pk=cluster_id)
    runs = _int_param(request.POST.get("runs") or 200)
    acks = str(request.POST.get("acks") or "")
    min_isr_text = request.POST.get("min_insync_replicas") or ""
    min_isr = _int_param(min_isr_text) if min_isr_text else None
    if runs is None or not 1 <= runs <= 500:
        return HttpResponseBadRequest("Runs must be a whole number from 1 to 500.")
    if acks not in ("", "0", "1", "all", "-1"):
        return HttpResponseBadRequest("acks must be 0, 1 or all.")
    if min_isr_text and (min_isr is None or not 1 <= min_isr <= sandbox.brokers):
        return HttpResponseBadRequest(
            f"min.insync.replicas must be from 1 to {sandbox.brokers} on this cluster."
        )
    run = await sync_to_async(_stress_start)(sandbox.id, runs, acks, min_isr)
    task = asyncio.get_running_loop().create_task(
        experiments.stress_progress_watch(run_id=run.id, cluster_id=sandbox.id)
    )
    _watchers.add(task)
    task.add_done_callback(_watchers.discard)
    return redirect(reverse("sandbox-detail", args=[sandbox.id]) + "#stress-runs")


@require_GET
def stress_open(request: HttpRequest, run_id: str, index: int) -> HttpResponse:
    """Open one run of an experiment on the stage, scrubbed to its first anomaly."""
    try:
        sandbox, at_ms = experiments.stress_run_open(
            run_id=run_id,
            index=index,
            session_key=_session_key(request),
            lost=request.GET.get("anomaly") == "lost",
        )
    except StressRun.DoesNotExist as error:
        raise Http404("No such run.") from error
    request.session[SESSION_SANDBOX] = sandbox.id
    lost = "&anomaly=lost" if request.GET.get("anomaly") == "lost" else ""
    return redirect(
        reverse("sandbox-timeline", args=[sandbox.id])
        + f"?t={at_ms}&run={run_id}&index={index}{lost}"
    )


def _stress_anomaly(request: HttpRequest) -> dict[str, Any] | None:
    """The anomaly a stress run was opened for (`?run=&index=`), to name it on the past page."""
    run_id, index = request.GET.get("run"), _int_param(request.GET.get("index"))
    if not run_id or index is None:
        return None
    run = StressRun.objects.filter(pk=run_id).first()
    failing = {f["index"]: f for f in ((run.report or {}) if run else {}).get("failing_runs", [])}
    if index not in failing:
        return None
    found = failing[index]
    anomaly = (request.GET.get("anomaly") == "lost" and found.get("first_lost")) or found["first"]
    return {
        "run": index + 1,
        "kind": anomaly.get("kind"),
        "partition": f"{anomaly.get('topic')}-{anomaly.get('partition')}",
        "offset": anomaly.get("offset"),
        "detail": anomaly.get("detail"),
        "seconds": int(anomaly.get("time_ms", 0)) / 1000,
    }
