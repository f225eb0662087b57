"""The failure scenarios of seed 002 section 12 and the seeds' follow-up questions, end to end."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from engine import Cluster, TopicPartition
from engine.errors import NotEnoughReplicasError, ResourceLimitError
from tests.engine.helpers import partition
from tests.engine.helpers import replicated as _replicated

replicated = functools.partial(_replicated, seed=41)

TP = TopicPartition("t", 0)


def losses(cluster: Cluster) -> list[Any]:
    return [a for a in cluster.history.check() if a.kind in ("lost", "changed")]


def test_scenario_1_a_broker_dies_and_with_rf3_acks_all_nothing_acknowledged_is_lost() -> None:
    cluster = replicated({"min.insync.replicas": 2}, partitions=3)
    producer = cluster.producer({"acks": "all"})
    for i in range(30):
        producer.send("t", value=b"v%d" % i, key=b"k%d" % i)
    producer.flush()
    victim = partition(cluster).leader
    cluster.stop_broker(victim)
    start = cluster.now_ms
    # The producer keeps going and reaches the new leaders within seconds.
    futures = [producer.send("t", value=b"w%d" % i, key=b"k%d" % i) for i in range(30)]
    producer.flush()
    assert all(f.succeeded() for f in futures)
    assert cluster.now_ms - start < 20_000
    assert all(p.leader != victim for p in cluster.describe_topic("t").partitions)
    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("t", p) for p in range(3)])
    seen = []
    for _ in range(10):
        seen += consumer.poll(500)
    assert len(seen) == 60
    assert losses(cluster) == []


def test_scenario_3_producer_retries_cause_duplicates_unless_the_producer_is_idempotent() -> None:
    plain = replicated(rf=1, brokers=1)
    producer = plain.producer({"acks": 1, "enable.idempotence": False, "request.timeout.ms": 1000})
    producer.send("t", value=b"warm").get()
    plain.lose_responses(1, 3)
    producer.send("t", value=b"pay").get()
    assert [r.value for r in plain.read("t", 0)].count(b"pay") >= 2
    assert any(a.kind == "duplicated" for a in plain.history.check())

    idempotent = replicated(rf=1, brokers=1)
    producer = idempotent.producer({"request.timeout.ms": 1000})
    producer.send("t", value=b"warm").get()
    idempotent.lose_responses(1, 3)
    producer.send("t", value=b"pay").get()
    assert [r.value for r in idempotent.read("t", 0)].count(b"pay") == 1
    assert idempotent.history.check() == []


def test_scenario_4_a_consumer_lagging_past_retention_loses_messages_it_never_read() -> None:
    cluster = replicated({"segment.bytes": 1024, "retention.ms": 60_000}, rf=1, brokers=1)
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    consumer = cluster.consumer(
        {"auto.offset.reset": "earliest", "max.poll.records": 1, "max.partition.fetch.bytes": 100}
    )
    consumer.assign([TP])
    for i in range(20):
        producer.send("t", value=b"x" * 150 + b"%d" % i).get()
    read = [r.offset for r in consumer.poll(1000)]  # the consumer read a little, then stalled
    cluster.advance(400_000)
    for i in range(5):
        producer.send("t", value=b"late%d" % i).get()
    for _ in range(10):
        read += [r.offset for r in consumer.poll(500)]
    start = cluster.describe_topic("t").partitions[0].log_start_offset
    assert start > 5
    never_read = set(range(20)) - set(read)
    assert never_read and max(never_read) < start
    assert read[-1] == 24
    assert any(e.kind == "offset_out_of_range" for e in cluster.events)


def test_scenario_5_a_network_partition_between_brokers_shrinks_the_isr_and_refuses_writes() -> (
    None
):
    cluster = replicated(
        {"min.insync.replicas": 2}, broker_config={"broker.session.timeout.ms": 600_000}
    )
    producer = cluster.producer({"acks": "all", "retries": 0, "request.timeout.ms": 5000})
    producer.send("t", value=b"a").get()
    leader = partition(cluster).leader
    cluster.partition_network([{leader, "clients", 101, 102, 103}])
    cluster.producer({"acks": 1}).send("t", value=b"unreplicated").get()
    for _ in range(3):
        cluster.advance(15_000)
    assert partition(cluster).isr == [leader]
    with pytest.raises(NotEnoughReplicasError):
        producer.send("t", value=b"b").get()
    cluster.heal_network()
    cluster.advance(10_000)
    assert len(partition(cluster).isr) == 3
    assert producer.send("t", value=b"c").get().offset == 2
    assert partition(cluster).high_watermark == 3
    assert losses(cluster) == []


def test_scenario_6_a_full_cluster_stops_accepting_writes_until_retention_frees_space() -> None:
    cluster = Cluster(brokers=1, seed=3, limits={"max_retained_bytes": 8 * 1024})
    cluster.create_topic("t", 1, 1, {"segment.bytes": 1024, "retention.ms": 10_000})
    producer = cluster.producer({"linger.ms": 0})
    with pytest.raises(ResourceLimitError):
        for i in range(100):
            producer.send("t", value=b"x" * 300 + b"%d" % i).get()
    cluster.advance(300_000)  # retention runs and frees whole segments
    assert producer.send("t", value=b"again").get().offset > 0


def test_rf3_and_two_brokers_down_with_min_isr_2_refuses_acks_all_writes_but_serves_reads() -> None:
    cluster = replicated({"min.insync.replicas": 2})
    producer = cluster.producer({"acks": "all"})
    for i in range(5):
        producer.send("t", value=b"v%d" % i).get()
    survivor = partition(cluster).replicas[2]
    for broker in partition(cluster).replicas[:2]:
        cluster.stop_broker(broker)
    cluster.advance(15_000)
    assert partition(cluster).leader == survivor
    with pytest.raises(NotEnoughReplicasError):
        cluster.producer({"acks": "all", "retries": 0}).send("t", value=b"refused").get()
    # Every acknowledged record is on the survivor; consumers read up to its high watermark,
    # which (3.7+) cannot advance while the ISR is below min.insync.replicas.
    assert [r.value for r in cluster.read("t", 0)] == [b"v%d" % i for i in range(5)]
    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    consumer.assign([TP])
    high_watermark = partition(cluster).high_watermark
    assert high_watermark >= 4
    assert [r.value for r in consumer.poll(1000)] == [b"v%d" % i for i in range(high_watermark)]
    assert losses(cluster) == []


def test_rf3_and_two_brokers_down_with_min_isr_1_keeps_writing_on_one_copy() -> None:
    cluster = replicated({"min.insync.replicas": 1})
    producer = cluster.producer({"acks": "all"})
    producer.send("t", value=b"a").get()
    for broker in partition(cluster).replicas[:2]:
        cluster.stop_broker(broker)
    cluster.advance(15_000)
    assert producer.send("t", value=b"b").get().offset == 1
    assert len(partition(cluster).isr) == 1


def test_acks_1_and_the_leader_dies_before_replicating_loses_acknowledged_writes() -> None:
    cluster = replicated({"min.insync.replicas": 1})
    producer = cluster.producer({"acks": 1, "linger.ms": 0, "request.timeout.ms": 3000})
    producer.send("t", value=b"safe").get()
    cluster.advance(1000)
    leader = partition(cluster).leader
    # The followers cannot fetch, then the leader crashes with writes only it had.
    cluster.partition_network([{leader, "clients", 101, 102, 103}])
    for i in range(3):
        producer.send("t", value=b"unreplicated%d" % i).get()
    cluster.stop_broker(leader)
    cluster.heal_network()
    cluster.advance(15_000)
    assert partition(cluster).leader not in (leader, -1)
    producer.send("t", value=b"after").get()
    cluster.start_broker(leader)
    cluster.advance(15_000)
    lost = losses(cluster)
    assert sorted(a.offset for a in lost) == [1, 2, 3]
    assert any(e.kind == "log_truncated" and e.data["broker"] == leader for e in cluster.events)


def test_acks_all_and_the_leader_dies_loses_nothing() -> None:
    cluster = replicated({"min.insync.replicas": 2})
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    for i in range(5):
        producer.send("t", value=b"v%d" % i).get()
    cluster.stop_broker(partition(cluster).leader)
    cluster.advance(15_000)
    producer.send("t", value=b"after").get()
    assert losses(cluster) == []


def test_all_isr_members_fail_and_clean_election_waits_for_one_to_return_without_loss() -> None:
    cluster = replicated({"min.insync.replicas": 1})
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    replicas = partition(cluster).replicas
    cluster.stop_broker(replicas[0])  # out of sync from here on
    cluster.advance(15_000)
    for i in range(3):
        producer.send("t", value=b"v%d" % i).get()
    cluster.stop_broker(replicas[1])
    cluster.stop_broker(replicas[2])
    cluster.start_broker(replicas[0])
    cluster.advance(30_000)
    assert partition(cluster).leader == -1  # unavailable rather than wrong
    cluster.start_broker(replicas[2])
    cluster.advance(15_000)
    assert partition(cluster).leader in (replicas[1], replicas[2])
    assert losses(cluster) == []


def test_all_isr_members_fail_and_unclean_election_brings_the_partition_back_with_data_loss() -> (
    None
):
    cluster = replicated({"min.insync.replicas": 1, "unclean.leader.election.enable": True})
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    replicas = partition(cluster).replicas
    cluster.stop_broker(replicas[0])
    cluster.advance(15_000)
    for i in range(3):
        producer.send("t", value=b"v%d" % i).get()
    cluster.stop_broker(replicas[1])
    cluster.stop_broker(replicas[2])
    cluster.start_broker(replicas[0])
    cluster.advance(30_000)
    assert partition(cluster).leader == replicas[0]
    assert any(e.kind == "leader_elected" and e.data["unclean"] for e in cluster.events)
    producer.send("t", value=b"new").get()
    cluster.start_broker(replicas[1])
    cluster.start_broker(replicas[2])
    cluster.advance(30_000)
    assert sorted(a.offset for a in losses(cluster)) == [0, 1, 2]


def test_min_isr_1_with_rf2_leaves_one_copy_and_losing_it_loses_data() -> None:
    cluster = replicated({"min.insync.replicas": 1, "unclean.leader.election.enable": True}, rf=2)
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    first, second = partition(cluster).replicas
    cluster.stop_broker(second)
    cluster.advance(15_000)
    producer.send("t", value=b"one copy").get()  # acks=all succeeds on a single in-sync replica
    cluster.stop_broker(first)
    cluster.start_broker(second)
    cluster.advance(30_000)
    assert partition(cluster).leader == second
    assert [a.kind for a in losses(cluster)] == ["lost"]
