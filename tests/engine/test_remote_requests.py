"""Requests of real clients (decoded by the wire listener) on the simulated brokers: handled by
the brokers' own code, recorded in the cluster's log, replayed to an equal cluster."""

from __future__ import annotations

from typing import Any

import pytest

from engine import Cluster
from engine.partitioner import partition_for_key
from engine.server.remote_requests import from_json, to_json


def wired(seed: int = 3) -> tuple[Cluster, list[tuple[int, int, dict[str, Any] | None]]]:
    cluster = Cluster(brokers=3, seed=seed)
    cluster.create_topic("orders", partitions=3, replication_factor=3)
    cluster.advance(100)
    answers: list[tuple[int, int, dict[str, Any] | None]] = []
    cluster.remote.sink = lambda c, corr, r: answers.append((c, corr, r))
    return cluster, answers


def produce_request(cluster: Cluster, key: bytes, value: bytes, acks: int = -1) -> dict[str, Any]:
    partition = partition_for_key(key, 3)
    return {
        "api": "produce",
        "correlation_id": 7,
        "client_id": "real-producer",
        "acks": acks,
        "timeout_ms": 30000,
        "partitions": [
            {
                "topic": "orders",
                "partition": partition,
                "batch": {
                    "producer_id": -1,
                    "producer_epoch": -1,
                    "base_sequence": -1,
                    "records": [{"timestamp": 5, "key": key, "value": value, "headers": []}],
                },
            }
        ],
    }


def leader_of(cluster: Cluster, partition: int) -> int:
    return cluster.describe_topic("orders").partitions[partition].leader


def test_a_produce_request_is_appended_by_the_leader_and_answered_after_replication() -> None:
    cluster, answers = wired()
    request = produce_request(cluster, b"user-1", b"hello")
    partition = request["partitions"][0]["partition"]
    cluster.remote.request(1, leader_of(cluster, partition), request)
    assert answers == []  # the request is still travelling the simulated network
    cluster.advance(200)
    [(connection, correlation, response)] = answers
    assert (connection, correlation) == (1, 7)
    assert response is not None
    assert response["partitions"] == [
        {
            "topic": "orders",
            "partition": partition,
            "error": "",
            "base_offset": 0,
            "log_start_offset": 0,
        }
    ]
    [record] = cluster.read("orders", partition)
    assert (record.key, record.value, record.timestamp) == (b"user-1", b"hello", 5)


def test_a_produce_to_a_follower_is_refused_with_not_leader() -> None:
    cluster, answers = wired()
    request = produce_request(cluster, b"k", b"v")
    partition = request["partitions"][0]["partition"]
    follower = next(b for b in (1, 2, 3) if b != leader_of(cluster, partition))
    cluster.remote.request(2, follower, request)
    cluster.advance(200)
    assert answers[0][2] is not None
    assert answers[0][2]["partitions"][0]["error"] == "NOT_LEADER_OR_FOLLOWER"
    assert cluster.read("orders", partition) == []


def test_a_stopped_broker_refuses_the_connection() -> None:
    cluster, answers = wired()
    cluster.stop_broker(2)
    cluster.remote.request(4, 2, {"api": "metadata", "topics": None})
    cluster.advance(200)
    assert answers == [(4, 0, None)]


def test_metadata_lists_live_brokers_and_reports_no_leader_for_a_fenced_one() -> None:
    cluster, answers = wired()
    cluster.stop_broker(3)
    cluster.advance(20000)  # the controller fences broker 3 and elects new leaders
    cluster.remote.request(1, 1, {"api": "metadata", "topics": ["orders"]})
    cluster.advance(100)
    response = answers[-1][2]
    assert response is not None
    assert response["brokers"] == [1, 2]
    leaders = [p["leader"] for p in response["topics"][0]["partitions"]]
    assert 3 not in leaders and all(leader in (1, 2) for leader in leaders)


def test_unknown_request_kinds_and_brokers_are_refused_before_anything_is_recorded() -> None:
    cluster, _ = wired()
    logged = len(cluster.export_log())
    with pytest.raises(ValueError, match="Unknown wire request"):
        cluster.remote.request(1, 1, {"api": "shutdown_everything"})
    with pytest.raises(ValueError, match="no broker 9"):
        cluster.remote.request(1, 9, {"api": "metadata"})
    assert len(cluster.export_log()) == logged


