"""An idle cluster is cheap to fast-forward: steady heartbeats are counted, not simulated."""

from engine import Cluster


def _idle_cluster() -> Cluster:
    cluster = Cluster(brokers=3, seed=7)
    cluster.create_topic("orders", partitions=6, replication_factor=3)
    producer = cluster.producer()
    for i in range(20):
        producer.send("orders", value=b"v%d" % i, key=b"k%d" % i)
    producer.flush()
    return cluster


def test_an_idle_hour_runs_a_few_thousand_timers_not_one_per_heartbeat():
    cluster = _idle_cluster()
    before = cluster.scheduler.executed
    cluster.advance(3_600_000)
    ran = cluster.scheduler.executed - before
    # 3 brokers heartbeating every 2 s would alone take 5,400 round trips (over 20,000 timers).
    assert ran < 3_000


def test_a_broker_cut_off_during_a_long_idle_stretch_is_still_fenced_on_time():
    cluster = _idle_cluster()
    cluster.advance(3_600_000)
    cut_at = cluster.now_ms
    cluster.partition_network([{2}])
    cluster.advance(20_000)
    fenced = [e for e in cluster.events if e.kind == "broker_fenced" and e.data["broker"] == 2]
    assert len(fenced) == 1
    # The session (9 s) runs from the last heartbeat that got through (at most 2 s before the cut).
    assert 7_000 <= fenced[0].time_ms - cut_at <= 9_000


def test_heartbeats_resume_after_healing_and_the_broker_is_unfenced():
    cluster = _idle_cluster()
    cluster.partition_network([{3}])
    cluster.advance(15_000)
    assert next(b for b in cluster.brokers() if b.id == 3).fenced
    cluster.heal_network()
    cluster.advance(5_000)
    assert not next(b for b in cluster.brokers() if b.id == 3).fenced
    assert all(3 in p.isr for p in cluster.describe_topic("orders").partitions)
