"""Committed offsets as `kafka-consumer-groups --describe` shows them (lag, O4) and their
retention (`offsets.retention.minutes`, KIP-211)."""

from __future__ import annotations

import json
from typing import Any

from engine import Cluster, TopicPartition
from engine.coordinator.group.group_records import OFFSETS_TOPIC

from .test_groups import consumer, events, produce

TOPIC = "orders"
TP = TopicPartition(TOPIC, 0)


def make_cluster(**config: Any) -> Cluster:
    cluster = Cluster(brokers=3, seed=11, config=config or None)
    cluster.create_topic(TOPIC, partitions=1, replication_factor=3)
    return cluster


def consume(reader: Any, count: int) -> None:
    got = 0
    for _ in range(60):
        got += len(reader.poll(300))
        if got >= count:
            break
    assert got == count


# --- lag -----------------------------------------------------------------------------------------


def test_lag_of_a_read_committed_group_is_measured_from_the_last_stable_offset() -> None:
    cluster = make_cluster()
    produce(cluster, 5)
    producer = cluster.producer({"transactional.id": "loader"})
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(3):
        producer.send(TOPIC, value=f"open{i}".encode(), partition=0)
    producer.flush()
    partition = cluster.describe_topic(TOPIC).partitions[0]
    assert (partition.last_stable_offset, partition.high_watermark) == (5, 8)

    committed = consumer(
        cluster, "committed", isolation_level="read_committed", enable_auto_commit=False
    )
    consume(committed, 5)
    committed.commit()
    uncommitted = consumer(cluster, "uncommitted", enable_auto_commit=False)
    consume(uncommitted, 8)
    uncommitted.commit({TP: 5})

    # Nothing is left for the read_committed group until the transaction ends.
    assert cluster.describe_group("committed").lag == {TP: 0}
    assert cluster.describe_group("uncommitted").lag == {TP: 3}
    committed.close()  # with no members, the last generation's isolation level still counts
    assert cluster.describe_group("committed").lag == {TP: 0}

    producer.commit_transaction()
    cluster.advance(1000)
    partition = cluster.describe_topic(TOPIC).partitions[0]
    assert cluster.describe_group("committed").lag == {TP: partition.last_stable_offset - 5}


def test_lag_is_never_negative_when_the_committed_offset_is_past_the_end() -> None:
    cluster = make_cluster()
    produce(cluster, 5)
    reader = consumer(cluster, enable_auto_commit=False)
    consume(reader, 5)
    reader.commit({TP: 100})  # Kafka does not check commits against the log end
    description = cluster.describe_group("billing")
    assert description.offsets == {TP: 100}
    assert description.lag == {TP: 0}


# --- retention (KIP-211) -------------------------------------------------------------------------

RETENTION = {"offsets.retention.minutes": 2, "offsets.retention.check.interval.ms": 10000}


def tombstoned_keys(cluster: Cluster, group: str) -> list[dict[str, Any]]:
    number = cluster.services["groups"].partition_for(group)
    return [
        json.loads(record.key)
        for record in cluster.read(OFFSETS_TOPIC, number)
        if record.value is None and record.key is not None
    ]


def test_offsets_of_an_empty_group_expire_retention_after_it_became_empty() -> None:
    cluster = make_cluster(**RETENTION)
    produce(cluster, 5)
    reader = consumer(cluster, enable_auto_commit=False)
    consume(reader, 5)
    reader.commit()
    cluster.advance(180000)  # a live member keeps its group's offsets however old
    assert cluster.describe_group("billing").offsets == {TP: 5}
    reader.close()
    emptied = cluster.now_ms
    since = len(cluster.events)
    cluster.advance(100000)
    assert cluster.describe_group("billing").offsets == {TP: 5}
    cluster.advance(emptied + 130000 - cluster.now_ms)
    description = cluster.describe_group("billing")
    assert description.state == "Dead"
    assert description.offsets == {}
    assert events(cluster, "offsets_expired", since, group="billing")[0]["offsets"] == [[TOPIC, 0]]
    assert events(cluster, "group_deleted", since, group="billing")
    # Tombstones let the log cleaner remove the group's records from the compacted topic.
    assert tombstoned_keys(cluster, "billing") == [
        {"type": "offset_commit", "group": "billing", "topic": TOPIC, "partition": 0},
        {"type": "group_metadata", "group": "billing"},
    ]


