"""The idempotent producer (KAFKA_SEMANTICS I1-I3)."""

from __future__ import annotations

import pytest

from engine import Cluster, TopicPartition
from engine.common.records import Record, RecordBatch
from engine.errors import InvalidConfigurationError

ORDERS = TopicPartition("orders", 0)


def leader_of(cluster: Cluster, topic: str = "orders") -> int:
    return cluster.describe_topic(topic).partitions[0].leader


@pytest.mark.parametrize(("idempotent", "copies"), [(False, 2), (True, 1)])
def test_a_lost_response_is_retried_and_only_idempotence_prevents_the_duplicate(
    idempotent: bool, copies: int
) -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    producer = cluster.producer({"acks": "all", "enable.idempotence": idempotent})
    producer.send("orders", value=b"warmup").get()
    cluster.lose_responses(leader_of(cluster), 1)
    metadata = producer.send("orders", value=b"pay 10 EUR").get()
    written = [r.offset for r in cluster.read("orders", 0) if r.value == b"pay 10 EUR"]
    assert len(written) == copies
    assert metadata.offset == written[-1]  # without idempotence: the copy written by the retry
    retried = [e for e in cluster.events if e.kind == "produce_retried"]
    assert retried  # the client did retry in both cases
    assert bool([e for e in cluster.events if e.kind == "duplicate_batch"]) == idempotent


@pytest.mark.parametrize(("idempotent", "copies"), [(False, 2), (True, 1)])
def test_retries_across_a_leader_failover_stay_deduplicated(idempotent: bool, copies: int) -> None:
    cluster = Cluster(brokers=3)
    cluster.create_topic("orders", replication_factor=3)
    producer = cluster.producer({"acks": "all", "enable.idempotence": idempotent})
    producer.send("orders", value=b"warmup").get()
    old_leader = leader_of(cluster)
    cluster.lose_responses(old_leader, 1)
    future = producer.send("orders", value=b"pay 10 EUR")
    cluster.advance(500)  # written and replicated to the whole ISR; the answer is lost
    assert not future.done()
    cluster.stop_broker(old_leader)
    metadata = future.get()
    new_leader = leader_of(cluster)
    assert new_leader != old_leader
    written = [r.offset for r in cluster.read("orders", 0) if r.value == b"pay 10 EUR"]
    assert len(written) == copies
    assert metadata.offset == written[-1]  # without idempotence: the copy written by the retry
    duplicates = [e.data for e in cluster.events if e.kind == "duplicate_batch"]
    assert [d["broker"] for d in duplicates] == ([new_leader] if idempotent else [])


def _batch(producer_id: int, epoch: int, sequence: int, count: int = 1) -> RecordBatch:
    records = [Record(-1, 0, None, b"v%d" % (sequence + i), (), 20) for i in range(count)]
    return RecordBatch(
        base_offset=0,
        records=records,
        leader_epoch=-1,
        producer_id=producer_id,
        producer_epoch=epoch,
        base_sequence=sequence,
        size=60 + 20 * count,
        max_timestamp=0,
    )


def _produce(cluster: Cluster, batch: RecordBatch) -> tuple[str, int]:
    cluster.advance(100)  # the brokers learn about the topic
    outcome: list[tuple[str, int]] = []
    broker = cluster.broker_by_id(leader_of(cluster))
    broker.handle_produce(
        ORDERS, batch, 1, 30000, lambda error, base, _start: outcome.append((error, base))
    )
    assert outcome
    return outcome[0]


def test_a_gap_in_sequence_numbers_is_out_of_order_sequence() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    assert _produce(cluster, _batch(7, 0, 0, count=2)) == ("", 0)
    assert _produce(cluster, _batch(7, 0, 2)) == ("", 2)
    assert _produce(cluster, _batch(7, 0, 5)) == ("OUT_OF_ORDER_SEQUENCE_NUMBER", -1)
    assert _produce(cluster, _batch(7, 0, 3)) == ("", 3)


def test_the_broker_remembers_the_last_five_batches_of_a_producer() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    for sequence in range(7):
        assert _produce(cluster, _batch(7, 0, sequence)) == ("", sequence)
    assert _produce(cluster, _batch(7, 0, 2)) == ("", 2)  # within the window: original offset back
    assert _produce(cluster, _batch(7, 0, 6)) == ("", 6)
    assert _produce(cluster, _batch(7, 0, 1)) == ("OUT_OF_ORDER_SEQUENCE_NUMBER", -1)  # fell out
    assert len(cluster.read("orders", 0)) == 7


