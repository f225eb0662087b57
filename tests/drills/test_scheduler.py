"""Spaced review (FSRS): due dates move as they should after good and bad answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lessons.drills import scheduler

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_miss_comes_back_within_minutes_and_a_right_answer_later() -> None:
    _, due_after_miss = scheduler.review(None, score=0, correct=False, now=NOW)
    _, due_after_hit = scheduler.review(None, score=1, correct=True, now=NOW)
    assert due_after_miss - NOW <= timedelta(minutes=10)
    assert due_after_hit > due_after_miss


def test_intervals_grow_with_each_right_answer_and_shrink_after_a_lapse() -> None:
    state, due = scheduler.review(None, score=1, correct=True, now=NOW)
    intervals = []
    now = NOW
    for _ in range(4):
        now = due
        state, due = scheduler.review(state, score=1, correct=True, now=now)
        intervals.append(due - now)
    assert intervals == sorted(intervals) and intervals[-1] > timedelta(days=7)
    lapse_state, lapse_due = scheduler.review(state, score=0, correct=False, now=due)
    assert lapse_due - due < intervals[-1]
    assert lapse_due - due <= timedelta(minutes=10)
    assert lapse_state["state"] != state["state"] or lapse_state["step"] != state["step"]


def test_a_partly_right_answer_is_hard_and_comes_back_sooner_than_a_good_one() -> None:
    graduated, due = scheduler.review(None, score=1, correct=True, now=NOW)
    graduated, due = scheduler.review(graduated, score=1, correct=True, now=due)
    _, good = scheduler.review(graduated, score=1, correct=True, now=due)
    _, hard = scheduler.review(graduated, score=0.8, correct=True, now=due)
    assert hard < good
    assert scheduler.rating_for(0.8, True).name == "Hard"
    assert scheduler.rating_for(1.0, True).name == "Good"
    assert scheduler.rating_for(0.2, False).name == "Again"
