"""The standalone consumer: assign, seek, positions, poll, auto.offset.reset, failover."""

from __future__ import annotations

import pytest

from engine import Cluster, TopicPartition
from engine.errors import (
    IllegalStateError,
    InvalidConfigurationError,
    LogTruncationError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
)
from engine.server.broker import Broker

TP = TopicPartition("t", 0)


def with_records(count: int = 10, partitions: int = 1, rf: int = 1, brokers: int = 1) -> Cluster:
    cluster = Cluster(brokers=brokers, seed=61)
    cluster.create_topic("t", partitions, rf)
    producer = cluster.producer()
    for i in range(count):
        producer.send("t", value=b"v%d" % i, partition=i % partitions)
    producer.flush()
    return cluster


def drain(consumer: object, rounds: int = 10) -> list[bytes | None]:
    values: list[bytes | None] = []
    for _ in range(rounds):
        values += [r.value for r in consumer.poll(200)]  # type: ignore[attr-defined]
    return values


def test_auto_offset_reset_defaults_to_latest() -> None:
    cluster = with_records()
    consumer = cluster.consumer()
    consumer.assign([TP])
    assert consumer.poll(500) == []
    assert consumer.position(TP) == 10
    cluster.producer().send("t", value=b"new").get()
    assert [r.value for r in consumer.poll(1000)] == [b"new"]


def test_auto_offset_reset_earliest_reads_from_the_log_start() -> None:
    cluster = with_records()
    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    consumer.assign([TP])
    assert drain(consumer) == [b"v%d" % i for i in range(10)]


def test_auto_offset_reset_none_raises_without_a_position() -> None:
    cluster = with_records()
    consumer = cluster.consumer({"auto.offset.reset": "none"})
    consumer.assign([TP])
    with pytest.raises(NoOffsetForPartitionError):
        consumer.poll(500)


def test_seek_to_beginning_before_any_metadata_is_kept_until_it_can_be_served() -> None:
    cluster = with_records()
    consumer = cluster.consumer()  # latest by default: seek_to_beginning must win
    consumer.assign([TP])
    consumer.seek_to_beginning()
    assert drain(consumer) == [b"v%d" % i for i in range(10)]


def test_seek_and_position() -> None:
    cluster = with_records()
    consumer = cluster.consumer()
    consumer.assign([TP])
    consumer.seek(TP, 7)
    assert consumer.position(TP) == 7
    assert drain(consumer) == [b"v7", b"v8", b"v9"]
    assert consumer.position(TP) == 10
    consumer.seek_to_beginning([TP])
    assert consumer.position(TP) == 0
    consumer.seek_to_end()
    assert consumer.position(TP) == 10


def test_max_poll_records_bounds_each_poll() -> None:
    cluster = with_records(20)
    consumer = cluster.consumer({"auto.offset.reset": "earliest", "max.poll.records": "3"})
    consumer.assign([TP])
    sizes = [len(consumer.poll(500)) for _ in range(8)]
    assert max(sizes) == 3 and sum(sizes) == 20
    assert len(consumer.poll(500, max_records=1)) == 0


def test_records_come_back_in_offset_order_per_partition() -> None:
    cluster = with_records(30, partitions=3)
    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("t", p) for p in range(3)])
    records = []
    for _ in range(10):
        records += consumer.poll(200)
    assert len(records) == 30
    for number in range(3):
        offsets = [r.offset for r in records if r.partition == number]
        assert offsets == list(range(10))


def test_positions_and_assignment_errors() -> None:
    cluster = with_records()
    consumer = cluster.consumer()
    with pytest.raises(IllegalStateError):
        consumer.poll(0)
    consumer.assign([TP])
    assert consumer.assignment() == {TP}
    with pytest.raises(IllegalStateError):
        consumer.position(TopicPartition("t", 5))
    with pytest.raises(ValueError):
        consumer.seek(TP, -1)
    with pytest.raises(InvalidConfigurationError):
        cluster.consumer({"auto.offset.reset": "smallest"})


def test_a_consumer_follows_the_leader_after_failover() -> None:
    cluster = with_records(5, rf=3, brokers=3)
    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    consumer.assign([TP])
    assert len(drain(consumer, 3)) == 5
    leader = cluster.describe_topic("t").partitions[0].leader
    cluster.stop_broker(leader)
    producer = cluster.producer()
    producer.send("t", value=b"after failover").get()
    assert drain(consumer, 30) == [b"after failover"]


def test_poll_with_a_timeout_advances_the_clock_and_returns_early_when_data_arrives() -> None:
    cluster = with_records(0)
    consumer = cluster.consumer()
    consumer.assign([TP])
    start = cluster.now_ms
    assert consumer.poll(2000) == []
    assert cluster.now_ms - start >= 2000
    producer = cluster.producer({"linger.ms": 0})
    producer.send("t", value=b"v")
    start = cluster.now_ms
    assert [r.value for r in consumer.poll(5000)] == [b"v"]
    assert cluster.now_ms - start < 100


def test_a_closed_consumer_refuses_calls() -> None:
    cluster = with_records()
    consumer = cluster.consumer()
    consumer.assign([TP])
    consumer.close()
    from engine.errors import KafkaClosedError

    with pytest.raises(KafkaClosedError):
        consumer.poll(0)


