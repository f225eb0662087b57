"""From a submitted form to a `Grade`, for every drill kind (pure: no Django, no runs).

`data` is a mapping of field name to list of values (a QueryDict's `lists()` or a plain dict).
Predict drills need their computed key (`key`); number drills the seed of their parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lessons.drills import grading
from lessons.drills.bank import Drill
from lessons.drills.grading import AnswerError, Grade


def _one(data: Mapping[str, Sequence[str]], name: str) -> str:
    values = data.get(name) or []
    return str(values[0]).strip() if values else ""


def _many(data: Mapping[str, Sequence[str]], name: str) -> list[str]:
    return [str(v) for v in data.get(name) or []]


def two_phase(drill: Drill) -> bool:
    """Explain and design drills are answered first, then self-graded against the model."""
    return drill.kind in ("explain", "design")


def order_from_positions(drill: Drill, data: Mapping[str, Sequence[str]]) -> list[str]:
    """The learner numbers every item (pos-0, pos-1, ... for the items in file order)."""
    items = drill.items
    positions = []
    for index in range(len(items)):
        raw = _one(data, f"pos-{index}")
        try:
            positions.append(int(raw))
        except ValueError:
            raise AnswerError("give every item a position") from None
    if sorted(positions) != list(range(1, len(items) + 1)):
        raise AnswerError(f"use each position from 1 to {len(items)} exactly once")
    return [item for _, item in sorted(zip(positions, items, strict=True))]


def grade(
    drill: Drill,
    data: Mapping[str, Sequence[str]],
    *,
    key: Any = None,
    seed: int | None = None,
) -> tuple[Grade, dict[str, Any]]:
    """The grade and the answer as stored (what the learner said, in JSON)."""
    if drill.kind == "predict":
        if key is None:
            raise AnswerError("this drill's answer key is not computed yet")
        if drill.question_type == "choice":
            answer = _one(data, "choice")
            result = grading.grade_choice(answer, key, choices=[c.id for c in drill.choices])
            return result, {"choice": answer}
        text = _one(data, "number")
        result = grading.grade_number(text, float(key), **drill.tolerance)
        return result, {"number": text}
    if drill.kind == "pick":
        answer = _one(data, "choice")
        result = grading.grade_choice(
            answer, drill.body["answer"], choices=[c.id for c in drill.choices]
        )
        return result, {"choice": answer}
    if drill.kind == "number":
        if seed is None:
            raise AnswerError("this answer lost its parameters; load the drill again")
        instance = drill.number_instance(seed)
        text = _one(data, "number")
        result = grading.grade_number(text, instance["key"], **drill.tolerance)
        return result, {"number": text, "seed": seed, "params": instance["params"]}
    if drill.kind == "explain":
        ticked = _many(data, "point")
        try:
            indices = [int(v) for v in ticked]
        except ValueError:
            raise AnswerError("a ticked point is not a point number") from None
        result = grading.grade_checklist(indices, points=len(drill.points))
        return result, {"text": _one(data, "text"), "points": indices}
    if drill.kind == "design":
        fields = {name: _one(data, name) for name in grading.DESIGN_FIELDS}
        low, high = drill.body["partitions_range"]
        result = grading.grade_design(
            fields,
            partitions_range=(int(low), int(high)),
            delivery=drill.body["delivery"],
            ticked=_many(data, "match"),
        )
        return result, {"design": fields, "matched": _many(data, "match")}
    if drill.kind == "order":
        order = order_from_positions(drill, data)
        return grading.grade_order(order, drill.items), {"order": order}
    raise AnswerError(f"unknown drill kind {drill.kind}")  # pragma: no cover
