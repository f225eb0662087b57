"""Transactions (KAFKA_SEMANTICS T1-T6, L8): the coordinator, markers, the LSO, isolation."""

from __future__ import annotations

import pytest

from engine import Cluster, TopicPartition
from engine.common.records import marker_coordinator_epoch
from engine.coordinator.transaction.transaction_coordinator import (
    TRANSACTION_STATE_TOPIC,
    java_string_hash,
)
from engine.coordinator.transaction.transaction_markers import write_txn_marker
from engine.errors import (
    IllegalStateError,
    InvalidProducerEpochError,
    KafkaTimeoutError,
    ProducerFencedError,
)

ORDERS = TopicPartition("orders", 0)


def transactional(cluster: Cluster, transactional_id: str = "orders-app", **config: object):  # type: ignore[no-untyped-def]
    settings: dict[str, object] = {"transactional.id": transactional_id}
    settings.update({k.replace("_", "."): v for k, v in config.items()})
    producer = cluster.producer(settings)
    producer.init_transactions()
    return producer


def reader(cluster: Cluster, isolation: str):  # type: ignore[no-untyped-def]
    consumer = cluster.consumer({"isolation.level": isolation, "auto.offset.reset": "earliest"})
    consumer.assign([ORDERS])
    return consumer


def values(records: list) -> list[tuple[int, bytes]]:  # type: ignore[type-arg]
    return [(r.offset, r.value) for r in records]


def partition_state(cluster: Cluster, topic: str = "orders") -> tuple[int, int]:
    description = cluster.describe_topic(topic).partitions[0]
    return description.last_stable_offset, description.high_watermark


def open_transaction_then_plain_record(cluster: Cluster):  # type: ignore[no-untyped-def]
    """T4's setup: a transactional record at offset 0, a plain one at offset 1."""
    cluster.create_topic("orders")
    producer = transactional(cluster)
    producer.begin_transaction()
    assert producer.send("orders", value=b"in-txn", partition=0).get().offset == 0
    assert cluster.producer().send("orders", value=b"plain", partition=0).get().offset == 1
    return producer


def test_t4_an_open_transaction_holds_the_lso_and_read_committed_waits() -> None:
    cluster = Cluster(brokers=1)
    open_transaction_then_plain_record(cluster)
    assert partition_state(cluster) == (0, 2)
    assert reader(cluster, "read_committed").poll(timeout_ms=500) == []
    assert values(reader(cluster, "read_uncommitted").poll(timeout_ms=500)) == [
        (0, b"in-txn"),
        (1, b"plain"),
    ]


def test_t4_after_commit_read_committed_reads_both_and_lso_equals_hw() -> None:
    cluster = Cluster(brokers=1)
    producer = open_transaction_then_plain_record(cluster)
    committed = reader(cluster, "read_committed")
    assert committed.poll(timeout_ms=200) == []
    producer.commit_transaction()
    assert values(committed.poll(timeout_ms=1000)) == [(0, b"in-txn"), (1, b"plain")]
    assert partition_state(cluster) == (3, 3)
    assert committed.poll(timeout_ms=500) == []  # the marker itself never reaches the application
    assert committed.position(ORDERS) == 3
    [event] = [e for e in cluster.events if e.kind == "transaction_committed"]
    assert event.data["partitions"] == [["orders", 0]]


def test_t4_after_abort_read_committed_reads_only_the_plain_record() -> None:
    cluster = Cluster(brokers=1)
    producer = open_transaction_then_plain_record(cluster)
    producer.abort_transaction()
    committed = reader(cluster, "read_committed")
    assert values(committed.poll(timeout_ms=1000)) == [(1, b"plain")]
    assert partition_state(cluster) == (3, 3)
    assert committed.position(ORDERS) == 3  # T5: past the marker
    assert values(reader(cluster, "read_uncommitted").poll(timeout_ms=1000)) == [
        (0, b"in-txn"),
        (1, b"plain"),
    ]
    assert values(cluster.read("orders", 0, isolation_level="read_committed")) == [(1, b"plain")]
    assert [e.kind for e in cluster.events if e.kind.startswith("transaction_")] == [
        "transaction_aborted"
    ]


