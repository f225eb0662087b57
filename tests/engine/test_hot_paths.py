"""The throughput fast paths give the results of the slow paths they stand in for."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Cluster
from engine.common.records import Record
from engine.sim.command_log import SEND_SHAPE, EntryRun, log_entry
from engine.storage.log_cleaner import _kept_by_offset_map, _kept_by_survivors


def _send_entry(producer: int, topic: str, value: Any, key: Any, **rest: Any) -> dict[str, Any]:
    args = {
        "producer": producer,
        "topic": topic,
        "value": value,
        "key": key,
        "partition": None,
        "headers": None,
        "timestamp_ms": None,
    }
    args.update(rest)
    return log_entry("producer.send", args)


def _expected(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries as export_log makes them JSON-safe (bytes as base64)."""
    throwaway = Cluster(brokers=1, seed=0, controllers=1)
    throwaway._log[1:] = [dict(entry) for entry in entries]
    return throwaway.export_log()[1:]


def _exported_from(
    cluster: Cluster, op: str, expected: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The cluster's exported log, checked from its first `op` entry on against `expected`."""
    log = cluster.export_log()
    first = next(i for i, e in enumerate(log) if e["op"] == op)
    assert log[first:] == _expected(expected)
    return log


def test_compact_send_entries_export_as_the_entries_record_call_makes() -> None:
    cluster = Cluster(brokers=3, seed=4)
    cluster.create_topic("t", 3, 3)
    producer = cluster.producer({"linger.ms": 5})
    other = cluster.producer({"acks": 1})
    expected: list[dict[str, Any]] = []
    for i in range(5):  # keyed sends of bytes: the compact run
        producer.send("t", value=b"v%d" % i, key=b"k%d" % i)
        expected.append(_send_entry(1, "t", b"v%d" % i, b"k%d" % i))
    producer.send("t", value=None, key=b"gone")  # a tombstone is still in logged form
    expected.append(_send_entry(1, "t", None, b"gone"))
    other.send("t", value=b"x", key=b"k0")  # another producer, same run
    expected.append(_send_entry(2, "t", b"x", b"k0"))
    producer.send("t", value=b"p", key=b"k1", partition=2)  # slow path: its own entry
    expected.append(_send_entry(1, "t", b"p", b"k1", partition=2))
    producer.send("t", value=b"h", key=b"k1", headers={"h": b"1"})
    expected.append(_send_entry(1, "t", b"h", b"k1", headers={"h": b"1"}))
    producer.send("t", value=b"u")  # no key: slow path
    expected.append(_send_entry(1, "t", b"u", None))
    producer.send("t", value=b"after", key=b"k2")  # a new run after other entries
    expected.append(_send_entry(1, "t", b"after", b"k2"))
    producer.flush()
    expected.append(log_entry("producer.flush", {"producer": 1}))
    producer.send("t", value=b"last", key=b"k3")
    expected.append(_send_entry(1, "t", b"last", b"k3"))
    log = _exported_from(cluster, "producer.send", expected)
    # Runs of entries in logged form, each broken only by an entry that is not (the headers).
    assert [len(e) if type(e) is EntryRun else e["op"] for e in cluster._log[4:]] == [
        8,
        "producer.send",
        4,
    ]
    # The log is JSON-safe and replays to an equal cluster that exports the same log.
    copy = Cluster.from_log(json.loads(json.dumps(log)))
    assert copy.snapshot() == cluster.snapshot()
    assert copy.export_log() == log


def test_a_pickled_log_keeps_its_open_run_as_its_tail() -> None:
    """Checkpoints copy a running cluster by pickling it: the copy's open run of sends must stay
    the one at the end of the copy's log, so later sends land after the earlier ones."""
    cluster = Cluster(brokers=3, seed=5)
    cluster.create_topic("t", 2, 3)
    producer = cluster.producer()
    producer.send("t", value=b"a", key=b"k")
    log, run = pickle.loads(pickle.dumps((cluster._log, cluster._run)))
    assert type(log[-1]) is EntryRun and log[-1].fields is run
    assert run[-8:] == [SEND_SHAPE, 1, "t", b"a", b"k", None, None, None]


def test_compact_advance_entries_export_as_the_entries_record_call_makes() -> None:
    """A live host advances its cluster a few times a second: its advances are kept flat in the
    log's open run, with the sends and polls between them, and the log exported and replayed is
    the one a dict an entry makes."""
    cluster = Cluster(brokers=3, seed=6)
    cluster.create_topic("t", 2, 3)
    producer = cluster.producer({"linger.ms": 0})
    expected: list[dict[str, Any]] = []
    consumer = cluster.consumer({"group.id": "g"})
    expected.append(log_entry("cluster.consumer", {"config": {"group.id": "g"}}))
    consumer.subscribe(["t"])
    expected.append(log_entry("consumer.subscribe", {"consumer": 1, "topics": ["t"]}))
    for ms in (250, 250, 0, 1000):  # one run
        cluster.advance(ms)
        expected.append(log_entry("cluster.advance", {"ms": ms}))
    producer.send("t", value=b"a", key=b"k")  # a send and a poll in the same run
    expected.append(_send_entry(1, "t", b"a", b"k"))
    consumer.poll(0, max_records=5)
    expected.append(log_entry("consumer.poll", {"consumer": 1, "timeout_ms": 0, "max_records": 5}))
    cluster.advance(100)
    expected.append(log_entry("cluster.advance", {"ms": 100}))
    cluster.alter_topic_config("t", {"retention.ms": "60000"})  # not in logged form: ends it
    expected.append(
        log_entry("cluster.alter_topic_config", {"name": "t", "config": {"retention.ms": "60000"}})
    )
    for ms in (300, 7):  # a second run
        cluster.advance(ms)
        expected.append(log_entry("cluster.advance", {"ms": ms}))
    cluster.seal_log()  # what a checkpoint's copy does: the next advance starts a third
    cluster.advance(5)
    expected.append(log_entry("cluster.advance", {"ms": 5}))
    producer.send("t", value=b"b", key=b"k")
    expected.append(_send_entry(1, "t", b"b", b"k"))
    log = _exported_from(cluster, "cluster.consumer", expected)
    assert [len(e) for e in cluster._log if type(e) is EntryRun][-3:] == [7, 2, 2]
    with pytest.raises(ValueError):
        cluster.advance(-1)  # refused calls log nothing
    assert cluster.export_log() == log
    copy = Cluster.from_log(json.loads(json.dumps(log)))
    assert copy.snapshot() == cluster.snapshot()
    assert copy.export_log() == log


def test_a_pickled_log_keeps_its_open_run_of_advances_as_its_tail() -> None:
    cluster = Cluster(brokers=1, seed=5, controllers=1)
    cluster.advance(10)
    log, run = pickle.loads(pickle.dumps((cluster._log, cluster._run)))
    assert type(log[-1]) is EntryRun and log[-1].fields is run
    assert run == [("cluster.advance", "ms"), 10]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from([b"a", b"b", b"c", b"d", None]), min_size=1, max_size=12),
            st.integers(min_value=0, max_value=3),  # the gap before the batch
            st.booleans(),  # whether the batch lost records to an earlier cleaning
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_cleaners_survivor_pass_keeps_what_the_offset_map_pass_keeps(
    batches: list[tuple[list[bytes | None], int, bool]],
) -> None:
    """For a batch that went into the offset map whole and has no gaps, picking the map's
    offsets out of it keeps the records that comparing every record with the map keeps."""
    offset = 0
    log: list[list[Record]] = []
    for keys, gap, holed in batches:
        offset += gap
        records = [Record(offset + i, 0, key, b"v", (), 1) for i, key in enumerate(keys)]
        offset += len(keys)
        if holed and len(records) > 2:
            del records[1]  # a gap inside: the survivor pass does not apply
        log.append(records)
    offset_map: dict[bytes | None, int] = {}
    for records in log:
        offset_map.update((r.key, r.offset) for r in records)
    survivors = sorted(offset_map.values())
    for records in log:
        expected = [r for r in records if offset_map.get(r.key, -1) <= r.offset]
        assert _kept_by_offset_map(records, offset_map) == expected
        if records[-1].offset - records[0].offset == len(records) - 1:
            assert _kept_by_survivors(records, survivors) == expected


