"""The runtime jumps over ticks where nothing is due; how time is chunked never shows."""

from __future__ import annotations

import random
from typing import Any

from lessons.scenarios import ClusterRuntime, ClusterSpec
from webapp.services import sandbox_setup_commands

SPEC = ClusterSpec(seed=21, brokers=3)
COMMANDS: list[dict[str, Any]] = [
    {"type": "start_producer", "topic": "orders", "rate": 3.0, "acks": "all"},
    {"type": "add_group_consumer", "group": "g", "topic": "orders", "commit": "after"},
    {"type": "produce", "topic": "orders", "key": "k", "value": "v", "count": 4},
    {"type": "stop_broker", "broker_id": 2},
    {"type": "produce", "topic": "orders", "key": None, "value": "w", "count": 2},
    {"type": "start_broker", "broker_id": 2},
    {"type": "commit_group", "app_id": 2},
]


def test_live_ticks_and_one_coalesced_replay_reach_the_same_state() -> None:
    rng = random.Random(4)
    live = ClusterRuntime(SPEC)
    log: list[dict[str, Any]] = []
    for command in sandbox_setup_commands(brokers=3):
        live.apply(command)
        log.append(command)
    for command in COMMANDS:
        ran = 0
        for _ in range(rng.randrange(5, 40)):  # the live clock: 10 to 200 ms a tick
            step = rng.randrange(1, 21) * 10
            live.advance(step)
            ran += step
        log.append({"type": "advance", "ms": ran})  # the host logs the ticks as one advance
        live.apply(command)
        log.append(command)
    live.advance(12_340)
    log.append({"type": "advance", "ms": 12_340})
    replayed = ClusterRuntime.replay(SPEC, log)
    assert replayed.cluster.snapshot() == live.cluster.snapshot()
    assert (replayed.acked_sends, replayed.failed_sends) == (live.acked_sends, live.failed_sends)
    assert [c.records_read for c in replayed.consumers.values()] == [
        c.records_read for c in live.consumers.values()
    ]


def test_an_idle_hour_replays_in_a_few_thousand_steps() -> None:
    runtime = ClusterRuntime(SPEC)
    for command in sandbox_setup_commands(brokers=3):
        runtime.apply(command)
    steps = [0]
    advance = runtime.cluster.advance

    def counted(ms: int) -> None:
        steps[0] += 1
        advance(ms)

    runtime.cluster.advance = counted  # type: ignore[method-assign]
    runtime.advance(3_600_000)
    # Tick by tick would be 360,000 engine calls; the host consumer polls twice a second and
    # the brokers' timers run about ten times a second.
    assert steps[0] < 60_000
