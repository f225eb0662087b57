"""Faults: network partitions, the zombie leader, lost responses, crashes and restarts."""

from __future__ import annotations

import functools

import pytest

from engine import TopicPartition
from tests.engine.helpers import partition
from tests.engine.helpers import replicated as _replicated

replicated = functools.partial(_replicated, seed=51)

TP = TopicPartition("t", 0)


def test_a_cut_off_leader_keeps_acting_as_leader_and_its_acks_1_writes_are_later_truncated() -> (
    None
):
    cluster = replicated()
    producer = cluster.producer({"acks": 1, "linger.ms": 0, "request.timeout.ms": 2000})
    producer.send("t", value=b"before").get()
    cluster.advance(1000)
    zombie = partition(cluster).leader
    cluster.partition_network([{zombie, "clients"}])
    cluster.advance(15_000)
    # The controller elected a new leader; the zombie has not heard and still accepts writes.
    assert partition(cluster).leader != zombie
    assert cluster.broker_by_id(zombie).partitions[TP].is_leader
    accepted = producer.send("t", value=b"to the zombie").get()
    assert accepted.offset == 1
    cluster.heal_network()
    cluster.advance(10_000)
    assert not cluster.broker_by_id(zombie).partitions[TP].is_leader
    truncated = [e.data for e in cluster.events if e.kind == "log_truncated"]
    assert truncated and truncated[0]["broker"] == zombie and truncated[0]["offsets"] == [1]
    lost = [a for a in cluster.history.check() if a.kind == "lost"]
    assert [a.offset for a in lost] == [1]
    assert lost[0].time_ms == next(e.time_ms for e in cluster.events if e.kind == "log_truncated")


def test_a_cut_off_leader_cannot_complete_acks_all_writes() -> None:
    cluster = replicated({"min.insync.replicas": 2})
    producer = cluster.producer(
        {"acks": "all", "linger.ms": 0, "delivery.timeout.ms": 30_000, "request.timeout.ms": 5000}
    )
    producer.send("t", value=b"before").get()
    zombie = partition(cluster).leader
    cluster.partition_network([{zombie, "clients"}])
    future = producer.send("t", value=b"never acknowledged")
    with pytest.raises(Exception):  # noqa: B017 - timeout or not-enough-replicas, never success
        future.get()
    cluster.heal_network()
    cluster.advance(20_000)
    assert [a for a in cluster.history.check() if a.kind in ("lost", "changed")] == []


def test_clients_cut_off_from_every_broker_time_out() -> None:
    cluster = replicated()
    producer = cluster.producer(
        {"delivery.timeout.ms": 5000, "request.timeout.ms": 1000, "linger.ms": 0}
    )
    producer.send("t", value=b"ok").get()
    cluster.partition_network([{"clients"}])
    from engine.errors import KafkaTimeoutError

    with pytest.raises(KafkaTimeoutError):
        producer.send("t", value=b"lost in transit").get()
    cluster.heal_network()
    assert producer.send("t", value=b"back").get().offset == 1


def test_nodes_not_named_in_a_partition_form_one_more_group_together() -> None:
    cluster = replicated()
    cluster.partition_network([{1}])
    network = cluster.network
    assert (
        network.reachable(2, 3)
        and network.reachable(2, 101)
        and network.reachable(3, "client-producer-1")
    )
    assert not network.reachable(1, 2) and not network.reachable(1, 101)
    assert not network.reachable(1, "client-consumer-3")
    cluster.partition_network([{1, 2}, {"clients", 3}])  # replaces the one in force
    assert network.reachable(1, 2) and network.reachable(3, "client-producer-1")
    assert not network.reachable(1, 101) and not network.reachable(3, 101)


def test_a_partition_naming_an_unknown_node_is_refused() -> None:
    cluster = replicated()
    with pytest.raises(ValueError):
        cluster.partition_network([{9}])
    with pytest.raises(ValueError):
        cluster.partition_network([{"robots"}])


def test_heal_network_restores_replication() -> None:
    cluster = replicated()
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    leader = partition(cluster).leader
    follower = next(b for b in partition(cluster).replicas if b != leader)
    cluster.partition_network([{follower}])
    for i in range(5):
        producer.send("t", value=b"v%d" % i).get()
    cluster.heal_network()
    cluster.advance(10_000)
    assert cluster.read("t", 0, replica=follower) == cluster.read("t", 0)
    assert len(partition(cluster).isr) == 3


def test_lost_responses_are_counted_down_per_client_request() -> None:
    cluster = replicated()
    leader = partition(cluster).leader
    cluster.lose_responses(leader, 2)
    assert cluster.broker_by_id(leader).lost_responses == 2
    producer = cluster.producer({"request.timeout.ms": 1000})
    producer.send("t", value=b"v").get()
    assert cluster.broker_by_id(leader).lost_responses == 0
    assert sum(e.kind == "response_lost" for e in cluster.events) == 2
    with pytest.raises(ValueError):
        cluster.lose_responses(leader, -1)


def test_a_crashed_broker_keeps_its_log_and_catches_up_after_restart() -> None:
    cluster = replicated()
    producer = cluster.producer()
    producer.send("t", value=b"a").get()
    follower = next(b for b in partition(cluster).replicas if b != partition(cluster).leader)
    cluster.stop_broker(follower)
    for value in (b"b", b"c"):
        producer.send("t", value=value).get()
    assert [r.value for r in cluster.read("t", 0, replica=follower)] == [b"a"]
    cluster.start_broker(follower)
    cluster.advance(10_000)
    assert [r.value for r in cluster.read("t", 0, replica=follower)] == [b"a", b"b", b"c"]


def test_a_restarted_leader_rejoins_as_a_follower_and_can_lead_again() -> None:
    cluster = replicated({"min.insync.replicas": 2})
    producer = cluster.producer()
    old = partition(cluster).leader
    cluster.stop_broker(old)
    cluster.advance(12_000)
    producer.send("t", value=b"while away").get()
    cluster.start_broker(old)
    cluster.advance(10_000)
    assert old in partition(cluster).isr
    assert not cluster.broker_by_id(old).partitions[TP].is_leader
    assert [r.value for r in cluster.read("t", 0, replica=old)] == [b"while away"]


def test_a_broker_cut_off_from_the_controllers_is_fenced() -> None:
    cluster = replicated()
    cluster.partition_network([{2}])
    cluster.advance(12_000)
    assert next(b for b in cluster.brokers() if b.id == 2).fenced
    cluster.heal_network()
    cluster.advance(5_000)
    assert not next(b for b in cluster.brokers() if b.id == 2).fenced


def test_the_controller_quorum_survives_the_loss_of_a_minority_of_controllers() -> None:
    cluster = replicated()
    cluster.partition_network([{101}])
    cluster.advance(10_000)
    assert sum(c.is_active for c in cluster.controllers()) == 1
    assert not next(c for c in cluster.controllers() if c.id == 101).is_active
    cluster.create_topic("u")
    assert "u" in cluster.list_topics()
