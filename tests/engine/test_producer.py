"""The producer: partitioning (P), batching, acks, retries, timeouts, sizes and idempotence (I)."""

from __future__ import annotations

import pytest

from engine import Cluster, TopicPartition
from engine.errors import (
    InvalidConfigurationError,
    InvalidPartitionGivenError,
    KafkaTimeoutError,
    RecordTooLargeError,
    ResourceLimitError,
)
from engine.partitioner import partition_for_key


def cluster_with(
    partitions: int = 1,
    rf: int = 1,
    brokers: int = 1,
    config: dict[str, object] | None = None,
    seed: int = 4,
) -> Cluster:
    cluster = Cluster(brokers=brokers, seed=seed)
    cluster.create_topic("t", partitions=partitions, replication_factor=rf, config=config)
    return cluster


# --- P -----------------------------------------------------------------------------------------


def test_keyed_records_land_on_partition_for_key() -> None:
    cluster = cluster_with(partitions=7)
    producer = cluster.producer()
    for i in range(50):
        key = b"key-%d" % i
        assert producer.send("t", value=b"v", key=key).get().partition == partition_for_key(key, 7)


def test_an_explicit_partition_wins_over_the_key() -> None:
    cluster = cluster_with(partitions=4)
    producer = cluster.producer()
    key = b"k"
    other = (partition_for_key(key, 4) + 1) % 4
    assert producer.send("t", value=b"v", key=key, partition=other).get().partition == other


def test_a_partition_the_topic_lacks_is_refused() -> None:
    cluster = cluster_with(partitions=2)
    producer = cluster.producer()
    with pytest.raises(InvalidPartitionGivenError):
        producer.send("t", value=b"v", partition=2)


