"""Partition reassignment (KIP-455): AlterPartitionReassignments and ListPartitionReassignments
through the admin client, as Kafka's controller runs them (ReplicationControlManager,
PartitionReassignmentReplicas, PartitionReassignmentRevert)."""

from __future__ import annotations

import pytest

from engine import Cluster, TopicPartition
from engine.checker import check
from engine.clients.admin import PartitionReassignment
from engine.errors import (
    InvalidReplicaAssignmentError,
    NoReassignmentInProgressError,
    UnknownTopicOrPartitionError,
)

TP = TopicPartition("orders", 0)


def a_cluster() -> Cluster:
    """Four brokers; `orders` partition 0 on brokers 2 and 4 (seed 3), holding 20 records."""
    cluster = Cluster(brokers=4, seed=3)
    cluster.create_topic("orders", 1, 2)
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    for i in range(20):
        producer.send("orders", key=b"k%d" % (i % 5), value=b"v%d" % i)
    producer.flush()
    assert registration(cluster).replicas == (2, 4)
    return cluster


def registration(cluster: Cluster):  # type: ignore[no-untyped-def]
    return cluster.controller.topics["orders"].partitions[0]


def hosts(cluster: Cluster) -> list[int]:
    return sorted(b.id for b in cluster._brokers.values() if TP in b.partitions)


def test_moving_every_replica_copies_the_log_then_switches_replicas_and_leader() -> None:
    cluster = a_cluster()
    admin = cluster.admin()
    admin.alter_partition_reassignments({TP: [1, 3]}).all()
    started = registration(cluster)
    # Step 1: the target first, then the replicas being removed; the ISR is still the original.
    assert (started.replicas, started.isr, started.leader) == ((1, 3, 2, 4), (2, 4), 2)
    assert (started.adding_replicas, started.removing_replicas) == ((1, 3), (2, 4))
    assert admin.list_partition_reassignments() == {
        TP: PartitionReassignment([1, 3, 2, 4], [1, 3], [2, 4])
    }
    cluster.advance(3000)
    done = registration(cluster)
    assert (done.replicas, done.isr, done.leader) == ((1, 3), (1, 3), 1)
    assert (done.adding_replicas, done.removing_replicas) == ((), ())
    assert done.leader_epoch == started.leader_epoch + 1
    assert admin.list_partition_reassignments() == {}
    assert hosts(cluster) == [1, 3]  # the removed replicas were dropped
    assert [r.value for r in cluster.read("orders", 0, 0)] == [b"v%d" % i for i in range(20)]
    kinds = [e.kind for e in cluster.events if e.kind.startswith("reassignment_")]
    assert kinds == ["reassignment_started", "reassignment_completed"]


def test_during_a_reassignment_the_isr_holds_the_caught_up_adding_and_the_original_replicas() -> (
    None
):
    cluster = a_cluster()
    cluster.stop_broker(3)
    cluster.advance(10000)
    cluster.admin().alter_partition_reassignments({TP: [1, 3]}).all()
    cluster.advance(5000)
    ongoing = registration(cluster)
    # Broker 1 caught up and joined the ISR beside the original replicas; 3 is down, so the
    # reassignment waits and nothing is removed yet.
    assert ongoing.isr == (1, 2, 4)
    assert ongoing.replicas == (1, 3, 2, 4) and ongoing.leader == 2
    assert hosts(cluster) == [1, 2, 4]
    cluster.start_broker(3)
    cluster.advance(10000)
    done = registration(cluster)
    assert (done.replicas, done.isr, done.leader) == ((1, 3), (1, 3), 1)


def test_records_acknowledged_while_replicas_move_are_all_kept() -> None:
    cluster = a_cluster()
    producer = cluster.producer({"acks": "all", "linger.ms": 5, "enable.idempotence": True})
    cluster.admin().alter_partition_reassignments({TP: [3, 1]}).all()
    for i in range(200):
        producer.send("orders", key=b"m%d" % (i % 7), value=b"moving-%d" % i)
        cluster.advance(5)
    producer.flush()
    cluster.advance(3000)
    assert registration(cluster).replicas == (3, 1)
    values = [r.value for r in cluster.read("orders", 0, 0)]
    assert values[20:] == [b"moving-%d" % i for i in range(200)]
    assert check(cluster, cluster.history) == []


