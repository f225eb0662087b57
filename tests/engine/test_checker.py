"""The checker finds every kind of anomaly, says when it happened, and finds none in a clean run."""

from __future__ import annotations

from engine import Cluster, TopicPartition
from engine.checker import check

TP = TopicPartition("t", 0)


def kinds(cluster: Cluster) -> list[str]:
    return sorted({a.kind for a in check(cluster, cluster.history)})


def zombie_run() -> tuple[Cluster, int]:
    cluster = Cluster(brokers=3, seed=71)
    cluster.create_topic("t", 1, 3)
    producer = cluster.producer({"acks": 1, "linger.ms": 0, "request.timeout.ms": 2000})
    producer.send("t", value=b"base").get()
    cluster.advance(1000)
    zombie = cluster.describe_topic("t").partitions[0].leader
    cluster.partition_network([{zombie, "clients"}])
    producer.send("t", value=b"zombie write").get()
    cluster.advance(15_000)
    cluster.partition_network([{zombie}])  # the clients now reach the new leader
    fresh = cluster.producer({"acks": "all"})
    assert fresh.send("t", value=b"new leader write").get().offset == 1
    cluster.heal_network()
    cluster.advance(10_000)
    return cluster, zombie


def test_a_clean_run_has_no_anomalies() -> None:
    cluster = Cluster(brokers=3, seed=72)
    cluster.create_topic("t", 2, 3, {"min.insync.replicas": 2})
    producer = cluster.producer()
    for i in range(30):
        producer.send("t", value=b"v%d" % i, key=b"k%d" % (i % 3))
    producer.flush()
    cluster.stop_broker(1)
    for i in range(30, 40):
        producer.send("t", value=b"v%d" % i, key=b"k%d" % (i % 3))
    producer.flush()
    assert check(cluster, cluster.history) == []
    assert len(cluster.history.acknowledged) == 40


def test_an_overwritten_acknowledged_offset_is_changed_and_reused_at_the_truncation_time() -> None:
    cluster, zombie = zombie_run()
    anomalies = check(cluster, cluster.history)
    assert {a.kind for a in anomalies} == {"changed", "offset_reused"}
    changed = next(a for a in anomalies if a.kind == "changed")
    truncation = next(
        e for e in cluster.events if e.kind == "log_truncated" and e.data["broker"] == zombie
    )
    assert (changed.offset, changed.time_ms) == (1, truncation.time_ms)
    assert "zombie write" in changed.detail
    reused = next(a for a in anomalies if a.kind == "offset_reused")
    assert reused.offset == 1 and reused.time_ms < truncation.time_ms


def test_a_record_lost_to_an_unclean_election_is_dated_at_the_election() -> None:
    cluster = Cluster(brokers=2, seed=73)
    cluster.create_topic("t", 1, 2, {"unclean.leader.election.enable": True})
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    first, second = cluster.describe_topic("t").partitions[0].replicas
    cluster.stop_broker(second)
    cluster.advance(12_000)
    producer.send("t", value=b"only on the first").get()
    cluster.stop_broker(first)
    cluster.start_broker(second)
    cluster.advance(15_000)
    anomalies = check(cluster, cluster.history)
    election = next(e for e in cluster.events if e.kind == "leader_elected" and e.data["unclean"])
    assert [(a.kind, a.offset, a.time_ms) for a in anomalies] == [("lost", 0, election.time_ms)]
    assert anomalies[0].to_dict()["kind"] == "lost"


def test_retried_writes_of_a_non_idempotent_producer_are_duplicates() -> None:
    cluster = Cluster(brokers=1, seed=74)
    cluster.create_topic("t")
    producer = cluster.producer({"acks": 1, "enable.idempotence": False, "request.timeout.ms": 500})
    producer.send("t", value=b"warm").get()
    cluster.lose_responses(1)
    producer.send("t", value=b"twice").get()
    duplicated = [a for a in check(cluster, cluster.history) if a.kind == "duplicated"]
    assert [a.offset for a in duplicated] == [2]


def test_the_same_value_sent_twice_on_purpose_is_not_a_duplicate() -> None:
    cluster = Cluster(brokers=1, seed=75)
    cluster.create_topic("t")
    producer = cluster.producer()
    producer.send("t", value=b"same").get()
    producer.send("t", value=b"same").get()
    assert check(cluster, cluster.history) == []


