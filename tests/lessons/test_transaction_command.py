"""The table's `transaction` command: a transactional producer app on the stage."""

from __future__ import annotations

from lessons.scenarios import COMMANDS, ClusterRuntime, ClusterSpec, validate


def _run(runtime: ClusterRuntime, outcome: str, count: int = 2) -> str:
    payload, errors = validate(
        COMMANDS["transaction"],
        {"transactional_id": "pay", "topic": "ledger", "count": str(count), "outcome": outcome},
    )
    assert errors == {}
    result = runtime.apply(payload)
    assert result.ok, result.message
    return result.message


def _runtime() -> ClusterRuntime:
    runtime = ClusterRuntime(ClusterSpec(seed=3))
    runtime.apply(
        {"type": "create_topic", "name": "ledger", "partitions": 1, "replication_factor": 3}
    )
    return runtime


def test_aborted_records_stay_in_the_log_behind_a_marker() -> None:
    runtime = _runtime()
    _run(runtime, "commit")
    _run(runtime, "abort")
    runtime.advance(1000)
    values = [r.value for r in runtime.cluster.read("ledger", 0)]
    assert values == [b"pay-commit-1", b"pay-commit-2", b"pay-abort-1", b"pay-abort-2"]
    committed = [
        r.value for r in runtime.cluster.read("ledger", 0, isolation_level="read_committed")
    ]
    assert committed == [b"pay-commit-1", b"pay-commit-2"]


def test_a_restarted_app_fences_the_old_instance_whose_commit_fails() -> None:
    runtime = _runtime()
    _run(runtime, "open")
    message = _run(runtime, "restart")
    assert "commit failed with ProducerFencedError" in message
    reasons = [e.data["reason"] for e in runtime.cluster.events if e.kind == "transaction_aborted"]
    assert reasons == ["fenced by a newer producer"]
    # The new instance works on.
    _run(runtime, "commit", count=1)
    runtime.advance(1000)
    assert any(e.kind == "transaction_committed" for e in runtime.cluster.events)


def test_an_unknown_topic_is_refused() -> None:
    runtime = ClusterRuntime(ClusterSpec(seed=3))
    payload, _ = validate(COMMANDS["transaction"], {"transactional_id": "pay", "topic": "nope"})
    result = runtime.apply(payload)
    assert not result.ok and "UnknownTopicOrPartition" in result.message
