"""The KRaft controller, rule by rule (KAFKA_SEMANTICS.md section C), and the quorum itself."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from engine import Cluster
from engine.errors import (
    ClusterUnavailableError,
    ElectionNotNeededError,
    EligibleLeadersNotAvailableError,
    PreferredLeaderNotAvailableError,
    RequestTimedOutError,
)
from tests.engine.helpers import partition
from tests.engine.helpers import replicated as _replicated

replicated = functools.partial(_replicated, seed=31)


def fenced(cluster: Cluster, broker_id: int) -> bool:
    return next(b.fenced for b in cluster.brokers() if b.id == broker_id)


def elections(cluster: Cluster) -> list[dict[str, Any]]:
    return [e.data for e in cluster.events if e.kind == "leader_elected"]


# --- C1 ----------------------------------------------------------------------------------------


def test_a_crashed_broker_is_fenced_after_the_session_timeout_not_before() -> None:
    cluster = replicated()
    cluster.advance(3000)
    cluster.stop_broker(2)
    assert [b.alive for b in cluster.brokers()] == [True, False, True]
    cluster.advance(6000)
    assert not fenced(cluster, 2)
    cluster.advance(5000)
    assert fenced(cluster, 2)
    fence = next(e for e in cluster.events if e.kind == "broker_fenced")
    stop = next(e for e in cluster.events if e.kind == "broker_stopped")
    assert 7000 <= fence.time_ms - stop.time_ms <= 9000 + 100


def test_the_session_timeout_is_configurable() -> None:
    cluster = Cluster(brokers=3, seed=1, config={"broker.session.timeout.ms": "30000"})
    cluster.stop_broker(1)
    cluster.advance(20_000)
    assert not fenced(cluster, 1)
    cluster.advance(15_000)
    assert fenced(cluster, 1)


def test_a_restarted_broker_is_unfenced_once_it_heartbeats_again() -> None:
    cluster = replicated()
    cluster.stop_broker(2)
    cluster.advance(12_000)
    cluster.start_broker(2)
    cluster.advance(5000)
    assert not fenced(cluster, 2)
    assert [e.kind for e in cluster.events].count("broker_started") == 1


# --- C2 and C3 ---------------------------------------------------------------------------------


def test_a_fenced_broker_leaves_every_isr_and_loses_its_leaderships() -> None:
    cluster = replicated(partitions=6)
    cluster.stop_broker(1)
    cluster.advance(12_000)
    for description in cluster.describe_topic("t").partitions:
        assert 1 not in description.isr
        assert description.leader != 1
        assert description.leader in description.isr


def test_the_new_leader_is_the_first_replica_in_assignment_order_that_is_in_sync_and_unfenced() -> (
    None
):
    cluster = replicated(partitions=6)
    before = {p.partition: p for p in cluster.describe_topic("t").partitions}
    cluster.stop_broker(before[0].leader)
    cluster.advance(12_000)
    for description in cluster.describe_topic("t").partitions:
        old = before[description.partition]
        if old.leader == before[0].leader:
            expected = next(b for b in old.replicas if b != old.leader)
            assert description.leader == expected
        else:
            assert description.leader == old.leader


# --- C4 ----------------------------------------------------------------------------------------


def test_with_no_eligible_replica_the_leader_is_minus_one_until_the_last_isr_member_returns() -> (
    None
):
    cluster = replicated()
    producer = cluster.producer({"acks": "all"})
    producer.send("t", value=b"v").get()
    replicas = partition(cluster).replicas
    cluster.stop_broker(replicas[0])
    cluster.advance(12_000)
    cluster.stop_broker(replicas[1])
    cluster.advance(12_000)
    last = replicas[2]
    assert partition(cluster).isr == [last]
    cluster.stop_broker(last)
    cluster.advance(12_000)
    description = partition(cluster)
    assert description.leader == -1
    assert description.isr == [last]  # left as it was
    cluster.start_broker(replicas[0])  # not in the ISR: stays a follower of nobody
    cluster.advance(12_000)
    assert partition(cluster).leader == -1
    cluster.start_broker(last)
    cluster.advance(12_000)
    assert partition(cluster).leader == last
    assert not any(e["unclean"] for e in elections(cluster))


# --- C5 ----------------------------------------------------------------------------------------


def test_unclean_election_makes_the_first_live_replica_leader_with_an_isr_of_just_itself() -> None:
    cluster = replicated({"unclean.leader.election.enable": True})
    replicas = partition(cluster).replicas
    cluster.stop_broker(replicas[0])
    cluster.advance(12_000)
    cluster.stop_broker(replicas[1])
    cluster.advance(12_000)
    cluster.stop_broker(replicas[2])
    cluster.advance(12_000)
    assert partition(cluster).leader == -1
    cluster.start_broker(replicas[0])
    cluster.advance(12_000)
    description = partition(cluster)
    assert description.leader == replicas[0]
    assert description.isr == [replicas[0]]
    assert elections(cluster)[-1]["unclean"] is True


def test_enabling_unclean_election_on_an_offline_partition_elects_at_once() -> None:
    cluster = replicated()
    replicas = partition(cluster).replicas
    cluster.stop_broker(replicas[0])
    cluster.advance(12_000)
    cluster.stop_broker(replicas[1])
    cluster.advance(12_000)
    cluster.stop_broker(replicas[2])
    cluster.start_broker(replicas[0])
    cluster.advance(12_000)
    assert partition(cluster).leader == -1
    cluster.alter_topic_config("t", {"unclean.leader.election.enable": "true"})
    cluster.advance(100)
    assert partition(cluster).leader == replicas[0]


def test_an_explicit_unclean_election_needs_an_offline_partition_and_a_live_replica() -> None:
    cluster = replicated()
    with pytest.raises(ElectionNotNeededError):
        cluster.elect_leaders("t", 0, "unclean")
    replicas = partition(cluster).replicas
    for broker in replicas:
        cluster.stop_broker(broker)
        cluster.advance(12_000)
    with pytest.raises(EligibleLeadersNotAvailableError):
        cluster.elect_leaders("t", 0, "unclean")
    cluster.start_broker(replicas[0])
    cluster.advance(12_000)
    cluster.elect_leaders("t", 0, "unclean")
    assert partition(cluster).leader == replicas[0]


def test_a_preferred_election_needs_an_in_sync_preferred_replica() -> None:
    cluster = replicated()
    with pytest.raises(ElectionNotNeededError):
        cluster.elect_leaders("t", 0, "preferred")
    preferred = partition(cluster).replicas[0]
    cluster.stop_broker(preferred)
    cluster.advance(12_000)
    with pytest.raises(PreferredLeaderNotAvailableError):
        cluster.elect_leaders("t", 0, "preferred")


# --- C6 ----------------------------------------------------------------------------------------


def test_the_leader_epoch_grows_on_every_leader_change() -> None:
    cluster = replicated({"min.insync.replicas": 1})
    epochs = [partition(cluster).leader_epoch]
    for _ in range(4):
        cluster.shutdown_broker(partition(cluster).leader)
        epochs.append(partition(cluster).leader_epoch)
        for broker in cluster.brokers():
            if not broker.alive:
                cluster.start_broker(broker.id)
        cluster.advance(10_000)
    assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs)
    recorded = [e["leader_epoch"] for e in elections(cluster)]
    assert recorded == sorted(recorded)


# --- controlled shutdown -----------------------------------------------------------------------


def test_controlled_shutdown_moves_leadership_first_without_waiting_for_the_session_timeout() -> (
    None
):
    cluster = replicated(partitions=3)
    producer = cluster.producer({"acks": "all"})
    leader = partition(cluster).leader
    before = cluster.now_ms
    cluster.shutdown_broker(leader)
    assert cluster.now_ms - before < 100
    assert all(
        p.leader != leader and leader not in p.isr for p in cluster.describe_topic("t").partitions
    )
    start = cluster.now_ms
    producer.send("t", value=b"v", partition=0).get()
    assert cluster.now_ms - start < 1000
    stopped = [e for e in cluster.events if e.kind == "broker_stopped"]
    assert stopped[-1].data["controlled"] is True


# --- the quorum --------------------------------------------------------------------------------


def test_one_controller_is_active_and_a_new_one_is_elected_when_it_dies() -> None:
    cluster = replicated()
    active = [c.id for c in cluster.controllers() if c.is_active]
    assert len(active) == 1
    cluster.stop_controller(active[0])
    cluster.advance(5000)
    now_active = [c.id for c in cluster.controllers() if c.is_active]
    assert len(now_active) == 1 and now_active[0] != active[0]
    assert any(e.kind == "controller_elected" for e in cluster.events)
    cluster.create_topic("u")  # metadata changes work again
    cluster.stop_broker(1)
    cluster.advance(12_000)
    assert fenced(cluster, 1)


def test_without_a_quorum_no_metadata_changes_happen() -> None:
    cluster = replicated()
    cluster.stop_controller(102)
    cluster.stop_controller(103)
    cluster.advance(5000)
    leader = partition(cluster).leader
    cluster.stop_broker(leader)
    cluster.advance(30_000)
    assert not fenced(cluster, leader)
    assert partition(cluster).leader == leader  # nobody can elect a new one
    assert not any(c.is_active for c in cluster.controllers())
    with pytest.raises(ClusterUnavailableError):
        cluster.create_topic("u")
    cluster.start_controller(102)
    cluster.advance(15_000)
    assert any(c.is_active for c in cluster.controllers())
    assert fenced(cluster, leader)
    assert partition(cluster).leader != leader


def test_stopping_brokers_never_costs_the_quorum() -> None:
    cluster = replicated()
    for broker in (1, 2, 3):
        cluster.stop_broker(broker)
    cluster.advance(20_000)
    assert any(c.is_active for c in cluster.controllers())
    assert all(b.fenced for b in cluster.brokers())


def test_fault_calls_are_idempotent() -> None:
    cluster = replicated()
    cluster.stop_broker(1)
    cluster.stop_broker(1)
    cluster.start_broker(2)
    cluster.stop_controller(101)
    cluster.stop_controller(101)
    cluster.start_controller(102)
    kinds = [e.kind for e in cluster.events]
    assert kinds.count("broker_stopped") == 1
    assert kinds.count("broker_started") == 0
    assert kinds.count("controller_stopped") == 1


def test_a_broker_that_died_while_the_quorum_was_briefly_lost_is_still_fenced() -> None:
    cluster = replicated()
    active = next(c.id for c in cluster.controllers() if c.is_active)
    others = [c.id for c in cluster.controllers() if c.id != active]
    cluster.stop_broker(2)
    cluster.advance(8000)
    cluster.stop_controller(others[0])
    cluster.stop_controller(others[1])
    cluster.advance(1500)  # the session expires now, unseen; too short for an election
    cluster.start_controller(others[0])
    cluster.advance(500)
    assert next(c.id for c in cluster.controllers() if c.is_active) == active
    cluster.advance(12_000)
    assert fenced(cluster, 2)
    assert not fenced(cluster, 1) and not fenced(cluster, 3)


# --- admin requests without a controller (Kafka: ForwardingManager, BrokerServer) -------------


def test_an_admin_request_without_a_controller_hangs_for_the_forwarding_timeout() -> None:
    # The broker forwards CreateTopics to the controller and keeps retrying for 60 s
    # (BrokerServer's retryTimeoutMs); then it answers REQUEST_TIMED_OUT, which the admin
    # client raises as TimeoutException. The call is blocking, so cluster time runs on.
    cluster = replicated()
    cluster.stop_controller(102)
    cluster.stop_controller(103)
    cluster.advance(5000)
    started = cluster.now_ms
    with pytest.raises(RequestTimedOutError) as raised:
        cluster.create_topic("u")
    assert cluster.now_ms - started == 60_000
    error = raised.value
    assert isinstance(error, ClusterUnavailableError)
    assert error.code == 7
    assert error.kafka_name == "TimeoutException"
    assert "u" not in cluster.list_topics()
    timed_out = [e for e in cluster.events if e.kind == "controller_request_timed_out"]
    assert [(e.time_ms, e.data["api"]) for e in timed_out] == [(started + 60_000, "CreateTopics")]


@pytest.mark.parametrize(
    ("call", "api"),
    [
        (lambda c: c.delete_topic("t"), "DeleteTopics"),
        (lambda c: c.add_partitions("t", 2), "CreatePartitions"),
        (lambda c: c.alter_topic_config("t", {"retention.ms": 1000}), "IncrementalAlterConfigs"),
        (lambda c: c.elect_leaders("t", 0), "ElectLeaders"),
    ],
)
def test_every_forwarded_admin_request_times_out_the_same_way(call: Any, api: str) -> None:
    cluster = replicated()
    cluster.stop_controller(101)
    cluster.stop_controller(102)
    started = cluster.now_ms
    with pytest.raises(RequestTimedOutError):
        call(cluster)
    assert cluster.now_ms - started == 60_000
    assert [e.data["api"] for e in cluster.events if e.kind == "controller_request_timed_out"] == [
        api
    ]
    assert len(cluster.describe_topic("t").partitions) == 1


def test_a_quorum_that_comes_back_within_the_forwarding_timeout_lets_the_request_through() -> None:
    cluster = replicated()
    cluster.stop_controller(102)
    cluster.stop_controller(103)
    cluster.advance(5000)
    started = cluster.now_ms
    cluster.scheduler.call_later(20_000, lambda: cluster.start_controller(102))
    cluster.create_topic("u")
    assert "u" in cluster.list_topics()
    assert 20_000 <= cluster.now_ms - started < 60_000
    assert not any(e.kind == "controller_request_timed_out" for e in cluster.events)
