"""Engine events told as plain sentences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine import Cluster
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
    assert "orders-1 has a new leader: broker 3, epoch 4 (was broker 2)" in told[0].text
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
    assert any("has a new leader" in t for t in texts)


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
