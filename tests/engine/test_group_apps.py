"""Simulated consumer and producer apps run on the cluster clock and replay exactly."""

from __future__ import annotations

import pytest

from engine import Cluster

TOPIC = "orders"


def make_cluster(partitions: int = 3) -> Cluster:
    cluster = Cluster(brokers=3, seed=5)
    cluster.create_topic(TOPIC, partitions=partitions, replication_factor=3)
    return cluster


def test_producer_app_sends_at_its_rate_with_a_hot_key() -> None:
    cluster = make_cluster()
    apps = cluster.services["apps"]
    producer = apps.producer_app(TOPIC, rate_per_sec=50, keys=20, hot_key_share=0.5)
    cluster.advance(10000)
    state = producer.snapshot()
    assert 490 <= state["sent"] <= 510
    assert state["acknowledged"] >= state["sent"] - 50
    assert 0.4 < state["per_key"]["hot"] / state["sent"] < 0.6
    assert max(v for k, v in state["per_key"].items() if k != "hot") < state["per_key"]["hot"] / 5


def test_consumer_app_consumes_everything_a_producer_app_sends_without_a_caller_polling() -> None:
    cluster = make_cluster()
    apps = cluster.services["apps"]
    producer = apps.producer_app(TOPIC, rate_per_sec=20, keys=5)
    reader = apps.consumer_app("billing", [TOPIC], poll_interval_ms=100, commit="after")
    cluster.advance(5000)
    apps.control(producer.id, "stop")
    cluster.advance(5000)
    assert reader.processed == producer.acknowledged > 0
    assert reader.duplicates == 0
    assert sum(cluster.describe_group("billing").lag.values()) == 0


def _crash_mid_batch(commit: str) -> tuple[int, int, int]:
    cluster = make_cluster(partitions=1)
    apps = cluster.services["apps"]
    producer = apps.producer_app(TOPIC, rate_per_sec=50, keys=5)
    reader = apps.consumer_app(
        "billing",
        [TOPIC],
        poll_interval_ms=200,
        processing_ms_per_record=20,
        commit=commit,
        config={"session.timeout.ms": 10000, "max.poll.records": 20},
    )
    cluster.advance(6000)
    apps.control(producer.id, "stop")
    while reader.in_progress is None or cluster.now_ms - reader.in_progress[0] < 150:
        cluster.advance(10)
    apps.control(reader.id, "crash")  # part of a 20-record batch is processed
    apps.control(reader.id, "start")
    cluster.advance(40000)
    return producer.acknowledged, len(reader.seen), reader.duplicates


def test_commit_after_processing_app_reprocesses_after_a_crash_and_restart() -> None:
    sent, distinct, duplicates = _crash_mid_batch("after")
    assert distinct == sent  # at-least-once: nothing lost
    assert 0 < duplicates < 20  # the processed part of the crashed batch, again


def test_commit_before_processing_app_loses_records_after_a_crash_and_restart() -> None:
    sent, distinct, duplicates = _crash_mid_batch("before")
    assert duplicates == 0  # at-most-once: nothing twice
    assert 0 < sent - distinct < 20  # the unprocessed rest of the crashed batch


def test_a_slowed_consumer_app_is_removed_after_max_poll_interval() -> None:
    cluster = make_cluster(partitions=1)
    apps = cluster.services["apps"]
    apps.producer_app(TOPIC, rate_per_sec=10, keys=1)
    reader = apps.consumer_app(
        "billing",
        [TOPIC],
        commit="after",
        config={"max.poll.interval.ms": 10000, "max.poll.records": 50},
    )
    cluster.advance(8000)
    apps.control(reader.id, "set_processing_ms", 1000)  # 50 records take 50 s: longer than 10 s
    cluster.advance(60000)
    left = [e.data for e in cluster.events if e.kind == "member_left"]
    assert any("max.poll.interval.ms" in e["reason"] for e in left)
    assert reader.commits_failed > 0


def test_apps_refuse_unknown_actions_and_policies() -> None:
    cluster = make_cluster()
    apps = cluster.services["apps"]
    with pytest.raises(ValueError):
        apps.consumer_app("billing", [TOPIC], commit="sometimes")
    producer = apps.producer_app(TOPIC)
    with pytest.raises(ValueError):
        apps.control(producer.id, "crash")


def test_app_activity_replays_to_an_equal_snapshot() -> None:
    cluster = make_cluster()
    apps = cluster.services["apps"]
    producer = apps.producer_app(TOPIC, rate_per_sec=30, keys=8, hot_key_share=0.3)
    reader = apps.consumer_app("billing", [TOPIC], processing_ms_per_record=5, commit="before")
    other = apps.consumer_app("billing", [TOPIC], commit="auto")
    cluster.advance(7000)
    apps.control(reader.id, "crash")
    cluster.advance(3000)
    apps.control(producer.id, "set_rate", 5)
    apps.control(reader.id, "restart")
    cluster.advance(20000)
    apps.control(other.id, "stop")
    cluster.advance(2000)
    rebuilt = Cluster.from_log(cluster.export_log())
    assert rebuilt.snapshot() == cluster.snapshot()
    assert cluster.snapshot()["apps"][0]["sent"] > 0
