"""The idempotent producer's sequences when a batch expires or uses up its retries, as Kafka's
producer `Sender` and `TransactionManager` handle them (Kafka 4.0):

- a batch past delivery.timeout.ms fails without adjusting the sequences
  (`failBatch(..., adjustSequenceNumbers=false)`); if it had been sent and was being retried,
  whether the broker holds it is unknown, so its partition's sequence is unresolved
  (`markSequenceUnresolved`) and fresh batches of that partition wait;
- once nothing sequenced is pending there, the sequence is resolved if the broker acknowledged
  everything before the next sequence (the expired batch was written, and what followed it was
  acknowledged), else the epoch is bumped for that partition (`maybeResolveSequences`, KIP-360);
- a batch that fails after its last retry does not adjust the sequences either (the broker may
  hold it), a batch refused for another reason before then does (an epoch bump);
- a retried batch is drained only as its partition's first in flight, never behind another.
"""

from __future__ import annotations

from typing import Any

from engine import Cluster
from engine.clients.producer.kafka_producer import FutureRecordMetadata, KafkaProducer
from engine.common.records import TopicPartition
from engine.errors import KafkaTimeoutError

TP = TopicPartition("t", 0)


def _cluster() -> tuple[Cluster, int]:
    cluster = Cluster(brokers=3, seed=5)
    cluster.create_topic("t", 1, 3, {"min.insync.replicas": 2})
    return cluster, cluster.describe_topic("t").partitions[0].leader


def _producer(cluster: Cluster, **config: object) -> KafkaProducer:
    producer: KafkaProducer = cluster.producer(
        {
            "acks": "all",
            "linger.ms": 0,
            "request.timeout.ms": 1000,
            "delivery.timeout.ms": 2000,
            **config,
        }
    )
    producer.send("t", value=b"warm", key=b"k")
    producer.flush()
    return producer


def _kinds(cluster: Cluster, *kinds: str) -> list[tuple[int, str]]:
    return [(e.time_ms, e.kind) for e in cluster.events if e.kind in kinds]


def _expire_a_retried_batch(with_a_later_batch: bool) -> tuple[Cluster, KafkaProducer, list[Any]]:
    """`a` is written but its answer lost; its retry (a duplicate) is answered into a dead
    connection again, so it expires in flight while being retried. `b`, sent on the dead
    connection after `a` (written too), waits behind `a`'s retry."""
    cluster, leader = _cluster()
    producer = _producer(cluster)
    cluster.lose_responses(leader, 1)
    a = producer.send("t", value=b"a", key=b"k")
    cluster.advance(500)
    futures: list[Any] = [a]
    if with_a_later_batch:
        futures.append(producer.send("t", value=b"b", key=b"k"))
    cluster.advance(550)  # a timed out at 1000 ms; its retry goes at about 1100 ms
    cluster.lose_responses(leader, 1)
    cluster.advance(1500)  # a's retry timed out past delivery.timeout.ms: expired
    futures.append(producer.send("t", value=b"c", key=b"k"))
    producer.flush()
    return cluster, producer, futures


def test_a_retried_batch_that_expires_is_resolved_by_the_batch_after_it_without_a_bump() -> None:
    cluster, producer, (a, b, c) = _expire_a_retried_batch(with_a_later_batch=True)
    assert isinstance(a.exception, KafkaTimeoutError)
    assert b.succeeded() and c.succeeded()
    # b (sequence after a) was acknowledged: a was written, nothing is unknown, no epoch bump.
    assert _kinds(cluster, "producer_epoch_bumped") == []
    assert producer.producer_epoch == 0 and not producer.sequences.unresolved
    assert [r.value for r in cluster.read("t", 0)] == [b"warm", b"a", b"b", b"c"]
    assert cluster.history.check() == []


def test_a_retried_batch_that_expires_with_nothing_acknowledged_after_it_bumps_the_epoch() -> None:
    cluster, producer, (a, c) = _expire_a_retried_batch(with_a_later_batch=False)
    assert isinstance(a.exception, KafkaTimeoutError)
    assert c.succeeded()
    failed = [t for t, kind in _kinds(cluster, "produce_failed")]
    bumped = [t for t, kind in _kinds(cluster, "producer_epoch_bumped")]
    assert len(bumped) == 1 and bumped[0] >= failed[0]
    # The partition starts again at sequence 0 under the new epoch; a stays written once.
    assert producer.producer_epoch == 1 and producer.next_sequence[TP] == 1
    assert [r.value for r in cluster.read("t", 0)] == [b"warm", b"a", b"c"]
    assert cluster.history.check() == []


