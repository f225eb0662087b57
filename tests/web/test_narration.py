"""Engine events told as plain sentences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from engine import Cluster
from engine.errors import RequestTimedOutError
from webapp.narration import headline, narrate


@dataclass(frozen=True)
class FakeEvent:
    time_ms: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


def test_a_fencing_and_the_isr_shrinks_it_caused_read_as_one_sentence() -> None:
    events = [
        FakeEvent(
            11_000,
            "isr_shrunk",
            {
                "topic": "orders",
                "partition": 0,
                "removed": [2],
                "isr": [1, 3],
                "reason": "broker fenced",
            },
        ),
        FakeEvent(
            11_000,
            "isr_shrunk",
            {
                "topic": "orders",
                "partition": 2,
                "removed": [2],
                "isr": [3, 1],
                "reason": "broker fenced",
            },
        ),
        FakeEvent(
            11_000,
            "isr_shrunk",
            {
                "topic": "__consumer_offsets",
                "partition": 7,
                "removed": [2],
                "isr": [1],
                "reason": "broker fenced",
            },
        ),
        FakeEvent(11_000, "broker_fenced", {"broker": 2, "reason": "missed heartbeats for 9 s"}),
    ]
    told = narrate(events)
    assert [e.text for e in told] == [
        "broker 2 missed heartbeats for 9 s: fenced, removed from the ISR of orders-0 and orders-2"
    ]
    assert told[0].level == "bad"


def test_an_unclean_election_warns_of_lost_records() -> None:
    told = narrate(
        [
            FakeEvent(
                5,
                "leader_elected",
                {
                    "topic": "orders",
                    "partition": 1,
                    "leader": 3,
                    "previous_leader": 2,
                    "leader_epoch": 4,
                    "unclean": True,
                },
            )
        ]
    )
    assert told[0].text.startswith("new leader for orders-1: broker 3 (epoch 4, was broker 2)")
    assert told[0].lesson == "leader-failover"
    assert "unclean" in told[0].text
    assert told[0].level == "bad"


def test_internal_topics_and_bookkeeping_stay_out_of_the_story() -> None:
    told = narrate(
        [
            FakeEvent(
                1,
                "leader_elected",
                {"topic": "__consumer_offsets", "partition": 3, "leader": 1, "leader_epoch": 1},
            ),
            FakeEvent(2, "app_processed", {"app": 2, "records": 1}),
        ]
    )
    assert told == []


def test_a_retry_loop_is_told_once_with_a_count() -> None:
    events = [FakeEvent(t, "offsets_topic_creation_failed", {"error": "X"}) for t in (10, 20, 30)]
    told = narrate(events)
    assert len(told) == 1
    assert told[0].repeats == 3
    assert told[0].time_ms == 30


def test_the_headline_is_the_gravest_event_of_the_newest_moment() -> None:
    told = narrate(
        [
            FakeEvent(
                1, "topic_created", {"topic": "orders", "partitions": 3, "replication_factor": 3}
            ),
            FakeEvent(9, "broker_stopped", {"broker": 1, "controlled": False}),
            FakeEvent(9, "broker_started", {"broker": 2}),
        ]
    )
    top = headline(told)
    assert top is not None
    assert top.text.startswith("broker 1 crashed")
    assert headline([]) is None


def test_a_real_crash_is_narrated_from_the_engine_events() -> None:
    cluster = Cluster(brokers=3, seed=4)
    cluster.create_topic("orders", partitions=3, replication_factor=3)
    cluster.advance(1_000)
    cluster.stop_broker(2)
    cluster.advance(12_000)
    texts = [e.text for e in narrate(cluster.events)]
    assert any(t.startswith("broker 2 crashed") for t in texts)
    fenced = [t for t in texts if t.startswith("broker 2 missed heartbeats")]
    assert fenced and "removed from the ISR of orders-" in fenced[0]
    assert any(t.startswith("new leader for orders-") for t in texts)


def test_a_producer_held_back_by_its_buffer_is_told_from_the_engine_events() -> None:
    cluster = Cluster(brokers=1, seed=3)
    cluster.create_topic("t")
    producer = cluster.producer({"buffer.memory": 32 * 1024, "max.block.ms": 5000})
    producer.send("t", value=b"metadata").get()
    cluster.stop_broker(1)
    for _ in range(31):
        producer.send("t", value=bytes(1024))
    told = [n for n in narrate(cluster.events) if n.kind.startswith("producer_buffer")]
    assert [n.kind for n in told] == ["producer_buffer_blocked", "producer_buffer_exhausted"]
    assert "32 KiB" in told[0].text and "5 s" in told[0].text
    assert "BufferExhaustedException" in told[1].text and told[1].level == "bad"


def test_an_admin_call_without_a_controller_is_told_as_a_timeout() -> None:
    cluster = Cluster(brokers=1, seed=3)
    cluster.stop_controller(101)
    cluster.stop_controller(102)
    with pytest.raises(RequestTimedOutError):
        cluster.create_topic("t")
    told = [n for n in narrate(cluster.events) if n.kind == "controller_request_timed_out"]
    assert len(told) == 1
    assert "CreateTopics hung for 60 s" in told[0].text


def test_a_detected_log_truncation_says_where_the_logs_part() -> None:
    data = {"client": "consumer-1", "topic": "t", "partition": 0, "position": 10}
    raising = FakeEvent(1, "log_truncation_detected", {**data, "divergent_offset": 3})
    moving = FakeEvent(2, "log_truncation_detected", {**data, "divergent_offset": 3, "reset_to": 3})
    told = narrate([raising, moving])
    assert "offset 3" in told[0].text and "LogTruncationException" in told[0].text
    assert told[0].level == "bad"
    assert "moves back to 3" in told[1].text and told[1].level == "warn"


def test_every_kind_of_the_event_catalogue_is_told_or_kept_quiet() -> None:
    from lessons.scenarios import EVENT_KINDS
    from webapp.narration import QUIET_KINDS, SIMPLE

    for kind in EVENT_KINDS:
        data = {"topic": "orders", "partition": 0, "groups": ["billing"]}
        told = narrate([FakeEvent(1_000, kind, data)])
        if kind in QUIET_KINDS:
            assert told == [], kind
        else:
            assert len(told) == 1 and told[0].text, kind
    assert set(SIMPLE) | QUIET_KINDS <= set(EVENT_KINDS)


def _commit(t: int, group: str = "billing", n: int = 3) -> FakeEvent:
    offsets = [["orders", p, t // 100] for p in range(n)]
    return FakeEvent(t, "offsets_committed", {"group": group, "offsets": offsets})


def test_routine_commits_of_a_group_fold_into_one_line_with_a_count() -> None:
    told = narrate([_commit(t) for t in range(1_000, 13_000, 1_000)])
    assert [e.text for e in told] == ["group billing committed 3 partitions, 12 times"]
    assert told[0].importance == "routine"
    assert told[0].first_ms == 1_000 and told[0].time_ms == 12_000


def test_an_important_event_between_commits_is_not_folded_away() -> None:
    election = FakeEvent(
        5_500,
        "leader_elected",
        {"topic": "orders", "partition": 0, "leader": 1, "previous_leader": 2, "leader_epoch": 3},
    )
    told = narrate([_commit(1_000), _commit(2_000), election, _commit(6_000), _commit(7_000)])
    assert [e.text for e in told] == [
        "group billing committed 3 partitions, 2 times",
        "new leader for orders-0: broker 1 (epoch 3, was broker 2)",
        "group billing committed 3 partitions, 2 times",
    ]
    assert told[1].importance == "key"


def test_a_new_leader_stays_the_headline_over_later_routine_work() -> None:
    fenced = FakeEvent(11_000, "broker_fenced", {"broker": 2, "reason": "missed heartbeats"})
    election = FakeEvent(
        11_000,
        "leader_elected",
        {"topic": "orders", "partition": 0, "leader": 1, "previous_leader": 2, "leader_epoch": 2},
    )
    told = narrate([fenced, election, _commit(11_500), _commit(12_500)])
    top = headline(told)
    assert top is not None
    assert top.text.startswith("new leader for orders-0: broker 1")


def test_a_refused_write_is_told_with_its_error_its_why_and_its_lesson() -> None:
    retries = [
        FakeEvent(
            t,
            "produce_retried",
            {
                "producer": "dojo-producer",
                "topic": "orders",
                "partition": 0,
                "error": "NotEnoughReplicasException",
                "attempt": attempt,
            },
        )
        for attempt, t in enumerate(range(1_000, 6_000, 1_000), start=1)
    ]
    told = narrate(retries)
    assert len(told) == 1
    line = told[0]
    assert "refused with NotEnoughReplicasException" in line.text
    assert "attempt 5" in line.text and "5 refusals so far" in line.text
    assert line.importance == "key"
    assert "min.insync.replicas" in line.why
    assert line.lesson == "replication-isr"
    assert line.lesson_url == "/lessons/replication-isr/"


def test_the_metric_changes_an_event_caused_are_told_beside_it() -> None:
    from webapp.metrics import Change

    events = [
        FakeEvent(
            11_000,
            "isr_shrunk",
            {
                "topic": "orders",
                "partition": p,
                "removed": [2],
                "isr": [1, 3],
                "reason": "broker fenced",
            },
        )
        for p in range(3)
    ] + [FakeEvent(11_000, "broker_fenced", {"broker": 2, "reason": "missed heartbeats"})]
    changes = {p: [Change("UnderReplicatedPartitions", p, p + 1)] for p in range(3)}
    told = narrate(events, changes=changes)
    assert told[0].changes == ("UnderReplicatedPartitions 0 → 3",)


def test_offsets_removed_with_their_topic_are_told_with_the_reason() -> None:
    data = {"group": "billing", "reason": "topic deleted", "offsets": [["returns", 0]]}
    [told] = narrate([FakeEvent(1, "offsets_deleted", data)])
    assert told.text == "group billing lost its committed offsets on returns-0 (topic deleted)"


def test_a_removed_member_and_its_refused_commit_link_the_zombie_lesson() -> None:
    removed = FakeEvent(
        30_000,
        "member_removed",
        {"group": "billing", "client_id": "consumer-1", "reason": "session timeout"},
    )
    refused = FakeEvent(
        31_000, "offsets_commit_failed", {"group": "billing", "error": "ILLEGAL_GENERATION"}
    )
    told = narrate([removed, refused])
    assert told[0].text == "group billing removed consumer-1 (session timeout)"
    assert told[0].lesson == "transactions" and told[0].importance == "key"
    assert "refused a commit" in told[1].text and told[1].lesson == "transactions"
    assert "old generation" in told[1].why


def test_a_quiet_cluster_says_since_when_nothing_happened_not_its_old_news() -> None:
    from webapp.narration import QUIET_AFTER_MS, quiet_since

    told = narrate([FakeEvent(2_500, "broker_stopped", {"broker": 2})])
    assert quiet_since(told, 2_500 + QUIET_AFTER_MS - 1) is None  # still news
    assert quiet_since(told, 2_500 + QUIET_AFTER_MS) == 2.5
    assert quiet_since([], QUIET_AFTER_MS) == 0.0


@pytest.mark.django_db
def test_the_narration_of_a_room_left_alone_says_quiet_since_instead_of_the_stale_line() -> None:
    from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec
    from webapp import services
    from webapp.engine_host.render import ClockView, render_fragments

    runtime = ClusterRuntime(ClusterSpec(seed=1, brokers=3))
    for payload in services.sandbox_setup_commands(brokers=3):
        runtime.apply(payload)
    runtime.advance(1_000)

    def narration() -> str:
        clock = ClockView(now_ms=runtime.now_ms, paused=False, speed=1.0, viewers=1)
        return render_fragments(runtime, clock)["narration"]

    assert "topic orders created" in narration()  # what just happened
    runtime.advance(60_000)
    quiet = narration()
    assert "Nothing has happened since t = 0.02 s" in quiet
    assert "topic orders created" not in quiet
    runtime.advance(30_000)
    assert narration() == quiet  # the same line while it stays quiet
    runtime.apply({"type": "stop_broker", "broker_id": 2})
    runtime.advance(100)
    assert "Nothing has happened" not in narration()


def _narrated_after_a_crash(max_events: int) -> tuple[list[Any], int]:
    from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec
    from webapp.engine_host.render import _narrated

    runtime = ClusterRuntime(ClusterSpec(seed=3))
    runtime.cluster.max_events = max_events
    # Events enough for the smaller window to drop some: one per topic created.
    for number in range(40):
        create = {"type": "create_topic", "name": f"t{number}"}
        assert runtime.apply(create).ok
        runtime.apply({"type": "advance", "ms": 100})
        _narrated(runtime, runtime.cluster.snapshot())  # each version takes the new events in
    create = {"type": "create_topic", "name": "orders", "partitions": 3, "replication_factor": 3}
    assert runtime.apply(create).ok
    assert runtime.apply({"type": "stop_broker", "broker_id": 2}).ok
    runtime.apply({"type": "advance", "ms": 10_000})  # fenced after 9 s (broker.session...)
    told = _narrated(runtime, runtime.cluster.snapshot())
    assert runtime.cluster.event_count == runtime.cluster.events_dropped + len(
        runtime.cluster.events
    )
    return told, runtime.cluster.events_dropped


def test_metric_changes_stay_beside_their_events_once_old_events_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cluster that ran long holds only its newest events (`Cluster.max_events`); the
    metrics tracker counts events by absolute index, so the narration of the newest events
    (and the metric changes told beside them) is what it is with every event held."""
    monkeypatch.setattr("webapp.engine_host.render.NARRATED_EVENTS", 20)
    whole, none_dropped = _narrated_after_a_crash(10_000)
    windowed, dropped = _narrated_after_a_crash(30)
    assert none_dropped == 0 and dropped > 10
    assert windowed == whole
    assert any(t.kind == "broker_fenced" and t.changes for t in windowed)