def test_markers_are_one_offset_control_batches_on_every_partition_touched() -> None:
    cluster = Cluster(brokers=3)
    cluster.create_topic("orders", partitions=3, replication_factor=3)
    producer = transactional(cluster)
    producer.begin_transaction()
    for partition in range(3):
        producer.send("orders", value=b"x", partition=partition)
    producer.commit_transaction()
    cluster.advance(1000)
    for partition in range(3):
        leader = cluster.describe_topic("orders").partitions[partition].leader
        log = cluster.broker_by_id(leader).partitions[TopicPartition("orders", partition)].log
        batches = list(log.iter_batches(0))
        assert [b.is_control for b in batches] == [False, True]
        marker = batches[1]
        assert marker.control_type == "COMMIT" and len(marker.records) == 1
        assert marker.producer_id == producer.producer_id
        assert cluster.read("orders", partition) == cluster.read(
            "orders", partition, offset=0, max_records=1
        )
        assert log.log_end_offset == 2


def test_the_coordinator_is_the_leader_of_the_transaction_state_partition() -> None:
    cluster = Cluster(brokers=3)
    cluster.create_topic("orders")
    assert TRANSACTION_STATE_TOPIC not in cluster.list_topics()
    producer = transactional(cluster, "hello")
    description = cluster.describe_topic(TRANSACTION_STATE_TOPIC)
    assert len(description.partitions) == 50
    assert all(len(p.replicas) == 3 for p in description.partitions)
    assert description.config["min.insync.replicas"] == 2
    assert description.config["cleanup.policy"] == ["compact"]
    assert java_string_hash("hello") == 99162322
    number = 99162322 % 50
    assert producer.transaction.coordinator == description.partitions[number].leader
    producer.begin_transaction()
    producer.send("orders", value=b"x").get()
    states = [r.value for r in cluster.read(TRANSACTION_STATE_TOPIC, number) if r.key == b"hello"]
    assert states and b'"Ongoing"' in states[-1]


def test_coordinator_states_go_ongoing_prepare_complete() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    producer = transactional(cluster)
    service = cluster.services["transactions"]
    assert service.describe_transaction("orders-app")["state"] == "Empty"
    producer.begin_transaction()
    producer.send("orders", value=b"x").get()
    assert service.describe_transaction("orders-app")["state"] == "Ongoing"
    producer.commit_transaction()
    cluster.advance(100)
    assert service.describe_transaction("orders-app")["state"] == "CompleteCommit"
    written = [
        r.value for r in cluster.read(TRANSACTION_STATE_TOPIC, service.partition_for("orders-app"))
    ]
    states = [
        next(
            s
            for s in ("Empty", "Ongoing", "PrepareCommit", "CompleteCommit")
            if f'"{s}"'.encode() in v
        )
        for v in written
    ]
    assert states[-3:] == ["Ongoing", "PrepareCommit", "CompleteCommit"]


def test_a_second_producer_with_the_same_transactional_id_fences_the_first() -> None:
    cluster = Cluster(brokers=3)
    cluster.create_topic("orders", replication_factor=3)
    zombie = transactional(cluster)
    zombie.begin_transaction()
    zombie.send("orders", value=b"zombie", partition=0).get()

    successor = transactional(cluster)
    assert successor.producer_id == zombie.producer_id
    assert successor.producer_epoch > zombie.producer_epoch
    aborted = [e for e in cluster.events if e.kind == "transaction_aborted"]
    assert aborted and aborted[0].data["reason"] == "fenced by a newer producer"

    with pytest.raises(ProducerFencedError):
        zombie.commit_transaction()
    with pytest.raises(ProducerFencedError):
        zombie.send("orders", value=b"again")
    with pytest.raises(ProducerFencedError):
        zombie.begin_transaction()

    successor.begin_transaction()
    successor.send("orders", value=b"successor", partition=0)
    successor.commit_transaction()
    cluster.advance(1000)
    assert [r.value for r in cluster.read("orders", 0, isolation_level="read_committed")] == [
        b"successor"
    ]


def test_a_zombies_late_send_gets_invalid_producer_epoch_then_its_abort_is_fenced() -> None:
    """KIP-588 (Kafka 2.7+): the partition leader answers INVALID_PRODUCER_EPOCH, which the
    client treats as abortable; the abort's EndTxn then learns PRODUCER_FENCED, which is fatal."""
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    zombie = transactional(cluster)
    zombie.begin_transaction()
    zombie.send("orders", value=b"first", partition=0).get()
    transactional(cluster)  # fences: the abort marker carries the new epoch
    late = zombie.send("orders", value=b"late", partition=0)
    with pytest.raises(InvalidProducerEpochError):
        late.get()
    with pytest.raises(InvalidProducerEpochError):
        zombie.commit_transaction()
    with pytest.raises(ProducerFencedError):
        zombie.abort_transaction()
    with pytest.raises(ProducerFencedError):
        zombie.begin_transaction()
    assert b"late" not in [r.value for r in cluster.read("orders", 0)]


