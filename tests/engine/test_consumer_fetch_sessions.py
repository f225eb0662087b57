"""A consumer's incremental fetch sessions (KIP-227): full then incremental fetches, session
epochs, a partition carried (and answered) only when it changed, the session reset on errors and
lost answers, the leader's bounded session cache; and the work done lazily (consumer sessions,
follower sessions, sleeping ISR checks) gives the same run as the same work done eagerly."""

from __future__ import annotations

from typing import Any

import pytest

from engine import Cluster, TopicPartition
from engine.clients.consumer.fetch_sessions import FetchSessionHandler, FetchSessionRequest
from engine.common.requests.fetch import (
    FETCH_SESSION_ID_NOT_FOUND,
    FINAL_EPOCH,
    INVALID_FETCH_SESSION_EPOCH,
    FetchRequest,
    FetchResponse,
)
from engine.server import kafka_apis
from engine.server.broker import Broker
from engine.server.fetch_session import ConsumerFetchSessionCache
from engine.server.kafka_apis import KafkaApis

TPS = [TopicPartition("orders", p) for p in range(3)]


class Wire:
    """Every consumer fetch the brokers get, with the answer each one sent back."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.exchanges: list[tuple[int, FetchRequest, list[FetchResponse]]] = []
        # Answers to drop on the way back (a lost response), counted down.
        self.lose = 0
        original = KafkaApis.handle
        wire = self

        def handle(apis: KafkaApis, request: Any, reply: Any) -> None:
            if not isinstance(request, FetchRequest):
                original(apis, request, reply)
                return
            answers: list[FetchResponse] = []
            wire.exchanges.append((apis.broker.id, request, answers))

            def recording_reply(response: Any) -> None:
                answers.append(response)
                if wire.lose:
                    wire.lose -= 1
                    return
                reply(response)

            original(apis, request, recording_reply)

        monkeypatch.setattr(KafkaApis, "handle", handle)

    def to(self, broker_id: int) -> list[tuple[FetchRequest, FetchResponse | None]]:
        return [
            (request, answers[0] if answers else None)
            for broker, request, answers in self.exchanges
            if broker == broker_id
        ]


def _one_broker_cluster() -> Cluster:
    cluster = Cluster(brokers=1, seed=2)
    cluster.create_topic("orders", 3, 1)
    return cluster


def _consumer(cluster: Cluster) -> Any:
    consumer = cluster.consumer({"auto.offset.reset": "earliest"})
    consumer.assign(TPS)
    for tp in TPS:
        consumer.seek(tp, 0)  # every position known: the first fetch asks for all of them
    return consumer


def test_the_first_fetch_is_full_and_later_ones_are_incremental_in_epoch_order(monkeypatch):
    cluster = _one_broker_cluster()
    wire = Wire(monkeypatch)
    consumer = _consumer(cluster)
    producer = cluster.producer()
    for i in range(6):
        producer.send("orders", value=b"v%d" % i, partition=i % 3)
        producer.flush()
        consumer.poll(200)
    exchanges = wire.to(1)
    first, first_answer = exchanges[0]
    assert (first.session_id, first.session_epoch) == (0, 0)
    assert sorted(first.fetch_offsets) == TPS  # every partition it fetches from that broker
    assert first_answer is not None and first_answer.session_id > 0
    assert sorted(first_answer.responses) == TPS  # a full answer covers them all
    session = first_answer.session_id
    later = exchanges[1:]
    assert later
    assert [request.session_epoch for request, _ in later] == list(range(1, len(later) + 1))
    assert {request.session_id for request, _ in later} == {session}
    # the broker keeps the session, at the next epoch it expects
    held = cluster.broker_by_id(1).consumer_fetch_sessions.sessions[session]
    assert held.epoch == len(later) + 1
    assert sorted(held.partitions) == TPS
    assert sum(consumer.position(tp) for tp in TPS) == 6  # every record reached the consumer


def test_a_partition_is_sent_and_answered_only_when_it_changed(monkeypatch):
    cluster = _one_broker_cluster()
    consumer = _consumer(cluster)
    consumer.poll(500)  # the session is open, every partition at offset 0
    wire = Wire(monkeypatch)
    producer = cluster.producer()
    producer.send("orders", value=b"only-p1", partition=1)
    producer.flush()
    records = []
    for _ in range(4):
        records.extend(consumer.poll(200))
    assert [(r.partition, r.value) for r in records] == [(1, b"only-p1")]
    exchanges = wire.to(1)
    assert all(request.session_epoch > 0 for request, _ in exchanges)
    answered = [sorted(answer.responses) for _, answer in exchanges if answer is not None]
    # partitions 0 and 2 have nothing new: no answer ever carries them
    assert TPS[1:2] in answered
    assert all(tps in ([], TPS[1:2]) for tps in answered)
    # and only the fetch after the record moved partition 1's offset carries it
    sent = [sorted(request.fetch_offsets) for request, _ in exchanges]
    assert sent.count(TPS[1:2]) == 1
    assert all(tps in ([], TPS[1:2]) for tps in sent)
    offsets = [request.fetch_offsets for request, _ in exchanges if request.fetch_offsets]
    assert offsets == [{TPS[1]: 1}]


def test_partitions_no_longer_fetched_are_forgotten_and_come_back_as_additions(monkeypatch):
    cluster = _one_broker_cluster()
    consumer = _consumer(cluster)
    consumer.poll(500)
    wire = Wire(monkeypatch)
    consumer.pause([TPS[0]])
    consumer.poll(600)
    consumer.resume([TPS[0]])
    consumer.poll(600)
    requests = [request for request, _ in wire.to(1)]
    assert requests[0].forgotten == (TPS[0],)
    assert requests[0].fetch_offsets == {}
    back = next(r for r in requests if TPS[0] in r.fetch_offsets)
    assert back.session_epoch > 0 and back.fetch_offsets == {TPS[0]: 0}


def test_an_unknown_session_is_answered_with_an_error_and_the_next_fetch_is_full(monkeypatch):
    cluster = _one_broker_cluster()
    consumer = _consumer(cluster)
    consumer.poll(500)
    cluster.broker_by_id(1).consumer_fetch_sessions.clear()  # as after a restart
    wire = Wire(monkeypatch)
    producer = cluster.producer()
    producer.send("orders", value=b"after", partition=2)
    producer.flush()
    records = []
    for _ in range(4):
        records.extend(consumer.poll(200))
    assert [r.value for r in records] == [b"after"]
    exchanges = wire.to(1)
    at = next(i for i, (_, answer) in enumerate(exchanges) if answer and answer.error)
    (failed, error), (full, answer) = exchanges[at : at + 2]
    assert failed.session_epoch > 0
    assert error is not None and error.error == FETCH_SESSION_ID_NOT_FOUND
    assert error.responses == {}
    assert (full.session_id, full.session_epoch) == (0, 0)  # forgotten, a new one asked for
    assert sorted(full.fetch_offsets) == TPS
    assert answer is not None and answer.session_id > 0
    errors = cluster.network.request_errors["fetch"]
    assert errors[FETCH_SESSION_ID_NOT_FOUND] == 1


def test_an_epoch_out_of_step_closes_the_session_with_a_full_fetch(monkeypatch):
    cluster = _one_broker_cluster()
    consumer = _consumer(cluster)
    consumer.poll(100)
    handler = consumer.fetch_sessions[1]
    while handler.epoch < 2:  # the session is open and in use
        consumer.poll(200)
    session = handler.session_id
    handler.epoch += 3  # as if answers were lost on the way
    wire = Wire(monkeypatch)
    for _ in range(3):
        consumer.poll(600)
    exchanges = wire.to(1)
    at = next(i for i, (_, answer) in enumerate(exchanges) if answer and answer.error)
    (failed, error), (full, answer) = exchanges[at : at + 2]
    assert error is not None and error.error == INVALID_FETCH_SESSION_EPOCH
    assert failed.session_id == session and error.responses == {}
    # the next full fetch names the old session, which the broker closes for a new one
    assert (full.session_id, full.session_epoch) == (session, 0)
    assert answer is not None and answer.session_id not in (0, session)
    sessions = cluster.broker_by_id(1).consumer_fetch_sessions.sessions
    assert session not in sessions and answer.session_id in sessions


def test_a_lost_answer_makes_the_next_fetch_full(monkeypatch):
    cluster = _one_broker_cluster()
    consumer = _consumer(cluster)
    consumer.poll(500)
    wire = Wire(monkeypatch)
    wire.lose = 1  # the answer to the consumer's next fetch never arrives
    producer = cluster.producer({"acks": 1})
    producer.send("orders", value=b"x", partition=0)
    producer.flush()
    records: list[Any] = []
    for _ in range(60):
        records.extend(consumer.poll(1_000))
        if records:
            break
    assert [r.value for r in records] == [b"x"]
    requests = [request for request, _ in wire.to(1)]
    lost = requests[0]
    assert lost.session_id > 0 and lost.session_epoch > 0
    # after request.timeout.ms the consumer closes the session and opens another
    assert (requests[1].session_id, requests[1].session_epoch) == (lost.session_id, 0)
    assert sorted(requests[1].fetch_offsets) == TPS


def test_a_moved_leader_gets_the_partition_added_to_the_session_there(monkeypatch):
    cluster = Cluster(brokers=3, seed=4)
    cluster.create_topic("orders", 3, 3)
    consumer = _consumer(cluster)
    for _ in range(3):
        consumer.poll(300)
    leaders = {p.partition: p.leader for p in cluster.describe_topic("orders").partitions}
    assert len(set(leaders.values())) == 3
    old = leaders[0]
    wire = Wire(monkeypatch)
    cluster.stop_broker(old)
    producer = cluster.producer({"acks": "all"})
    producer.send("orders", value=b"moved", partition=0)
    producer.flush()
    records: list[Any] = []
    for _ in range(80):
        records.extend(consumer.poll(500))
        if records:
            break
    assert [r.value for r in records] == [b"moved"]
    new = cluster.describe_topic("orders").partitions[0].leader
    assert new != old
    to_new = [request for request, _ in wire.to(new)]
    # the new leader's session already existed: partition 0 joins it in an incremental fetch
    joined = next(r for r in to_new if TPS[0] in r.fetch_offsets)
    assert joined.session_epoch > 0
    held = cluster.broker_by_id(new).consumer_fetch_sessions.sessions[joined.session_id]
    assert TPS[0] in held.partitions


def test_a_full_session_cache_answers_without_a_session_and_the_consumer_stays_full(
    monkeypatch,
):
    monkeypatch.setattr(Broker, "__init__", _with_one_session_slot(Broker.__init__))
    cluster = _one_broker_cluster()
    first = _consumer(cluster)
    first.poll(500)
    wire = Wire(monkeypatch)
    second = _consumer(cluster)
    for _ in range(3):
        second.poll(600)
    assert len(cluster.broker_by_id(1).consumer_fetch_sessions.sessions) == 1
    mine = [
        (request, answer)
        for request, answer in wire.to(1)
        if request.session_id != first.fetch_sessions[1].session_id
    ]
    assert len(mine) >= 2
    assert all(request.session_epoch == 0 for request, _ in mine)
    assert all(answer is None or answer.session_id == 0 for _, answer in mine)


def _with_one_session_slot(init: Any) -> Any:
    def patched(self: Broker, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.consumer_fetch_sessions = ConsumerFetchSessionCache(slots=1)

    return patched


def test_the_session_handler_follows_kafkas_rules():
    handler = FetchSessionHandler()
    first = handler.build({TPS[0]: 5, TPS[1]: 7})
    assert first.full and first.session_id == 0 and first.offsets == {TPS[0]: 5, TPS[1]: 7}
    assert handler.handle_response(first, FetchResponse({}, "", 42))
    assert (handler.session_id, handler.epoch) == (42, 1)
    second = handler.build({TPS[0]: 6, TPS[2]: 0})
    assert (second.session_id, second.epoch) == (42, 1)
    assert second.offsets == {TPS[0]: 6, TPS[2]: 0} and second.forgotten == (TPS[1],)
    assert handler.handle_response(second, FetchResponse({}, "", 42))
    third = handler.build({TPS[0]: 6, TPS[2]: 0})
    assert third.offsets == {} and third.forgotten == () and third.epoch == 2
    handler.handle_error()
    assert handler.build({TPS[0]: 6}).full
    assert not handler.handle_response(third, FetchResponse({}, INVALID_FETCH_SESSION_EPOCH))
    assert handler.session_id == 42
    assert not handler.handle_response(third, FetchResponse({}, FETCH_SESSION_ID_NOT_FOUND))
    assert handler.session_id == 0


# --- lazy vs eager: the same run -------------------------------------------------------------


def _lesson_run(seed: int) -> tuple[Any, Any]:
    """A lesson cluster with a producer app and a group of two, through faults: a broker
    stopped and restarted, a network partition, a topic created and deleted, two brokers down."""
    cluster = Cluster(brokers=3, seed=seed)
    cluster.create_topic("orders", 3, 3, {"min.insync.replicas": 2})
    cluster.apps.producer_app("orders", rate_per_sec=20, acks="all")
    cluster.apps.consumer_app("orders-group", "orders", poll_interval_ms=100)
    cluster.apps.consumer_app("orders-group", "orders", poll_interval_ms=100)
    cluster.advance(12_000)
    cluster.stop_broker(2)
    cluster.advance(9_000)
    cluster.partition_network([{1, "clients"}])
    cluster.advance(7_000)
    cluster.heal_network()
    cluster.start_broker(2)
    cluster.advance(15_000)
    cluster.create_topic("other", 2, 3)
    cluster.advance(3_000)
    cluster.delete_topic("other")
    cluster.advance(4_000)
    cluster.stop_broker(1)
    cluster.stop_broker(3)
    cluster.advance(12_000)
    cluster.start_broker(1)
    cluster.start_broker(3)
    cluster.advance(30_000)
    events = [(e.time_ms, e.kind, e.data) for e in cluster.events]
    return cluster.snapshot(), events


def _idle_run(seed: int) -> tuple[Any, Any]:
    """Long idle stretches (where the ISR checks sleep) between bursts, a follower stopped in
    one and a leader in another, a consumer reading through it all."""
    cluster = Cluster(brokers=3, seed=seed)
    cluster.create_topic("orders", 3, 3, {"min.insync.replicas": 2})
    producer = cluster.producer({"acks": "all"})
    consumer = cluster.consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders"])
    for round_number in range(4):
        for i in range(5):
            producer.send("orders", value=b"r%d-%d" % (round_number, i), key=b"k%d" % i)
        producer.flush()
        for _ in range(3):
            consumer.poll(300)
        cluster.advance(10 * 60 * 1000 + 777 * round_number)
        if round_number == 1:
            cluster.stop_broker(3)
        if round_number == 2:
            cluster.start_broker(3)
            cluster.advance(20_000)
            cluster.stop_broker(cluster.describe_topic("orders").partitions[0].leader)
    cluster.advance(60_000)
    events = [(e.time_ms, e.kind, e.data) for e in cluster.events]
    return cluster.snapshot(), events


RUNS = [(_lesson_run, 1), (_lesson_run, 3), (_idle_run, 2)]


def _sessionless_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    def build(self: FetchSessionHandler, offsets: Any) -> FetchSessionRequest:
        return FetchSessionRequest(dict(offsets), (), 0, FINAL_EPOCH)

    monkeypatch.setattr(FetchSessionHandler, "build", build)
    monkeypatch.setattr(FetchSessionHandler, "handle_response", lambda self, sent, r: True)


@pytest.mark.parametrize(("run", "seed"), RUNS)
def test_consumer_fetch_sessions_give_the_same_run_as_sessionless_fetches(monkeypatch, run, seed):
    lazy = run(seed)
    with monkeypatch.context() as patch:
        _sessionless_consumer(patch)
        sessions_used: list[int] = []
        original = kafka_apis.handle_consumer_session_fetch

        def counting(*args: Any) -> None:
            sessions_used.append(1)
            original(*args)

        patch.setattr(kafka_apis, "handle_consumer_session_fetch", counting)
        eager = run(seed)
        assert not sessions_used
    assert eager == lazy


@pytest.mark.parametrize(("run", "seed"), RUNS)
def test_sleeping_isr_checks_give_the_same_run_as_checks_every_interval(monkeypatch, run, seed):
    slept: list[bool] = []
    original = Broker._isr_checks_steady

    def steady(self: Broker) -> bool:
        slept.append(original(self))
        return slept[-1]

    monkeypatch.setattr(Broker, "_isr_checks_steady", steady)
    lazy = run(seed)
    assert any(slept)  # the checks did sleep in this run
    with monkeypatch.context() as patch:
        patch.setattr(Broker, "_isr_checks_steady", lambda self: False)
        eager = run(seed)
    assert eager == lazy


@pytest.mark.parametrize(("run", "seed"), RUNS)
def test_follower_sessions_give_the_same_run_as_full_fetches_every_time(monkeypatch, run, seed):
    from engine.server.fetch_session import FetchSessionHandler as FollowerHandler

    lazy = run(seed)
    with monkeypatch.context() as patch:
        patch.setattr(FollowerHandler, "wants_full", lambda self, layout: True)
        eager = run(seed)
    assert eager == lazy


def test_the_workload_benchmark_counts_function_calls_per_cluster_second():
    from scripts.bench.workload import WORKLOADS, calls_per_cluster_second

    idle, producing, consuming = (calls_per_cluster_second(name, 2) for name in WORKLOADS)
    assert 0 < idle < producing < consuming
