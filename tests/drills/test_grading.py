"""Grading, one pure function per answer shape, and the form-to-grade layer."""

from __future__ import annotations

import pytest

from lessons.drills import answers
from lessons.drills.bank import default_bank
from lessons.drills.grading import (
    AnswerError,
    grade_checklist,
    grade_choice,
    grade_design,
    grade_number,
    grade_order,
    parse_number,
)


def test_choice_is_right_only_for_the_key_and_refuses_unknown_choices() -> None:
    assert grade_choice("b", "b", choices=["a", "b"]).correct
    wrong = grade_choice("a", "b", choices=["a", "b"])
    assert not wrong.correct and wrong.score == 0
    with pytest.raises(AnswerError, match="not one of the choices"):
        grade_choice("z", "b", choices=["a", "b"])
    with pytest.raises(AnswerError, match="pick one"):
        grade_choice("", "b", choices=["a", "b"])


def test_numbers_accept_digit_groups_and_refuse_text() -> None:
    assert parse_number("12,500") == 12500
    assert parse_number(" 1_000 ") == 1000
    with pytest.raises(AnswerError, match="not a number"):
        parse_number("lots")
    with pytest.raises(AnswerError, match="type a number"):
        parse_number("")
    with pytest.raises(AnswerError, match="finite"):
        parse_number("inf")


def test_number_tolerance_absolute_and_relative() -> None:
    assert grade_number("20", 20).correct
    assert not grade_number("21", 20).correct
    assert grade_number("21", 20, absolute=1).correct
    assert not grade_number("22", 20, absolute=1).correct
    assert grade_number("5.4", 5.25, relative=0.05).correct  # within 5% (0.2625)
    assert not grade_number("5.6", 5.25, relative=0.05).correct
    assert "±5%" in grade_number("5.6", 5.25, relative=0.05).feedback


def test_checklist_score_is_the_share_of_points_hit() -> None:
    half = grade_checklist([0, 2], points=4)
    assert half.score == 0.5 and not half.correct
    most = grade_checklist([0, 1, 2], points=4)
    assert most.score == 0.75 and most.correct
    assert grade_checklist([0, 0, 1, 1], points=2).score == 1.0  # a point counts once
    with pytest.raises(AnswerError, match="point 5 does not exist"):
        grade_checklist([5], points=4)


def test_order_is_scored_by_pairs_in_the_right_relative_order() -> None:
    key = ["a", "b", "c", "d"]
    assert grade_order(key, key).correct and grade_order(key, key).score == 1
    swapped = grade_order(["b", "a", "c", "d"], key)
    assert not swapped.correct and swapped.score == pytest.approx(5 / 6)
    reversed_ = grade_order(list(reversed(key)), key)
    assert reversed_.score == 0
    with pytest.raises(AnswerError, match="exactly once"):
        grade_order(["a", "a", "b", "c"], key)


def _design(**overrides: str) -> dict[str, str]:
    answer = {
        "topics": "clicks",
        "keys": "ad_id",
        "partitions": "256",
        "groups": "billing, fraud",
        "delivery": "exactly-once",
        "failure": "acks=all",
    }
    return answer | overrides


def test_design_checks_partitions_and_guarantee_and_counts_self_ticked_parts() -> None:
    full = grade_design(
        _design(),
        partitions_range=(100, 1000),
        delivery="exactly-once",
        ticked=["topics", "keys", "groups", "failure"],
    )
    assert full.score == 1 and full.correct
    few = grade_design(
        _design(partitions="8", delivery="at-most-once"),
        partitions_range=(100, 1000),
        delivery="exactly-once",
        ticked=["topics", "keys", "groups", "failure"],
    )
    assert few.score == pytest.approx(4 / 6) and not few.correct
    assert "outside 100-1000" in few.feedback and "exactly-once" in few.feedback
    untick = grade_design(
        _design(), partitions_range=(100, 1000), delivery="exactly-once", ticked=[]
    )
    assert untick.score == pytest.approx(2 / 6)
    with pytest.raises(AnswerError, match="keys missing"):
        grade_design(_design(keys=" "), partitions_range=(1, 9), delivery="exactly-once", ticked=[])
    with pytest.raises(AnswerError, match="not a self-graded part"):
        grade_design(
            _design(), partitions_range=(1, 999), delivery="exactly-once", ticked=["partitions"]
        )


def test_forms_grade_every_kind_of_the_bank() -> None:
    bank = default_bank()
    pick = bank.get("tool-task-queue")
    assert pick is not None
    grade, stored = answers.grade(pick, {"choice": ["queue"]})
    assert grade.correct and stored == {"choice": "queue"}

    number = bank.get("partitions-from-mb-per-second")
    assert number is not None
    instance = number.number_instance(7)
    right = str(int(instance["key"]))
    assert answers.grade(number, {"number": [right]}, seed=7)[0].correct
    assert not answers.grade(number, {"number": [str(instance["key"] + 5)]}, seed=7)[0].correct

    order = bank.get("order-of-reveal")
    assert order is not None
    in_order = {f"pos-{i}": [str(i + 1)] for i in range(len(order.items))}
    assert answers.grade(order, in_order)[0].correct
    with pytest.raises(AnswerError, match="exactly once"):
        answers.grade(order, {f"pos-{i}": ["1"] for i in range(len(order.items))})

    explain = bank.get("how-ordering-works")
    assert explain is not None
    grade, stored = answers.grade(explain, {"text": ["per partition"], "point": ["0", "1", "2"]})
    assert grade.score == 1 and stored["text"] == "per partition"

    predict = bank.get("lag-off-by-one")
    assert predict is not None
    assert answers.grade(predict, {"number": ["5"]}, key=5)[0].correct
    with pytest.raises(AnswerError, match="not computed"):
        answers.grade(predict, {"number": ["5"]})