def test_the_coordinator_aborts_a_transaction_that_outlives_its_timeout() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    producer = transactional(cluster, transaction_timeout_ms=5000)
    producer.begin_transaction()
    producer.send("orders", value=b"slow", partition=0).get()
    cluster.advance(4000)
    assert [e for e in cluster.events if e.kind == "transaction_aborted"] == []
    assert partition_state(cluster) == (0, 1)
    cluster.advance(
        12000
    )  # checked every 10 s (transaction.abort.timed.out.transaction.cleanup.interval.ms)
    [event] = [e for e in cluster.events if e.kind == "transaction_aborted"]
    assert event.data["reason"] == "transaction.timeout.ms"
    assert partition_state(cluster) == (2, 2)
    with pytest.raises(ProducerFencedError):
        producer.commit_transaction()
    assert cluster.read("orders", 0, isolation_level="read_committed") == []


def test_transactional_calls_in_the_wrong_state_are_refused() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    producer = cluster.producer({"transactional.id": "t"})
    with pytest.raises(IllegalStateError):
        producer.send("orders", value=b"x")
    with pytest.raises(IllegalStateError):
        producer.begin_transaction()
    producer.init_transactions()
    with pytest.raises(IllegalStateError):
        producer.send("orders", value=b"x")
    with pytest.raises(IllegalStateError):
        producer.commit_transaction()
    with pytest.raises(IllegalStateError):
        cluster.producer().init_transactions()


def test_an_empty_transaction_commits_without_markers() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    producer = transactional(cluster)
    producer.begin_transaction()
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send("orders", value=b"x").get()
    producer.commit_transaction()
    cluster.advance(100)
    assert [e.kind for e in cluster.events if e.kind.startswith("transaction_")] == [
        "transaction_committed"
    ]


def test_a_transaction_survives_a_coordinator_failover() -> None:
    cluster = Cluster(brokers=3)
    cluster.create_topic("orders", replication_factor=3)
    producer = transactional(cluster)
    producer.begin_transaction()
    producer.send("orders", value=b"x", partition=0).get()
    cluster.stop_broker(producer.transaction.coordinator)
    producer.send("orders", value=b"y", partition=0)
    producer.commit_transaction()
    cluster.advance(2000)
    assert [r.value for r in cluster.read("orders", 0, isolation_level="read_committed")] == [
        b"x",
        b"y",
    ]


def test_compaction_drops_aborted_records_and_keeps_the_committed_value() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders", config={"cleanup.policy": "compact", "segment.bytes": 200})
    plain = cluster.producer({"linger.ms": 0})
    plain.send("orders", key=b"k", value=b"committed").get()
    producer = transactional(cluster)
    producer.begin_transaction()
    producer.send("orders", key=b"k", value=b"aborted").get()
    producer.abort_transaction()
    for i in range(8):
        plain.send("orders", key=b"other%d" % i, value=b"v").get()
    cluster.advance(15000)
    assert [e for e in cluster.events if e.kind == "log_compacted"][0].data[
        "aborted_records_removed"
    ] == 1
    assert [r.value for r in cluster.read("orders", 0) if r.key == b"k"] == [b"committed"]


# --- exactly-once inside Kafka ----------------------------------------------------------------


def committed_offset(cluster: Cluster, group: str, tp: TopicPartition) -> int | None:
    if "groups" in cluster.services:
        return cluster.describe_group(group).offsets.get(tp)
    return cluster.services["transactions"].committed_offset(group, tp)


def consume_transform_produce(
    cluster: Cluster,
    producer,
    group: str,
    crash_before_commit: bool = False,  # type: ignore[no-untyped-def]
    side_effects: list[bytes] | None = None,
) -> int:
    """Read `payments` from the group's committed offset, write `receipts` and the offsets in
    one transaction. Returns how many records it processed."""
    source = TopicPartition("payments", 0)
    consumer = cluster.consumer(
        {"isolation.level": "read_committed", "auto.offset.reset": "earliest"}
    )
    consumer.assign([source])
    start = committed_offset(cluster, group, source)
    if start is not None:
        consumer.seek(source, start)
    records = []
    for _ in range(5):
        records += consumer.poll(timeout_ms=500)
    producer.begin_transaction()
    for record in records:
        producer.send("receipts", key=record.key, value=b"receipt:" + record.value)
        if side_effects is not None:
            side_effects.append(record.value)  # for example an e-mail: outside Kafka
    producer.send_offsets_to_transaction({source: records[-1].offset + 1}, group)
    if crash_before_commit:
        producer.abort_transaction()  # stands in for a crash: the transaction never commits
        return len(records)
    producer.commit_transaction()
    return len(records)


