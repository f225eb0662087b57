"""Log compaction (KAFKA_SEMANTICS K1-K5): the log cleaner of every broker."""

from __future__ import annotations

import pytest

from engine import Cluster, TopicPartition
from engine.errors import InvalidRecordError

BACKOFF_MS = 15000  # log.cleaner.backoff.ms


def compacted_topic(
    cluster: Cluster, name: str = "prices", replication_factor: int = 1, **config: object
) -> None:
    settings: dict[str, object] = {"cleanup.policy": "compact", "segment.bytes": 200}
    settings.update({k.replace("_", "."): v for k, v in config.items()})
    cluster.create_topic(name, partitions=1, replication_factor=replication_factor, config=settings)


def produce_one_by_one(
    cluster: Cluster, topic: str, pairs: list[tuple[bytes, bytes | None]], acks: object = 1
) -> None:
    """One batch per record, so segments roll often (200-byte segments hold about two)."""
    producer = cluster.producer({"acks": acks, "linger.ms": 0})
    for key, value in pairs:
        producer.send(topic, key=key, value=value).get()


def compactions(cluster: Cluster, topic: str = "prices") -> list[dict[str, object]]:
    return [
        e.data for e in cluster.events if e.kind == "log_compacted" and e.data["topic"] == topic
    ]


def log_of(cluster: Cluster, topic: str = "prices", broker: int = 1):  # type: ignore[no-untyped-def]
    return cluster.broker_by_id(broker).partitions[TopicPartition(topic, 0)].log


def view(
    cluster: Cluster, topic: str = "prices", replica: int | None = None
) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(r.offset, r.key, r.value) for r in cluster.read(topic, 0, replica=replica)]


def expected_after_cleaning(
    written: list[tuple[bytes, bytes | None]], end: int
) -> list[tuple[int, bytes | None, bytes | None]]:
    """Below `end`, the latest record of each key at its own offset; from `end` on, everything."""
    latest = {key: offset for offset, (key, _value) in enumerate(written) if offset < end}
    return [
        (offset, key, value)
        for offset, (key, value) in enumerate(written)
        if offset >= end or latest[key] == offset
    ]


def test_latest_value_of_each_key_survives_at_its_original_offset_in_order() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster)
    written = [(b"k%d" % (i % 3), b"v%d" % i) for i in range(30)]
    produce_one_by_one(cluster, "prices", written)
    assert len(view(cluster)) == 30

    cluster.advance(BACKOFF_MS)

    [event] = compactions(cluster)
    end = event["end_offset"]
    assert end == log_of(cluster).active_segment.base_offset
    after = view(cluster)
    assert after == expected_after_cleaning(written, end)
    assert [offset for offset, _, _ in after] == sorted(offset for offset, _, _ in after)
    assert event["records_removed"] == 30 - len(after)
    assert log_of(cluster).log_end_offset == 30  # gaps, not renumbering
    assert cluster.describe_topic("prices").partitions[0].log_start_offset == 0


def test_a_read_at_a_gap_returns_the_next_record_present() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster)
    written = [(b"k%d" % (i % 3), b"v%d" % i) for i in range(30)]
    produce_one_by_one(cluster, "prices", written)
    cluster.advance(BACKOFF_MS)
    present = [offset for offset, _, _ in view(cluster)]
    gap = next(o for o in range(30) if o not in present)
    following = next(o for o in present if o > gap)

    assert cluster.read("prices", 0, offset=gap)[0].offset == following

    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    tp = TopicPartition("prices", 0)
    consumer.assign([tp])
    consumer.seek(tp, gap)
    records = consumer.poll(timeout_ms=1000)
    assert records and records[0].offset == following
    assert [r.offset for r in records] == [o for o in present if o >= gap]


