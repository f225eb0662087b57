"""Grading, one pure function per answer shape. Each returns a `Grade`: a score in [0, 1], whether
the answer counts as correct (what spaced review and mastery use) and plain-words feedback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Grade:
    score: float
    correct: bool
    feedback: str
    details: dict[str, Any] = field(default_factory=dict)


class AnswerError(ValueError):
    """The answer cannot be graded (empty, not a number, an unknown choice): nothing is saved."""


def grade_choice(answer: str, key: str, *, choices: Iterable[str]) -> Grade:
    known = list(choices)
    if not answer:
        raise AnswerError("pick one of the choices")
    if answer not in known:
        raise AnswerError(f"{answer!r} is not one of the choices")
    if answer == key:
        return Grade(1.0, True, "Right.", {"key": key})
    return Grade(0.0, False, "Not this one.", {"key": key})


def parse_number(text: str) -> float:
    """A learner's number: commas, spaces and underscores as digit groups are fine."""
    cleaned = str(text).strip().replace(",", "").replace("_", "").replace(" ", "")
    if not cleaned:
        raise AnswerError("type a number")
    try:
        value = float(cleaned)
    except ValueError:
        raise AnswerError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise AnswerError(f"{text!r} is not a finite number")
    return value


def within(value: float, key: float, *, absolute: float = 0.0, relative: float = 0.0) -> bool:
    """Whether `value` is within the stated tolerance of `key` (the wider of the two)."""
    allowed = max(absolute, abs(key) * relative)
    return abs(value - key) <= allowed + 1e-9


def grade_number(
    answer: str | float, key: float, *, absolute: float = 0.0, relative: float = 0.0
) -> Grade:
    value = answer if isinstance(answer, int | float) else parse_number(answer)
    ok = within(float(value), key, absolute=absolute, relative=relative)
    tolerance = []
    if absolute:
        tolerance.append(f"±{absolute:g}")
    if relative:
        tolerance.append(f"±{relative * 100:g}%")
    stated = " or ".join(tolerance) if tolerance else "exact"
    if ok:
        return Grade(1.0, True, f"Right (tolerance {stated}).", {"key": key, "value": value})
    return Grade(0.0, False, f"Outside the tolerance ({stated}).", {"key": key, "value": value})


def grade_checklist(ticked: Iterable[int], *, points: int) -> Grade:
    """Self-grading against a model answer: the score is the share of must-hit points hit."""
    if points <= 0:
        raise AnswerError("this drill has no points to tick")
    hit = set()
    for index in ticked:
        if not 0 <= int(index) < points:
            raise AnswerError(f"point {index} does not exist")
        hit.add(int(index))
    score = len(hit) / points
    return Grade(
        score,
        score >= 0.75,
        f"You hit {len(hit)} of {points} points.",
        {"hit": sorted(hit), "points": points},
    )


def grade_order(answer: Sequence[str], key: Sequence[str]) -> Grade:
    """An ordering, scored by the share of pairs in the right relative order (Kendall)."""
    if sorted(answer) != sorted(key) or len(set(answer)) != len(answer):
        raise AnswerError("put every item in the list exactly once")
    n = len(key)
    if n < 2:
        return Grade(1.0, True, "Right.", {"key": list(key)})
    rank = {item: index for index, item in enumerate(answer)}
    pairs = n * (n - 1) // 2
    good = sum(1 for i in range(n) for j in range(i + 1, n) if rank[key[i]] < rank[key[j]])
    exact = list(answer) == list(key)
    score = good / pairs
    in_place = sum(a == b for a, b in zip(answer, key, strict=True))
    feedback = (
        "Right order."
        if exact
        else f"{good} of {pairs} pairs in the right order; {in_place} of {n} items in place."
    )
    return Grade(score, exact, feedback, {"key": list(key), "pairs_right": good, "pairs": pairs})


DESIGN_FIELDS = ("topics", "keys", "partitions", "groups", "delivery", "failure")


def grade_design(
    answer: Mapping[str, str],
    *,
    partitions_range: tuple[int, int],
    delivery: str,
    ticked: Iterable[str],
) -> Grade:
    """A structured design. Partition count and delivery guarantee are checked against the
    model answer (a range, a named guarantee); topics, keys, groups and failure handling are
    self-graded (the learner ticks the fields that match the model answer's points).
    """
    missing = [name for name in DESIGN_FIELDS if not str(answer.get(name, "")).strip()]
    if missing:
        raise AnswerError("fill in every part of the design: " + ", ".join(missing) + " missing")
    low, high = partitions_range
    try:
        count = int(parse_number(str(answer["partitions"])))
    except AnswerError:
        raise AnswerError("the partition count must be a number") from None
    checks = {
        "partitions": low <= count <= high,
        "delivery": str(answer["delivery"]).strip() == delivery,
    }
    self_graded = {"topics", "keys", "groups", "failure"}
    for name in ticked:
        if name not in self_graded:
            raise AnswerError(f"{name!r} is not a self-graded part of the design")
    for name in sorted(self_graded):
        checks[name] = name in set(ticked)
    hit = sum(checks.values())
    score = hit / len(checks)
    notes = []
    if not checks["partitions"]:
        notes.append(f"partition count {count} is outside {low}-{high}")
    if not checks["delivery"]:
        notes.append(f"the model answer's guarantee is {delivery}")
    feedback = f"{hit} of {len(checks)} parts match the model answer." + (
        " " + "; ".join(notes) + "." if notes else ""
    )
    return Grade(score, score >= 0.75, feedback, {"checks": checks})
