"""Replication, rule by rule (KAFKA_SEMANTICS.md section R)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from engine import Cluster, TopicPartition
from engine.errors import NotEnoughReplicasAfterAppendError, NotEnoughReplicasError
from engine.server.partition import Partition
from tests.engine.helpers import events, partition
from tests.engine.helpers import replicated as _replicated

replicated = functools.partial(_replicated, seed=21)

TP = TopicPartition("t", 0)


def leader_and_followers(cluster: Cluster) -> tuple[int, list[int]]:
    description = partition(cluster)
    return description.leader, [b for b in description.replicas if b != description.leader]


def replica_log(cluster: Cluster, broker_id: int) -> Any:
    return cluster.broker_by_id(broker_id).partitions[TP].log


# --- R1 ----------------------------------------------------------------------------------------


def test_acks_one_answers_once_the_leader_appended_before_followers_have_it() -> None:
    cluster = replicated()
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    producer.send("t", value=b"warm").get()
    cluster.advance(1000)
    leader, followers = leader_and_followers(cluster)
    cluster.partition_network([{leader, "clients", 101, 102, 103}])  # followers cannot fetch
    metadata = producer.send("t", value=b"v").get()
    assert replica_log(cluster, leader).log_end_offset == metadata.offset + 1
    assert all(replica_log(cluster, f).log_end_offset == metadata.offset for f in followers)
    assert partition(cluster).high_watermark == metadata.offset
    waiting = cluster.producer({"acks": "all", "linger.ms": 0}).send("t", value=b"w")
    cluster.advance(5000)
    assert not waiting.done()  # acks=all waits for the followers


def test_acks_all_answers_only_when_the_high_watermark_covers_the_record() -> None:
    cluster = replicated()
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    metadata = producer.send("t", value=b"v").get()
    leader, followers = leader_and_followers(cluster)
    assert replica_log(cluster, leader).high_watermark >= metadata.offset + 1
    assert all(replica_log(cluster, f).log_end_offset >= metadata.offset + 1 for f in followers)


# --- R2 and R3 ---------------------------------------------------------------------------------


def isolate_leader_replica(cluster: Cluster) -> tuple[int, list[int]]:
    """Crash both followers and wait until the controller fenced them: ISR = [leader]."""
    leader, followers = leader_and_followers(cluster)
    for follower in followers:
        cluster.stop_broker(follower)
    cluster.advance(15_000)
    assert partition(cluster).isr == [leader]
    return leader, followers


def test_acks_all_below_min_insync_replicas_fails_with_not_enough_replicas_appending_nothing() -> (
    None
):
    cluster = replicated({"min.insync.replicas": 2})
    producer = cluster.producer({"acks": "all", "retries": 0})
    producer.send("t", value=b"before").get()
    leader, _ = isolate_leader_replica(cluster)
    with pytest.raises(NotEnoughReplicasError):
        producer.send("t", value=b"refused").get()
    assert replica_log(cluster, leader).log_end_offset == 1
    assert events(cluster, "produce_failed")[-1]["error"] == "NotEnoughReplicasException"


def test_not_enough_replicas_is_retried_until_the_delivery_timeout() -> None:
    cluster = replicated({"min.insync.replicas": 2})
    producer = cluster.producer(
        {"acks": "all", "delivery.timeout.ms": 5000, "request.timeout.ms": 2000}
    )
    isolate_leader_replica(cluster)
    future = producer.send("t", value=b"refused")
    with pytest.raises(Exception) as raised:
        future.get()
    assert type(raised.value).__name__ in ("KafkaTimeoutError", "NotEnoughReplicasError")
    assert any(
        e["error"] == "NotEnoughReplicasException" for e in events(cluster, "produce_retried")
    )
    assert cluster.read("t", 0) == []


def test_acks_one_and_zero_skip_the_min_insync_check() -> None:
    cluster = replicated({"min.insync.replicas": 2})
    isolate_leader_replica(cluster)
    assert cluster.producer({"acks": 1}).send("t", value=b"a").get().offset == 0
    assert cluster.producer({"acks": 0}).send("t", value=b"b").get().offset == -1
    cluster.advance(100)
    assert [r.value for r in cluster.read("t", 0)] == [b"a", b"b"]


def test_isr_below_the_minimum_after_the_append_answers_after_append_and_keeps_the_record() -> None:
    cluster = replicated({"min.insync.replicas": 2})
    leader, followers = leader_and_followers(cluster)
    cluster.stop_broker(followers[0])
    cluster.advance(15_000)
    assert len(partition(cluster).isr) == 2
    producer = cluster.producer({"acks": "all", "retries": 0, "request.timeout.ms": 60_000})
    future = producer.send("t", value=b"v")
    cluster.stop_broker(followers[1])  # before it could fetch the record
    with pytest.raises(NotEnoughReplicasAfterAppendError):
        future.get()
    assert [r.value for r in cluster.read("t", 0)] == [b"v"]
    assert partition(cluster).isr == [leader]


# --- R4 ----------------------------------------------------------------------------------------


def test_the_high_watermark_is_the_minimum_log_end_over_the_isr() -> None:
    cluster = replicated({"min.insync.replicas": 1})
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    producer.send("t", value=b"a").get()
    cluster.advance(2000)
    leader, followers = leader_and_followers(cluster)
    cluster.partition_network([{leader, "clients"}])  # followers can no longer fetch
    producer.send("t", value=b"b").get()
    producer.send("t", value=b"c").get()
    assert replica_log(cluster, leader).log_end_offset == 3
    assert replica_log(cluster, leader).high_watermark == 1


def test_the_high_watermark_does_not_advance_while_the_isr_is_below_min_insync_replicas() -> None:
    cluster = replicated({"min.insync.replicas": 2})
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    producer.send("t", value=b"a").get()
    leader, followers = isolate_leader_replica(cluster)
    producer.send("t", value=b"b").get()
    cluster.advance(5000)
    log = replica_log(cluster, leader)
    assert (log.high_watermark, log.log_end_offset) == (1, 2)  # acks=1 write invisible (3.7+)
    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    consumer.assign([TP])
    assert [r.value for r in consumer.poll(1000)] == [b"a"]
    cluster.start_broker(followers[0])
    cluster.advance(15_000)
    assert len(partition(cluster).isr) == 2
    assert log.high_watermark == 2
    assert [r.value for r in consumer.poll(2000)] == [b"b"]


# --- R5 and R6 ---------------------------------------------------------------------------------


def test_a_follower_cut_off_from_its_leader_leaves_the_isr_after_replica_lag_time_max_ms() -> None:
    # A long broker session keeps the controller from fencing the follower first (C2).
    cluster = Cluster(brokers=3, seed=21, config={"broker.session.timeout.ms": 600_000})
    cluster.create_topic("t", 1, 3)
    leader, followers = leader_and_followers(cluster)
    cut = followers[0]
    cluster.advance(1000)
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    producer.send("t", value=b"v").get()
    cluster.advance(1000)
    start = cluster.now_ms
    cluster.partition_network([{cut}])
    for _ in range(8):
        producer.send("t", value=b"v").get()
        cluster.advance(7_000)
    shrunk = [e for e in cluster.events if e.kind == "isr_shrunk"]
    assert [e.data["removed"] for e in shrunk] == [[cut]]
    assert 30_000 <= shrunk[0].time_ms - start <= 30_000 + 15_000 + 100
    assert not any(e.kind == "broker_fenced" for e in cluster.events)
    assert cut not in partition(cluster).isr
    cluster.heal_network()
    cluster.advance(5_000)
    assert cut in partition(cluster).isr


def test_an_idle_follower_at_the_log_end_stays_in_the_isr() -> None:
    cluster = replicated()
    producer = cluster.producer()
    producer.send("t", value=b"v").get()
    cluster.advance(120_000)
    assert len(partition(cluster).isr) == 3
    assert events(cluster, "isr_shrunk") == []


def test_a_lagging_follower_rejoins_the_isr_once_it_caught_up_with_the_high_watermark() -> None:
    cluster = replicated()
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    leader, followers = leader_and_followers(cluster)
    cluster.stop_broker(followers[0])
    for i in range(5):
        producer.send("t", value=b"v%d" % i).get()
    cluster.advance(40_000)
    assert followers[0] not in partition(cluster).isr
    cluster.start_broker(followers[0])
    cluster.advance(10_000)
    assert followers[0] in partition(cluster).isr
    expanded = events(cluster, "isr_expanded")
    assert expanded and expanded[-1]["added"] == [followers[0]]
    assert replica_log(cluster, followers[0]).log_end_offset == 5


def test_with_a_big_backlog_a_follower_rejoins_the_isr_only_at_the_high_watermark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # R6 (Kafka's Partition.isFollowerInSync: the follower's log end offset has reached the
    # leader's high watermark). One batch per replica fetch (replica.fetch.max.bytes = 1) makes
    # the returning follower pass through hundreds of log end offsets below the high watermark;
    # every ISR expansion the leader proposes is checked at the moment it proposes it. (With 20
    # ms of network latency the catch-up outlasts the 2 s the restarted broker needs to be
    # unfenced, so most of those fetches come from a broker the leader may add.)
    cluster = Cluster(
        brokers=3,
        seed=21,
        config={"replica.fetch.max.bytes": 1, "sim.network.latency.ms": 20},
    )
    cluster.create_topic("t", 1, 3)
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    leader, followers = leader_and_followers(cluster)
    lagging = followers[0]
    cluster.stop_broker(lagging)
    cluster.advance(40_000)
    assert lagging not in partition(cluster).isr
    for i in range(300):
        producer.send("t", value=b"backlog-%d" % i).get()

    proposals: list[tuple[int, int]] = []
    fetched_below_hw: list[int] = []
    propose, update_fetch = Partition._propose_isr, Partition.update_follower_fetch

    def checked_propose(self: Partition, new_isr: tuple[int, ...]) -> None:
        for added in set(new_isr) - set(self.isr):
            follower_end = self.followers[added].log_end_offset
            proposals.append((follower_end, self.log.high_watermark))
            assert follower_end >= self.log.high_watermark, "ISR expanded below the HW"
        propose(self, new_isr)

    def watched_fetch(self: Partition, follower_id: int, fetch_offset: int) -> None:
        eligible = self.broker.is_broker_eligible(follower_id)
        if follower_id == lagging and eligible and fetch_offset < self.log.high_watermark:
            fetched_below_hw.append(fetch_offset)
        update_fetch(self, follower_id, fetch_offset)

    monkeypatch.setattr(Partition, "_propose_isr", checked_propose)
    monkeypatch.setattr(Partition, "update_follower_fetch", watched_fetch)
    cluster.start_broker(lagging)
    for i in range(100):  # the high watermark keeps moving while the follower catches up
        producer.send("t", value=b"more-%d" % i).get()
    cluster.advance(30_000)

    assert lagging in partition(cluster).isr
    assert len(set(fetched_below_hw)) >= 200  # hundreds of chances to expand too early
    assert [end for end, hw in proposals] and all(end >= hw for end, hw in proposals)
    assert replica_log(cluster, lagging).log_end_offset == 400


# --- R7 ----------------------------------------------------------------------------------------


def test_a_followers_high_watermark_is_the_leaders_clamped_to_its_own_log_end() -> None:
    cluster = replicated()
    producer = cluster.producer({"acks": "all"})
    for i in range(3):
        producer.send("t", value=b"v%d" % i).get()
    cluster.advance(1000)
    leader, followers = leader_and_followers(cluster)
    for follower in followers:
        log = replica_log(cluster, follower)
        assert log.high_watermark == min(
            replica_log(cluster, leader).high_watermark, log.log_end_offset
        )
        assert log.high_watermark == 3


# --- R8 ----------------------------------------------------------------------------------------


def test_after_failover_the_old_leader_truncates_records_only_it_had() -> None:
    cluster = replicated({"min.insync.replicas": 1})
    producer = cluster.producer(
        {"acks": 1, "linger.ms": 0, "request.timeout.ms": 3000, "delivery.timeout.ms": 120_000}
    )
    producer.send("t", value=b"shared").get()
    cluster.advance(1000)
    old_leader, followers = leader_and_followers(cluster)
    # The old leader keeps only the clients: a zombie that still accepts acks=1 writes.
    cluster.partition_network([{old_leader, "clients"}])
    zombie_offsets = [producer.send("t", value=b"zombie%d" % i).get().offset for i in range(3)]
    assert zombie_offsets == [1, 2, 3]
    cluster.advance(20_000)
    new_leader = partition(cluster).leader
    assert new_leader in followers
    cluster.heal_network()
    cluster.advance(10_000)
    truncated = [e for e in events(cluster, "log_truncated") if e["broker"] == old_leader]
    assert truncated and truncated[0]["offsets"] == [1, 2, 3]
    assert truncated[0]["truncated_to"] == 1
    assert [r.value for r in cluster.read("t", 0, replica=old_leader)][:1] == [b"shared"]
    assert all(b"zombie" not in (r.value or b"") for r in cluster.read("t", 0, replica=old_leader))
    lost = [a for a in cluster.history.check() if a.kind in ("lost", "changed")]
    assert {a.offset for a in lost} >= {1, 2, 3}


def test_followers_store_the_leaders_batches_and_a_truncation_copies_without_touching_them() -> (
    None
):
    """A follower appends the very batch object the leader stored (the same bytes, as in
    Kafka); a stored batch is never changed, so when a replica later cuts a shared batch
    short, it stores a shorter copy and the other replicas' batch stays whole."""
    cluster = replicated({"min.insync.replicas": 1})
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    for i in range(4):
        producer.send("t", value=b"v%d" % i).get()
    cluster.advance(1000)
    leader, followers = leader_and_followers(cluster)

    def batches(broker_id: int) -> list[Any]:
        return [b for segment in replica_log(cluster, broker_id).segments for b in segment.batches]

    stored = batches(leader)
    assert len(stored) == 4
    for follower in followers:
        assert all(a is b for a, b in zip(batches(follower), stored, strict=True))
    whole = [(b.base_offset, [r.offset for r in b.records], b.size) for b in stored]

    log = replica_log(cluster, followers[0])
    log.truncate_to(2)
    assert [r.offset for r in cluster.read("t", 0, replica=followers[0])] == [0, 1]
    assert [(b.base_offset, [r.offset for r in b.records], b.size) for b in stored] == whole
    assert [r.offset for r in cluster.read("t", 0, replica=leader)] == [0, 1, 2, 3]


