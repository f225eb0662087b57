"""The engine host: log before apply, apply once per client seq, clock controls, bounded pushes."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import IntegrityError, OperationalError

from webapp import services
from webapp.engine_host import store
from webapp.engine_host.host import ClusterHost, host_group, viewers_group, without_time_labels
from webapp.models import ClusterCommand, LiveCluster

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

PRODUCE = {"type": "produce", "topic": "orders", "key": "k", "value": "v", "count": 1}


async def new_host(registry: Any) -> tuple[LiveCluster, ClusterHost]:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await registry.ensure(sandbox.id)
    assert host is not None
    return sandbox, host


async def logged(cluster_id: str) -> list[tuple[int, str, Any]]:
    rows = ClusterCommand.objects.filter(cluster_id=cluster_id).order_by("seq")
    return await database_sync_to_async(list)(rows.values_list("seq", "kind", "client_seq"))


def log_length(host: ClusterHost) -> int:
    topic = host.runtime.cluster.describe_topic("orders")
    return sum(p.log_end_offset for p in topic.partitions)


async def test_a_new_sandbox_log_starts_with_its_topic_and_consumer(host_registry: Any) -> None:
    sandbox, host = await new_host(host_registry)
    assert await logged(sandbox.id) == [(1, "create_topic", None), (2, "add_consumer", None)]
    assert [p.partition for p in host.runtime.cluster.describe_topic("orders").partitions] == [
        0,
        1,
        2,
    ]
    assert "reader" in host.runtime.consumers


async def test_every_command_is_written_to_the_log_before_it_is_applied(
    host_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, host = await new_host(host_registry)
    frame = await host.command(PRODUCE, client_id="client-0001", client_seq=1)
    assert frame["type"] == "ack", frame
    assert (await logged(sandbox.id))[-1] == (3, "produce", 1)
    await host.advance_live(500)
    assert log_length(host) == 1

    def disk_full(**kwargs: Any) -> None:
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(store, "cluster_log_write", disk_full)
    with pytest.raises(OperationalError):
        await host.command(PRODUCE, client_id="client-0001", client_seq=2)
    await host.advance_live(500)
    assert log_length(host) == 1  # not logged, so never applied


async def test_a_command_resent_with_the_same_client_seq_applies_once(
    host_registry: Any,
) -> None:
    sandbox, host = await new_host(host_registry)
    first = await host.command(PRODUCE, client_id="client-0001", client_seq=1)
    again = await host.command(PRODUCE, client_id="client-0001", client_seq=1)
    other_client = await host.command(PRODUCE, client_id="client-0002", client_seq=1)
    assert (first["duplicate"], again["duplicate"], other_client["duplicate"]) == (
        False,
        True,
        False,
    )
    await host.advance_live(1_000)
    assert log_length(host) == 2
    kinds = [kind for _, kind, _ in await logged(sandbox.id)]
    assert kinds.count("produce") == 2


async def test_pause_step_resume_and_speed(host_registry: Any) -> None:
    sandbox, host = await new_host(host_registry)
    host.viewers["someone-watching"] = time.monotonic()  # the clock runs while someone watches
    await asyncio.sleep(0.4)
    assert host.runtime.now_ms > 0

    assert (await host.command({"type": "pause"}))["type"] == "ack"
    paused_at = host.runtime.now_ms
    await asyncio.sleep(0.3)
    assert host.runtime.now_ms == paused_at

    step = await host.command({"type": "step", "ms": 250}, client_id="client-0001", client_seq=1)
    assert step["type"] == "ack", step
    assert host.runtime.now_ms == paused_at + 250
    assert (await logged(sandbox.id))[-1][1:] == ("advance", 1)

    assert (await host.command({"type": "speed", "speed": 10.0}))["type"] == "ack"
    assert (await host.command({"type": "resume"}))["type"] == "ack"
    resumed_at = host.runtime.now_ms
    await asyncio.sleep(0.5)
    ran = host.runtime.now_ms - resumed_at
    assert 2_000 <= ran <= 8_000, f"10x for 0.5 s ran {ran} ms of cluster time"

    refused = await host.command({"type": "step", "ms": 100})
    assert refused["type"] == "error"
    assert refused["message"] == "Pause the clock before stepping it."

    saved = await database_sync_to_async(LiveCluster.objects.get)(pk=sandbox.id)
    assert (saved.speed, saved.paused) == (10.0, False)


async def test_a_clock_tick_that_waited_for_a_pause_does_not_run(host_registry: Any) -> None:
    sandbox, host = await new_host(host_registry)
    before = host.runtime.now_ms
    async with host.lock:  # a command (here: pause) holds the host while the tick waits
        tick = asyncio.get_running_loop().create_task(host.advance_live(500, running_clock=True))
        await asyncio.sleep(0.05)
        host.paused = True
    assert await tick is None
    assert host.runtime.now_ms == before
    # Time run on purpose (a step, a test's own advance) is not the clock's tick: it runs.
    assert await host.advance_live(500) is not None
    assert host.runtime.now_ms == before + 500


async def test_time_that_ran_is_in_the_log_so_replay_reaches_the_same_moment(
    host_registry: Any,
) -> None:
    sandbox, host = await new_host(host_registry)
    await host.advance_live(300)
    await host.advance_live(200)
    await host.command(PRODUCE, client_id="client-0001", client_seq=1)
    rows = await database_sync_to_async(list)(
        ClusterCommand.objects.filter(cluster_id=sandbox.id).order_by("seq").values("payload")
    )
    assert rows[-2]["payload"] == {"type": "advance", "ms": 500}  # coalesced, before the command
    assert rows[-1]["payload"]["type"] == "produce"


async def test_state_versions_are_pushed_at_most_ten_times_a_second(host_registry: Any) -> None:
    sandbox, host = await new_host(host_registry)
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add(viewers_group(sandbox.id), watcher)
    await layer.group_send(host_group(sandbox.id), {"type": "host.join", "reply_to": watcher})
    full = await asyncio.wait_for(layer.receive(watcher), 2)
    assert full["type"] == "cluster.full"
    assert 'id="topics"' in full["html"]
    await host.command({"type": "speed", "speed": 20.0})

    versions: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.0
    while (remaining := deadline - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(layer.receive(watcher), remaining)
        except TimeoutError:
            break
        if message["type"] == "cluster.state":
            versions.append(message["version"])
            assert message["base"] == message["version"] - 1
    assert 3 <= len(versions) <= 11, versions
    assert versions == sorted(set(versions))


async def test_an_update_carries_only_the_fragments_that_changed(host_registry: Any) -> None:
    sandbox, host = await new_host(host_registry)
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add(viewers_group(sandbox.id), watcher)
    await host.command({"type": "pause"})
    await asyncio.sleep(0.2)
    await host.command({"type": "step", "ms": 10}, client_id="client-0001", client_seq=1)
    while True:
        message = await asyncio.wait_for(layer.receive(watcher), 2)
        if message["type"] == "cluster.state" and 'id="clock"' in message["html"]:
            break
    assert 'id="brokers"' not in message["html"]


def _stage_without_time_label(html: str) -> str:
    """The stage picture of a state message, with the cluster time it is labelled with
    blanked out."""
    stage = re.search(r'<svg class="stage-svg".*?</svg>', html, re.DOTALL)
    assert stage is not None
    now_ms = re.search(r'data-now-ms="(\d+)"', stage.group(0))
    assert now_ms is not None
    return stage.group(0).replace(now_ms.group(1), "\x00")


async def test_a_fragment_whose_only_change_is_its_time_label_is_resent_once_a_second(
    host_registry: Any,
) -> None:
    sandbox, host = await new_host(host_registry)
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add(viewers_group(sandbox.id), watcher)
    await layer.group_send(host_group(sandbox.id), {"type": "host.join", "reply_to": watcher})
    assert (await asyncio.wait_for(layer.receive(watcher), 2))["type"] == "cluster.full"

    async def states(seconds: float) -> list[str]:
        found: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            try:
                message = await asyncio.wait_for(layer.receive(watcher), remaining)
            except TimeoutError:
                break
            if message["type"] == "cluster.state":
                found.append(message["html"])
        return found

    # An idle running cluster: the clock moves every version, the stage only in its label.
    running = await states(2.5)
    assert len(running) >= 8
    stages = [html for html in running if 'class="stage-svg"' in html]
    assert stages
    # Count the re-sends whose only change from the stage before is its time label (a real
    # change, such as the young cluster electing a leader, is sent at once and not counted).
    label_only = 0
    for before, after in itertools.pairwise(stages):
        if _stage_without_time_label(before) == _stage_without_time_label(after):
            label_only += 1
    assert 1 <= label_only <= 3, label_only
    # A real change reaches the stage at once, whatever the label's schedule.
    await host.command(
        {"type": "stop_broker", "broker_id": 2}, client_id="client-0001", client_seq=1
    )
    changed = await states(0.5)
    assert any('class="broker is-stopped" data-broker="2"' in html for html in changed)
    # Paused, each step shows its time on the stage too.
    await host.command({"type": "pause"})
    await states(0.3)
    await host.command({"type": "step", "ms": 100}, client_id="client-0001", client_seq=2)
    stepped = await states(0.5)
    assert any(
        f'data-now-ms="{host.runtime.now_ms}"' in html and "stage-svg" in html for html in stepped
    )


async def test_a_command_is_logged_with_the_time_run_before_it_in_one_transaction(
    host_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, host = await new_host(host_registry)
    trips: list[list[Any]] = []
    write = store.cluster_log_write

    def counted(*, cluster_id: str, writes: list[Any]) -> None:
        trips.append(list(writes))
        write(cluster_id=cluster_id, writes=writes)

    monkeypatch.setattr(store, "cluster_log_write", counted)
    host._last_flush = time.monotonic() + 3600  # the keeper's periodic flush held off
    await host.advance_live(300)  # clock time not yet in the log
    assert (await host.command(PRODUCE, client_id="c", client_seq=1))["type"] == "ack"
    assert [[type(w).__name__ for w in trip] for trip in trips] == [
        ["CommandAppend", "CommandAppend"]
    ]
    assert (await logged(sandbox.id))[-2:] == [(3, "advance", None), (4, "produce", 1)]
    await host.advance_live(200)
    await host._flush_advance_locked()  # as before a publish: the log ends with an advance
    host._last_flush = time.monotonic() + 3600
    await host.advance_live(100)
    assert (await host.command(PRODUCE, client_id="c", client_seq=2))["type"] == "ack"
    assert [type(w).__name__ for w in trips[-1]] == ["AdvanceExtend", "CommandAppend"]
    rows = ClusterCommand.objects.filter(cluster_id=sandbox.id).order_by("seq")
    entries = await database_sync_to_async(list)(rows.values_list("seq", "kind", "payload"))
    assert [(seq, kind) for seq, kind, _ in entries][2:] == [
        (3, "advance"),
        (4, "produce"),
        (5, "advance"),
        (6, "produce"),
    ]
    assert entries[2][2]["ms"] == 300 and entries[4][2]["ms"] == 300  # 200 flushed + 100 extended

    # All or nothing: a seq taken by another owner leaves neither write in the log.
    taken = host.next_seq + 1
    await database_sync_to_async(ClusterCommand.objects.create)(
        cluster_id=sandbox.id, seq=taken, kind="advance", payload={"ms": 1}, logical_time_ms=0
    )
    writes = [
        store.CommandAppend(host.next_seq, {"type": "advance", "ms": 5}, 0),
        store.CommandAppend(taken, PRODUCE, 0),
    ]
    with pytest.raises(IntegrityError):
        await database_sync_to_async(write)(cluster_id=sandbox.id, writes=writes)
    assert not await ClusterCommand.objects.filter(
        cluster_id=sandbox.id, seq=host.next_seq
    ).aexists()


async def test_only_the_time_labels_are_blanked_a_value_equal_to_the_time_is_a_change(
    host_registry: Any,
) -> None:
    _, host = await new_host(host_registry)
    host.paused = False  # a running clock: labels are re-sent only on their schedule
    host._labels_sent_at = time.monotonic()  # not yet time to re-send the labels
    await host.advance_live(13_000)
    now = host.runtime.now_ms
    at = now - 500

    def mirror(t: int, offset: int) -> str:
        return f'<section id="mirror"><p>At {t} ms. HW {offset}, LEO {offset}.</p></section>'

    def stage(t: int) -> str:
        return (
            f'<svg aria-label="Cluster stage at {t} ms: brokers" data-now-ms="{t}">'
            '<g data-broker="1"></g></svg>'
        )

    host._fragment_times = {"mirror": at, "stage": at}
    held = {"mirror": mirror(at, at), "stage": stage(at)}
    # The stage moved only in its label: held back. The mirror's offsets went from 12500 to
    # 13000, the same numbers as the times: a real change, sent.
    fragments = {"mirror": mirror(now, now), "stage": stage(now)}
    assert without_time_labels(stage(at), at) == without_time_labels(stage(now), now)
    changed = host._changed_fragments(fragments, held)
    assert list(changed) == ["mirror"]
    assert fragments["stage"] == stage(at)  # viewers keep the one they hold