def test_requests_are_recorded_and_a_replayed_log_gives_an_equal_cluster() -> None:
    cluster, answers = wired(seed=11)
    remote = cluster.remote
    for index in range(12):
        key = f"user-{index}".encode()
        request = from_json(to_json(produce_request(cluster, key, b"v%d" % index)))
        remote.request(
            index % 3 + 1, leader_of(cluster, request["partitions"][0]["partition"]), request
        )
        cluster.advance(15)
    group = {
        "group_id": "billing",
        "session_timeout_ms": 10000,
        "protocols": [{"name": "range", "metadata": b"\x00\x00"}],
        "topics": ["orders"],
    }
    remote.request(20, 1, {"api": "find_coordinator", "key": "billing"})
    cluster.advance(5000)
    coordinator = cluster.services["groups"].coordinator_for("billing")
    assert coordinator is not None
    remote.request(21, coordinator.broker.id, {"api": "join_group", **group})
    cluster.advance(100)
    join = answers[-1][2]
    assert join is not None and join["error"] == "MEMBER_ID_REQUIRED"  # KIP-394's first round
    rebuilt = Cluster.from_log(cluster.export_log())
    assert rebuilt.snapshot() == cluster.snapshot()
    assert sum(p.log_end_offset for p in rebuilt.describe_topic("orders").partitions) == 12
    assert [c["requests"] for c in rebuilt.snapshot()["remote"]][-2:] == [
        {"find_coordinator": 1},
        {"join_group": 1},
    ]


def test_offset_for_leader_epoch_answers_where_an_older_epoch_ended() -> None:
    cluster, answers = wired()
    remote = cluster.remote
    old_leader = leader_of(cluster, 0)
    old_epoch = cluster.describe_topic("orders").partitions[0].leader_epoch
    for index in range(3):
        request = produce_request(cluster, b"k", b"before-%d" % index)
        request["partitions"][0]["partition"] = 0
        remote.request(1, old_leader, request)
        cluster.advance(50)
    cluster.stop_broker(old_leader)
    cluster.advance(20000)
    new_leader = leader_of(cluster, 0)
    new_epoch = cluster.describe_topic("orders").partitions[0].leader_epoch
    assert new_leader != old_leader and new_epoch > old_epoch

    def ask(epoch: int, current: int) -> dict[str, Any]:
        ask = {"topic": "orders", "partition": 0, "leader_epoch": epoch}
        remote.request(
            2,
            new_leader,
            {
                "api": "offset_for_leader_epoch",
                "partitions": [{**ask, "current_leader_epoch": current}],
            },
        )
        cluster.advance(50)
        response = answers[-1][2]
        assert response is not None
        part: dict[str, Any] = response["partitions"][0]
        return part

    assert ask(old_epoch, new_epoch) == {
        "topic": "orders",
        "partition": 0,
        "error": "",
        "leader_epoch": old_epoch,
        "end_offset": 3,
    }
    assert ask(new_epoch, new_epoch)["end_offset"] == 3  # the log end, nothing newer yet
    assert ask(old_epoch, old_epoch)["error"] == "FENCED_LEADER_EPOCH"
    assert ask(old_epoch, new_epoch + 1)["error"] == "UNKNOWN_LEADER_EPOCH"


def _fill(cluster: Cluster, partition: int, batches: int, value: bytes) -> None:
    """`batches` single-record batches on `partition`, replicated (high watermark moved)."""
    key = next(k for k in (b"k%d" % i for i in range(200)) if partition_for_key(k, 3) == partition)
    for _ in range(batches):
        cluster.remote.request(
            9, leader_of(cluster, partition), produce_request(cluster, key, value)
        )
        cluster.advance(100)


def fetch(partitions: list[tuple[int, int, int]], **rules: int) -> dict[str, Any]:
    return {
        "api": "fetch",
        "correlation_id": 11,
        "client_id": "real-consumer",
        "isolation": "read_uncommitted",
        "max_wait_ms": rules.get("max_wait_ms", 0),
        "min_bytes": rules.get("min_bytes", 1),
        "max_bytes": rules.get("max_bytes", 1 << 20),
        "partitions": [
            {"topic": "orders", "partition": p, "fetch_offset": o, "partition_max_bytes": m}
            for p, o, m in partitions
        ],
    }


def _answer(answers: list[Any]) -> dict[str, Any]:
    fetched = [r for _, corr, r in answers if corr == 11]
    assert len(fetched) == 1
    assert fetched[0] is not None
    return fetched[0]