def test_a_retry_overtaken_by_a_later_send_of_the_same_key_is_reordered() -> None:
    cluster = Cluster(brokers=1, seed=76)
    cluster.create_topic("t")
    producer = cluster.producer(
        {
            "acks": 1,
            "enable.idempotence": False,
            "linger.ms": 0,
            "request.timeout.ms": 500,
            "max.in.flight.requests.per.connection": 5,
        }
    )
    producer.send("t", value=b"warm").get()
    cluster.lose_responses(1)
    first = producer.send("t", value=b"first", key=b"k")
    cluster.advance(20)
    second = producer.send("t", value=b"second", key=b"k")
    producer.flush()
    assert first.get().offset > second.get().offset
    assert "reordered" in kinds(cluster)


def test_the_idempotent_producer_keeps_order_and_has_no_duplicates_under_lost_responses() -> None:
    cluster = Cluster(brokers=1, seed=76)
    cluster.create_topic("t")
    producer = cluster.producer({"linger.ms": 0, "request.timeout.ms": 500})
    producer.send("t", value=b"warm").get()
    cluster.lose_responses(1)
    first = producer.send("t", value=b"first", key=b"k")
    cluster.advance(20)
    second = producer.send("t", value=b"second", key=b"k")
    producer.flush()
    assert first.get().offset < second.get().offset
    assert check(cluster, cluster.history) == []


def test_records_removed_by_retention_are_not_reported_lost() -> None:
    cluster = Cluster(brokers=1, seed=77)
    cluster.create_topic("t", 1, 1, {"retention.ms": 1000, "segment.bytes": 1024})
    producer = cluster.producer()
    for i in range(20):
        producer.send("t", value=b"x" * 100 + b"%d" % i).get()
    cluster.advance(400_000)
    assert cluster.describe_topic("t").partitions[0].log_start_offset > 0
    assert check(cluster, cluster.history) == []


def _aborted_transaction() -> Cluster:
    cluster = Cluster(brokers=3, seed=4)
    cluster.create_topic("payments", 1, 3)
    producer = cluster.producer({"transactional.id": "tx-1"})
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("payments", value=b"refund-1", key=b"u1")
    producer.flush()
    producer.abort_transaction()
    plain = cluster.producer({"acks": "all"})
    plain.send("payments", value=b"charge-2", key=b"u2").get()
    return cluster


def test_a_read_committed_consumer_reading_after_an_abort_is_not_an_anomaly() -> None:
    cluster = _aborted_transaction()
    consumer = cluster.consumer(
        {"isolation.level": "read_committed", "auto.offset.reset": "earliest"}
    )
    consumer.assign([TopicPartition("payments", 0)])
    values = [r.value for r in consumer.poll(timeout_ms=2000)]
    assert values == [b"charge-2"]
    assert [a for a in cluster.history.check() if a.kind == "aborted_read"] == []


def test_an_aborted_record_handed_to_a_read_committed_consumer_is_reported() -> None:
    cluster = _aborted_transaction()
    consumer = cluster.consumer(
        {"isolation.level": "read_committed", "auto.offset.reset": "earliest"}
    )
    aborted = cluster.read("payments", 0)[0]
    assert aborted.value == b"refund-1"
    # As if a broken fetch path had handed it over: the checker must notice.
    cluster.history.on_consumed(consumer, [aborted])
    found = [a for a in cluster.history.check() if a.kind == "aborted_read"]
    assert [(a.topic, a.partition, a.offset) for a in found] == [("payments", 0, aborted.offset)]


def test_the_history_of_a_long_running_cluster_stays_bounded() -> None:
    cluster = Cluster(brokers=1, seed=8)
    cluster.history.max_entries = 100  # the default is the cluster's max_retained_records
    cluster.create_topic("t", 1, 1)
    producer = cluster.producer({"acks": "1"})
    for i in range(1000):
        producer.send("t", value=b"v%d" % i, key=b"k")
    producer.flush()
    history = cluster.history
    assert len(history.acknowledged) <= 125
    assert len(history.offset_owner) <= 125
    assert history.acknowledged[-1].value == b"v999"  # the newest are the ones kept