def test_a_tombstone_survives_the_first_cleaning_and_goes_after_delete_retention() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster, delete_retention_ms=60000)
    first = [(b"user-1", b"alice"), (b"user-2", b"bob"), (b"user-1", None)]
    filler = [(b"k%d" % (i % 4), b"x%d" % i) for i in range(12)]
    produce_one_by_one(cluster, "prices", first + filler)

    cluster.advance(BACKOFF_MS)  # first cleaning, at 15 s
    [event] = compactions(cluster)
    assert event["tombstones_removed"] == 0
    assert (2, b"user-1", None) in view(cluster)
    assert all(key != b"user-1" or value is None for _, key, value in view(cluster))
    horizons = cluster.snapshot()["log_cleaner"]["delete_horizons"]
    assert horizons == [[1, "prices", 0, 2, 15000 + 60000]]

    # A second cleaning before the horizon keeps it.
    produce_one_by_one(cluster, "prices", [(b"k%d" % (i % 4), b"y%d" % i) for i in range(12)])
    cluster.advance(BACKOFF_MS)
    assert len(compactions(cluster)) == 2
    assert (2, b"user-1", None) in view(cluster)

    # A cleaning after the horizon (75 s) removes it.
    cluster.advance(3 * BACKOFF_MS)
    produce_one_by_one(cluster, "prices", [(b"k%d" % (i % 4), b"z%d" % i) for i in range(12)])
    cluster.advance(BACKOFF_MS)
    last = compactions(cluster)[-1]
    assert cluster.now_ms >= 75000
    assert last["tombstones_removed"] == 1
    assert all(key != b"user-1" for _, key, _ in view(cluster))
    assert (1, b"user-2", b"bob") in view(cluster)


def test_the_active_segment_is_never_cleaned() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster, segment_bytes=1024 * 1024)  # everything stays in the active segment
    written = [(b"same-key", b"v%d" % i) for i in range(20)]
    produce_one_by_one(cluster, "prices", written)
    cluster.advance(4 * BACKOFF_MS)
    assert compactions(cluster) == []
    assert len(view(cluster)) == 20

    # With rolled segments, the duplicates in the active one still stay.
    cluster2 = Cluster(brokers=1)
    compacted_topic(cluster2)
    produce_one_by_one(cluster2, "prices", written)
    cluster2.advance(BACKOFF_MS)
    active_base = log_of(cluster2).active_segment.base_offset
    assert active_base > 0
    assert [o for o, _, _ in view(cluster2) if o >= active_base] == list(range(active_base, 20))
    assert [o for o, _, _ in view(cluster2) if o < active_base] == [active_base - 1]


def test_records_younger_than_min_compaction_lag_are_not_cleaned() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster, min_compaction_lag_ms=60000)
    written = [(b"k%d" % (i % 2), b"v%d" % i) for i in range(16)]
    produce_one_by_one(cluster, "prices", written)
    cluster.advance(4 * BACKOFF_MS)  # up to 60 s: the records are not yet a minute old
    assert compactions(cluster) == []
    assert len(view(cluster)) == 16
    cluster.advance(BACKOFF_MS)  # the cleaning at 75 s
    assert len(compactions(cluster)) == 1
    assert len(view(cluster)) < 16


def test_below_min_cleanable_dirty_ratio_a_log_waits() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster, min_cleanable_dirty_ratio=0.5)
    produce_one_by_one(
        cluster, "prices", [(b"k%d" % i, b"v%d" % i) for i in range(20)]
    )  # all distinct keys
    cluster.advance(BACKOFF_MS)
    assert len(compactions(cluster)) == 1  # nothing was clean yet: ratio 1.0
    produce_one_by_one(cluster, "prices", [(b"k0", b"again"), (b"k1", b"again"), (b"k2", b"again")])
    cluster.advance(2 * BACKOFF_MS)
    assert len(compactions(cluster)) == 1  # a little dirt over a large clean log: below 0.5


def test_the_dirtiest_log_is_cleaned_first() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster, "calm")
    compacted_topic(cluster, "busy")
    produce_one_by_one(cluster, "calm", [(b"k%d" % i, b"v") for i in range(10)])
    produce_one_by_one(cluster, "busy", [(b"k%d" % i, b"v") for i in range(10)])
    cluster.advance(BACKOFF_MS)
    produce_one_by_one(cluster, "calm", [(b"k%d" % (i % 10), b"w") for i in range(16)])
    produce_one_by_one(cluster, "busy", [(b"k%d" % (i % 10), b"w") for i in range(30)])
    cluster.advance(BACKOFF_MS)
    second_round = [e.data["topic"] for e in cluster.events if e.kind == "log_compacted"][2:]
    assert second_round == ["busy", "calm"]