def setup_payments(cluster: Cluster, count: int) -> None:
    cluster.create_topic("payments", replication_factor=3)
    cluster.create_topic("receipts", replication_factor=3)
    producer = cluster.producer({"acks": "all"})
    for i in range(count):
        producer.send("payments", key=b"p%d" % i, value=b"%d" % i)
    producer.flush()


def test_consume_transform_produce_commits_output_and_offsets_atomically() -> None:
    cluster = Cluster(brokers=3)
    setup_payments(cluster, 4)
    producer = transactional(cluster, "receipts-app")
    source = TopicPartition("payments", 0)

    assert consume_transform_produce(cluster, producer, "billing", crash_before_commit=True) == 4
    cluster.advance(1000)
    assert committed_offset(cluster, "billing", source) is None  # T6: dropped on abort
    assert cluster.read("receipts", 0, isolation_level="read_committed") == []

    assert consume_transform_produce(cluster, producer, "billing") == 4
    cluster.advance(1000)
    assert committed_offset(cluster, "billing", source) == 4
    receipts = [r.value for r in cluster.read("receipts", 0, isolation_level="read_committed")]
    assert receipts == [b"receipt:%d" % i for i in range(4)]  # exactly once, despite the retry
    assert len(cluster.read("receipts", 0)) == 8  # the aborted attempt is still in the log

    cluster.producer({"acks": "all"}).send("payments", key=b"p4", value=b"4").get()
    assert consume_transform_produce(cluster, producer, "billing") == 1  # resumes at offset 4
    cluster.advance(1000)
    assert committed_offset(cluster, "billing", source) == 5


def test_an_external_side_effect_is_still_at_least_once() -> None:
    """Kafka's exactly-once covers what is written to Kafka; an e-mail sent while processing is
    repeated when the transaction does not commit and the records are processed again."""
    cluster = Cluster(brokers=3)
    setup_payments(cluster, 3)
    producer = transactional(cluster, "mailer")
    emails: list[bytes] = []
    consume_transform_produce(
        cluster, producer, "mail", crash_before_commit=True, side_effects=emails
    )
    consume_transform_produce(cluster, producer, "mail", side_effects=emails)
    cluster.advance(1000)
    assert [r.value for r in cluster.read("receipts", 0, isolation_level="read_committed")] == [
        b"receipt:0",
        b"receipt:1",
        b"receipt:2",
    ]
    assert emails == [b"0", b"1", b"2", b"0", b"1", b"2"]  # every e-mail went out twice


def test_a_cluster_with_transactions_is_rebuilt_from_its_log() -> None:
    cluster = Cluster(brokers=3)
    setup_payments(cluster, 3)
    producer = transactional(cluster, "receipts-app")
    consume_transform_produce(cluster, producer, "billing", crash_before_commit=True)
    consume_transform_produce(cluster, producer, "billing")
    zombie_fencer = transactional(cluster, "receipts-app")
    zombie_fencer.begin_transaction()
    zombie_fencer.send("receipts", value=b"open")
    cluster.advance(3000)
    log = cluster.export_log()
    assert any(entry["op"] == "producer.send_offsets_to_transaction" for entry in log)
    rebuilt = Cluster.from_log(log)
    assert rebuilt.snapshot() == cluster.snapshot()
    assert rebuilt.snapshot()["transactions"]["transactions"][0]["state"] == "Ongoing"


