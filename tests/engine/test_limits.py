"""Resource limits of a sandbox: each one a clear error, none of them a crash."""

from __future__ import annotations

import pytest

from engine import Cluster
from engine.errors import ResourceLimitError
from engine.sim.limits import ResourceLimits


def test_the_cluster_shape_is_bounded() -> None:
    with pytest.raises(ResourceLimitError, match="brokers"):
        Cluster(brokers=13)
    with pytest.raises(ResourceLimitError, match="controllers"):
        Cluster(brokers=1, controllers=8)
    with pytest.raises(ResourceLimitError):
        Cluster(brokers=0)


def test_topic_and_partition_counts_are_bounded() -> None:
    cluster = Cluster(
        brokers=1,
        seed=1,
        limits={"max_topics": 2, "max_partitions": 10, "max_partitions_per_topic": 6},
    )
    cluster.create_topic("a", 4)
    with pytest.raises(ResourceLimitError, match="partitions"):
        cluster.create_topic("b", 7)
    cluster.create_topic("b", 6)
    with pytest.raises(ResourceLimitError, match="topics"):
        cluster.create_topic("c")
    with pytest.raises(ResourceLimitError, match="partitions"):
        cluster.add_partitions("a", 5)
    assert cluster.list_topics() == ["a", "b"]


def test_clients_are_bounded() -> None:
    cluster = Cluster(brokers=1, seed=1, limits={"max_clients": 2})
    cluster.producer()
    cluster.consumer()
    with pytest.raises(ResourceLimitError, match="clients"):
        cluster.producer()


def test_a_record_over_the_sandbox_record_limit_is_refused() -> None:
    cluster = Cluster(brokers=1, seed=1, limits={"max_record_bytes": 1000})
    cluster.create_topic("t")
    producer = cluster.producer()
    with pytest.raises(ResourceLimitError):
        producer.send("t", value=b"x" * 2000)
    assert producer.send("t", value=b"x" * 100).get().offset == 0


def test_retained_bytes_are_bounded_and_the_broker_keeps_serving() -> None:
    cluster = Cluster(brokers=1, seed=1, limits={"max_retained_bytes": 4096})
    cluster.create_topic("t")
    producer = cluster.producer(
        {"linger.ms": 0, "retries": 0, "enable.idempotence": False, "acks": 1}
    )
    errors = []
    for i in range(40):
        future = producer.send("t", value=b"x" * 200 + b"%d" % i)
        producer.flush()
        if future.exception is not None:
            errors.append(type(future.exception).__name__)
    assert errors and set(errors) == {"ResourceLimitError"}
    assert any(e.kind == "resource_limit_reached" for e in cluster.events)
    assert cluster.read("t", 0)  # what was accepted is still readable
    cluster.advance(1000)


def test_time_advances_are_bounded() -> None:
    cluster = Cluster(brokers=1, seed=1)
    with pytest.raises(ValueError):
        cluster.advance(ResourceLimits().max_advance_ms + 1)
    with pytest.raises(ValueError):
        cluster.advance(-1)


def test_unknown_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        Cluster(brokers=1, limits={"max_planets": 3})


def test_limits_survive_replay() -> None:
    cluster = Cluster(brokers=1, seed=1, limits={"max_topics": 1})
    cluster.create_topic("a")
    with pytest.raises(ResourceLimitError):
        cluster.create_topic("b")
    copy = Cluster.from_log(cluster.export_log())
    assert copy.limits.max_topics == 1
    assert copy.snapshot() == cluster.snapshot()


def test_the_default_limits_hold_a_busy_sandbox() -> None:
    limits = ResourceLimits()
    assert limits.max_retained_bytes <= 64 * 1024 * 1024
    assert limits.max_brokers >= 9 and limits.max_partitions >= 200


def _full_cluster() -> Cluster:
    """A producer app refused at the record bound: every refused batch is an event or two."""
    cluster = Cluster(brokers=3, seed=1, limits={"max_retained_records": 3000})
    cluster.create_topic("orders", 3, 3)
    cluster.apps.producer_app("orders", rate_per_sec=200, acks="all")
    return cluster


def test_the_events_a_cluster_holds_are_bounded_and_their_absolute_indices_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("engine.cluster.MAX_EVENTS", 400)
    cluster = _full_cluster()
    held: list[int] = []
    for _ in range(6):
        cluster.advance(10_000)
        held.append(len(cluster.events))
        assert len(cluster.events) <= 400 + 400 // 4
    assert cluster.events_dropped > 1000  # the flood went on; what is held did not grow
    assert max(held[2:]) <= 500
    assert cluster.event_count == cluster.events_dropped + len(cluster.events)
    assert cluster.snapshot()["event_count"] == cluster.event_count
    assert any(e.kind == "produce_failed" for e in cluster.events)
    # Absolute indices: from before the window, all that is held; from inside it, the rest.
    assert cluster.events_since(0) == cluster.events
    middle = cluster.events_dropped + 10
    assert cluster.events_since(middle) == cluster.events[10:]
    assert cluster.events_since(cluster.event_count) == []
    # Trimmed at the same points in a replay: the same window, the same snapshot.
    copy = Cluster.from_log(cluster.export_log())
    assert copy.events_dropped == cluster.events_dropped
    assert copy.events == cluster.events
    assert copy.snapshot() == cluster.snapshot()


def test_a_cluster_full_of_records_stops_growing_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the record bound the app goes on and is refused; before events were bounded the
    refusals' events grew without end (about 10 MiB a cluster minute for one app at 200/s)."""
    import gc
    import tracemalloc

    monkeypatch.setattr("engine.cluster.MAX_EVENTS", 1000)
    tracemalloc.start(1)
    try:
        cluster = _full_cluster()
        cluster.advance(20_000)  # full, and the event window full too
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        cluster.advance(10_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cluster.events_dropped > 1000
    assert grown < 2**19, f"grew {grown / 2**10:.0f} KiB in 10 cluster s at the bound"