def test_an_older_epoch_is_invalid_producer_epoch() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    assert _produce(cluster, _batch(7, 1, 0)) == ("", 0)
    assert _produce(cluster, _batch(7, 0, 1)) == ("INVALID_PRODUCER_EPOCH", -1)
    assert _produce(cluster, _batch(7, 2, 0)) == ("", 1)  # a new epoch starts again at 0
    assert _produce(cluster, _batch(7, 3, 4)) == ("OUT_OF_ORDER_SEQUENCE_NUMBER", -1)


def test_idempotence_is_on_by_default() -> None:
    cluster = Cluster(brokers=1)
    producer = cluster.producer()
    assert producer.idempotent


@pytest.mark.parametrize(
    "conflict",
    [{"acks": 1}, {"acks": 0}, {"retries": 0}, {"max.in.flight.requests.per.connection": 6}],
)
def test_an_explicit_request_for_idempotence_with_a_conflicting_setting_is_an_error(
    conflict: dict,
) -> None:  # type: ignore[type-arg]
    cluster = Cluster(brokers=1)
    with pytest.raises(InvalidConfigurationError):
        cluster.producer({"enable.idempotence": True, **conflict})
    with pytest.raises(InvalidConfigurationError):
        cluster.producer({"enable.idempotence": "true", **conflict})


@pytest.mark.parametrize(
    "conflict",
    [{"acks": 1}, {"acks": "0"}, {"retries": 0}, {"max.in.flight.requests.per.connection": 6}],
)
def test_an_implicit_default_with_a_conflicting_setting_silently_turns_idempotence_off(
    conflict: dict,
) -> None:  # type: ignore[type-arg]
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    producer = cluster.producer(conflict)
    assert not producer.idempotent
    producer.send("orders", value=b"x")
    producer.flush()
    cluster.advance(100)
    log = cluster.broker_by_id(1).partitions[ORDERS].log
    assert [b.producer_id for b in log.iter_batches(0)] == [-1]


def test_an_idempotent_producer_gets_a_producer_id_and_numbers_its_batches() -> None:
    cluster = Cluster(brokers=1)
    cluster.create_topic("orders")
    producer = cluster.producer({"linger.ms": 0})
    for i in range(3):
        producer.send("orders", value=b"v%d" % i).get()
    batches = list(cluster.broker_by_id(1).partitions[ORDERS].log.iter_batches(0))
    assert {b.producer_id for b in batches} == {producer.producer_id}
    assert producer.producer_id >= 0
    assert [b.base_sequence for b in batches] == [0, 1, 2]


def test_a_transactional_producer_needs_idempotence() -> None:
    cluster = Cluster(brokers=1)
    with pytest.raises(InvalidConfigurationError):
        cluster.producer({"transactional.id": "t", "enable.idempotence": False})
    with pytest.raises(InvalidConfigurationError):
        cluster.producer({"transactional.id": "t", "acks": 1})


# --- the random-fault harness, with idempotent producers ------------------------------------


def _run_with_random_faults(seed: int, idempotent: bool) -> tuple[Cluster, list[bytes]]:
    """Sends under lost responses, broker crashes and restarts, chosen by a seeded random."""
    import random

    chooser = random.Random(seed)
    cluster = Cluster(brokers=3, seed=seed)
    cluster.create_topic("orders", replication_factor=3, config={"min.insync.replicas": 2})
    producer = cluster.producer(
        {"acks": "all", "enable.idempotence": idempotent, "request.timeout.ms": 3000}
    )
    futures = []
    sent: list[bytes] = []
    for step in range(40):
        action = chooser.random()
        if action < 0.5:
            value = b"s%d-%d" % (seed, step)
            futures.append(producer.send("orders", value=value))
            sent.append(value)
        elif action < 0.7:
            cluster.lose_responses(chooser.randint(1, 3), chooser.randint(1, 2))
        elif action < 0.8:
            if all(b.alive for b in cluster.brokers()):
                cluster.stop_broker(chooser.randint(1, 3))
        elif action < 0.9:
            for broker in cluster.brokers():
                if not broker.alive:
                    cluster.start_broker(broker.id)
        else:
            cluster.advance(chooser.choice([50, 500, 5000]))
    for broker in cluster.brokers():
        if not broker.alive:
            cluster.start_broker(broker.id)
    producer.flush()
    cluster.advance(20000)
    assert all(f.done() for f in futures)
    return cluster, sent


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_faults_never_duplicate_or_lose_what_an_idempotent_producer_sent(seed: int) -> None:
    cluster, sent = _run_with_random_faults(seed, idempotent=True)
    anomalies = [
        a
        for a in cluster.history.check()
        if a.kind in ("duplicated", "lost", "changed", "reordered")
    ]
    assert anomalies == []
    values = [r.value for r in cluster.read("orders", 0)]
    assert len(values) == len(set(values))
    assert set(values) <= set(sent)