# --- the random-fault harness, with transactions --------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_faults_never_show_an_aborted_record_to_read_committed(seed: int) -> None:
    import random

    from engine.errors import KafkaError

    chooser = random.Random(seed)
    cluster = Cluster(brokers=3, seed=seed, config={"transaction.state.log.num.partitions": 3})
    cluster.create_topic(
        "orders", partitions=2, replication_factor=3, config={"min.insync.replicas": 2}
    )
    settings = {"transactional.id": "harness", "request.timeout.ms": 3000, "max.block.ms": 20000}
    producer = cluster.producer(settings)
    producer.init_transactions()
    committed: set[bytes] = set()
    aborted: set[bytes] = set()
    for txn in range(12):
        values = [b"t%d-%d" % (txn, i) for i in range(chooser.randint(1, 4))]
        try:
            producer.begin_transaction()
            for value in values:
                producer.send("orders", value=value, partition=chooser.randint(0, 1))
            fault = chooser.random()
            if fault < 0.3:
                cluster.lose_responses(chooser.randint(1, 3), 1)
            elif fault < 0.45 and all(b.alive for b in cluster.brokers()):
                cluster.stop_broker(chooser.randint(1, 3))
            elif fault < 0.6:
                for broker in cluster.brokers():
                    if not broker.alive:
                        cluster.start_broker(broker.id)
            producer.flush()  # the records reach the log whatever the outcome
            if chooser.random() < 0.5:
                producer.commit_transaction()
                committed.update(values)
            else:
                producer.abort_transaction()
                aborted.update(values)
        except KafkaError:
            # Outcome unknown: a new instance fences this one and aborts whatever was open.
            producer = cluster.producer(settings)
            producer.init_transactions()
        cluster.advance(chooser.choice([10, 1000, 4000]))
    for broker in cluster.brokers():
        if not broker.alive:
            cluster.start_broker(broker.id)
    cluster.advance(30000)
    assert committed and aborted
    in_logs = {r.value for p in (0, 1) for r in cluster.read("orders", p)}
    assert aborted & in_logs  # aborted records are there for read_uncommitted to see
    for partition in (0, 1):
        consumer = cluster.consumer(
            {"isolation.level": "read_committed", "auto.offset.reset": "earliest"}
        )
        tp = TopicPartition("orders", partition)
        consumer.assign([tp])
        end = cluster.describe_topic("orders").partitions[partition].last_stable_offset
        seen = []
        for _ in range(60):  # a lost response may still be pending: allow a request timeout
            seen += [r.value for r in consumer.poll(timeout_ms=1000)]
            if consumer.positions.get(tp) == end:
                break
        assert consumer.positions.get(tp) == end
        assert not set(seen) & aborted
        assert len(seen) == len(set(seen))
        in_partition = {r.value for r in cluster.read("orders", partition)}
        assert committed & in_partition <= set(seen)
        description = cluster.describe_topic("orders").partitions[partition]
        assert description.last_stable_offset == description.high_watermark


# --- the coordinator's state lives in its log --------------------------------------------------


def state_records(cluster: Cluster, transactional_id: str) -> list[str]:
    """The states written for a transactional id, as the state partition's leader has them."""
    import json

    number = cluster.services["transactions"].partition_for(transactional_id)
    return [
        json.loads(r.value)["state"]
        for r in cluster.read(TRANSACTION_STATE_TOPIC, number)
        if r.key == transactional_id.encode()
    ]


def test_end_txn_is_answered_only_once_prepare_commit_is_replicated() -> None:
    cluster = Cluster(brokers=3)
    cluster.create_topic("orders", partitions=3)
    producer = transactional(cluster, max_block_ms=5000)
    coordinator = producer.transaction.coordinator
    partition = next(
        p.partition for p in cluster.describe_topic("orders").partitions if p.leader == coordinator
    )
    producer.begin_transaction()
    producer.send("orders", value=b"x", partition=partition).get()
    for broker in cluster.brokers():
        if broker.id != coordinator:
            cluster.stop_broker(broker.id)  # the state partition's followers are gone
    with pytest.raises(KafkaTimeoutError):
        producer.commit_transaction()
    # PrepareCommit sits in the leader's log, but it was never acknowledged, so never applied.
    assert state_records(cluster, "orders-app")[-1] == "PrepareCommit"
    assert cluster.services["transactions"].describe_transaction("orders-app")["state"] == "Ongoing"
    assert [e for e in cluster.events if e.kind == "transaction_committed"] == []
    # Once the followers are back, calling commit_transaction again finishes the commit.
    for broker in cluster.brokers():
        cluster.start_broker(broker.id)
    cluster.advance(20000)
    producer.commit_transaction()
    cluster.advance(1000)
    assert state_records(cluster, "orders-app")[-1] == "CompleteCommit"
    assert [
        r.value for r in cluster.read("orders", partition, isolation_level="read_committed")
    ] == [b"x"]