def test_null_keys_stick_to_one_partition_until_batch_size_bytes_then_switch() -> None:
    cluster = cluster_with(partitions=6)
    producer = cluster.producer({"batch.size": 2000, "linger.ms": 1000})
    futures = [producer.send("t", value=b"x" * 100) for _ in range(300)]
    producer.flush()
    partitions = [f.get().partition for f in futures]
    runs: list[int] = []
    for index, partition in enumerate(partitions):
        if index and partitions[index - 1] == partition:
            runs[-1] += 1
        else:
            runs.append(1)
    # ~109 bytes a record: never a switch before batch.size (2000) bytes went to a partition
    # (a random draw may pick the same partition again, so runs can be longer).
    assert len(set(partitions)) >= 3
    assert all(length >= 2000 // 109 for length in runs[:-1])
    assert max(runs) < 300


def test_partitioner_ignore_keys_treats_keyed_records_as_unkeyed() -> None:
    cluster = cluster_with(partitions=8)
    producer = cluster.producer({"partitioner.ignore.keys": "true"})
    partitions = {producer.send("t", value=b"v", key=b"k%d" % i).get().partition for i in range(10)}
    assert len(partitions) == 1  # sticky, whatever the keys say


# --- batching, acks ----------------------------------------------------------------------------


def test_acks_defaults_to_all_and_idempotence_to_on() -> None:
    cluster = cluster_with()
    producer = cluster.producer()
    assert producer.acks == -1 and producer.idempotent


@pytest.mark.parametrize(
    ("given", "expected"), [(0, 0), ("0", 0), (1, 1), ("1", 1), ("all", -1), (-1, -1), ("-1", -1)]
)
def test_acks_accepts_numbers_strings_and_all(given: object, expected: int) -> None:
    cluster = cluster_with()
    assert cluster.producer({"acks": given, "enable.idempotence": False}).acks == expected


def test_records_sent_within_linger_ms_travel_in_one_batch() -> None:
    cluster = cluster_with()
    producer = cluster.producer({"linger.ms": 50})
    futures = [producer.send("t", value=b"v%d" % i) for i in range(10)]
    producer.flush()
    assert [f.get().offset for f in futures] == list(range(10))
    log = cluster.broker_by_id(1).partitions[TopicPartition("t", 0)].log
    assert len(list(log.iter_batches(0))) == 1


def test_a_full_batch_is_sent_without_waiting_for_linger() -> None:
    cluster = cluster_with()
    producer = cluster.producer({"linger.ms": 60_000, "batch.size": 500})
    futures = [producer.send("t", value=b"x" * 100) for _ in range(10)]
    cluster.advance(100)
    assert sum(f.done() for f in futures) >= 4


def test_send_is_asynchronous_and_get_advances_the_clock() -> None:
    cluster = cluster_with()
    producer = cluster.producer({"linger.ms": 5})
    future = producer.send("t", value=b"v")
    assert not future.done()
    start = cluster.now_ms
    future.get()
    assert future.done() and cluster.now_ms > start


# --- sizes -------------------------------------------------------------------------------------


def test_a_record_over_max_request_size_fails_with_record_too_large() -> None:
    cluster = cluster_with()
    producer = cluster.producer({"max.request.size": 1000})
    with pytest.raises(RecordTooLargeError):
        producer.send("t", value=b"x" * 2000).get()
    assert cluster.read("t", 0) == []


def test_a_batch_over_the_topics_max_message_bytes_fails_with_record_too_large() -> None:
    cluster = cluster_with(config={"max.message.bytes": 500})
    producer = cluster.producer()
    with pytest.raises(RecordTooLargeError):
        producer.send("t", value=b"x" * 800).get()
    assert producer.send("t", value=b"x" * 100).get().offset == 0
    failed = [e for e in cluster.events if e.kind == "produce_failed"]
    assert failed and failed[0].data["error"] == "RecordTooLargeException"


# --- retries and timeouts ----------------------------------------------------------------------


def test_delivery_timeout_expires_a_batch_that_cannot_reach_a_leader() -> None:
    cluster = cluster_with()
    producer = cluster.producer(
        {"delivery.timeout.ms": 5000, "request.timeout.ms": 1000, "linger.ms": 0}
    )
    producer.send("t", value=b"warm").get()
    cluster.stop_broker(1)
    future = producer.send("t", value=b"v")
    with pytest.raises(KafkaTimeoutError):
        future.get()
    assert cluster.now_ms < 5000 + 1000 + 2000 + 100
    assert any(
        e.kind == "produce_failed" and e.data["error"] == "TimeoutException" for e in cluster.events
    )


def test_a_producer_refreshes_metadata_on_not_leader_and_reaches_the_new_leader() -> None:
    cluster = Cluster(brokers=3, seed=9)
    cluster.create_topic("t", 1, 3)
    producer = cluster.producer({"acks": "all"})
    producer.send("t", value=b"a").get()
    old_leader = cluster.describe_topic("t").partitions[0].leader
    cluster.shutdown_broker(old_leader)  # leadership moves; the producer's metadata is stale
    assert producer.leader_for("t", 0) == old_leader
    metadata = producer.send("t", value=b"b").get()
    assert metadata.offset == 1
    assert (
        producer.leader_for("t", 0)
        == cluster.describe_topic("t").partitions[0].leader
        != old_leader
    )
    assert [r.value for r in cluster.read("t", 0)] == [b"a", b"b"]


def test_lost_responses_make_a_non_idempotent_producer_write_duplicates() -> None:
    cluster = cluster_with()
    producer = cluster.producer(
        {"acks": 1, "enable.idempotence": False, "request.timeout.ms": 1000}
    )
    producer.send("t", value=b"warm").get()
    cluster.lose_responses(1, count=1)
    producer.send("t", value=b"once").get()
    values = [r.value for r in cluster.read("t", 0)]
    assert values.count(b"once") == 2


def test_lost_responses_with_an_idempotent_producer_write_each_record_once() -> None:
    cluster = cluster_with()
    producer = cluster.producer({"request.timeout.ms": 1000})
    producer.send("t", value=b"warm").get()
    cluster.lose_responses(1, count=2)
    metadata = producer.send("t", value=b"once").get()
    values = [r.value for r in cluster.read("t", 0)]
    assert values.count(b"once") == 1
    assert metadata.offset == 1  # the retry got the original offset back (I2)
    assert any(e.kind == "duplicate_batch" for e in cluster.events)


# --- idempotence (I1) --------------------------------------------------------------------------


def test_explicit_idempotence_with_acks_one_is_a_configuration_error() -> None:
    cluster = cluster_with()
    with pytest.raises(InvalidConfigurationError):
        cluster.producer({"enable.idempotence": True, "acks": 1})


def test_implicit_idempotence_is_silently_off_with_acks_one() -> None:
    cluster = cluster_with()
    assert not cluster.producer({"acks": "1"}).idempotent
    assert not cluster.producer({"max.in.flight.requests.per.connection": 6}).idempotent


def test_unknown_producer_config_is_refused() -> None:
    cluster = cluster_with()
    with pytest.raises(InvalidConfigurationError):
        cluster.producer({"ack": "all"})
    with pytest.raises(InvalidConfigurationError):
        cluster.producer({"linger.ms": "soon"})


# --- resource limits ---------------------------------------------------------------------------


def test_a_full_sandbox_fails_the_send_with_a_resource_limit_error_and_keeps_running() -> None:
    cluster = Cluster(brokers=1, seed=1, limits={"max_retained_records": 5})
    cluster.create_topic("t")
    producer = cluster.producer({"linger.ms": 0})
    for i in range(5):
        producer.send("t", value=b"v%d" % i).get()
    with pytest.raises(ResourceLimitError):
        producer.send("t", value=b"too many").get()
    cluster.advance(1000)
    failed = [e for e in cluster.events if e.kind == "produce_failed"]
    assert failed[-1].data["error"] == "ResourceLimitException"
    assert len(cluster.read("t", 0)) == 5


def test_delivery_timeout_must_cover_linger_and_request_timeout() -> None:
    cluster = cluster_with()
    with pytest.raises(InvalidConfigurationError):
        cluster.producer({"delivery.timeout.ms": 1000, "request.timeout.ms": 2000})
    producer = cluster.producer({"request.timeout.ms": 200_000})
    assert producer.delivery_timeout_ms == 200_005


def test_an_idle_producer_learns_of_added_partitions_in_the_background() -> None:
    # Kafka's Sender keeps polling NetworkClient, whose metadata updater refreshes once
    # metadata.max.age.ms (300 s) has passed: no send is needed to trigger it.
    cluster = cluster_with(partitions=2)
    producer = cluster.producer()
    key = next(b"k%d" % i for i in range(100) if partition_for_key(b"k%d" % i, 6) >= 2)
    assert producer.send("t", value=b"v", key=key).get().partition == partition_for_key(key, 2)
    cluster.add_partitions("t", 6)
    cluster.advance(299_000)
    assert len(producer.topics["t"]) == 2  # not yet: the metadata is younger than 300 s
    cluster.advance(2_000)
    assert len(producer.topics["t"]) == 6
    assert producer.send("t", value=b"v", key=key).get().partition == partition_for_key(key, 6)


def test_a_closed_producer_stops_refreshing_metadata() -> None:
    cluster = cluster_with(partitions=2)
    producer = cluster.producer()
    producer.send("t", value=b"v").get()
    producer.close()
    cluster.add_partitions("t", 6)
    cluster.advance(301_000)
    assert len(producer.topics["t"]) == 2


def test_sticky_partition_does_not_switch_while_the_last_batch_has_room() -> None:
    # Kafka's RecordAccumulator decides a switch before appending (partitionChanged), and only
    # when every batch of the partition is full (allBatchesFull): the second 9000-byte record
    # closes the first batch and opens a fresh half-empty one, which keeps the partition even
    # though 18206 bytes (batch headers counted) already went to it; the third record finds the
    # second batch full and goes elsewhere.
    cluster = Cluster(brokers=1, seed=11)
    cluster.create_topic("t", 6, 1)
    producer = cluster.producer({"linger.ms": 3_600_000, "acks": "1"})
    producer.send("t", value=b"warm-up").get()
    partitions = [producer.send("t", value=bytes(9000)).tp for _ in range(3)]
    first = partitions[0]
    assert partitions[1] == first
    assert partitions[2] != first
    assert [len(batch.records) for batch in producer.batches[first]] == [1, 1]


def test_sticky_partition_switches_exactly_when_the_second_full_batch_closes() -> None:
    # 1 KB values make 1033-byte records; a batch (61-byte header) holds 15 of them within
    # batch.size 16384. Kafka counts each new batch's header into the bytes sent to the sticky
    # partition (BuiltInPartitioner.updatePartitionInfo gets the batch's estimated size), so
    # the 30th record brings it to 2 x 15556 bytes; the 31st finds both batches full and
    # switches, leaving no part-filled batch behind.
    cluster = Cluster(brokers=1, seed=11)
    cluster.create_topic("t", 6, 1)
    producer = cluster.producer({"linger.ms": 3_600_000, "acks": "1"})
    partitions = [producer.send("t", value=bytes(1024)).tp for _ in range(30)]
    first = partitions[0]
    assert partitions == [first] * 30
    assert producer.partitioners["t"].produced_bytes == 2 * (61 + 15 * 1033)
    assert [len(batch.records) for batch in producer.batches[first]] == [15, 15]
    assert producer.send("t", value=bytes(1024)).tp != first
    assert [len(batch.records) for batch in producer.batches[first]] == [15, 15]
    assert all(batch.closed for batch in producer.batches[first])