def test_compaction_keeps_each_keys_latest_record_on_every_replica() -> None:
    """End to end through the survivor pass: many batches, tombstones, a second cleaning over
    an already cleaned section (batches with gaps), against the latest record of each key."""
    cluster = Cluster(brokers=3, seed=7, config={"log.cleaner.backoff.ms": 100})
    cluster.create_topic(
        "c",
        1,
        3,
        {
            "cleanup.policy": "compact",
            "segment.bytes": 2048,
            "min.cleanable.dirty.ratio": 0.01,
            "delete.retention.ms": 3_600_000,
        },
    )
    producer = cluster.producer({"linger.ms": 2, "batch.size": 512})
    latest: dict[bytes, bytes | None] = {}
    for round_number in range(3):
        for i in range(600):
            key = b"k%d" % (i * 7 % 37)
            value = None if i % 53 == 0 else b"r%d-%d" % (round_number, i)
            producer.send("c", value=value, key=key)
            latest[key] = value
        producer.flush()
        cluster.advance(2_000)
    cleanings = [e.data for e in cluster.events if e.kind == "log_compacted"]
    # The figures the per-record pass (`_kept_by_offset_map` for every batch) gave here.
    assert len(cleanings) == 27
    assert sum(c["records_removed"] for c in cleanings) == 5049
    assert sum(c["tombstones_removed"] for c in cleanings) == 102
    for broker in (1, 2, 3):
        records = cluster.read("c", 0, replica=broker)
        by_key: dict[bytes | None, list[bytes | None]] = {}
        for record in records:
            by_key.setdefault(record.key, []).append(record.value)
        # Each key's last record is its latest value; cleaned sections hold one record a key.
        assert {k: v[-1] for k, v in by_key.items()} == latest
        assert len(records) < 3 * 600 // 2


def test_followers_copy_the_leaders_records_through_restarts_and_truncation() -> None:
    """The follower's copy of a fetched batch (whole when it lies past the log end, record by
    record when it overlaps it) leaves every replica with the leader's records."""
    cluster = Cluster(brokers=3, seed=11, config={"replica.lag.time.max.ms": 2000})
    cluster.create_topic("r", 2, 3, {"min.insync.replicas": 1})
    producer = cluster.producer({"acks": 1, "enable.idempotence": False, "linger.ms": 3})
    for i in range(300):
        producer.send("r", value=b"v%d" % i, key=b"k%d" % (i % 17))
        if i == 100:
            cluster.stop_broker(2)
        if i == 150:
            cluster.stop_broker(1)  # unclean enough: a leader change while 2 is away
        if i == 200:
            cluster.start_broker(2)
            cluster.start_broker(1)
        cluster.advance(2)
    producer.flush()
    cluster.advance(30_000)
    for partition in (0, 1):
        views = [
            [(r.offset, r.key, r.value) for r in cluster.read("r", partition, replica=broker)]
            for broker in (1, 2, 3)
        ]
        assert views[0] == views[1] == views[2]
        assert len(views[0]) > 50
