"""The stage explains itself: refusals, metrics, counts and words a learner can read."""

from __future__ import annotations

import re
from typing import Any

from lessons.scenarios import stress
from webapp.engine_host import render
from webapp.experiments import _record_exists, anomaly_visible_ms, run_log

# A run of the acks=1 experiment (base seed 42, run 9) in which the producer's retry wrote a
# record a second time: the checker dates the duplicate by the record's creation, 2805 ms.
DUPLICATE_SEED = 1812140441
ACKS_1 = stress.StressConfig(producer_config={"acks": "1"})


def _first_duplicate() -> dict[str, Any]:
    result = stress.stress_run_one(ACKS_1, DUPLICATE_SEED)
    return next(a for a in result.anomalies if a["kind"] == "duplicated")


def test_a_duplicate_opens_on_the_stage_once_its_second_copy_is_in_the_log() -> None:
    duplicate = _first_duplicate()
    run = run_log(ACKS_1, DUPLICATE_SEED)
    assert not _record_exists(run, duplicate, duplicate["time_ms"])
    at_ms = anomaly_visible_ms(ACKS_1, DUPLICATE_SEED, duplicate)
    assert at_ms % 10 == 0 and at_ms > duplicate["time_ms"]
    assert _record_exists(run, duplicate, at_ms)
    assert not _record_exists(run, duplicate, at_ms - 10)


# A run (acks=1, no idempotence, min.insync.replicas=1; base seed 15, its first failing run)
# whose duplicate's second copy is written only during the read-back after the schedule, past
# the 35 s the faults and the settling take: the stage opens there, not at the schedule's end.
LATE_COPY_SEED = 155376646
ACKS_1_PLAIN = stress.StressConfig(
    producer_config={"acks": "1", "enable.idempotence": False},
    topic_config={"min.insync.replicas": 1},
)


def test_a_duplicate_written_during_the_read_back_opens_once_it_is_there() -> None:
    result = stress.stress_run_one(ACKS_1_PLAIN, LATE_COPY_SEED)
    duplicate = next(a for a in result.anomalies if a["kind"] == "duplicated")
    run = run_log(ACKS_1_PLAIN, LATE_COPY_SEED)
    schedule_end = stress.SCHEDULE_MS + stress.SETTLE_MS
    assert not _record_exists(run, duplicate, schedule_end)
    at_ms = anomaly_visible_ms(ACKS_1_PLAIN, LATE_COPY_SEED, duplicate, run)
    assert schedule_end < at_ms <= run.end_ms
    assert _record_exists(run, duplicate, at_ms)
    assert not _record_exists(run, duplicate, at_ms - 10)


def test_anomaly_details_name_values_in_words_not_python_reprs() -> None:
    detail = _first_duplicate()["detail"]
    assert "b'" not in detail and "time(s)" not in detail
    assert re.match(r"“v\d+” was acknowledged once but is at offsets \d+, \d+", detail)


def _runtime(seed: int = 5) -> Any:
    from tests.web.support import sandbox_runtime

    runtime, _ = sandbox_runtime(seed)
    runtime.advance(2_000)
    return runtime


def _fragments(runtime: Any) -> dict[str, str]:
    clock = render.ClockView(now_ms=runtime.now_ms, paused=False, speed=1.0, viewers=1)
    return render.render_fragments(runtime, clock)


def test_killing_a_broker_moves_the_metrics_and_says_so_beside_the_narration() -> None:
    runtime = _runtime()
    assert "UnderReplicatedPartitions" in _fragments(runtime)["metrics"]
    runtime.apply({"type": "stop_broker", "broker_id": 2})
    runtime.advance(12_000)
    html = _fragments(runtime)
    row = re.search(
        r'data-metric="UnderReplicatedPartitions".*?<td class="value">(\d+)', html["metrics"], re.S
    )
    assert row and row.group(1) == "3"
    assert "UnderReplicatedPartitions 0 → 3" in html["events"]
    elections = re.search(
        r'data-metric="LeaderElectionRateAndTimeMs".*?<td class="value">(\d+)',
        html["metrics"],
        re.S,
    )
    assert elections and int(elections.group(1)) >= 1
    assert 'data-metric="ActiveControllerCount"' in html["metrics"]


def test_the_metrics_replay_of_events_agrees_with_the_snapshot() -> None:
    from webapp.metrics import snapshot_gauges, tracker_for

    runtime = _runtime(9)
    for command in (
        {
            "type": "alter_topic_config",
            "topic": "orders",
            "key": "min.insync.replicas",
            "value": "2",
        },
        {"type": "stop_broker", "broker_id": 1},
        {"type": "stop_broker", "broker_id": 3},
    ):
        assert runtime.apply(command).ok
        runtime.advance(11_000)
        snap = runtime.cluster.snapshot()
        tracker = tracker_for(runtime)
        tracker.update(runtime.cluster, snap)
        from webapp.metrics import min_isr_by_topic

        assert tracker.gauges(min_isr_by_topic(snap)) == snapshot_gauges(snap)
    assert snapshot_gauges(runtime.cluster.snapshot())["UnderMinIsrPartitionCount"] == 3


