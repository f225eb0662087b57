"""With every broker down, clients retry at a steady pace: no retry chain multiplies.

Every timer the scheduler runs is counted (`Scheduler.executed`), so these bounds hold on any
machine. A consumer app polls every 100 ms; before the FindCoordinator fix each poll that found
no coordinator started one more permanent retry chain, so the cost grew every minute.
"""

import contextlib

from engine import Cluster, TopicPartition
from engine.errors import KafkaError

MINUTE_MS = 60_000


def _cluster_with_every_kind_of_client() -> tuple[Cluster, list[object]]:
    cluster = Cluster(brokers=3, seed=11)
    cluster.create_topic("orders", partitions=3, replication_factor=3)
    apps = cluster.services["apps"]
    apps.producer_app("orders", rate_per_sec=5)
    apps.producer_app("orders", rate_per_sec=5, acks="1", idempotence=False)
    apps.consumer_app("after", "orders", commit="after", poll_interval_ms=500)
    apps.consumer_app(
        "before",
        "orders",
        commit="before",
        poll_interval_ms=500,
        config={"isolation.level": "read_committed"},
    )
    producer = cluster.producer(config={"client.id": "stage"})
    group_consumer = cluster.consumer(config={"group.id": "polled", "enable.auto.commit": True})
    group_consumer.subscribe(["orders"])
    assigned = cluster.consumer(config={"auto.offset.reset": "latest", "enable.auto.commit": False})
    assigned.assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])
    cluster.advance(5_000)
    for broker_id in cluster.broker_ids():
        cluster.stop_broker(broker_id)
    for index in range(5):
        producer.send("orders", value=b"v%d" % index)
    return cluster, [group_consumer, assigned]


def _poll_now(consumers: list[object]) -> None:
    for consumer in consumers:
        with contextlib.suppress(KafkaError):
            consumer.poll(timeout_ms=0)  # type: ignore[attr-defined]


def test_an_hour_with_every_broker_down_costs_the_same_each_minute():
    cluster, polled = _cluster_with_every_kind_of_client()
    per_minute = []
    for _ in range(60):
        before = cluster.scheduler.executed
        for _ in range(6):
            cluster.advance(10_000)
            _poll_now(polled)
        per_minute.append(cluster.scheduler.executed - before)
    per_second = [count / 60 for count in per_minute]
    # Four apps and three clients retrying at retry.backoff.ms / reconnect.backoff.ms: a few
    # hundred timers a cluster second, and the last minutes cost what the first ones did.
    assert max(per_second) < 250, per_second
    assert sum(per_minute[-10:]) <= 1.2 * sum(per_minute[1:11]), per_minute
    # Nothing piles up on the heap either.
    assert cluster.scheduler.pending < 100


def test_polls_while_the_coordinator_is_unknown_share_one_lookup():
    cluster = Cluster(brokers=1, seed=3)
    cluster.create_topic("orders", partitions=1, replication_factor=1)
    consumer = cluster.consumer(config={"group.id": "g"})
    consumer.subscribe(["orders"])
    cluster.stop_broker(1)
    for _ in range(200):  # 200 polls within one retry.backoff.ms window
        consumer.poll(timeout_ms=0)
    before = cluster.scheduler.executed
    cluster.advance(10_000)
    # One lookup every retry.backoff.ms (100 ms) and the heartbeat thread's ticks, no more.
    assert cluster.scheduler.executed - before < 250
