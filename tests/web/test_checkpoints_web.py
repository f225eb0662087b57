"""Time travel from checkpoints: the past page, a fork and a share link give what a replay from
the start gives (the rendered stage included), and a live host keeps the checkpoints they use."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from channels.db import database_sync_to_async

from lessons.scenarios import checkpoints, workloads
from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec
from webapp import services, timeline
from webapp.engine_host import render, store
from webapp.models import ClusterCommand

SPEC = ClusterSpec(seed=23)
APP = workloads.PRODUCER_APP
GROUP = workloads.GROUP_APP


def a_log() -> list[dict[str, Any]]:
    return [
        *services.sandbox_setup_commands(brokers=3),
        APP,
        GROUP,
        {"type": "advance", "ms": 4_000},
        {"type": "stop_broker", "broker_id": 2},
        {"type": "advance", "ms": 5_500},
        {"type": "start_broker", "broker_id": 2},
        {"type": "advance", "ms": 6_000},
    ]


def rendered(runtime: ClusterRuntime) -> dict[str, str]:
    clock = render.ClockView(now_ms=runtime.now_ms, paused=True, speed=1.0, viewers=0)
    return render.render_fragments(runtime, clock, readonly=True)


@pytest.fixture(autouse=True)
def fresh_store() -> Any:
    checkpoints.default_store().clear()
    yield
    checkpoints.default_store().clear()


def test_the_past_stage_renders_the_same_from_a_checkpoint() -> None:
    log = a_log()
    checkpoints.replay(SPEC, log, work_per_dump=0)  # keeps checkpoints every 2 s and the end
    assert len(checkpoints.default_store()) >= 7
    for at_ms in [*random.Random(5).sample(range(2_000, 15_500, 10), 4), 9_500]:
        runtime, prefix = timeline.replay_until(spec=SPEC, commands=log, at_ms=at_ms)
        start = checkpoints.replay(SPEC, log, at_ms, store=checkpoints.CheckpointStore())
        assert prefix == start.prefix
        assert runtime.cluster.snapshot() == start.runtime.cluster.snapshot()
        assert rendered(runtime) == rendered(start.runtime), at_ms


@pytest.mark.django_db
def test_a_fork_from_checkpoints_logs_the_prefix_and_times_a_replay_gives() -> None:
    sandbox = services.sandbox_create(seed=SPEC.seed)
    for seq, payload in enumerate(a_log()[2:], start=3):
        store.cluster_command_append(
            cluster_id=sandbox.id, seq=seq, payload=payload, logical_time_ms=0
        )
    stored = store.cluster_load(cluster_id=sandbox.id)
    timeline.replay_until(spec=stored.spec, commands=stored.commands)
    fork = timeline.sandbox_fork(cluster_id=sandbox.id, at_ms=12_345)
    rows = list(ClusterCommand.objects.filter(cluster=fork).order_by("seq"))
    start = checkpoints.replay(
        stored.spec, stored.commands, 12_340, store=checkpoints.CheckpointStore()
    )
    assert [r.payload for r in rows] == start.prefix
    assert [r.logical_time_ms for r in rows] == start.times
    assert start.prefix[-1] == {"type": "advance", "ms": 12_340 - 9_500}


def test_a_share_link_of_a_long_session_opens_from_its_checkpoint() -> None:
    """The replay budget counts only what follows the nearest checkpoint: a link this process
    can rebuild quickly opens, the same link elsewhere would be refused as too much work."""
    log = [*a_log()[:-1], {"type": "advance", "ms": 600_000}]
    token = timeline.share_token_encode(spec=SPEC, commands=log)
    with pytest.raises(timeline.ShareError, match="work to rebuild"):
        timeline.share_token_decode(token)
    end = checkpoints.LogPosition(checkpoints.log_digests(SPEC, log)[-2], 600_000)
    runtime = ClusterRuntime.replay(SPEC, log[:-1])
    runtime.advance(3_000)  # stands in for the 600 s run live (its position is what counts)
    checkpoints.default_store().put(end, runtime, index=len(log) - 1, times=[0] * (len(log) - 1))
    spec, commands = timeline.share_token_decode(token)
    assert (spec, commands) == (SPEC, log)
    assert timeline.replay_cost_s(log, start=(len(log) - 1, 600_000)) < 0.01
    assert timeline.replay_cost_s(log) > timeline.REPLAY_BUDGET_S


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_checkpoints_a_live_host_keeps_are_a_setting(
    host_registry: Any, settings: Any
) -> None:
    """KAFKA_DOJO_LIVE_CHECKPOINTS (DOJO_LIVE_CHECKPOINTS) caps a live host's own checkpoints;
    unset, the host keeps checkpoints.MAX_LIVE_CHECKPOINTS."""
    settings.DOJO_LIVE_CHECKPOINTS = None
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None and host.checkpoints is not None
    assert host.checkpoints.max_kept == checkpoints.MAX_LIVE_CHECKPOINTS
    settings.DOJO_LIVE_CHECKPOINTS = 5
    other = await database_sync_to_async(services.sandbox_create)()
    capped = await host_registry.ensure(other.id)
    assert capped is not None and capped.checkpoints is not None
    assert capped.checkpoints.max_kept == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_live_host_keeps_checkpoints_the_past_page_starts_from(
    host_registry: Any,
) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None and host.checkpoints is not None
    host.checkpoints.work_per_dump = 0.0  # keep one every 2 s of cluster time, whatever it costs
    host.paused = True  # the test drives the clock
    assert (await host.command(APP))["type"] == "ack"
    for _ in range(12):
        await host.advance_live(500)
    async with host.lock:
        await host._flush_advance_locked()
    assert (await host.command({"type": "stop_broker", "broker_id": 3}))["type"] == "ack"
    for _ in range(10):
        await host.advance_live(500)
    async with host.lock:
        await host._flush_advance_locked()
    assert host.checkpoints.kept >= 4
    stored = await database_sync_to_async(store.cluster_load)(cluster_id=sandbox.id)
    for at_ms in (4_000, 6_000, 10_500):
        fast = await asyncio.to_thread(
            checkpoints.replay, stored.spec, stored.commands, at_ms, keep=False
        )
        start = await asyncio.to_thread(
            checkpoints.replay,
            stored.spec,
            stored.commands,
            at_ms,
            store=checkpoints.CheckpointStore(),
        )
        assert fast.from_checkpoint_ms is not None and at_ms - fast.from_checkpoint_ms <= 2_000
        assert fast.times == start.times
        assert fast.runtime.cluster.snapshot() == start.runtime.cluster.snapshot()
        assert rendered(fast.runtime) == rendered(start.runtime)
    # The live runtime itself is where a replay of its log ends.
    end = await asyncio.to_thread(
        checkpoints.replay, stored.spec, stored.commands, store=checkpoints.CheckpointStore()
    )
    assert end.runtime.cluster.snapshot() == host.runtime.cluster.snapshot()


def test_command_times_read_off_a_log_are_those_a_replay_gives() -> None:
    """A share link's commands are timed from the log itself (nothing replayed in a worker
    process without this process's checkpoints), unless a command moves the clock by what
    only a replay knows (a controlled shutdown): then it is replayed."""
    log = [*a_log(), {"type": "produce", "topic": "orders", "value": "v", "count": 2}]
    log += [{"type": "advance", "ms": 0}, {"type": "stop_broker", "broker_id": 1}]
    replayed = checkpoints.replay(SPEC, log, store=checkpoints.CheckpointStore(), keep=False)
    assert timeline.logged_times(log) == replayed.times
    assert timeline.command_times(spec=SPEC, commands=log) == replayed.times
    shutdown = [*log, {"type": "shutdown_broker", "broker_id": 3}, {"type": "advance", "ms": 500}]
    assert timeline.logged_times(shutdown) is None
    slow = checkpoints.replay(SPEC, shutdown, store=checkpoints.CheckpointStore(), keep=False)
    assert timeline.command_times(spec=SPEC, commands=shutdown) == slow.times
    assert slow.times[-1] > sum(c.get("ms", 0) for c in shutdown[:-1])  # it did move the clock


def test_a_shared_log_is_timed_from_the_checkpoint_kept_at_its_end() -> None:
    """A log whose times only a replay knows (a controlled shutdown) is timed from the
    checkpoint its share link kept at its end: nothing replayed again, the same times."""
    log = [*a_log(), {"type": "shutdown_broker", "broker_id": 3}, {"type": "advance", "ms": 3_000}]
    assert timeline.logged_times(log) is None
    assert timeline.kept_times(spec=SPEC, commands=log) is None  # nothing kept yet
    start = checkpoints.replay(SPEC, log, store=checkpoints.CheckpointStore(), keep=False)
    checkpoints.replay(SPEC, log, keep_end=True)  # kept inside its last advance
    assert timeline.kept_times(spec=SPEC, commands=log) == start.times
    cut = checkpoints.replay(SPEC, log, start.times[-1] + 1_500, keep_end=True)
    at = checkpoints.replay(SPEC, cut.prefix, store=checkpoints.CheckpointStore(), keep=False)
    assert timeline.kept_times(spec=SPEC, commands=cut.prefix) == at.times
    assert timeline.kept_times(spec=SPEC, commands=[*cut.prefix, APP]) is None


@pytest.mark.django_db
def test_a_fork_and_a_share_link_keep_the_moment_their_new_host_replays() -> None:
    """Whatever the pace of copies says, the moment forked or shared is kept: the new
    sandbox's host (or the link's) restores it instead of replaying."""
    sandbox = services.sandbox_create(seed=SPEC.seed)
    for seq, payload in enumerate(a_log()[2:], start=3):
        store.cluster_command_append(
            cluster_id=sandbox.id, seq=seq, payload=payload, logical_time_ms=0
        )
    stored = store.cluster_load(cluster_id=sandbox.id)
    checkpoints.replay(stored.spec, stored.commands, work_per_dump=0)
    checkpoints.default_store().put_s = 3_600.0  # as if a copy took an hour
    fork = timeline.sandbox_fork(cluster_id=sandbox.id, at_ms=12_345)
    forked = store.cluster_load(cluster_id=fork.id)
    host = checkpoints.replay(forked.spec, forked.commands, keep=False)
    assert host.from_checkpoint_ms == 12_340
    link = timeline.share_link_create(cluster_id=sandbox.id, at_ms=7_777)
    spec, commands = timeline.share_token_decode(link.path.split("/")[2])
    opened = checkpoints.replay(spec, commands, keep=False)
    assert opened.from_checkpoint_ms == 7_770
    start = checkpoints.replay(spec, commands, store=checkpoints.CheckpointStore(), keep=False)
    assert rendered(opened.runtime) == rendered(start.runtime)


def test_the_past_page_keeps_the_end_of_the_log_it_asks_for_each_time() -> None:
    """Every request of the past page lists the log's moments, from a replay to its end: kept
    whatever the pace says, the next request restores it instead of replaying again."""
    log = a_log()
    checkpoints.replay(SPEC, log, 9_000, work_per_dump=0)
    checkpoints.default_store().put_s = 3_600.0  # as if a copy took an hour
    times = checkpoints.replay(SPEC, log, store=checkpoints.CheckpointStore(), keep=False).times
    points, end_ms = timeline.timeline_points(spec=SPEC, commands=log, times=times)
    again = checkpoints.replay(SPEC, log, keep=False)
    assert again.from_checkpoint_ms == end_ms == 15_500
    assert timeline.timeline_points(spec=SPEC, commands=log, times=times) == (points, end_ms)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_flushed_host_keeps_the_end_its_reader_replays_to(host_registry: Any) -> None:
    """The past page, a fork and a share link flush the host before they read its log: the
    host keeps its live runtime at the log's end then, so their replay to it restores."""
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None and host.checkpoints is not None
    host.checkpoints.work_per_dump = 1e9  # the pace alone keeps none after the first
    host.checkpoints.max_replay_timers = 10**9
    host.paused = True
    assert (await host.command(APP))["type"] == "ack"
    for _ in range(9):
        await host.advance_live(500)
    await host.handle({"type": "host.flush"})
    stored = await database_sync_to_async(store.cluster_load)(cluster_id=sandbox.id)
    fast = await asyncio.to_thread(checkpoints.replay, stored.spec, stored.commands, keep=False)
    assert fast.from_checkpoint_ms == host.runtime.now_ms == 4_500
    start = await asyncio.to_thread(
        checkpoints.replay, stored.spec, stored.commands, store=checkpoints.CheckpointStore()
    )
    assert fast.runtime.cluster.snapshot() == start.runtime.cluster.snapshot()
    assert rendered(fast.runtime) == rendered(start.runtime)