def test_a_coordinator_failover_between_prepare_commit_and_complete_commit() -> None:
    cluster = Cluster(brokers=3)
    cluster.create_topic("orders", replication_factor=3)
    producer = transactional(cluster)
    producer.begin_transaction()
    producer.send("orders", value=b"x", partition=0).get()
    old = producer.transaction.coordinator
    producer.commit_transaction()  # PrepareCommit is replicated; the markers are on their way
    cluster.stop_broker(old)  # ... and the coordinator dies before it can write CompleteCommit
    assert state_records(cluster, "orders-app")[-1] == "PrepareCommit"
    cluster.advance(15000)
    [loaded] = [e for e in cluster.events if e.kind == "txn_coordinator_loaded"]
    assert loaded.data["broker"] != old and loaded.data["completing"] == ["orders-app"]
    [committed] = [e for e in cluster.events if e.kind == "transaction_committed"]
    assert committed.data["coordinator"] == loaded.data["broker"]
    assert state_records(cluster, "orders-app")[-1] == "CompleteCommit"
    description = cluster.services["transactions"].describe_transaction("orders-app")
    assert description["state"] == "CompleteCommit"
    assert [r.value for r in cluster.read("orders", 0, isolation_level="read_committed")] == [b"x"]
    lso, hw = partition_state(cluster)
    assert lso == hw
    # The producer goes on with the new coordinator.
    producer.begin_transaction()
    producer.send("orders", value=b"y", partition=0)
    producer.commit_transaction()
    assert producer.transaction.coordinator == loaded.data["broker"]
    assert Cluster.from_log(cluster.export_log()).snapshot() == cluster.snapshot()


def test_a_restarted_single_broker_reloads_an_open_transaction_from_its_log() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    producer = transactional(cluster)
    producer.begin_transaction()
    producer.send("orders", value=b"x", partition=0).get()
    coordinator = cluster.broker_by_id(1).services["transactions"]
    cluster.stop_broker(1)
    assert coordinator.transactions == {}  # memory is gone with the process
    cluster.start_broker(1)
    cluster.advance(3000)
    assert coordinator.transactions["orders-app"].state == "Ongoing"
    producer.commit_transaction()
    cluster.advance(1000)
    assert [r.value for r in cluster.read("orders", 0, isolation_level="read_committed")] == [b"x"]


# --- offsets in a transaction go to the group coordinator (T6, KIP-447) -----------------------


def offsets_partition(cluster: Cluster, group: str):  # type: ignore[no-untyped-def]
    number = cluster.services["groups"].partition_for(group)
    return cluster.describe_topic("__consumer_offsets").partitions[number]


def test_transactional_offsets_wait_in_consumer_offsets_until_the_commit_marker() -> None:
    cluster = Cluster(brokers=3)
    setup_payments(cluster, 4)
    source = TopicPartition("payments", 0)
    producer = transactional(cluster, "receipts-app")
    producer.begin_transaction()
    producer.send("receipts", value=b"receipt")
    producer.send_offsets_to_transaction({source: 4}, "billing")
    # Written to the group's partition as the producer's transactional batch: it holds the LSO.
    pending = offsets_partition(cluster, "billing")
    assert pending.last_stable_offset < pending.high_watermark
    assert committed_offset(cluster, "billing", source) is None
    producer.commit_transaction()
    cluster.advance(1000)
    assert committed_offset(cluster, "billing", source) == 4
    done = offsets_partition(cluster, "billing")
    assert done.last_stable_offset == done.high_watermark
    [event] = [e for e in cluster.events if e.kind == "offsets_committed"]
    assert event.data["transactional"] and event.data["offsets"] == [["payments", 0, 4]]


def test_aborted_transactional_offsets_stay_dropped_across_group_coordinator_failovers() -> None:
    cluster = Cluster(brokers=3)
    setup_payments(cluster, 4)
    source = TopicPartition("payments", 0)
    producer = transactional(cluster, "receipts-app")
    producer.begin_transaction()
    producer.send_offsets_to_transaction({source: 2}, "billing")
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send_offsets_to_transaction({source: 4}, "billing")
    producer.abort_transaction()
    cluster.advance(1000)
    assert committed_offset(cluster, "billing", source) == 2
    first = cluster.describe_group("billing").coordinator
    cluster.stop_broker(first)
    cluster.advance(15000)
    second = cluster.describe_group("billing").coordinator
    assert second not in (first, -1)
    # The new coordinator rebuilt the group from the log: the committed offset, not the aborted.
    assert committed_offset(cluster, "billing", source) == 2
    # An offset still pending when the coordinator moves is completed by the new one.
    cluster.start_broker(first)
    cluster.advance(15000)  # back in the ISRs (the state log needs two in sync)
    producer.begin_transaction()
    producer.send_offsets_to_transaction({source: 3}, "billing")
    cluster.stop_broker(second)
    producer.commit_transaction()
    cluster.advance(15000)
    assert cluster.describe_group("billing").coordinator not in (second, -1)
    assert committed_offset(cluster, "billing", source) == 3


