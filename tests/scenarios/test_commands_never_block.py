"""Commands return at once: nothing a command does runs cluster time; the live clock carries
its consequences, and replaying the log reaches the same state."""

from __future__ import annotations

from typing import Any

from lessons.scenarios import ClusterRuntime, ClusterSpec
from webapp.services import sandbox_setup_commands

SPEC = ClusterSpec(seed=5, brokers=3)


class Stage:
    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = list(sandbox_setup_commands(brokers=3))
        self.runtime = ClusterRuntime(SPEC)
        for command in self.log:
            assert self.runtime.apply(command).ok

    def run(self, command: dict[str, Any]) -> Any:
        self.log.append(command)
        return self.runtime.apply(command)

    def advance(self, ms: int) -> None:
        self.run({"type": "advance", "ms": ms})

    def stop_every_broker(self) -> None:
        for broker_id in (1, 2, 3):
            assert self.run({"type": "stop_broker", "broker_id": broker_id}).ok


def produce(count: int = 1, value: str = "v") -> dict[str, Any]:
    return {"type": "produce", "topic": "orders", "key": "k", "value": value, "count": count}


def test_a_produce_with_every_broker_down_returns_without_running_the_clock() -> None:
    stage = Stage()
    stage.advance(1_000)
    stage.stop_every_broker()
    before = stage.runtime.now_ms
    result = stage.run(produce(count=3))
    assert result.ok, result.message
    # Kafka's send() would block up to max.block.ms (60 s) per record waiting for metadata.
    assert stage.runtime.now_ms == before
    assert stage.runtime.failed_sends == 0
    # The clock carries it: once max.block.ms ran out, the three records fail, as in Kafka.
    stage.advance(59_000)
    assert stage.runtime.failed_sends == 0
    stage.advance(1_010)
    assert stage.runtime.failed_sends == 3
    assert "not present in metadata after 60000 ms" in stage.runtime.notices[-1].text
    replayed = ClusterRuntime.replay(SPEC, stage.log)
    assert replayed.cluster.snapshot() == stage.runtime.cluster.snapshot()
    assert replayed.failed_sends == 3


def test_a_first_produce_waits_for_metadata_on_the_clock_then_lands_in_order() -> None:
    stage = Stage()
    before = stage.runtime.now_ms
    assert stage.run(produce(count=2, value="a")).ok
    assert stage.run(produce(count=1, value="b")).ok
    assert stage.runtime.now_ms == before
    stage.advance(2_000)
    assert stage.runtime.acked_sends == 3
    values = [
        r.value
        for p in stage.runtime.cluster.describe_topic("orders").partitions
        for r in stage.runtime.cluster.read("orders", p.partition, offset=0)
    ]
    assert values == [b"a-1", b"a-2", b"b"]  # one key, one partition: the order they were sent
    replayed = ClusterRuntime.replay(SPEC, stage.log)
    assert replayed.cluster.snapshot() == stage.runtime.cluster.snapshot()


def test_no_command_runs_cluster_time_even_with_every_broker_down() -> None:
    stage = Stage()
    assert stage.run({"type": "start_producer", "topic": "orders", "rate": 5.0, "acks": "1"}).ok
    assert stage.run(
        {"type": "add_group_consumer", "group": "billing", "topic": "orders", "commit": "after"}
    ).ok
    stage.advance(4_000)
    stage.stop_every_broker()
    commands: list[dict[str, Any]] = [
        produce(count=5),
        {"type": "commit_group", "app_id": 2},
        {"type": "reset_offsets", "group": "nobody", "topic": "orders", "to": "earliest"},
        {"type": "set_acks", "acks": "0"},
        produce(count=2),
        {"type": "app_control", "app_id": 2, "action": "restart"},
        {"type": "alter_topic_config", "topic": "orders", "key": "retention.ms", "value": "5000"},
        {"type": "add_partitions", "topic": "orders", "total": 4},
        {"type": "create_topic", "name": "payments", "partitions": 1, "replication_factor": 1},
        {"type": "lose_responses", "broker_id": 1, "count": 3},
        {"type": "start_broker", "broker_id": 1},
    ]
    for command in commands:
        before = stage.runtime.now_ms
        stage.run(command)
        assert stage.runtime.now_ms == before, command
    stage.advance(70_000)
    replayed = ClusterRuntime.replay(SPEC, stage.log)
    assert replayed.cluster.snapshot() == stage.runtime.cluster.snapshot()


def test_an_asynchronous_commit_lands_on_the_clock() -> None:
    stage = Stage()
    assert stage.run({"type": "start_producer", "topic": "orders", "rate": 20.0, "acks": "1"}).ok
    assert stage.run(
        {"type": "add_group_consumer", "group": "billing", "topic": "orders", "commit": "before"}
    ).ok
    stage.advance(5_000)
    committed_before = [e for e in stage.runtime.cluster.events if e.kind == "offsets_committed"]
    assert stage.run({"type": "commit_group", "app_id": 2}).ok
    stage.advance(500)
    committed = [e for e in stage.runtime.cluster.events if e.kind == "offsets_committed"]
    assert len(committed) > len(committed_before)


def test_a_reset_with_no_reachable_coordinator_fails_on_the_clock() -> None:
    stage = Stage()
    stage.stop_every_broker()
    before = stage.runtime.now_ms
    result = stage.run(
        {"type": "reset_offsets", "group": "idle", "topic": "orders", "to": "earliest"}
    )
    assert result.ok, result.message
    assert stage.runtime.now_ms == before
    # The coordinator is looked up for 30 s (as kafka-consumer-groups would), then it fails.
    stage.advance(29_000)
    assert not any("Reset of idle failed" in n.text for n in stage.runtime.notices)
    stage.advance(1_100)
    assert any("Reset of idle failed" in n.text for n in stage.runtime.notices)


def test_a_reset_of_an_empty_group_is_stored_on_the_clock() -> None:
    stage = Stage()
    assert stage.run(produce(count=5)).ok
    stage.advance(2_000)
    result = stage.run(
        {"type": "reset_offsets", "group": "idle", "topic": "orders", "to": "latest"}
    )
    assert result.ok, result.message
    stage.advance(1_000)
    assert any("now starts from latest" in n.text for n in stage.runtime.notices)
    offsets = stage.runtime.cluster.describe_group("idle").offsets
    assert sum(offsets.values()) == 5
