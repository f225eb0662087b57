"""Facade methods the CLI console needs: group offsets and deletion, ListOffsets, the quorum."""

from __future__ import annotations

import pytest

from engine import Cluster, TopicPartition
from engine.errors import (
    GroupIdNotFoundError,
    GroupNotEmptyError,
    InvalidConfigurationError,
    LeaderNotAvailableError,
)


def _cluster_with_group() -> tuple[Cluster, dict[TopicPartition, int]]:
    cluster = Cluster(brokers=3, seed=5)
    cluster.create_topic("orders", partitions=2, replication_factor=3)
    producer = cluster.producer({"acks": "all"})
    for i in range(6):
        producer.send("orders", value=f"v{i}".encode(), partition=i % 2, timestamp_ms=1000 * i)
    producer.flush()
    consumer = cluster.consumer({"group.id": "billing", "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders"])
    read = 0
    while read < 6:
        read += len(consumer.poll(timeout_ms=200))
    consumer.commit()
    consumer.close()
    return cluster, dict(cluster.describe_group("billing").offsets)


def test_alter_group_offsets_commits_the_given_offsets_and_replays() -> None:
    cluster, before = _cluster_with_group()
    assert set(before.values()) == {3}
    cluster.alter_group_offsets("billing", {TopicPartition("orders", 0): 1})
    after = cluster.describe_group("billing").offsets
    assert after[TopicPartition("orders", 0)] == 1
    assert after[TopicPartition("orders", 1)] == 3
    assert Cluster.from_log(cluster.export_log()).snapshot() == cluster.snapshot()


def test_alter_group_offsets_is_refused_while_the_group_has_members() -> None:
    cluster, _ = _cluster_with_group()
    consumer = cluster.consumer({"group.id": "billing"})
    consumer.subscribe(["orders"])
    while not consumer.assignment():
        consumer.poll(timeout_ms=200)
    with pytest.raises(GroupNotEmptyError):
        cluster.alter_group_offsets("billing", {TopicPartition("orders", 0): 0})
    with pytest.raises(GroupNotEmptyError):
        cluster.delete_group("billing")
    assert cluster.describe_group("billing").offsets[TopicPartition("orders", 0)] == 3


def test_delete_group_removes_it_with_its_offsets_and_replays() -> None:
    cluster, _ = _cluster_with_group()
    assert cluster.list_groups() == ["billing"]
    cluster.delete_group("billing")
    assert cluster.list_groups() == []
    assert cluster.describe_group("billing").state == "Dead"
    assert cluster.describe_group("billing").offsets == {}
    with pytest.raises(GroupIdNotFoundError):
        cluster.delete_group("billing")
    assert Cluster.from_log(cluster.export_log()).snapshot() == cluster.snapshot()


def test_list_offsets_by_spec_and_timestamp() -> None:
    cluster, _ = _cluster_with_group()
    # partition 0 holds timestamps 0, 2000, 4000 at offsets 0, 1, 2
    assert cluster.list_offsets("orders", 0, "earliest") == 0
    assert cluster.list_offsets("orders", 0, "latest") == 3
    assert cluster.list_offsets("orders", 0, 1500) == 1
    assert cluster.list_offsets("orders", 0, 4000) == 2
    assert cluster.list_offsets("orders", 0, 4001) is None
    assert cluster.list_offsets("orders", 0, "max-timestamp") == 2
    with pytest.raises(ValueError):
        cluster.list_offsets("orders", 0, "soon")


def test_list_offsets_without_a_leader_raises_leader_not_available() -> None:
    cluster = Cluster(brokers=1, seed=5)
    cluster.create_topic("t")
    cluster.stop_broker(1)
    cluster.advance(20000)
    with pytest.raises(LeaderNotAvailableError):
        cluster.list_offsets("t", 0, "latest")


def test_describe_quorum_tracks_a_stopped_voter_falling_behind() -> None:
    cluster = Cluster(brokers=3, seed=5)
    quorum = cluster.describe_quorum()
    active = next(c.id for c in cluster.controllers() if c.is_active)
    assert quorum.leader_id == active
    assert [v.id for v in quorum.voters] == [101, 102, 103]
    assert [o.id for o in quorum.observers] == [1, 2, 3]
    assert {v.log_end_offset for v in quorum.voters} == {quorum.high_watermark}
    follower = next(v.id for v in quorum.voters if v.id != active)
    cluster.stop_controller(follower)
    cluster.create_topic("t", partitions=3)
    later = cluster.describe_quorum()
    behind = next(v for v in later.voters if v.id == follower)
    assert behind.log_end_offset == quorum.high_watermark
    assert later.high_watermark > quorum.high_watermark
    cluster.start_controller(follower)
    caught_up = next(v for v in cluster.describe_quorum().voters if v.id == follower)
    assert caught_up.log_end_offset == cluster.describe_quorum().high_watermark


def test_delete_group_offsets_spares_subscribed_topics_and_replays() -> None:
    cluster, _ = _cluster_with_group()
    orders0, orders1 = TopicPartition("orders", 0), TopicPartition("orders", 1)
    assert cluster.delete_group_offsets("billing", [orders0]) == {orders0: ""}
    assert orders0 not in cluster.describe_group("billing").offsets
    assert Cluster.from_log(cluster.export_log()).snapshot() == cluster.snapshot()
    consumer = cluster.consumer({"group.id": "billing"})
    consumer.subscribe(["orders"])
    while not consumer.assignment():
        consumer.poll(timeout_ms=200)
    assert cluster.delete_group_offsets("billing", [orders1]) == {
        orders1: "GROUP_SUBSCRIBED_TO_TOPIC"
    }
    assert orders1 in cluster.describe_group("billing").offsets
    with pytest.raises(GroupIdNotFoundError):
        cluster.delete_group_offsets("ghost", [orders1])


def test_a_topic_remembers_which_configs_are_its_own_and_none_deletes_one() -> None:
    cluster = Cluster(brokers=3, seed=5)
    cluster.create_topic("t", config={"min.insync.replicas": 1, "retention.ms": 1000})
    topic = cluster.controller.topics["t"]
    assert topic.overrides == {"min.insync.replicas", "retention.ms"}  # 1 is also the default
    cluster.alter_topic_config("t", {"retention.ms": None, "cleanup.policy": "compact"})
    assert topic.overrides == {"min.insync.replicas", "cleanup.policy"}
    assert cluster.describe_topic("t").config["retention.ms"] == 7 * 24 * 3600 * 1000
    assert Cluster.from_log(cluster.export_log()).controller.topics["t"].overrides == (
        topic.overrides
    )
    with pytest.raises(InvalidConfigurationError):
        cluster.alter_topic_config("t", {"colour": None})