def test_cancelling_reverts_to_the_original_replicas_and_drops_the_added_ones() -> None:
    cluster = a_cluster()
    cluster.stop_broker(3)
    cluster.advance(10000)
    admin = cluster.admin()
    admin.alter_partition_reassignments({TP: [1, 3]}).all()
    cluster.advance(5000)
    assert hosts(cluster) == [1, 2, 4]
    admin.alter_partition_reassignments({TP: None}).all()
    cluster.advance(500)
    reverted = registration(cluster)
    assert (reverted.replicas, reverted.isr, reverted.leader) == ((2, 4), (2, 4), 2)
    assert not reverted.reassigning
    assert hosts(cluster) == [2, 4]
    cancelled = [e.data for e in cluster.events if e.kind == "reassignment_cancelled"]
    assert cancelled == [{"topic": "orders", "partition": 0, "replicas": [2, 4]}]


def test_reordering_replicas_completes_at_once_without_moving_the_leader() -> None:
    cluster = a_cluster()
    cluster.admin().alter_partition_reassignments({TP: [4, 2]}).all()
    now = registration(cluster)
    assert (now.replicas, now.isr, now.leader, now.reassigning) == ((4, 2), (2, 4), 2, False)
    assert now.leader_epoch == 0  # nothing removed, the leader stays: no epoch bump


def test_shrinking_the_replica_set_completes_at_once_and_moves_a_removed_leader() -> None:
    cluster = a_cluster()
    cluster.admin().alter_partition_reassignments({TP: [4]}).all()
    now = registration(cluster)
    assert (now.replicas, now.isr, now.leader, now.reassigning) == ((4,), (4,), 4, False)
    cluster.advance(500)
    assert hosts(cluster) == [4]
    assert len(cluster.read("orders", 0, 0)) == 20


def test_refusals_carry_kafkas_errors_and_change_nothing() -> None:
    cluster = a_cluster()
    admin = cluster.admin()
    before = registration(cluster)
    outcome = admin.alter_partition_reassignments(
        {
            TP: [1, 9],
            TopicPartition("orders", 5): [1, 2],
            TopicPartition("nope", 0): [1],
        }
    )
    error = outcome.error(TP)
    assert isinstance(error, InvalidReplicaAssignmentError)
    assert error.message == (
        "The manual partition assignment includes broker 9, but no such broker is registered."
    )
    assert isinstance(outcome.error(TopicPartition("orders", 5)), UnknownTopicOrPartitionError)
    assert outcome.error(TopicPartition("nope", 0)).message == (  # type: ignore[union-attr]
        "Unable to find a topic named nope."
    )
    duplicate = admin.alter_partition_reassignments({TP: [1, 1]}).error(TP)
    assert duplicate is not None and "broker 1 more than once" in duplicate.message
    cancel = admin.alter_partition_reassignments({TP: None}).error(TP)
    assert isinstance(cancel, NoReassignmentInProgressError)
    with pytest.raises(InvalidReplicaAssignmentError):
        admin.alter_partition_reassignments({TP: []}).all()
    assert registration(cluster) == before


def test_a_reassigning_cluster_rebuilt_from_its_log_is_equal() -> None:
    cluster = a_cluster()
    cluster.stop_broker(3)
    cluster.advance(10000)
    admin = cluster.admin()
    admin.alter_partition_reassignments({TP: [1, 3]}).all()
    cluster.advance(3000)
    cluster.start_broker(3)
    cluster.advance(3000)
    admin.alter_partition_reassignments({TP: [2, 4]}).all()
    cluster.advance(3000)
    rebuilt = Cluster.from_log(cluster.export_log())
    assert rebuilt.snapshot() == cluster.snapshot()
    assert registration(rebuilt) == registration(cluster)