def test_divergence_truncates_to_the_leaders_epoch_end_even_above_the_followers_hw() -> None:
    # R8 (Kafka's AbstractFetcherThread.truncateOnFetchResponse): the follower truncates to the
    # end offset the new leader reports for the diverging epoch, not to its own high
    # watermark. min.insync.replicas=3 with one broker down freezes every HW at 1, so the old
    # leader's HW stays below the offset where the new leader's epoch 0 ended.
    cluster = replicated({"min.insync.replicas": 3})
    producer = cluster.producer(
        {"acks": 1, "linger.ms": 0, "request.timeout.ms": 3000, "delivery.timeout.ms": 120_000}
    )
    cluster.producer({"acks": "all"}).send("t", value=b"shared").get()
    cluster.advance(1000)
    old_leader, (kept, down) = leader_and_followers(cluster)
    cluster.stop_broker(down)
    cluster.advance(12_000)
    assert sorted(partition(cluster).isr) == sorted((old_leader, kept))
    agreed = [producer.send("t", value=b"agreed%d" % i).get().offset for i in range(3)]
    cluster.advance(1000)
    assert agreed == [1, 2, 3]
    assert replica_log(cluster, kept).log_end_offset == 4
    # The old leader keeps only the clients and takes three more acks=1 writes alone.
    cluster.partition_network([{old_leader, "clients"}])
    zombie = [producer.send("t", value=b"zombie%d" % i).get().offset for i in range(3)]
    assert zombie == [4, 5, 6]
    cluster.advance(20_000)
    assert partition(cluster).leader == kept
    old_log = replica_log(cluster, old_leader)
    assert old_log.high_watermark == 1 and old_log.log_end_offset == 7
    cluster.heal_network()
    cluster.advance(10_000)

    truncated = [e for e in events(cluster, "log_truncated") if e["broker"] == old_leader]
    assert [(e["truncated_to"], e["offsets"]) for e in truncated] == [(4, [4, 5, 6])]
    assert [r.value for r in cluster.read("t", 0, replica=old_leader)] == [
        b"shared",
        b"agreed0",
        b"agreed1",
        b"agreed2",
    ]