def test_a_refused_produce_shows_its_error_attempts_time_left_and_lesson() -> None:
    runtime = _runtime(11)
    for command in (
        {
            "type": "alter_topic_config",
            "topic": "orders",
            "key": "min.insync.replicas",
            "value": "2",
        },
        {"type": "set_acks", "acks": "all"},
        {"type": "stop_broker", "broker_id": 1},
        {"type": "stop_broker", "broker_id": 2},
    ):
        assert runtime.apply(command).ok
    runtime.advance(15_000)
    assert runtime.apply({"type": "produce", "topic": "orders", "key": "", "value": "hello"}).ok
    runtime.advance(3_000)
    html = _fragments(runtime)
    sends = html["sends"]
    assert "NotEnoughReplicasException" in sends
    attempt = re.search(r'data-role="attempt">(\d+)<', sends)
    assert attempt and int(attempt.group(1)) >= 2
    left = re.search(r'data-role="left">(\d+) s<', sends)
    assert left and 110 <= int(left.group(1)) <= 118  # 120 s delivery.timeout.ms, 3 s ago
    assert 'href="/lessons/replication-isr/"' in sends
    assert "hello" in sends and "attempt" in sends
    assert 'class="refusal-label"' in html["stage"]
    # Kafka's request errors per API count the refusals too.
    assert re.search(r'data-api="Produce".*?NOT_ENOUGH_REPLICAS \d+', html["metrics"], re.S)
    # Once the brokers are back the send is acknowledged and the refusal goes away.
    runtime.apply({"type": "start_broker", "broker_id": 1})
    runtime.advance(20_000)
    html = _fragments(runtime)
    assert "NotEnoughReplicasException" not in html["sends"]


def test_every_producer_is_counted_in_the_totals_as_on_the_stage() -> None:
    runtime = _runtime(3)
    assert runtime.apply(
        {"type": "start_producer", "topic": "orders", "rate": 20, "keys": 5, "acks": "all"}
    ).ok
    runtime.advance(3_000)
    snap = runtime.cluster.snapshot()
    acked = sum(int(p["acked"]) for p in snap["producers"])
    sent = sum(int(p["sent"]) for p in snap["producers"])
    assert acked > 0 and runtime.acked_sends == 0  # the app's producer, not the stage's
    html = _fragments(runtime)
    assert f"Producers: {acked} of {sent} records acknowledged" in html["consumers"]


def test_a_group_without_a_loaded_coordinator_is_still_on_the_stage_and_in_the_mirror() -> None:
    runtime = _runtime(4)
    for broker in (1, 2):
        runtime.apply({"type": "stop_broker", "broker_id": broker})
    runtime.advance(12_000)
    command = {
        "type": "add_group_consumer",
        "group": "billing",
        "topic": "orders",
        "commit": "auto",
        "strategy": "range",
        "isolation": "read_uncommitted",
    }
    assert runtime.apply(command).ok
    runtime.advance(1_000)
    assert "billing" not in runtime.cluster.snapshot().get("groups", {})
    html = _fragments(runtime)
    assert "No consumer groups" not in html["mirror"]
    assert 'data-group="billing"' in html["mirror"] and 'data-group="billing"' in html["stage"]


def test_an_error_notice_is_cleared_by_a_later_success_and_reads_as_sentences() -> None:
    runtime = _runtime(6)
    result = runtime.apply({"type": "add_partitions", "topic": "orders", "total": 2})
    assert not result.ok
    assert result.message == (
        "InvalidPartitionsException: Topic 'orders' has 3 partitions; the new total must be "
        "larger, not 2. A topic's partition count can only grow, and must be at least 1."
    )
    assert "InvalidPartitions" in _fragments(runtime)["notices"]
    assert runtime.apply({"type": "stop_broker", "broker_id": 3}).ok
    assert "InvalidPartitions" not in _fragments(runtime)["notices"]


def test_a_tombstone_is_produced_with_a_null_value() -> None:
    from lessons.scenarios.commands import COMMANDS, validate

    payload, errors = validate(
        COMMANDS["produce"],
        {"topic": "orders", "key": "customer-7", "value": "null", "count": "1", "tombstone": "yes"},
        defaults=False,
    )
    assert not errors and payload["tombstone"] == "yes"
    runtime = _runtime(8)
    assert runtime.apply(payload).ok
    runtime.advance(1_000)
    from engine.partitioner import partition_for_key

    partition = partition_for_key(b"customer-7", 3)
    records = runtime.cluster.read("orders", partition, offset=0)
    assert [(r.key, r.value) for r in records] == [(b"customer-7", None)]
    plain, _ = validate(COMMANDS["produce"], {"topic": "orders", "value": "v", "count": "1"})
    assert "tombstone" not in plain  # logs of ordinary produces stay as they were


def test_a_min_isr_above_the_replication_factor_is_explained_on_the_page() -> None:
    runtime = _runtime(2)
    change = {
        "type": "alter_topic_config",
        "topic": "orders",
        "key": "min.insync.replicas",
        "value": "4",
    }
    assert runtime.apply(change).ok
    runtime.advance(500)
    notes = _fragments(runtime)["topic-notes"]
    assert "min.insync.replicas is 4 but each partition has 3 replicas, so it behaves as 3" in notes
    assert "/lessons/replication-isr/" in notes


def test_the_past_draws_no_buttons_on_brokers_and_controllers() -> None:
    runtime = _runtime(1)
    clock = render.ClockView(now_ms=runtime.now_ms, paused=True, speed=1.0, viewers=0)
    assert 'class="stage-action"' in render.render_fragments(runtime, clock)["stage"]
    past = render.render_fragments(runtime, clock, readonly=True)["stage"]
    assert 'class="stage-action"' not in past


def test_engine_log_arguments_are_labelled_in_words() -> None:
    from webapp.timeline import _command_label

    label = _command_label(
        {
            "type": "engine",
            "entry": {"op": "consumer.assign", "partitions": [["orders", 0], ["orders", 2]]},
        }
    )
    assert label == "assign partitions orders-0, orders-2"


def test_every_why_links_a_lesson_that_exists() -> None:
    from lessons.catalogue import get_catalogue
    from webapp import why

    lessons = {lesson.id: lesson.title for lesson in get_catalogue().lessons}
    for lesson_id, title in why.LESSONS.items():
        assert lesson_id in lessons, lesson_id
        assert title == lessons[lesson_id]