def test_compact_delete_also_runs_retention() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster, cleanup_policy="compact,delete", retention_ms=60000)
    compacted_topic(cluster, "compact-only", retention_ms=60000)
    written = [(b"k%d" % (i % 3), b"v%d" % i) for i in range(12)]
    produce_one_by_one(cluster, "prices", written)
    produce_one_by_one(cluster, "compact-only", written)
    cluster.advance(BACKOFF_MS)
    assert len(compactions(cluster)) == 1
    assert len(compactions(cluster, "compact-only")) == 1
    cluster.advance(300000)  # retention runs every log.retention.check.interval.ms (300 s)
    deleted = [e for e in cluster.events if e.kind == "segment_deleted"]
    assert {e.data["topic"] for e in deleted} == {"prices"}
    assert view(cluster) == []
    assert cluster.describe_topic("prices").partitions[0].log_start_offset == 12
    assert view(cluster, "compact-only") != []


def test_delete_policy_topics_are_never_compacted() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("plain", config={"segment.bytes": 200})
    produce_one_by_one(cluster, "plain", [(b"k", b"v%d" % i) for i in range(20)])
    cluster.advance(2 * BACKOFF_MS)
    assert compactions(cluster, "plain") == []
    assert len(cluster.read("plain", 0)) == 20


def test_each_replica_is_cleaned_on_its_own_broker_with_the_same_result() -> None:
    cluster = Cluster(brokers=3)
    compacted_topic(cluster, replication_factor=3)
    written = [(b"k%d" % (i % 4), b"v%d" % i) for i in range(24)]
    produce_one_by_one(cluster, "prices", written, acks="all")
    cluster.advance(BACKOFF_MS)
    events = compactions(cluster)
    assert sorted(e["broker"] for e in events) == [1, 2, 3]
    views = [view(cluster, replica=b) for b in (1, 2, 3)]
    assert views[0] == views[1] == views[2]
    end = events[0]["end_offset"]
    assert all(e["end_offset"] == end for e in events)
    assert views[0] == expected_after_cleaning(written, end)
    assert len(views[0]) < 24


def test_a_record_without_a_key_is_refused_by_a_compacted_topic() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster)
    producer = cluster.producer()
    with pytest.raises(InvalidRecordError):
        producer.send("prices", value=b"no key").get()
    assert view(cluster) == []


def test_a_rebuilt_cluster_has_the_same_compacted_logs() -> None:
    cluster = Cluster(brokers=3)
    compacted_topic(cluster, replication_factor=3)
    produce_one_by_one(
        cluster, "prices", [(b"k%d" % (i % 4), b"v%d" % i) for i in range(16)], acks="all"
    )
    cluster.advance(BACKOFF_MS * 2)
    rebuilt = Cluster.from_log(cluster.export_log())
    assert rebuilt.snapshot() == cluster.snapshot()
    assert view(rebuilt) == view(cluster)


