"""The event catalogue: every kind the engine emits is listed with its payload type, and the
events a busy cluster produces fit their types."""

from __future__ import annotations

import ast
from pathlib import Path

from engine import Cluster, TopicPartition
from engine.common.events import PAYLOADS, EventKind, payload_problems

ENGINE = Path(__file__).resolve().parents[2] / "engine"
# Calls whose first argument is an event kind, and `_remove_member(group, id, kind, reason)`.
EMITTERS = {
    "emit": 0,
    "_emit": 0,
    "emit_log_event": 0,
    "_on_event": 0,
    "_remove_member": 2,
    "emit_buffer_event": 0,
}


def kinds_in_source() -> set[str]:
    """Every string constant the engine passes as an event kind (either branch of `a if c else
    b` counts)."""
    found: set[str] = set()
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            name = name or (node.func.id if isinstance(node.func, ast.Name) else None)
            position = EMITTERS.get(name or "")
            if position is None or len(node.args) <= position:
                continue
            argument = node.args[position]
            options = (
                [argument.body, argument.orelse] if isinstance(argument, ast.IfExp) else [argument]
            )
            found |= {o.value for o in options if isinstance(o, ast.Constant)}
    return found


def test_every_kind_the_engine_emits_is_in_the_catalogue_and_every_entry_is_emitted() -> None:
    emitted = kinds_in_source()
    assert emitted - {kind.value for kind in EventKind} == set()
    assert {kind.value for kind in EventKind} - emitted == set()
    assert set(PAYLOADS) == set(EventKind)


def test_the_engine_readme_lists_every_kind() -> None:
    readme = (ENGINE / "README.md").read_text()
    assert [k.value for k in EventKind if f"| `{k.value}` |" not in readme] == []


def test_event_kinds_stay_plain_snake_case_strings() -> None:
    cluster = Cluster(brokers=1, seed=1, controllers=1)
    cluster.create_topic("orders")
    created = [e for e in cluster.events if e.kind == EventKind.TOPIC_CREATED]
    assert created and type(created[0].kind) is str
    assert all(kind.value == kind.value.lower() and " " not in kind.value for kind in EventKind)


def test_the_checker_names_what_does_not_fit() -> None:
    assert payload_problems("topic_deleted", {"topic": "orders"}) == []
    assert payload_problems("topic_removed", {}) == ["'topic_removed' is not an event kind"]
    assert payload_problems("broker_stopped", {"broker": "1", "extra": 2}) == [
        "broker_stopped: 'controlled' is missing",
        "broker_stopped: 'broker' = '1' does not fit <class 'int'>",
        "broker_stopped: 'extra' is not a field of BrokerStopped",
    ]
    # Optional fields may be left out; `from` (a keyword in Python) is a field like any other.
    assert payload_problems("partitions_added", {"topic": "t", "from": 1, "to": 3}) == []


def test_the_events_of_a_busy_cluster_fit_their_payload_types() -> None:
    cluster = Cluster(brokers=3, seed=7)
    cluster.create_topic("orders", partitions=3, replication_factor=3)
    cluster.create_topic(
        "prices", partitions=1, replication_factor=3, config={"cleanup.policy": "compact"}
    )
    producer = cluster.producer({"acks": "all", "enable.idempotence": True})
    for i in range(60):
        producer.send("orders", key=f"k{i % 7}".encode(), value=b"v")
        producer.send("prices", key=f"p{i % 3}".encode(), value=str(i).encode())
    producer.flush()
    group = [cluster.consumer({"group.id": "billing"}) for _ in range(2)]
    for consumer in group:
        consumer.subscribe(["orders"])
    for _ in range(5):
        for consumer in group:
            consumer.poll(200)
            consumer.commit()
    txn = cluster.producer({"transactional.id": "orders-app"})
    txn.init_transactions()
    txn.begin_transaction()
    txn.send("orders", value=b"kept", partition=0)
    txn.commit_transaction()
    txn.begin_transaction()
    txn.send("orders", value=b"dropped", partition=0)
    txn.abort_transaction()
    cluster.apps.consumer_app("reports", ["orders"], poll_interval_ms=50)
    cluster.apps.producer_app("orders", rate_per_sec=20)
    cluster.stop_broker(2)
    cluster.advance(15_000)
    cluster.start_broker(2)
    cluster.partition_network([{1, 101}, {2, 3, 102, 103}])
    cluster.advance(10_000)
    cluster.heal_network()
    cluster.stop_controller(101)
    cluster.advance(5_000)
    cluster.start_controller(101)
    cluster.lose_responses(1, 2)
    for i in range(10):
        producer.send("orders", key=b"k", value=str(i).encode())
    producer.flush()
    cluster.apps.control(1, "crash")
    cluster.add_partitions("orders", 4)
    cluster.alter_topic_config("prices", {"min.cleanable.dirty.ratio": 0.01})
    for consumer in group:
        consumer.close()
    cluster.advance(1_000)
    cluster.reset_offsets("billing", "orders", "earliest")
    again = cluster.consumer({"group.id": "billing", "auto.offset.reset": "none"})
    again.subscribe(["orders"])
    for _ in range(6):
        again.poll(500)
    lone = cluster.consumer({"auto.offset.reset": "earliest"})
    lone.assign([TopicPartition("orders", 0)])
    lone.seek(TopicPartition("orders", 0), 10_000)
    lone.poll(500)
    cluster.advance(60_000)
    cluster.delete_topic("prices")
    cluster.advance(5_000)

    problems = [p for e in cluster.events for p in payload_problems(e.kind, e.data)]
    assert problems == []
    seen = {e.kind for e in cluster.events}
    # The run reaches most of the catalogue, so the check above is not vacuous.
    assert len(seen) >= 35, sorted(set(EventKind) - seen)