def test_a_lost_list_offsets_response_is_retried_within_one_poll() -> None:
    cluster = Cluster(brokers=1, seed=3)
    cluster.create_topic("t", 1, 1)
    producer = cluster.producer({"acks": "1"})
    producer.send("t", value=b"a", key=b"k").get()
    consumer = cluster.consumer({"auto.offset.reset": "earliest", "request.timeout.ms": 2000})
    tp = TopicPartition("t", 0)
    consumer.assign([tp])
    consumer.poll(timeout_ms=100)  # metadata arrives; the reset (ListOffsets) is sent
    consumer.seek_to_beginning([tp])
    cluster.lose_responses(1, count=1)
    records = consumer.poll(timeout_ms=10_000)
    assert [r.value for r in records] == [b"a"]


# --- KIP-320: log truncation detected by leader epoch -----------------------------------------


def unclean_failover(reset: str) -> tuple[Cluster, object]:
    """A consumer reads ten records from the leader; three of them reached the follower. The
    leader dies, the follower wins an unclean election (a new leader epoch) and takes ten new
    records, so offsets 3..9 now hold different records than the consumer read."""
    cluster = Cluster(brokers=2, seed=61)
    cluster.create_topic(
        "t", 1, 2, {"unclean.leader.election.enable": True, "min.insync.replicas": 1}
    )
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    for i in range(3):
        producer.send("t", value=b"old%d" % i).get()
    cluster.advance(1000)
    leader = cluster.describe_topic("t").partitions[0].leader
    follower = 3 - leader
    cluster.stop_broker(follower)
    cluster.advance(15_000)
    for i in range(3, 10):
        producer.send("t", value=b"old%d" % i).get()
    consumer = cluster.consumer({"auto.offset.reset": reset})
    consumer.assign([TP])
    consumer.seek(TP, 0)
    assert drain(consumer) == [b"old%d" % i for i in range(10)]
    assert consumer.position(TP) == 10
    cluster.stop_broker(leader)
    cluster.start_broker(follower)
    cluster.advance(30_000)
    assert cluster.describe_topic("t").partitions[0].leader == follower
    for i in range(10):
        producer.send("t", value=b"new%d" % i).get()
    return cluster, consumer


def test_with_auto_offset_reset_none_a_truncated_log_raises_log_truncation_error() -> None:
    cluster, consumer = unclean_failover("none")
    with pytest.raises(LogTruncationError) as raised:
        drain(consumer)
    assert raised.value.fetch_offsets == {TP: 10}
    assert raised.value.divergent_offsets == {TP: 3}
    assert isinstance(raised.value, OffsetOutOfRangeError)
    detected = [e.data for e in cluster.events if e.kind == "log_truncation_detected"]
    assert detected == [
        {
            "client": consumer.client_id,  # type: ignore[attr-defined]
            "topic": "t",
            "partition": 0,
            "position": 10,
            "epoch": detected[0]["epoch"],
            "divergent_offset": 3,
            "reset_to": None,
        }
    ]
    assert drain(consumer) == []  # nothing is fetched until the application seeks
    consumer.seek(TP, 3)  # type: ignore[attr-defined]
    assert drain(consumer) == [b"new%d" % i for i in range(10)]


def test_with_a_reset_policy_the_consumer_goes_back_to_where_the_logs_diverge() -> None:
    cluster, consumer = unclean_failover("earliest")
    assert drain(consumer) == [b"new%d" % i for i in range(10)]
    detected = [e.data for e in cluster.events if e.kind == "log_truncation_detected"]
    assert [(d["position"], d["divergent_offset"], d["reset_to"]) for d in detected] == [(10, 3, 3)]


def test_a_clean_leader_change_passes_validation_without_a_reset() -> None:
    cluster = Cluster(brokers=2, seed=61)
    cluster.create_topic("t", 1, 2)
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    for i in range(5):
        producer.send("t", value=b"v%d" % i).get()
    consumer = cluster.consumer({"auto.offset.reset": "none"})
    consumer.assign([TP])
    consumer.seek(TP, 0)
    assert drain(consumer) == [b"v%d" % i for i in range(5)]
    cluster.stop_broker(cluster.describe_topic("t").partitions[0].leader)
    cluster.advance(30_000)
    producer.send("t", value=b"after").get()
    assert drain(consumer) == [b"after"]
    assert not any(e.kind == "log_truncation_detected" for e in cluster.events)


def test_a_failed_offset_for_leader_epoch_is_retried_and_nothing_is_fetched_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Kafka keeps the position in AWAIT_VALIDATION through a failed OffsetsForLeaderEpoch and
    # sends it again; fetching from the new leader meanwhile would hand out new7..new9 as if
    # they followed old9.
    cluster, consumer = unclean_failover("earliest")
    answer = Broker.handle_offset_for_leader_epoch
    refused: list[int] = []

    def once_not_leader(self: Broker, *args: object) -> tuple[str, int, int]:
        if not refused:
            refused.append(cluster.now_ms)
            return ("NOT_LEADER_OR_FOLLOWER", -1, -1)
        return answer(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Broker, "handle_offset_for_leader_epoch", once_not_leader)
    assert drain(consumer, rounds=20) == [b"new%d" % i for i in range(10)]
    assert refused  # the first answer was the refusal
    detected = [e.data for e in cluster.events if e.kind == "log_truncation_detected"]
    assert [(d["position"], d["reset_to"]) for d in detected] == [(10, 3)]