def test_a_live_group_keeps_offsets_of_its_topics_and_loses_those_of_others() -> None:
    cluster = make_cluster(**RETENTION)
    cluster.create_topic("returns", partitions=1, replication_factor=3)
    produce(cluster, 5)
    reader = consumer(cluster, enable_auto_commit=False)
    consume(reader, 5)
    reader.commit({TP: 5, TopicPartition("returns", 0): 0})
    cluster.advance(140000)
    description = cluster.describe_group("billing")
    assert description.state == "Stable"
    assert description.offsets == {TP: 5}


def test_a_deleted_group_stays_deleted_when_a_new_coordinator_loads_the_log() -> None:
    cluster = make_cluster(
        **{"offsets.retention.minutes": 1, "offsets.retention.check.interval.ms": 60000}
    )
    produce(cluster, 5)
    reader = consumer(cluster, enable_auto_commit=False)
    consume(reader, 5)
    reader.commit()
    reader.close()
    cluster.advance(125000)
    assert cluster.describe_group("billing").state == "Dead"
    old = cluster.describe_group("billing").coordinator
    cluster.stop_broker(old)
    cluster.advance(15000)  # a new leader loads the partition, before its first retention check
    description = cluster.describe_group("billing")
    assert description.coordinator not in (old, -1)
    assert (description.state, description.offsets) == ("Dead", {})


def test_retention_of_an_empty_group_survives_a_coordinator_failover() -> None:
    cluster = make_cluster(**RETENTION)
    produce(cluster, 5)
    reader = consumer(cluster, enable_auto_commit=False)
    consume(reader, 5)
    reader.commit()
    cluster.advance(100000)  # the commit is old by the time the group empties
    reader.close()
    emptied = cluster.now_ms
    old = cluster.describe_group("billing").coordinator
    cluster.advance(30000)
    cluster.stop_broker(old)
    # The new coordinator counts from when the group became empty, read from the log.
    cluster.advance(emptied + 100000 - cluster.now_ms)
    assert cluster.describe_group("billing").offsets == {TP: 5}
    cluster.advance(emptied + 130000 - cluster.now_ms)
    description = cluster.describe_group("billing")
    assert description.coordinator not in (old, -1)
    assert description.offsets == {}


# --- deleted topics (Kafka: GroupCoordinator.onPartitionsDeleted) -------------------------------


def test_deleting_a_topic_removes_its_committed_offsets_from_every_group() -> None:
    cluster = make_cluster()
    cluster.create_topic("returns", partitions=2, replication_factor=3)
    produce(cluster, 5)
    reader = consumer(cluster, enable_auto_commit=False)
    consume(reader, 5)
    returns = [TopicPartition("returns", 0), TopicPartition("returns", 1)]
    reader.commit({TP: 5, returns[0]: 3, returns[1]: 1})
    reader.close()
    assert cluster.describe_group("billing").offsets == {TP: 5, returns[0]: 3, returns[1]: 1}
    since = len(cluster.events)

    cluster.delete_topic("returns")
    cluster.advance(1000)

    assert cluster.describe_group("billing").offsets == {TP: 5}
    deleted = events(cluster, "offsets_deleted", since, group="billing")
    assert [(d["reason"], d["offsets"]) for d in deleted] == [
        ("topic deleted", [["returns", 0], ["returns", 1]])
    ]
    assert tombstoned_keys(cluster, "billing") == [
        {"type": "offset_commit", "group": "billing", "topic": "returns", "partition": 0},
        {"type": "offset_commit", "group": "billing", "topic": "returns", "partition": 1},
    ]
    # The tombstones keep them gone when a new coordinator reads the group back from the log.
    old = cluster.describe_group("billing").coordinator
    cluster.stop_broker(old)
    cluster.advance(15_000)
    assert cluster.describe_group("billing").coordinator not in (old, -1)
    assert cluster.describe_group("billing").offsets == {TP: 5}


def test_an_empty_group_whose_only_topic_was_deleted_is_deleted_by_the_next_check() -> None:
    cluster = make_cluster(**RETENTION)
    produce(cluster, 5)
    reader = consumer(cluster, enable_auto_commit=False)
    consume(reader, 5)
    reader.commit()
    reader.close()
    cluster.delete_topic(TOPIC)
    cluster.advance(11_000)  # offsets.retention.check.interval.ms
    description = cluster.describe_group("billing")
    assert (description.state, description.offsets) == ("Dead", {})