# --- R9 ----------------------------------------------------------------------------------------


def test_with_unclean_election_off_a_partition_whose_isr_is_down_stays_offline() -> None:
    cluster = replicated()
    producer = cluster.producer({"acks": 1, "linger.ms": 0})
    leader, followers = leader_and_followers(cluster)
    cluster.stop_broker(followers[0])
    for i in range(3):
        producer.send("t", value=b"v%d" % i).get()
    cluster.advance(40_000)
    assert partition(cluster).isr == sorted([leader, followers[1]]) or set(
        partition(cluster).isr
    ) == {leader, followers[1]}
    cluster.stop_broker(followers[1])
    cluster.stop_broker(leader)
    cluster.start_broker(followers[0])  # out of sync: not eligible
    cluster.advance(30_000)
    assert partition(cluster).leader == -1
    assert not any(e["unclean"] for e in events(cluster, "leader_elected"))


# --- R10 ---------------------------------------------------------------------------------------


def test_preferred_leader_election_moves_leadership_back_to_the_first_replica() -> None:
    cluster = replicated({"min.insync.replicas": 1})
    preferred = partition(cluster).replicas[0]
    cluster.shutdown_broker(preferred)
    assert partition(cluster).leader != preferred
    cluster.start_broker(preferred)
    cluster.advance(10_000)
    assert preferred in partition(cluster).isr
    cluster.elect_leaders("t", 0, "preferred")
    assert partition(cluster).leader == preferred


def test_auto_leader_rebalance_moves_leadership_back_within_300_seconds() -> None:
    cluster = replicated({"min.insync.replicas": 1})
    preferred = partition(cluster).replicas[0]
    cluster.shutdown_broker(preferred)
    cluster.start_broker(preferred)
    cluster.advance(10_000)
    assert partition(cluster).leader != preferred
    cluster.advance(300_000)
    assert partition(cluster).leader == preferred
    assert any(e["reason"] == "auto leader rebalance" for e in events(cluster, "leader_elected"))


def test_auto_leader_rebalance_can_be_turned_off() -> None:
    cluster = Cluster(brokers=3, seed=21, config={"auto.leader.rebalance.enable": False})
    cluster.create_topic("t", 1, 3)
    preferred = partition(cluster).replicas[0]
    cluster.shutdown_broker(preferred)
    cluster.start_broker(preferred)
    cluster.advance(700_000)
    assert partition(cluster).leader != preferred
