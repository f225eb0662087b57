"""The runtime: a cluster plus the host's clients, rebuilt exactly from its command log."""

from __future__ import annotations

from typing import Any

from engine.partitioner import partition_for_key
from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec
from tests.web.support import sandbox_runtime

SPEC = ClusterSpec(seed=7, brokers=3)


def records_by_partition(runtime: ClusterRuntime, topic: str = "orders") -> dict[int, list[Any]]:
    description = runtime.cluster.describe_topic(topic)
    return {
        p.partition: [
            (r.offset, r.key, r.value) for r in runtime.cluster.read(topic, p.partition, offset=0)
        ]
        for p in description.partitions
    }


def new_sandbox_runtime() -> tuple[ClusterRuntime, list[dict[str, Any]]]:
    return sandbox_runtime(SPEC.seed)


def test_a_keyed_record_lands_in_the_partition_its_key_hashes_to() -> None:
    runtime, _ = new_sandbox_runtime()
    result = runtime.apply(
        {"type": "produce", "topic": "orders", "key": "customer-42", "value": "paid", "count": 1}
    )
    assert result.ok, result.message
    runtime.advance(1_000)
    expected = partition_for_key(b"customer-42", 3)
    logs = records_by_partition(runtime)
    assert [(key, value) for _, key, value in logs[expected]] == [(b"customer-42", b"paid")]
    assert all(not records for p, records in logs.items() if p != expected)
    assert runtime.acked_sends == 1


def test_a_count_sends_numbered_values() -> None:
    runtime, _ = new_sandbox_runtime()
    runtime.apply({"type": "produce", "topic": "orders", "key": "k", "value": "v", "count": 3})
    runtime.advance(1_000)
    values = [value for _, _, value in records_by_partition(runtime)[partition_for_key(b"k", 3)]]
    assert values == [b"v-1", b"v-2", b"v-3"]


def test_live_ticks_and_one_coalesced_advance_replay_to_the_same_state() -> None:
    live, log = new_sandbox_runtime()
    # The live clock advances in irregular tick-sized pieces; the log keeps their sum.
    for ms in (50, 40, 10, 200, 30):
        live.advance(ms)
    log.append({"type": "advance", "ms": 330})
    for command in (
        {"type": "produce", "topic": "orders", "key": "a", "value": "1", "count": 2},
        {"type": "stop_broker", "broker_id": 2},
    ):
        assert live.apply(command).ok
        log.append(command)
    for ms in (100, 900, 1_000, 3_000):
        live.advance(ms)
    log.append({"type": "advance", "ms": 5_000})

    replayed = ClusterRuntime.replay(SPEC, log)
    assert replayed.now_ms == live.now_ms >= 5_330
    assert replayed.cluster.snapshot() == live.cluster.snapshot()
    assert records_by_partition(replayed) == records_by_partition(live)
    assert replayed.consumers["reader"].positions == live.consumers["reader"].positions


def test_the_host_consumer_moves_along_the_log_one_record_per_poll() -> None:
    runtime, _ = new_sandbox_runtime()
    runtime.apply({"type": "produce", "topic": "orders", "key": "k", "value": "v", "count": 4})
    partition = partition_for_key(b"k", 3)
    runtime.advance(600)
    early = runtime.consumers["reader"].positions.get(partition, 0)
    runtime.advance(5_000)
    late = runtime.consumers["reader"].positions.get(partition, 0)
    assert early < 4
    assert late == 4
    assert runtime.consumers["reader"].records_read == 4


def test_producing_to_a_missing_topic_is_an_error_result_not_a_crash() -> None:
    runtime, _ = new_sandbox_runtime()
    before = runtime.now_ms
    result = runtime.apply({"type": "produce", "topic": "nope", "value": "v", "count": 1})
    assert not result.ok
    assert result.error == "UnknownTopicOrPartitionError"
    assert "nope" in result.message
    assert runtime.now_ms == before


def test_an_unknown_command_is_refused() -> None:
    runtime, _ = new_sandbox_runtime()
    result = runtime.apply({"type": "format_disk"})
    assert not result.ok
    assert "format_disk" in result.message


def test_killing_a_broker_shows_in_the_brokers_view() -> None:
    runtime, _ = new_sandbox_runtime()
    assert runtime.apply({"type": "stop_broker", "broker_id": 3}).ok
    alive = {b.id: b.alive for b in runtime.cluster.brokers()}
    assert alive == {1: True, 2: True, 3: False}
    assert runtime.apply({"type": "start_broker", "broker_id": 3}).ok
    assert all(b.alive for b in runtime.cluster.brokers())
