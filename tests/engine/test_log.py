"""The log, rule by rule (KAFKA_SEMANTICS.md section L), and Hypothesis properties of the log."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Cluster, TopicPartition
from engine.common.config import broker_config, topic_defaults
from engine.common.records import Record, RecordBatch
from engine.errors import InvalidRecordError, OffsetOutOfRangeError
from engine.storage.log import UnifiedLog

TP = TopicPartition("t", 0)


def make_log(**overrides: Any) -> tuple[UnifiedLog, list[tuple[str, dict[str, Any]]]]:
    config = dict(topic_defaults(broker_config(None, 1)))
    config.update(overrides)
    events: list[tuple[str, dict[str, Any]]] = []
    log = UnifiedLog("t", 0, config, 0, lambda kind, data: events.append((kind, data)))
    return log, events


def batch_of(
    log: UnifiedLog, values: list[bytes], timestamp: int = 0, size_each: int = 100
) -> RecordBatch:
    base = log.log_end_offset
    records = [Record(base + i, timestamp, None, v, (), size_each) for i, v in enumerate(values)]
    return RecordBatch(
        base_offset=base,
        records=records,
        leader_epoch=0,
        max_timestamp=timestamp,
        size=61 + size_each * len(values),
    )


def cluster_with_topic(
    config: dict[str, Any] | None = None, rf: int = 1, brokers: int = 1, partitions: int = 1
) -> Cluster:
    cluster = Cluster(brokers=brokers, seed=7)
    cluster.create_topic("t", partitions=partitions, replication_factor=rf, config=config)
    return cluster


def leader_log(cluster: Cluster, tp: TopicPartition = TP) -> UnifiedLog:
    leader = cluster.describe_topic(tp.topic).partitions[tp.partition].leader
    return cluster.broker_by_id(leader).partitions[tp].log


# --- L1 ----------------------------------------------------------------------------------------


def test_offsets_are_dense_and_the_log_end_is_the_next_offset() -> None:
    cluster = cluster_with_topic()
    producer = cluster.producer({"acks": 1})
    offsets = [producer.send("t", value=b"v%d" % i).get().offset for i in range(5)]
    assert offsets == [0, 1, 2, 3, 4]
    assert cluster.describe_topic("t").partitions[0].log_end_offset == 5


def test_acks_zero_reports_offset_minus_one_but_the_records_are_written() -> None:
    cluster = cluster_with_topic()
    producer = cluster.producer({"acks": 0, "linger.ms": 10})
    futures = [producer.send("t", value=b"v%d" % i) for i in range(3)]
    producer.flush()
    assert [f.get().offset for f in futures] == [-1, -1, -1]
    cluster.advance(100)
    assert [r.value for r in cluster.read("t", 0)] == [b"v0", b"v1", b"v2"]


# --- L2 and L3 ---------------------------------------------------------------------------------


def test_a_segment_rolls_when_the_next_batch_would_pass_segment_bytes() -> None:
    log, events = make_log(**{"segment.bytes": 1000})
    for i in range(4):
        log.append(batch_of(log, [b"x%d" % i], size_each=300), 0)
    # 361 + 361 fits in 1000, a third would not: it starts segment 2 at its own first offset.
    assert [s.base_offset for s in log.segments] == [0, 2]
    assert [e[1]["base_offset"] for e in events if e[0] == "segment_rolled"] == [2]


def test_a_segment_rolls_when_it_is_older_than_segment_ms() -> None:
    log, events = make_log(**{"segment.ms": 10_000})
    log.append(batch_of(log, [b"a"], timestamp=0), 0)
    log.append(batch_of(log, [b"b"], timestamp=5_000), 5_000)
    assert len(log.segments) == 1
    log.append(batch_of(log, [b"c"], timestamp=10_001), 10_001)
    assert [s.base_offset for s in log.segments] == [0, 2]
    assert any(e[1]["reason"] == "segment.ms" for e in events if e[0] == "segment_rolled")


def test_a_segment_rolls_when_its_offset_index_is_full() -> None:
    log, _ = make_log(**{"segment.index.bytes": 16, "index.interval.bytes": 0})
    for i in range(6):
        log.append(batch_of(log, [b"x%d" % i]), 0)
    assert len(log.segments) > 1
    assert all(len(s.index) <= 2 for s in log.segments)


def test_the_offset_index_is_sparse_one_entry_per_index_interval_bytes() -> None:
    log, _ = make_log(**{"index.interval.bytes": 4096})
    for i in range(100):
        log.append(batch_of(log, [b"x%d" % i], size_each=1000), 0)
    entries = log.active_segment.index
    # 100 batches of 1061 bytes: an entry after every 4 batches or so, never one per batch.
    assert 20 <= len(entries) <= 25
    positions = [p for _, p in entries]
    assert all(b - a >= 4096 for a, b in zip(positions, positions[1:], strict=False))


def test_segments_roll_in_a_cluster_with_segment_rolled_events() -> None:
    cluster = cluster_with_topic({"segment.bytes": 1024})
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    for i in range(20):
        producer.send("t", value=b"x" * 200, key=b"k%d" % i).get()
    log = leader_log(cluster)
    assert len(log.segments) > 3
    assert all(s.size <= 1024 for s in log.segments)
    rolled = [e for e in cluster.events if e.kind == "segment_rolled"]
    assert [e.data["base_offset"] for e in rolled] == [s.base_offset for s in log.segments[1:]]


# --- L4 and L5 ---------------------------------------------------------------------------------


def fill(cluster: Cluster, count: int, size: int = 200) -> None:
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    for i in range(count):
        producer.send("t", value=b"x" * size, key=b"k%d" % i).get()


def test_retention_by_time_deletes_whole_old_segments_at_the_check_interval() -> None:
    cluster = cluster_with_topic({"segment.bytes": 1024, "retention.ms": 10_000})
    fill(cluster, 20)
    log = leader_log(cluster)
    segments_before = len(log.segments)
    cluster.advance(10_000)  # older than retention, but the check runs every 300 s
    assert len(log.segments) == segments_before
    cluster.advance(300_000)
    deleted = [e for e in cluster.events if e.kind == "segment_deleted"]
    assert deleted
    # Everything was past retention: the active segment went too, after an empty one rolled.
    assert log.log_start_offset == log.log_end_offset == 20
    assert len(log.segments) == 1 and log.active_segment.size == 0
    assert cluster.describe_topic("t").partitions[0].log_start_offset == 20


def test_retention_by_size_deletes_oldest_segments_while_the_log_exceeds_retention_bytes() -> None:
    cluster = cluster_with_topic({"segment.bytes": 1024, "retention.bytes": 2048})
    fill(cluster, 40)
    log = leader_log(cluster)
    cluster.advance(300_000)
    assert log.size <= 2048 + 1024
    assert log.size > 2048 - 1024
    assert log.log_start_offset == log.segments[0].base_offset > 0
    # Deleted oldest first: every remaining offset is above every deleted one.
    deleted = [e.data for e in cluster.events if e.kind == "segment_deleted"]
    assert max(d["next_offset"] for d in deleted) <= log.log_start_offset


def test_unlimited_retention_keeps_everything() -> None:
    cluster = cluster_with_topic({"segment.bytes": 1024, "retention.ms": -1})
    fill(cluster, 20)
    cluster.advance(3_000_000)
    assert leader_log(cluster).log_start_offset == 0


def test_an_empty_last_segment_is_never_deleted() -> None:
    log, _ = make_log(**{"retention.ms": 1})
    assert log.delete_old_segments(10**9) == 0
    assert len(log.segments) == 1


def test_retention_never_deletes_a_segment_not_wholly_below_the_high_watermark() -> None:
    log, _ = make_log(**{"segment.bytes": 500, "retention.ms": 10})
    for i in range(6):
        log.append(batch_of(log, [b"x%d" % i], size_each=200), 0)
    log.update_high_watermark(3)
    log.delete_old_segments(1_000)
    # Segments [0], [1], [2] lie wholly below the HW and go; the ones holding 3.. stay.
    assert log.log_start_offset == 3
    assert [r.offset for r in log.read_records(log.log_start_offset)] == [3, 4, 5]


def test_retention_does_not_run_for_a_compact_only_topic() -> None:
    log, _ = make_log(**{"retention.ms": 1, "cleanup.policy": ["compact"]})
    log.append(batch_of(log, [b"a"]), 0)
    log.update_high_watermark(1)
    assert log.delete_old_segments(10**9) == 0


# --- L6 ----------------------------------------------------------------------------------------


def test_a_consumer_fetching_below_the_log_start_is_out_of_range_and_resets() -> None:
    cluster = cluster_with_topic({"segment.bytes": 1024, "retention.bytes": 1024})
    fill(cluster, 30)
    cluster.advance(300_000)
    start = leader_log(cluster).log_start_offset
    assert start > 0
    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    consumer.assign([TP])
    consumer.seek(TP, 0)
    records = consumer.poll(2000)
    assert records and records[0].offset == start
    assert any(e.kind == "offset_out_of_range" for e in cluster.events)


def test_out_of_range_with_reset_none_raises() -> None:
    cluster = cluster_with_topic()
    fill(cluster, 3)
    consumer = cluster.consumer({"auto.offset.reset": "none"})
    consumer.assign([TP])
    consumer.seek(TP, 50)
    with pytest.raises(OffsetOutOfRangeError):
        for _ in range(5):
            consumer.poll(500)


def test_consumers_read_only_up_to_the_high_watermark() -> None:
    cluster = Cluster(brokers=3, seed=3)
    cluster.create_topic("t", 1, 3, {"min.insync.replicas": 2})
    producer = cluster.producer({"acks": 1})
    producer.send("t", value=b"a", partition=0).get()
    cluster.advance(1000)
    leader = cluster.describe_topic("t").partitions[0].leader
    followers = [b for b in (1, 2, 3) if b != leader]
    for follower in followers:
        cluster.stop_broker(follower)
    producer.send("t", value=b"b", partition=0).get()  # acks=1: in the leader's log only
    description = cluster.describe_topic("t").partitions[0]
    assert (description.high_watermark, description.log_end_offset) == (1, 2)
    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    consumer.assign([TP])
    assert [r.value for r in consumer.poll(1000)] == [b"a"]
    assert consumer.poll(500) == []
    # The operator's view is not limited by the high watermark.
    assert [r.value for r in cluster.read("t", 0)] == [b"a", b"b"]


# --- L7, L8, L9, L10 ---------------------------------------------------------------------------


def test_the_high_watermark_only_grows_and_stays_within_log_start_and_end() -> None:
    log, _ = make_log()
    log.append(batch_of(log, [b"a", b"b", b"c"]), 0)
    assert log.maybe_increment_high_watermark(2)
    assert not log.maybe_increment_high_watermark(1)
    assert log.high_watermark == 2
    log.maybe_increment_high_watermark(99)
    assert log.high_watermark == 3


def test_without_transactions_the_last_stable_offset_is_the_high_watermark() -> None:
    cluster = cluster_with_topic()
    fill(cluster, 4)
    description = cluster.describe_topic("t").partitions[0]
    assert description.last_stable_offset == description.high_watermark == 4


def test_list_offsets_earliest_is_the_log_start_and_latest_the_high_watermark() -> None:
    cluster = cluster_with_topic({"segment.bytes": 1024, "retention.bytes": 1024})
    fill(cluster, 30)
    cluster.advance(300_000)
    log = leader_log(cluster)
    consumer = cluster.consumer()
    consumer.assign([TP])
    consumer.seek_to_beginning()
    assert consumer.position(TP) == log.log_start_offset > 0
    consumer.seek_to_end()
    assert consumer.position(TP) == log.high_watermark == 30


def test_a_null_key_on_a_compacted_topic_is_an_invalid_record() -> None:
    cluster = cluster_with_topic({"cleanup.policy": "compact"})
    producer = cluster.producer()
    with pytest.raises(InvalidRecordError):
        producer.send("t", value=b"v").get()


# --- Hypothesis properties of the log ----------------------------------------------------------

batches = st.lists(
    st.lists(st.binary(max_size=40), min_size=1, max_size=5), min_size=1, max_size=30
)


@settings(max_examples=60, deadline=None)
@given(batches=batches, segment_bytes=st.integers(64, 2000), hw_steps=st.lists(st.integers(0, 200)))
def test_offsets_are_dense_never_reused_and_reads_return_what_was_appended(
    batches: list[list[bytes]], segment_bytes: int, hw_steps: list[int]
) -> None:
    log, _ = make_log(
        **{"segment.bytes": segment_bytes, "retention.bytes": segment_bytes, "retention.ms": 50}
    )
    appended: list[tuple[int, bytes]] = []
    seen_offsets: set[int] = set()
    now = 0
    for index, values in enumerate(batches):
        now += 10
        batch = batch_of(log, values, timestamp=now, size_each=20 + len(values[0]))
        log.append(batch, now)
        for record in batch.records:
            assert record.offset not in seen_offsets
            seen_offsets.add(record.offset)
            appended.append((record.offset, record.value or b""))
        if index < len(hw_steps):
            before = log.high_watermark
            log.maybe_increment_high_watermark(hw_steps[index])
            assert log.high_watermark >= before
        log.delete_old_segments(now)
        # Retention never passes the high watermark.
        assert log.log_start_offset <= log.high_watermark <= log.log_end_offset
    assert [o for o, _ in appended] == list(range(len(appended)))
    assert log.log_end_offset == len(appended)
    survivors = [(r.offset, r.value) for r in log.read_records(log.log_start_offset)]
    assert survivors == appended[log.log_start_offset :]
    # Segments tile the retained offsets with no gap or overlap.
    bases = [s.base_offset for s in log.segments]
    assert bases == sorted(bases)
    assert bases[0] == log.log_start_offset or log.segments[0].size == 0


@settings(max_examples=40, deadline=None)
@given(batches=batches, cut=st.integers(0, 150))
def test_truncation_removes_exactly_the_suffix_and_new_appends_continue_from_there(
    batches: list[list[bytes]], cut: int
) -> None:
    log, _ = make_log(**{"segment.bytes": 300})
    for values in batches:
        log.append(batch_of(log, values), 0)
    end = log.log_end_offset
    removed = log.truncate_to(cut)
    assert [r.offset for r in removed] == list(range(min(cut, end), end))
    assert log.log_end_offset == min(cut, end)
    log.append(batch_of(log, [b"after"]), 0)
    assert [r.offset for r in log.read_records(0)] == list(range(log.log_end_offset))


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.binary(min_size=1, max_size=30), min_size=1, max_size=40),
    segment_bytes=st.integers(200, 3000),
)
def test_a_cluster_log_returns_every_acknowledged_record_in_order(
    values: list[bytes], segment_bytes: int
) -> None:
    cluster = Cluster(brokers=1, seed=1)
    cluster.create_topic("t", 1, 1, {"segment.bytes": segment_bytes})
    producer = cluster.producer({"acks": 1})
    futures = [producer.send("t", value=v) for v in values]
    producer.flush()
    assert [f.get().offset for f in futures] == list(range(len(values)))
    assert [r.value for r in cluster.read("t", 0)] == values
