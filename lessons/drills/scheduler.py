"""Spaced review with FSRS (the `fsrs` package): one card per learner and drill.

A graded attempt becomes an FSRS rating: a miss is Again (the drill comes back in minutes), a
partly right answer is Hard, a fully right one Good. The card's state is stored as FSRS's own
dict (`Card.to_dict()`), so the package, not this module, decides every interval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fsrs import Card, Rating, Scheduler

# Fuzzing off: the same answers at the same times give the same due dates (and tests can pin
# them). desired_retention is FSRS's default.
SCHEDULER = Scheduler(desired_retention=0.9, enable_fuzzing=False)


def rating_for(score: float, correct: bool) -> Rating:
    if not correct:
        return Rating.Again
    if score < 0.999:
        return Rating.Hard
    return Rating.Good


def new_card() -> dict[str, Any]:
    return Card().to_dict()  # type: ignore[no-any-return]


def review(
    card_state: dict[str, Any] | None, *, score: float, correct: bool, now: datetime
) -> tuple[dict[str, Any], datetime]:
    """The card after one graded attempt at `now`, and when it is due next."""
    card = Card.from_dict(card_state) if card_state else Card(due=now)
    card, _log = SCHEDULER.review_card(card, rating_for(score, correct), now)
    return card.to_dict(), card.due
