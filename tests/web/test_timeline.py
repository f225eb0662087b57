"""Time travel: any earlier moment is a replay of a prefix of the command log; fork from it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec
from webapp import services, timeline
from webapp.engine_host import store
from webapp.models import ClusterCommand, LiveCluster

SPEC = ClusterSpec(seed=11)
PRODUCE = {"type": "produce", "topic": "orders", "key": "k", "value": "v", "count": 3}


def a_log() -> list[dict[str, Any]]:
    return [
        *services.sandbox_setup_commands(brokers=3),
        {"type": "advance", "ms": 300},
        PRODUCE,
        {"type": "advance", "ms": 1_230},
        {"type": "stop_broker", "broker_id": 1},
        {"type": "advance", "ms": 12_000},
        {**PRODUCE, "key": "later"},
        {"type": "advance", "ms": 800},
    ]


def state_at(ms: int) -> dict[str, Any]:
    """What a live clock showed at `ms`: the log applied, the clock stopped at `ms`."""
    runtime = ClusterRuntime(SPEC)
    for payload in a_log():
        if payload["type"] == "advance":
            step = min(payload["ms"], ms - runtime.now_ms)
            if step <= 0:
                break
            runtime.apply({"type": "advance", "ms": step})
            if step < payload["ms"]:
                break
        else:
            runtime.apply(payload)
    return runtime.cluster.snapshot()


@pytest.mark.parametrize("at_ms", [0, 290, 700, 1_540, 9_000, 14_330])
def test_scrubbing_back_rebuilds_exactly_the_state_of_that_moment(at_ms: int) -> None:
    runtime, prefix = timeline.replay_until(spec=SPEC, commands=a_log(), at_ms=at_ms)
    assert runtime.now_ms == at_ms
    assert runtime.cluster.snapshot() == state_at(at_ms)
    # the prefix alone rebuilds the same moment: that is what a fork starts from
    assert ClusterRuntime.replay(SPEC, prefix).cluster.snapshot() == state_at(at_ms)


def test_commands_logged_at_the_moment_are_part_of_it() -> None:
    stop_at = timeline.command_times(spec=SPEC, commands=a_log())[5]
    runtime, prefix = timeline.replay_until(spec=SPEC, commands=a_log(), at_ms=stop_at)
    assert prefix[-1] == {"type": "stop_broker", "broker_id": 1}
    assert not {b.id: b.alive for b in runtime.cluster.brokers()}[1]


def sandbox_with_log() -> LiveCluster:
    sandbox = services.sandbox_create(seed=SPEC.seed)
    times = timeline.command_times(spec=SPEC, commands=a_log())
    for seq, (payload, time_ms) in enumerate(zip(a_log(), times, strict=True), start=1):
        if seq <= 2:
            continue  # sandbox_create logged the topic and the consumer
        store.cluster_command_append(
            cluster_id=sandbox.id, seq=seq, payload=payload, logical_time_ms=time_ms
        )
    return sandbox


@pytest.mark.django_db
def test_a_fork_is_a_new_sandbox_whose_log_is_the_prefix_and_the_original_is_untouched() -> None:
    original = sandbox_with_log()
    before = list(ClusterCommand.objects.filter(cluster=original).values_list("seq", "payload"))

    fork = timeline.sandbox_fork(cluster_id=original.id, at_ms=700)

    assert fork.id != original.id and fork.seed == original.seed and fork.paused
    stored = store.cluster_load(cluster_id=fork.id)
    assert stored.commands[:4] == a_log()[:4]
    assert [c["type"] for c in stored.commands[4:]] == ["advance"]  # the cut advance
    assert ClusterRuntime.replay(stored.spec, stored.commands).cluster.snapshot() == state_at(700)
    after = list(ClusterCommand.objects.filter(cluster=original).values_list("seq", "payload"))
    assert after == before


@pytest.mark.django_db
def test_the_past_page_shows_the_old_state_read_only_and_forks_from_it(client: Client) -> None:
    original = sandbox_with_log()
    page = client.get(f"/sandbox/{original.id}/timeline/?t=1000")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Viewing the past: t = 1.00 s" in text
    assert 'name="t" value="1000"' in text
    assert "ws-connect" not in text  # read-only: no socket, no commands
    assert "broker 1" in text.lower()

    end_ms = timeline.replay_until(spec=SPEC, commands=a_log())[0].now_ms
    end = client.get(f"/sandbox/{original.id}/timeline/").content.decode()
    assert f"Viewing the past: t = {end_ms / 1000:.2f} s" in end

    response = client.post(f"/sandbox/{original.id}/fork/", {"t": "1000"})
    assert response.status_code == 302
    fork = LiveCluster.objects.exclude(pk=original.pk).get()
    assert response["Location"] == f"/sandbox/{fork.id}/"
    assert client.get("/sandbox/")["Location"] == f"/sandbox/{fork.id}/"
    assert client.post(f"/sandbox/{original.id}/fork/", {"t": "soon"}).status_code == 400