def test_consumer_offsets_is_compacted_by_the_same_cleaner() -> None:
    cluster = Cluster(
        brokers=3, config={"offsets.topic.segment.bytes": 300, "offsets.topic.num.partitions": 1}
    )
    cluster.create_topic("orders", replication_factor=3)
    producer = cluster.producer()
    for i in range(20):
        producer.send("orders", value=b"v%d" % i)
    producer.flush()
    consumer = cluster.consumer(
        {"group.id": "billing", "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe(["orders"])
    tp = TopicPartition("orders", 0)
    for _ in range(20):
        if consumer.poll(timeout_ms=500) or consumer.assignment():
            break
    assert consumer.assignment() == {tp}
    for offset in range(1, 21):
        consumer.commit({tp: offset})
    before = len(cluster.read("__consumer_offsets", 0))
    cluster.advance(BACKOFF_MS)
    events = compactions(cluster, "__consumer_offsets")
    assert sorted(e["broker"] for e in events) == [1, 2, 3]
    assert len(cluster.read("__consumer_offsets", 0)) < before
    assert cluster.describe_group("billing").offsets[tp] == 20
    assert consumer.committed(tp) == 20


# --- producers and transactions in compacted logs ---------------------------------------------


def test_a_producers_last_batch_keeps_its_header_so_its_sequence_survives() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster)
    idempotent = cluster.producer({"linger.ms": 0})
    idempotent.send("prices", key=b"k", value=b"old").get()  # sequence 0, its only batch
    produce_one_by_one(cluster, "prices", [(b"k", b"new")] + [(b"f%d" % i, b"x") for i in range(8)])
    cluster.advance(BACKOFF_MS)
    [event] = compactions(cluster)
    assert event["batch_headers_retained"] >= 1
    assert (0, b"k", b"old") not in view(cluster)
    log = log_of(cluster)
    header = next(log.iter_batches(0))
    assert header.producer_id == idempotent.producer_id
    assert header.records == [] and header.base_sequence == 0 and header.last_offset == 0
    # Producer state rebuilt from the log (as after truncation) still knows sequence 0 ...
    partition = cluster.broker_by_id(1).partitions[TopicPartition("prices", 0)]
    partition.producer_state.rebuild(list(log.iter_batches(log.log_start_offset)))
    assert partition.producer_state.producers[idempotent.producer_id].last_seq == 0
    # ... so the producer's next batch, sequence 1, is in order.
    assert idempotent.send("prices", key=b"k", value=b"newest").get().offset == 10


def committed_and_aborted_transactions(cluster: Cluster) -> None:
    """Two transactions on a compacted topic, each later superseded, then filler to roll."""
    producer = cluster.producer({"transactional.id": "t", "linger.ms": 0})
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("prices", key=b"a", value=b"committed").get()
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send("prices", key=b"b", value=b"aborted").get()
    producer.abort_transaction()
    produce_one_by_one(
        cluster, "prices", [(b"a", b"plain")] + [(b"f%d" % i, b"x") for i in range(8)]
    )


def control_batches(cluster: Cluster) -> list[tuple[int, str | None, int]]:
    return [
        (b.base_offset, b.control_type, len(b.records))
        for b in log_of(cluster).iter_batches(0)
        if b.is_control
    ]


def test_transaction_markers_go_once_their_transaction_is_gone_and_the_horizon_passed() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster, delete_retention_ms=60000, min_cleanable_dirty_ratio=0.01)
    committed_and_aborted_transactions(cluster)
    assert control_batches(cluster) == [(1, "COMMIT", 1), (3, "ABORT", 1)]

    cluster.advance(BACKOFF_MS)  # 1st cleaning: the transactions' records go, markers stay
    assert [r.value for r in cluster.read("prices", 0, isolation_level="read_committed")][:1] == [
        b"plain"
    ]
    assert control_batches(cluster) == [(1, "COMMIT", 1), (3, "ABORT", 1)]

    produce_one_by_one(cluster, "prices", [(b"g%d" % i, b"y") for i in range(6)])
    cluster.advance(BACKOFF_MS)  # 2nd: nothing of theirs is left before them: horizon stamped
    assert control_batches(cluster) == [(1, "COMMIT", 1), (3, "ABORT", 1)]
    horizons = {h[3]: h[4] for h in cluster.snapshot()["log_cleaner"]["delete_horizons"]}
    assert 1 in horizons

    cluster.advance(60000)
    produce_one_by_one(cluster, "prices", [(b"h%d" % i, b"z") for i in range(6)])
    cluster.advance(BACKOFF_MS)  # past the horizon: the COMMIT marker goes
    # The ABORT marker stays: the aborted batch keeps its header (the producer's last sequence).
    assert control_batches(cluster) == [(3, "ABORT", 1)]
    assert sum(e["markers_removed"] for e in compactions(cluster)) == 1
    # read_committed still reads the same records.
    consumer = cluster.consumer(
        {"isolation.level": "read_committed", "auto.offset.reset": "earliest"}
    )
    consumer.assign([TopicPartition("prices", 0)])
    seen = []
    for _ in range(5):
        seen += [r.value for r in consumer.poll(timeout_ms=500)]
    assert b"aborted" not in seen and b"plain" in seen


def test_max_compaction_lag_cleans_a_log_below_its_dirty_ratio() -> None:
    cluster = Cluster(brokers=1)
    compacted_topic(cluster, min_cleanable_dirty_ratio=0.9, max_compaction_lag_ms=40000)
    produce_one_by_one(cluster, "prices", [(b"k%d" % (i % 3), b"v%d" % i) for i in range(12)])
    cluster.advance(BACKOFF_MS)
    assert len(compactions(cluster)) == 1  # all dirty: ratio 1.0
    produce_one_by_one(cluster, "prices", [(b"k%d" % (i % 3), b"w%d" % i) for i in range(8)])
    cluster.advance(BACKOFF_MS)  # at 30 s: below the 0.9 ratio, nothing dirty older than 40 s
    assert len(compactions(cluster)) == 1
    cluster.advance(BACKOFF_MS)  # at 45 s: the oldest dirty segment (written at 0 s) is too old
    second = compactions(cluster)[1]
    assert second["dirty_ratio"] <= 0.9
    assert second["records_removed"] > 0
