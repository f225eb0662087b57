"""Building quiz rounds and scoring them (pure: no Django)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lessons.drills.bank import TOPICS, Bank, Drill

# Kinds a timed mock interview mixes: the ones an interviewer asks out loud.
MOCK_KINDS = ("explain", "design", "number", "pick", "predict", "order")


def pick_drills(
    bank: Bank,
    *,
    topics: Sequence[str],
    length: int,
    seed: int,
    kinds: Iterable[str] | None = None,
    first: Sequence[str] = (),
) -> list[Drill]:
    """`length` drills from `topics` (all topics if empty), spread across topics and kinds.

    `first` (drill ids, e.g. due for review) come first when they match the topics.
    """
    wanted = set(topics) or set(TOPICS)
    allowed = set(kinds) if kinds is not None else None
    pool = [d for d in bank if d.topic in wanted and (allowed is None or d.kind in allowed)]
    rng = random.Random(seed)
    chosen: list[Drill] = [d for d in (bank.get(i) for i in first) if d and d in pool][:length]
    rest = [d for d in pool if d not in chosen]
    rng.shuffle(rest)
    # Round-robin over topics so a 5-item quiz over 3 topics touches all three.
    by_topic: dict[str, list[Drill]] = {}
    for drill in rest:
        by_topic.setdefault(drill.topic, []).append(drill)
    order = sorted(by_topic)
    rng.shuffle(order)
    while len(chosen) < length and any(by_topic.values()):
        for topic in order:
            if by_topic[topic] and len(chosen) < length:
                chosen.append(by_topic[topic].pop())
    return chosen


def mock_mix(bank: Bank, *, length: int, seed: int) -> list[Drill]:
    """A mock interview: one of each kind first, then anything, never two of one topic in a row."""
    rng = random.Random(seed)
    drills = list(bank)
    rng.shuffle(drills)
    chosen: list[Drill] = []
    for kind in MOCK_KINDS:
        match = next((d for d in drills if d.kind == kind and d not in chosen), None)
        if match and len(chosen) < length:
            chosen.append(match)
    for drill in drills:
        if len(chosen) >= length:
            break
        if drill not in chosen and (not chosen or chosen[-1].topic != drill.topic):
            chosen.append(drill)
    rng.shuffle(chosen)
    return chosen[:length]


@dataclass(frozen=True)
class TopicMastery:
    topic: str
    title: str
    attempts: int
    score: float  # mean score, 0..1

    @property
    def percent(self) -> int:
        return round(self.score * 100)

    @property
    def label(self) -> str:
        if self.score >= 0.85:
            return "strong"
        if self.score >= 0.6:
            return "getting there"
        return "needs work"


def mastery(scored: Iterable[tuple[str, float]]) -> list[TopicMastery]:
    """Mean score per topic from (topic, score) pairs, topics in the bank's order."""
    totals: dict[str, list[float]] = {}
    for topic, score in scored:
        totals.setdefault(topic, []).append(score)
    return [
        TopicMastery(t, TOPICS.get(t, t), len(s), sum(s) / len(s))
        for t in TOPICS
        if (s := totals.get(t))
    ]
