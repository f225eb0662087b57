"""Topic administration: validation exactly as Kafka's, configs as Python values or strings."""

from __future__ import annotations

import pytest

from engine import Cluster
from engine.errors import (
    ClusterUnavailableError,
    InvalidConfigurationError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    TopicExistsError,
    UnknownTopicOrPartitionError,
)


@pytest.fixture
def cluster() -> Cluster:
    return Cluster(brokers=3, seed=11)


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "has space", "slash/", "ünï", None])
def test_illegal_topic_names_are_refused(cluster: Cluster, name: str) -> None:
    with pytest.raises(InvalidTopicError):
        cluster.create_topic(name)
    assert cluster.list_topics() == []


@pytest.mark.parametrize("name", ["a", "a" * 249, "orders.v1", "ORDERS_2-x", "..."])
def test_legal_topic_names_are_accepted(cluster: Cluster, name: str) -> None:
    cluster.create_topic(name)
    assert name in cluster.list_topics()


def test_creating_an_existing_topic_fails(cluster: Cluster) -> None:
    cluster.create_topic("t")
    with pytest.raises(TopicExistsError):
        cluster.create_topic("t", partitions=3)


@pytest.mark.parametrize("partitions", [0, -1, True, 1.5])
def test_partitions_below_one_are_invalid(cluster: Cluster, partitions: object) -> None:
    with pytest.raises(InvalidPartitionsError):
        cluster.create_topic("t", partitions=partitions)  # type: ignore[arg-type]


@pytest.mark.parametrize("replication_factor", [0, -2, 4])
def test_replication_factor_outside_one_to_the_broker_count_is_invalid(
    cluster: Cluster, replication_factor: int
) -> None:
    with pytest.raises(InvalidReplicationFactorError):
        cluster.create_topic("t", replication_factor=replication_factor)


def test_unknown_config_keys_are_refused(cluster: Cluster) -> None:
    with pytest.raises(InvalidConfigurationError):
        cluster.create_topic("t", config={"retention.msec": 5})
    assert cluster.list_topics() == []


@pytest.mark.parametrize(
    "config",
    [
        {"retention.ms": "soon"},
        {"min.insync.replicas": 0},
        {"cleanup.policy": "shred"},
        {"unclean.leader.election.enable": "maybe"},
        {"segment.bytes": 10},
        {"retention.ms": -5},
    ],
)
def test_bad_config_values_are_refused(cluster: Cluster, config: dict[str, object]) -> None:
    with pytest.raises(InvalidConfigurationError):
        cluster.create_topic("t", config=config)


def test_config_values_may_be_python_values_or_kafka_strings(cluster: Cluster) -> None:
    cluster.create_topic(
        "a",
        config={
            "retention.ms": 1000,
            "unclean.leader.election.enable": True,
            "cleanup.policy": ["compact", "delete"],
        },
    )
    cluster.create_topic(
        "b",
        config={
            "retention.ms": "1000",
            "unclean.leader.election.enable": "true",
            "cleanup.policy": "compact,delete",
        },
    )
    assert cluster.describe_topic("a").config == cluster.describe_topic("b").config
    assert cluster.describe_topic("a").config["retention.ms"] == 1000


def test_describe_shows_effective_config_with_kafka_defaults(cluster: Cluster) -> None:
    cluster.create_topic("t", partitions=2, replication_factor=3)
    description = cluster.describe_topic("t")
    assert description.config["retention.ms"] == 7 * 24 * 3600 * 1000
    assert description.config["segment.bytes"] == 1073741824
    assert description.config["min.insync.replicas"] == 1
    assert description.config["unclean.leader.election.enable"] is False
    assert [p.partition for p in description.partitions] == [0, 1]
    for partition in description.partitions:
        assert sorted(partition.replicas) == [1, 2, 3]
        assert partition.leader == partition.replicas[0]
        assert partition.isr == partition.replicas


def test_replica_assignment_spreads_leaders_over_brokers() -> None:
    cluster = Cluster(brokers=3, seed=5)
    cluster.create_topic("t", partitions=6, replication_factor=2)
    leaders = [p.leader for p in cluster.describe_topic("t").partitions]
    assert sorted(leaders.count(b) for b in (1, 2, 3)) == [2, 2, 2]
    for partition in cluster.describe_topic("t").partitions:
        assert len(set(partition.replicas)) == 2


def test_add_partitions_must_grow_the_count(cluster: Cluster) -> None:
    cluster.create_topic("t", partitions=2)
    with pytest.raises(InvalidPartitionsError):
        cluster.add_partitions("t", 2)
    cluster.add_partitions("t", 5)
    assert len(cluster.describe_topic("t").partitions) == 5
    with pytest.raises(UnknownTopicOrPartitionError):
        cluster.add_partitions("nope", 3)


def test_delete_topic_removes_it_and_its_replicas(cluster: Cluster) -> None:
    cluster.create_topic("t", partitions=2, replication_factor=3)
    cluster.advance(100)
    cluster.delete_topic("t")
    cluster.advance(100)
    assert cluster.list_topics() == []
    assert all(not cluster.broker_by_id(b).partitions for b in (1, 2, 3))
    with pytest.raises(UnknownTopicOrPartitionError):
        cluster.describe_topic("t")


def test_alter_topic_config_changes_effective_values_and_validates(cluster: Cluster) -> None:
    cluster.create_topic("t")
    cluster.alter_topic_config("t", {"retention.ms": "60000"})
    assert cluster.describe_topic("t").config["retention.ms"] == 60000
    with pytest.raises(InvalidConfigurationError):
        cluster.alter_topic_config("t", {"no.such.key": 1})
    with pytest.raises(UnknownTopicOrPartitionError):
        cluster.alter_topic_config("nope", {"retention.ms": 1})


def test_topics_cannot_change_without_a_controller_quorum(cluster: Cluster) -> None:
    cluster.stop_controller(101)
    cluster.stop_controller(102)
    cluster.advance(10_000)
    with pytest.raises(ClusterUnavailableError):
        cluster.create_topic("t")
    assert cluster.list_topics() == []


def test_producer_to_an_unknown_topic_auto_creates_it_with_broker_defaults() -> None:
    cluster = Cluster(brokers=1, seed=2)
    producer = cluster.producer()
    assert producer.send("fresh", value=b"v").get().offset == 0
    assert "fresh" in cluster.list_topics()


def test_auto_create_can_be_turned_off() -> None:
    cluster = Cluster(brokers=1, seed=2, config={"auto.create.topics.enable": "false"})
    producer = cluster.producer({"max.block.ms": 2000})
    from engine.errors import KafkaTimeoutError

    with pytest.raises(KafkaTimeoutError):
        producer.send("fresh", value=b"v").get()
    assert cluster.list_topics() == []