def test_send_offsets_with_the_consumers_group_metadata_checks_its_generation() -> None:
    from engine.clients.producer.transaction_manager import consumer_group_metadata
    from engine.errors import CommitFailedError

    cluster = Cluster(brokers=3)
    setup_payments(cluster, 4)
    source = TopicPartition("payments", 0)
    settings = {
        "group.id": "billing",
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    }
    consumer = cluster.consumer(settings)
    consumer.subscribe(["payments"])
    records = []
    for _ in range(20):
        records += consumer.poll(timeout_ms=500)
        if len(records) == 4:
            break
    assert len(records) == 4
    metadata = consumer_group_metadata(consumer)
    assert metadata.group_id == "billing" and metadata.generation_id >= 1
    producer = transactional(cluster, "receipts-app")
    producer.begin_transaction()
    producer.send_offsets_to_transaction({source: 4}, metadata)
    producer.commit_transaction()
    cluster.advance(1000)
    assert committed_offset(cluster, "billing", source) == 4

    other = cluster.consumer(settings)
    other.subscribe(["payments"])
    for _ in range(30):  # a rebalance: the generation moves on
        consumer.poll(timeout_ms=200)
        other.poll(timeout_ms=200)
        if cluster.describe_group("billing").generation > metadata.generation_id:
            break
    assert cluster.describe_group("billing").generation > metadata.generation_id
    producer.begin_transaction()
    with pytest.raises(CommitFailedError):
        producer.send_offsets_to_transaction({source: 1}, metadata)  # a zombie consumer's view
    producer.abort_transaction()
    cluster.advance(1000)
    assert committed_offset(cluster, "billing", source) == 4
    # A plain group id skips the member check, as Kafka's older TxnOffsetCommit does.
    producer.begin_transaction()
    producer.send_offsets_to_transaction({source: 3}, "billing")
    producer.commit_transaction()
    cluster.advance(1000)
    assert committed_offset(cluster, "billing", source) == 3
    # The group metadata is part of the exported log, so the run replays.
    rebuilt = Cluster.from_log(cluster.export_log())
    assert rebuilt.snapshot() == cluster.snapshot()


def test_batches_still_queued_when_the_transaction_aborts_fail_with_transaction_aborted() -> None:
    from engine import errors
    from engine.clients.producer import transaction_manager

    assert transaction_manager.TransactionAbortedError is errors.TransactionAbortedError
    assert errors.TransactionAbortedError.code is None
    assert errors.TransactionAbortedError.retriable is False
    assert errors.TransactionAbortedError().kafka_name == "TransactionAbortedException"
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    producer = transactional(cluster, linger_ms=5000)
    producer.begin_transaction()
    future = producer.send("orders", value=b"never sent", partition=0)
    producer.abort_transaction()
    with pytest.raises(errors.TransactionAbortedError):
        future.get()
    assert cluster.read("orders", 0) == []


# --- the aborted-transaction index ---------------------------------------------------------------


def test_every_replica_indexes_aborted_transactions_as_their_marker_is_appended() -> None:
    cluster = Cluster(brokers=3)
    cluster.create_topic("orders", replication_factor=3)
    producer = transactional(cluster)
    producer.begin_transaction()
    producer.send("orders", value=b"kept", partition=0)
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send("orders", value=b"a", partition=0)
    producer.send("orders", value=b"b", partition=0).get()
    producer.abort_transaction()
    cluster.advance(2000)
    pid = producer.producer_id
    for broker_id in (1, 2, 3):
        replica = cluster.broker_by_id(broker_id).partitions[ORDERS]
        assert [tuple(e) for e in replica.producer_state.aborted_index.entries] == [(pid, 2, 4)]
        # read_committed fetches are answered from the index, not from a scan of the log.
        assert cluster.aborted_transactions(replica, 0, 5) == [(pid, 2)]
        assert cluster.aborted_transactions(replica, 5, 6) == []
        replica.producer_state.aborted_index.clear()
        assert cluster.aborted_transactions(replica, 0, 5) == []


