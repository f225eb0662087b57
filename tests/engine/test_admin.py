"""The admin client (`cluster.admin()`, Kafka's Admin API) on the request catalogue."""

from __future__ import annotations

from typing import Any

import pytest

from engine import Cluster, TopicPartition
from engine.clients.admin import AdminClient, NewTopic, QuorumReplica
from engine.errors import (
    ClusterUnavailableError,
    ElectionNotNeededError,
    GroupIdNotFoundError,
    GroupNotEmptyError,
    GroupSubscribedToTopicError,
    InvalidConfigurationError,
    InvalidPartitionsError,
    TopicExistsError,
    UnknownMemberIdError,
    UnknownTopicOrPartitionError,
)

TOPIC = "orders"


def make_cluster() -> Cluster:
    cluster = Cluster(brokers=3, seed=5)
    cluster.create_topic(TOPIC, partitions=2, replication_factor=3)
    return cluster


def produce(cluster: Cluster, count: int) -> None:
    producer = cluster.producer({"acks": "all"})
    for i in range(count):
        producer.send(TOPIC, value=f"v{i}".encode(), partition=i % 2)
    producer.flush()


def consume_and_commit(cluster: Cluster, group: str, count: int) -> Any:
    consumer = cluster.consumer(
        {"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([TOPIC])
    got = 0
    for _ in range(60):
        got += len(consumer.poll(300))
        if got >= count:
            break
    assert got == count
    consumer.commit()
    return consumer


# --- topics and configs --------------------------------------------------------------------------


def test_admin_is_one_typed_client_per_cluster() -> None:
    cluster = make_cluster()
    assert isinstance(cluster.admin(), AdminClient)
    assert cluster.admin() is cluster.admin()


def test_create_topics_answers_per_topic_and_all_raises_the_first_failure() -> None:
    cluster = make_cluster()
    outcome = cluster.admin().create_topics(
        [NewTopic("payments", 3, 2), NewTopic(TOPIC, 1, 1), NewTopic("bad", 0, 1)]
    )
    assert outcome.error("payments") is None
    assert isinstance(outcome.error(TOPIC), TopicExistsError)
    assert isinstance(outcome.error("bad"), InvalidPartitionsError)
    with pytest.raises(TopicExistsError, match="Topic 'orders' already exists."):
        outcome.all()
    assert len(cluster.describe_topic("payments").partitions) == 3
    assert "bad" not in cluster.list_topics()


def test_delete_topics_and_create_partitions() -> None:
    cluster = make_cluster()
    admin = cluster.admin()
    admin.create_partitions({TOPIC: 4}).all()
    assert len(cluster.describe_topic(TOPIC).partitions) == 4
    grown = admin.create_partitions({TOPIC: 3})
    assert isinstance(grown.error(TOPIC), InvalidPartitionsError)
    admin.delete_topics([TOPIC]).all()
    assert TOPIC not in cluster.list_topics()
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics([TOPIC]).all()


def test_list_topics_reads_a_brokers_metadata_cache_once_it_has_caught_up() -> None:
    cluster = make_cluster()
    cluster.admin().create_topics([NewTopic("payments")]).all()
    cluster.advance(100)
    assert cluster.admin().list_topics() == ["orders", "payments"]
    consume_and_commit(cluster, "billing", 0)
    cluster.advance(100)
    assert "__consumer_offsets" in cluster.admin().list_topics(list_internal=True)
    assert "__consumer_offsets" not in cluster.admin().list_topics()


def test_incremental_alter_configs_sets_and_deletes_back_to_the_default() -> None:
    cluster = make_cluster()
    admin = cluster.admin()
    default = {e.name: e for e in admin.describe_configs([TOPIC])[TOPIC]}["retention.ms"]
    assert default.is_default
    admin.incremental_alter_configs({TOPIC: {"retention.ms": 60000}}).all()
    entry = {e.name: e for e in admin.describe_configs([TOPIC])[TOPIC]}["retention.ms"]
    assert (entry.value, entry.is_default) == (60000, False)
    assert cluster.describe_topic(TOPIC).config["retention.ms"] == 60000
    admin.incremental_alter_configs({}, delete={TOPIC: ["retention.ms"]}).all()
    assert cluster.describe_topic(TOPIC).config["retention.ms"] == default.value
    bad = admin.incremental_alter_configs({TOPIC: {"no.such.key": 1}})
    assert isinstance(bad.error(TOPIC), InvalidConfigurationError)
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.describe_configs(["missing"])


def test_elect_leaders_reports_per_partition() -> None:
    cluster = make_cluster()
    outcome = cluster.admin().elect_leaders("preferred", [TopicPartition(TOPIC, 0)])
    assert isinstance(outcome.error(TopicPartition(TOPIC, 0)), ElectionNotNeededError)


def test_the_facade_admin_calls_keep_their_errors_and_messages() -> None:
    cluster = make_cluster()
    with pytest.raises(TopicExistsError, match="Topic 'orders' already exists."):
        cluster.create_topic(TOPIC)
    with pytest.raises(InvalidPartitionsError, match="the new total must be larger, not 1"):
        cluster.add_partitions(TOPIC, 1)
    with pytest.raises(InvalidConfigurationError, match="must be a mapping"):
        cluster.alter_topic_config(TOPIC, ["retention.ms"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="election_type"):
        cluster.elect_leaders(TOPIC, 0, "sideways")
    for controller in (102, 103):
        cluster.stop_controller(controller)
    with pytest.raises(ClusterUnavailableError):
        cluster.create_topic("later")
    # The quorum is checked before the election type, as the controller always did.
    with pytest.raises(ClusterUnavailableError):
        cluster.elect_leaders(TOPIC, 0, "sideways")


# --- the cluster and the quorum ------------------------------------------------------------------


def test_describe_cluster_and_quorum_follow_faults() -> None:
    cluster = make_cluster()
    admin = cluster.admin()
    described = admin.describe_cluster()
    assert described.controller == 101
    assert [node.id for node in described.nodes] == [1, 2, 3]
    cluster.stop_broker(2)
    assert [node.id for node in admin.describe_cluster().nodes] == [1, 3]
    quorum = admin.describe_metadata_quorum()
    assert quorum.leader_id == 101
    assert [v.replica_id for v in quorum.voters] == [101, 102, 103]
    assert [o.replica_id for o in quorum.observers] == [1, 2, 3]
    cluster.stop_controller(102)
    cluster.stop_controller(103)
    assert admin.describe_cluster().controller is None
    with pytest.raises(Exception, match="No controller leads the quorum"):
        admin.describe_metadata_quorum()


def test_new_topic_and_quorum_replica_keep_their_admin_api_shape() -> None:
    # One definition each, shared with the request catalogue: NewTopic is the CreateTopics
    # entry (defaults: one partition, one replica), QuorumReplica the DescribeQuorum replica.
    assert NewTopic("t") == NewTopic("t", 1, 1, None)
    assert NewTopic("t", 3, 2, {"retention.ms": 1}).configs == {"retention.ms": 1}
    cluster = make_cluster()
    quorum = cluster.admin().describe_metadata_quorum()
    leader = next(v for v in quorum.voters if v.replica_id == 101)
    assert isinstance(leader, QuorumReplica) and leader.alive
    assert QuorumReplica(7, 10, False) == QuorumReplica(7, 10, False, -1, -1)
    assert isinstance(quorum.voters, list) and isinstance(quorum.observers, list)


# --- groups and offsets --------------------------------------------------------------------------


def test_groups_are_listed_described_and_their_offsets_listed() -> None:
    cluster = make_cluster()
    produce(cluster, 6)
    consumer = consume_and_commit(cluster, "billing", 6)
    admin = cluster.admin()
    assert [(g.group_id, g.state) for g in admin.list_consumer_groups()] == [("billing", "Stable")]
    described = admin.describe_consumer_groups(["billing"])["billing"]
    assert described.state == "Stable"
    assert described.partition_assignor == "range"
    assert [m.client_id for m in described.members] == [consumer.client_id]
    assert sorted(described.members[0].assignment) == [
        TopicPartition(TOPIC, 0),
        TopicPartition(TOPIC, 1),
    ]
    assert described.coordinator == cluster.describe_group("billing").coordinator
    assert admin.list_consumer_group_offsets("billing") == {
        TopicPartition(TOPIC, 0): 3,
        TopicPartition(TOPIC, 1): 3,
    }
    assert admin.describe_consumer_groups(["nobody"])["nobody"].state == "Dead"


def test_an_active_group_is_neither_deleted_nor_reset_and_keeps_its_subscribed_offsets() -> None:
    cluster = make_cluster()
    produce(cluster, 4)
    consume_and_commit(cluster, "billing", 4)
    admin = cluster.admin()
    with pytest.raises(GroupNotEmptyError, match="has members"):
        admin.delete_consumer_groups(["billing"]).all()
    # As Kafka's admin: an active group refuses an admin's commit (UnknownMemberIdException).
    with pytest.raises(UnknownMemberIdError, match="has members"):
        admin.alter_consumer_group_offsets("billing", {TopicPartition(TOPIC, 0): 0})
    kept = admin.delete_consumer_group_offsets("billing", [TopicPartition(TOPIC, 0)])
    assert isinstance(kept.error(TopicPartition(TOPIC, 0)), GroupSubscribedToTopicError)
    assert admin.list_consumer_group_offsets("billing")[TopicPartition(TOPIC, 0)] == 2


def test_an_empty_group_takes_new_offsets_loses_some_and_is_deleted() -> None:
    cluster = make_cluster()
    produce(cluster, 4)
    consume_and_commit(cluster, "billing", 4).close()
    admin = cluster.admin()
    admin.alter_consumer_group_offsets("billing", {TopicPartition(TOPIC, 0): 1})
    assert cluster.describe_group("billing").offsets[TopicPartition(TOPIC, 0)] == 1
    admin.delete_consumer_group_offsets("billing", [TopicPartition(TOPIC, 1)]).all()
    removed = [e.data for e in cluster.events if e.kind == "offsets_deleted"]
    assert [(d["reason"], d["offsets"]) for d in removed] == [("deleted by an admin", [[TOPIC, 1]])]
    assert admin.list_consumer_group_offsets("billing") == {TopicPartition(TOPIC, 0): 1}
    admin.delete_consumer_groups(["billing"]).all()
    deleted = [e for e in cluster.events if e.kind == "group_deleted"]
    assert [e.data["reason"] for e in deleted] == ["deleted by an admin"]
    assert cluster.describe_group("billing").state == "Dead"
    assert admin.list_consumer_groups() == []
    with pytest.raises(GroupIdNotFoundError):
        admin.delete_consumer_groups(["billing"]).all()


def test_list_offsets_asks_each_partitions_leader() -> None:
    cluster = make_cluster()
    produce(cluster, 6)
    tp = TopicPartition(TOPIC, 1)
    assert cluster.admin().list_offsets({tp: "earliest"}) == {tp: 0}
    assert cluster.admin().list_offsets({tp: "latest"}) == {tp: 3}
    with pytest.raises(UnknownTopicOrPartitionError):
        cluster.admin().list_offsets({TopicPartition("missing", 0): "latest"})


def test_admin_calls_are_recorded_and_replay_to_the_same_cluster() -> None:
    cluster = make_cluster()
    produce(cluster, 4)
    consume_and_commit(cluster, "billing", 4).close()
    admin = cluster.admin()
    admin.create_topics([NewTopic("payments", 2, 2, {"retention.ms": 1000})])
    admin.incremental_alter_configs({"payments": {"retention.ms": 5000}})
    admin.alter_consumer_group_offsets("billing", {TopicPartition(TOPIC, 0): 1})
    admin.delete_consumer_groups(["billing"])
    cluster.advance(500)
    log = cluster.export_log()
    assert [e["op"] for e in log if e["op"].startswith("admin.")] == [
        "admin.create_topics",
        "admin.incremental_alter_configs",
        "admin.alter_consumer_group_offsets",
        "admin.delete_consumer_groups",
    ]
    replayed = Cluster.from_log(log)
    assert replayed.snapshot() == cluster.snapshot()
    assert [(e.time_ms, e.kind) for e in replayed.events] == [
        (e.time_ms, e.kind) for e in cluster.events
    ]


def test_admin_changes_wait_for_a_controller_and_reads_do_not() -> None:
    cluster = make_cluster()
    cluster.stop_controller(102)
    cluster.stop_controller(103)
    started = cluster.now_ms
    outcome_error: Exception | None = None
    try:
        cluster.admin().create_topics([NewTopic("later")])
    except ClusterUnavailableError as exc:
        outcome_error = exc
    assert isinstance(outcome_error, ClusterUnavailableError)
    assert cluster.now_ms - started == 60_000
    assert [e.data["api"] for e in cluster.events if e.kind == "controller_request_timed_out"] == [
        "CreateTopics"
    ]
    before = cluster.now_ms
    assert cluster.admin().describe_cluster().controller is None
    assert cluster.now_ms == before
