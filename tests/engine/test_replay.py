"""Replay: a cluster rebuilt from its exported log has an equal snapshot, faults and clients too."""

from __future__ import annotations

import json

import pytest

from engine import Cluster, TopicPartition
from engine.errors import InvalidTopicError


def rebuilt(cluster: Cluster) -> Cluster:
    log = json.loads(json.dumps(cluster.export_log()))  # the log is JSON-safe
    return Cluster.from_log(log)


def test_an_idle_cluster_replays() -> None:
    cluster = Cluster(brokers=2, seed=1, controllers=1)
    assert rebuilt(cluster).snapshot() == cluster.snapshot()


def test_topics_produce_consume_and_time_replay() -> None:
    cluster = Cluster(brokers=3, seed=2, config={"sim.network.latency.ms": 3})
    cluster.create_topic("t", 2, 3, {"retention.ms": "60000", "segment.bytes": 1024})
    producer = cluster.producer({"linger.ms": 10})
    futures = [producer.send("t", value=b"v%d" % i, key=b"k%d" % i) for i in range(20)]
    futures[5].get()
    producer.send("t", value=bytes(range(256)), headers={"h": b"\x00\xff"})
    producer.flush()
    consumer = cluster.consumer({"auto.offset.reset": "earliest", "max.poll.records": 4})
    consumer.assign([TopicPartition("t", 0), TopicPartition("t", 1)])
    consumer.poll(100)
    consumer.seek(TopicPartition("t", 1), 2)
    consumer.poll(100)
    cluster.advance(400_000)
    cluster.add_partitions("t", 4)
    cluster.alter_topic_config("t", {"retention.ms": -1})
    copy = rebuilt(cluster)
    assert copy.snapshot() == cluster.snapshot()
    assert [(e.time_ms, e.kind) for e in copy.events] == [
        (e.time_ms, e.kind) for e in cluster.events
    ]


def test_faults_replay() -> None:
    cluster = Cluster(brokers=3, seed=3)
    cluster.create_topic("t", 3, 3, {"min.insync.replicas": 2})
    producer = cluster.producer(
        {"acks": "all", "delivery.timeout.ms": 20_000, "request.timeout.ms": 5000}
    )
    loose = cluster.producer({"acks": 1, "enable.idempotence": "false"})
    producer.send("t", value=b"a").get()
    cluster.stop_broker(1)
    loose.send("t", value=b"b", partition=1)
    cluster.advance(10_000)
    cluster.partition_network([{2, "clients"}, {101}])
    loose.send("t", value=b"c", partition=2)
    producer.send("t", value=b"d")
    cluster.advance(12_000)
    cluster.lose_responses(3, 2)
    cluster.heal_network()
    cluster.start_broker(1)
    cluster.stop_controller(101)
    cluster.shutdown_broker(2)
    producer.flush()
    cluster.start_broker(2)
    cluster.advance(20_000)
    cluster.elect_leaders("t", 0, "preferred") if cluster.describe_topic("t").partitions[
        0
    ].leader != cluster.describe_topic("t").partitions[0].replicas[0] else None
    cluster.start_controller(101)
    cluster.advance(5000)
    copy = rebuilt(cluster)
    assert copy.snapshot() == cluster.snapshot()
    assert [a.to_dict() for a in copy.history.check()] == [
        a.to_dict() for a in cluster.history.check()
    ]


def test_calls_that_failed_are_replayed_as_failures() -> None:
    cluster = Cluster(brokers=1, seed=4)
    with pytest.raises(InvalidTopicError):
        cluster.create_topic("bad name")
    cluster.create_topic("t")
    assert rebuilt(cluster).snapshot() == cluster.snapshot()
    assert rebuilt(cluster).list_topics() == ["t"]


def test_a_rebuilt_cluster_carries_on_exactly_like_the_original() -> None:
    cluster = Cluster(brokers=3, seed=5)
    cluster.create_topic("t", 2, 3)
    cluster.producer().send("t", value=b"x").get()
    copy = rebuilt(cluster)
    for each in (cluster, copy):
        each.stop_broker(1)
        each.producers[0].send("t", value=b"y", partition=1)
        each.advance(15_000)
    assert copy.snapshot() == cluster.snapshot()
    assert rebuilt(copy).snapshot() == copy.snapshot()


def test_the_log_records_time_advances_made_by_blocking_calls() -> None:
    cluster = Cluster(brokers=1, seed=6)
    cluster.create_topic("t")
    consumer = cluster.consumer()
    consumer.assign([TopicPartition("t", 0)])
    consumer.poll(1234)
    ops = [entry["op"] for entry in cluster.export_log()]
    assert ops[0] == "cluster.new" and "consumer.poll" in ops
    assert rebuilt(cluster).now_ms == cluster.now_ms