def test_the_aborted_transaction_index_follows_retention_and_truncation() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders", config={"segment.bytes": 200, "retention.ms": 60000})
    producer = transactional(cluster, linger_ms=0)
    producer.begin_transaction()
    producer.send("orders", value=b"aborted", partition=0).get()
    producer.abort_transaction()
    cluster.advance(1000)  # the marker is written after EndTxn is answered
    index = cluster.broker_by_id(1).partitions[ORDERS].producer_state.aborted_index
    assert len(index.entries) == 1
    plain = cluster.producer({"linger.ms": 0})
    for i in range(6):
        plain.send("orders", value=b"filler-%d" % i, partition=0).get()
    cluster.advance(400000)  # retention deletes the old segments, the marker's among them
    assert cluster.describe_topic("orders").partitions[0].log_start_offset > 1
    assert index.entries == []


# --- markers and the coordinator epoch (Kafka: ProducerAppendInfo.checkCoordinatorEpoch) -----


def test_a_marker_from_an_older_coordinator_epoch_is_fenced_and_writes_nothing() -> None:
    cluster = Cluster(brokers=3, seed=9)
    cluster.create_topic("orders", 1, 3)
    transactional(cluster)  # creates __transaction_state and loads the id's state
    number = cluster.services["transactions"].partition_for("orders-app")
    state = cluster.describe_topic(TRANSACTION_STATE_TOPIC).partitions[number]
    # The coordinator fails over: its successor loads the state at a newer leader epoch.
    cluster.stop_broker(state.leader)
    cluster.advance(15_000)
    current = cluster.describe_topic(TRANSACTION_STATE_TOPIC).partitions[number]
    assert current.leader != state.leader
    producer = transactional(cluster)
    producer.begin_transaction()
    producer.send("orders", value=b"v", partition=0).get()
    producer.commit_transaction()
    cluster.advance(1000)  # the markers go out after EndTxn is answered
    leader = cluster.broker_by_id(cluster.describe_topic("orders").partitions[0].leader)
    partition = leader.partitions[ORDERS]
    entry = partition.producer_state.producers[producer.producer_id]
    markers = [b for b in partition.log.iter_batches(0) if b.is_control]
    assert [marker_coordinator_epoch(b.records[0].value) for b in markers] == [current.leader_epoch]
    assert entry.coordinator_epoch == current.leader_epoch >= 1

    answers: list[str] = []
    end = partition.log.log_end_offset
    zombie_epoch = current.leader_epoch - 1
    write_txn_marker(
        leader,
        ORDERS,
        producer.producer_id,
        producer.producer_epoch,
        "ABORT",
        answers.append,
        zombie_epoch,
    )
    cluster.advance(1000)
    assert answers == ["TRANSACTION_COORDINATOR_FENCED"]
    assert partition.log.log_end_offset == end
    write_txn_marker(
        leader,
        ORDERS,
        producer.producer_id,
        producer.producer_epoch,
        "ABORT",
        answers.append,
        current.leader_epoch,
    )
    cluster.advance(1000)
    assert answers[-1] == ""  # the current coordinator may write markers
    assert partition.log.log_end_offset == end + 1


def test_pending_transactional_offsets_of_a_deleted_topic_are_not_committed() -> None:
    # Kafka's onPartitionsDeleted also tombstones offsets pending in open transactions, so the
    # COMMIT marker that comes later does not bring them back, in memory or from the log.
    cluster = Cluster(brokers=3)
    setup_payments(cluster, 4)
    cluster.create_topic("refunds", replication_factor=3)
    source, kept = TopicPartition("payments", 0), TopicPartition("refunds", 0)
    producer = transactional(cluster, "receipts-app")
    producer.begin_transaction()
    producer.send("receipts", value=b"receipt")
    producer.send_offsets_to_transaction({source: 4, kept: 2}, "billing")
    cluster.delete_topic("payments")
    cluster.advance(1000)
    producer.commit_transaction()
    cluster.advance(1000)
    assert cluster.describe_group("billing").offsets == {kept: 2}
    coordinator = cluster.describe_group("billing").coordinator
    cluster.stop_broker(coordinator)
    cluster.advance(15_000)
    assert cluster.describe_group("billing").coordinator not in (coordinator, -1)
    assert cluster.describe_group("billing").offsets == {kept: 2}