def test_a_retry_is_drained_alone_as_the_partitions_first_batch_in_flight() -> None:
    cluster, _producer_, _futures = _expire_a_retried_batch(with_a_later_batch=True)
    # a's retry and b's retry were both waiting at about 1100 ms: b went only once a was done.
    duplicates = [t for t, _ in _kinds(cluster, "duplicate_batch")]
    failed = [t for t, _ in _kinds(cluster, "produce_failed")]
    assert len(duplicates) == 2
    assert duplicates[0] < failed[0] <= duplicates[1]


def test_a_fresh_batch_waits_while_its_partition_has_an_unresolved_sequence() -> None:
    cluster, leader = _cluster()
    producer = _producer(cluster)
    sequences = producer.sequences
    sequences.unresolved[TP] = producer.next_sequence[TP]
    future: FutureRecordMetadata = producer.send("t", value=b"fresh", key=b"k")
    batch = producer.batches[TP][0]
    assert batch.base_sequence < 0 and not sequences.may_drain(batch)
    cluster.advance(1)
    # Nothing sequenced is pending and everything was acknowledged: resolved, then sent.
    assert not sequences.unresolved
    producer.flush()
    assert future.succeeded() and producer.producer_epoch == 0
    assert _kinds(cluster, "producer_epoch_bumped") == []


def test_a_batch_that_used_up_its_retries_fails_without_an_epoch_bump() -> None:
    cluster, leader = _cluster()
    producer = _producer(cluster, retries=1, **{"delivery.timeout.ms": 10000})
    cluster.lose_responses(leader, 2)  # the send and its one retry: both answers lost
    a = producer.send("t", value=b"a", key=b"k")
    cluster.advance(3000)
    assert a.failed() and not isinstance(a.exception, KafkaTimeoutError)
    c = producer.send("t", value=b"c", key=b"k")
    producer.flush()
    # The broker may hold a (it does): the sequences go on, under the same epoch.
    assert c.succeeded()
    assert _kinds(cluster, "producer_epoch_bumped") == []
    assert producer.producer_epoch == 0 and producer.next_sequence[TP] == 3
    assert [r.value for r in cluster.read("t", 0)] == [b"warm", b"a", b"c"]


def test_a_first_attempt_that_expires_in_flight_leaves_the_sequence_alone() -> None:
    cluster, leader = _cluster()
    # delivery.timeout.ms = request.timeout.ms: the first answer's timeout is the expiry.
    producer = _producer(cluster, **{"delivery.timeout.ms": 1000})
    cluster.lose_responses(leader, 1)
    a = producer.send("t", value=b"a", key=b"k")
    cluster.advance(1500)
    assert isinstance(a.exception, KafkaTimeoutError)
    assert not producer.sequences.unresolved  # never retried: nothing to resolve
    c = producer.send("t", value=b"c", key=b"k")
    producer.flush()
    assert c.succeeded() and producer.producer_epoch == 0
    assert _kinds(cluster, "producer_epoch_bumped") == []
    assert [r.value for r in cluster.read("t", 0)] == [b"warm", b"a", b"c"]


def test_a_batch_refused_before_its_last_retry_still_bumps_the_epoch() -> None:
    cluster, leader = _cluster()
    cluster.admin().incremental_alter_configs({"t": {"max.message.bytes": 200}})
    producer = _producer(cluster)
    a = producer.send("t", value=b"x" * 500, key=b"k")  # the broker refuses it: too large
    producer.flush()
    assert a.failed() and a.exception is not None
    assert a.exception.kafka_name == "RecordTooLargeException"  # MESSAGE_TOO_LARGE
    c = producer.send("t", value=b"c", key=b"k")
    producer.flush()
    assert c.succeeded()
    assert [kind for _, kind in _kinds(cluster, "producer_epoch_bumped")] == [
        "producer_epoch_bumped"
    ]