def test_fetch_waits_for_min_bytes_on_cluster_time_and_answers_at_max_wait() -> None:
    cluster, answers = wired()
    _fill(cluster, 0, 1, b"x" * 50)
    size = cluster.read("orders", 0)[0]  # one batch of roughly 120 bytes
    assert size is not None
    leader = leader_of(cluster, 0)
    cluster.remote.request(3, leader, fetch([(0, 0, 1 << 16)], min_bytes=10_000, max_wait_ms=500))
    cluster.advance(300)
    assert [a for a in answers if a[1] == 11] == []  # 1 batch < min_bytes: still parked
    cluster.advance(300)
    [part] = _answer(answers)["partitions"]  # max_wait passed: answered with what there is
    assert len(part["batches"]) == 1
    # With enough bytes available the fetch completes as soon as they are.
    answers.clear()
    cluster.remote.request(3, leader, fetch([(0, 1, 1 << 16)], min_bytes=100, max_wait_ms=5000))
    cluster.advance(50)
    assert [a for a in answers if a[1] == 11] == []
    _fill(cluster, 0, 1, b"y" * 200)
    [part] = _answer(answers)["partitions"]
    assert [r["value"] for b in part["batches"] for r in b["records"]] == [b"y" * 200]


def test_fetch_limits_bytes_per_partition_and_per_response_but_always_returns_one_batch() -> None:
    from engine import TopicPartition

    cluster, answers = wired()
    for p in (0, 1):
        _fill(cluster, p, 3, b"v" * 300)
    leader = leader_of(cluster, 0)
    log = cluster.broker_by_id(leader).partitions[TopicPartition("orders", 0)].log
    sizes = [b.size for b in log.iter_batches(0, None)]
    assert len(sizes) == 3
    # KIP-74: a partition limit smaller than one batch still returns that first batch.
    cluster.remote.request(3, leader, fetch([(0, 0, 10)]))
    cluster.advance(100)
    [part] = _answer(answers)["partitions"]
    assert len(part["batches"]) == 1
    # Room for two batches of the three (one byte short of the third).
    answers.clear()
    budget = sizes[0] + sizes[1] + sizes[2] - 1
    cluster.remote.request(3, leader, fetch([(0, 0, 1 << 16)], max_bytes=budget))
    cluster.advance(100)
    [part] = _answer(answers)["partitions"]
    assert len(part["batches"]) == 2
    # The same through the partition's own limit.
    answers.clear()
    cluster.remote.request(3, leader, fetch([(0, 0, budget)]))
    cluster.advance(100)
    [part] = _answer(answers)["partitions"]
    assert len(part["batches"]) == 2
    # A response limit of 1 byte: the first partition's first batch only.
    answers.clear()
    cluster.remote.request(3, leader, fetch([(0, 0, 1 << 16)], max_bytes=1))
    cluster.advance(100)
    [part] = _answer(answers)["partitions"]
    assert [b["base_offset"] for b in part["batches"]] == [0]


def test_fetch_fences_a_consumer_with_an_old_leader_epoch() -> None:
    cluster, answers = wired()
    leader = leader_of(cluster, 0)
    request = fetch([(0, 0, 1 << 16)])
    request["partitions"][0]["current_leader_epoch"] = 99
    cluster.remote.request(3, leader, request)
    cluster.advance(100)
    [part] = _answer(answers)["partitions"]
    assert part["error"] == "UNKNOWN_LEADER_EPOCH"


def test_after_the_first_partition_with_data_the_response_limit_is_hard() -> None:
    cluster = Cluster(brokers=1, seed=5)
    cluster.create_topic("orders", partitions=3, replication_factor=1)
    cluster.advance(100)
    answers: list[tuple[int, int, dict[str, Any] | None]] = []
    cluster.remote.sink = lambda c, corr, r: answers.append((c, corr, r))
    for p in (1, 2):
        _fill(cluster, p, 2, b"w" * 100)
    # Partition 0 is empty; 1 returns its first batch over the 1-byte limit; 2 gets nothing.
    cluster.remote.request(
        3, 1, fetch([(0, 0, 1 << 16), (1, 0, 1 << 16), (2, 0, 1 << 16)], max_bytes=1)
    )
    cluster.advance(100)
    empty, first, last = _answer(answers)["partitions"]
    assert [p["partition"] for p in (empty, first, last)] == [0, 1, 2]  # request order
    assert (len(empty["batches"]), len(first["batches"]), len(last["batches"])) == (0, 1, 0)
    assert last["high_watermark"] == 2
