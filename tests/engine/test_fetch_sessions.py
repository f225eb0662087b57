"""Incremental fetch sessions (KIP-227) between followers and leaders, and the periodic work that
sleeps while its outcome is known (ISR checks, the cleaner, the timed-out transactions check)."""

from __future__ import annotations

from engine import Cluster, TopicPartition
from engine.server.fetch_session import (
    FETCH_SESSION_ID_NOT_FOUND,
    INVALID_FETCH_SESSION_EPOCH,
)
from engine.server.replica_manager import ReplicaManager
from scripts.bench.workload import WORKLOADS, measure_engine_workloads


def _cluster_with_offsets_topic() -> Cluster:
    cluster = Cluster(brokers=3, seed=3)
    cluster.create_topic("orders", 3, 3)
    cluster.apps.consumer_app("g", "orders", poll_interval_ms=100)
    producer = cluster.producer({"acks": "all"})
    producer.send("orders", value=b"v", key=b"k")
    producer.flush()
    cluster.advance(10_000)
    return cluster


def test_a_follower_fetch_in_a_session_carries_and_reads_only_what_changed(monkeypatch):
    cluster = _cluster_with_offsets_topic()
    follower = cluster.broker_by_id(2)
    shared = {
        leader: len(follower.fetcher.followed_from(leader)) for leader in cluster.broker_ids()
    }
    # __consumer_offsets' 50 partitions are shared: a sessionless fetch reads all of them
    assert min(n for n in shared.values() if n) > 10
    sent: list[int] = []
    reads: list[int] = []
    original_read = ReplicaManager.read_for_follower

    def counting_read(self, follower_id, ask):
        reads.append(follower_id)
        return original_read(self, follower_id, ask)

    monkeypatch.setattr(ReplicaManager, "read_for_follower", counting_read)
    original_handle = ReplicaManager.handle_follower_fetch

    def counting_handle(self, request, reply):
        if request.session_epoch > 0:
            sent.append(len(request.partitions))
        original_handle(self, request, reply)

    monkeypatch.setattr(ReplicaManager, "handle_follower_fetch", counting_handle)
    producer = cluster.producer({"acks": "all"})
    for i in range(20):
        producer.send("orders", value=b"x%d" % i, key=b"k%d" % i)
        cluster.advance(50)
    producer.flush()
    cluster.advance(2_000)
    assert sent, "followers fetch incrementally once their session is open"
    assert max(sent) <= 3  # one partition moved per fetch, not every shared one
    fetches = len(sent)
    # a few reads per fetch (the partition that moved, read until it is quiet again),
    # instead of every shared partition on every fetch and every answer
    assert len(reads) < fetches * 5
    # and replication is complete: every replica caught up, the HW at the log end
    for p in cluster.describe_topic("orders").partitions:
        assert sorted(p.isr) == sorted(p.replicas)
        assert p.high_watermark == p.log_end_offset


def _replicates(cluster: Cluster) -> None:
    producer = cluster.producer({"acks": "all"})
    before = sum(p.high_watermark for p in cluster.describe_topic("orders").partitions)
    for i in range(6):
        producer.send("orders", value=b"after", key=b"key-%d" % i)
    producer.flush()
    cluster.advance(2_000)
    partitions = cluster.describe_topic("orders").partitions
    assert sum(p.high_watermark for p in partitions) == before + 6
    for p in partitions:
        assert sorted(p.isr) == sorted(p.replicas)
        for broker_id in p.replicas:
            replica = cluster.broker_by_id(broker_id).partitions[
                TopicPartition("orders", p.partition)
            ]
            assert replica.log.log_end_offset == p.log_end_offset


def test_an_epoch_out_of_step_falls_back_to_a_full_fetch():
    cluster = _cluster_with_offsets_topic()
    errors_before = dict(cluster.network.request_errors.get("replica_fetch", {}))
    follower = cluster.broker_by_id(2)
    handler = next(h for h in follower.fetcher.sessions.values() if h.session_id)
    handler.epoch += 5  # as if requests were lost on the way
    _replicates(cluster)
    errors = cluster.network.request_errors["replica_fetch"]
    assert (
        errors[INVALID_FETCH_SESSION_EPOCH] == errors_before.get(INVALID_FETCH_SESSION_EPOCH, 0) + 1
    )


def test_an_unknown_session_falls_back_to_a_full_fetch():
    cluster = _cluster_with_offsets_topic()
    follower = cluster.broker_by_id(3)
    handler = next(h for h in follower.fetcher.sessions.values() if h.session_id)
    handler.session_id = 10_000  # the leader never issued it (as after a restart)
    _replicates(cluster)
    assert cluster.network.request_errors["replica_fetch"][FETCH_SESSION_ID_NOT_FOUND] >= 1


def test_a_restarted_leader_serves_its_followers_again():
    cluster = _cluster_with_offsets_topic()
    cluster.stop_broker(1)
    cluster.advance(5_000)
    cluster.start_broker(1)
    cluster.advance(40_000)
    _replicates(cluster)


def test_seven_idle_days_run_a_few_thousand_timers_and_nothing_happens():
    cluster = Cluster(brokers=3, seed=1)
    cluster.create_topic("orders", 3, 3)
    cluster.advance(1_000)
    events = len(cluster.events)
    before = cluster.scheduler.executed
    cluster.advance(7 * 24 * 3600 * 1000)
    # ISR checks (every 15 s per broker), cleaner passes (every 15 s) and the timed-out
    # transactions check (every 10 s) would alone be over 300,000 timers.
    assert cluster.scheduler.executed - before < 20_000
    assert len(cluster.events) == events


def test_a_follower_stopped_in_a_long_idle_stretch_leaves_the_isr_on_time():
    cluster = Cluster(brokers=3, seed=1)
    cluster.create_topic("orders", 3, 3)
    cluster.advance(24 * 3600 * 1000 + 1_234)
    stopped_at = cluster.now_ms
    cluster.stop_broker(3)
    cluster.advance(60_000)
    shrunk = [e for e in cluster.events if e.kind == "isr_shrunk" and 3 in e.data["removed"]]
    assert shrunk
    lag = shrunk[0].time_ms - stopped_at
    # Out when the controller fences it (broker.session.timeout.ms, 9 s) or, at the latest, at
    # the ISR check after replica.lag.time.max.ms (30 s) from its last stamp before the stop.
    assert 0 < lag <= 45_000
    assert all(3 not in p.isr for p in cluster.describe_topic("orders").partitions)


def test_the_workload_benchmark_measures_every_workload():
    rows = measure_engine_workloads(seconds=1, repeat=1)
    assert [row.name for row in rows] == list(WORKLOADS)
    assert all(row.timers_per_cluster_second > 0 for row in rows[1:])


def test_the_workload_floor_sends_the_workloads_messages_with_no_more_timers():
    from scripts.bench.workload import message_floor

    floor = message_floor(WORKLOADS[-1], seconds=2, repeat=1)
    # Every request of the workload is answered: two messages each (a few may be in flight).
    assert floor.requests_per_cluster_second > 20
    assert abs(floor.messages_per_cluster_second - 2 * floor.requests_per_cluster_second) <= 2
    # The floor runs the same requests and replies, and no more timers than the workload ran.
    assert floor.timers_per_cluster_second - 2 <= floor.floor_timers_per_cluster_second
    assert floor.floor_timers_per_cluster_second <= floor.timers_per_cluster_second
    assert floor.wall_ms_per_cluster_second > 0