def test_the_same_random_faults_do_duplicate_without_idempotence() -> None:
    """The harness can tell: without idempotence the same runs write duplicates."""
    duplicated = 0
    for seed in (1, 2, 3, 4):
        cluster, _sent = _run_with_random_faults(seed, idempotent=False)
        values = [r.value for r in cluster.read("orders", 0)]
        duplicated += len(values) - len(set(values))
    assert duplicated > 0


def test_a_lost_response_kills_the_connection_so_retries_stay_inside_the_dedupe_window() -> None:
    # Responses on one connection arrive in order: after a lost one, the connection is dead
    # until the request timeout closes it, so at most max.in.flight batches get appended behind
    # the unanswered one, and every retry is still recognised as a duplicate (I2).
    cluster = Cluster(brokers=3, seed=5)
    cluster.create_topic("t", 1, 3, {"min.insync.replicas": 2})
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    leader = cluster.describe_topic("t").partitions[0].leader
    futures = [producer.send("t", value=b"warm", key=b"k")]
    producer.flush()
    cluster.lose_responses(leader, count=1)
    for i in range(60):  # one record every 500 ms for 30 s: past request.timeout.ms
        futures.append(producer.send("t", value=b"v%d" % i, key=b"k"))
        cluster.advance(500)
    producer.flush()
    assert all(f.succeeded() for f in futures)
    assert not [e for e in cluster.events if e.kind == "produce_failed"]
    values = [r.value for r in cluster.read("t", 0)]
    assert values == [b"warm"] + [b"v%d" % i for i in range(60)]
    assert cluster.history.check() == []


def _run_multi_partition_faults(seed: int) -> Cluster:
    """Keyed sends to three partitions while responses get lost, brokers crash and clients are
    cut off from a broker long enough for batches to expire (an epoch bump, KIP-360)."""
    import random

    chooser = random.Random(seed)
    cluster = Cluster(brokers=3, seed=seed)
    cluster.create_topic("orders", 3, 3, {"min.insync.replicas": 2})
    producer = cluster.producer(
        {"acks": "all", "request.timeout.ms": 2000, "delivery.timeout.ms": 6000, "linger.ms": 0}
    )
    for step in range(80):
        action = chooser.random()
        if action < 0.55:
            key = b"key-%d" % chooser.randrange(6)
            producer.send("orders", value=b"%d-%d" % (seed, step), key=key)
        elif action < 0.7:
            cluster.lose_responses(chooser.randint(1, 3), chooser.randint(1, 3))
        elif action < 0.78:
            cluster.partition_network([{chooser.randint(1, 3)}, {"clients"}])
        elif action < 0.85:
            cluster.heal_network()
        elif action < 0.9:
            if all(b.alive for b in cluster.brokers()):
                cluster.stop_broker(chooser.randint(1, 3))
        elif action < 0.95:
            for broker in cluster.brokers():
                if not broker.alive:
                    cluster.start_broker(broker.id)
        else:
            cluster.advance(chooser.choice([500, 3000, 7000]))
        cluster.advance(chooser.randint(10, 300))
    cluster.heal_network()
    for broker in cluster.brokers():
        if not broker.alive:
            cluster.start_broker(broker.id)
    producer.flush()
    cluster.advance(20000)
    return cluster


@pytest.mark.parametrize("block", range(4))
def test_idempotent_sends_to_many_partitions_survive_faults_and_epoch_bumps(block: int) -> None:
    bumped = 0
    for seed in range(block, 40, 4):
        cluster = _run_multi_partition_faults(seed)
        anomalies = [
            a.to_dict()
            for a in cluster.history.check()
            if a.kind in ("duplicated", "lost", "changed", "reordered")
        ]
        assert anomalies == [], seed
        bumped += sum(1 for e in cluster.events if e.kind == "producer_epoch_bumped")
    assert bumped > 0  # the schedules did force epoch bumps
