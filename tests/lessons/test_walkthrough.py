"""The automated walk-through: it performs each step through the command table, runs the clock
until the goal holds, and fails when the engine does not bear a lesson's word out."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from lessons.catalogue import GLOSSARY_FILE, LESSONS_DIR, parse_glossary, parse_lesson, read_yaml
from lessons.walkthrough import walk_through


def _lesson(change: Any = None, lesson_id: str = "leader-failover") -> Any:
    data = yaml.safe_load((LESSONS_DIR / f"{lesson_id}.yaml").read_text(encoding="utf-8"))
    if change is not None:
        change(data)
    glossary = parse_glossary(read_yaml(GLOSSARY_FILE, "glossary.yaml"), source="glossary.yaml")
    return parse_lesson(data, source=f"{lesson_id}.yaml", glossary=glossary, drill_ids=set())


def test_the_leader_failover_walk_through_reaches_every_goal_at_the_session_timeout() -> None:
    result = walk_through(_lesson())
    assert result.passed, result.problems
    fenced_at, offline_at = result.step_times_ms
    assert fenced_at is not None and 8_000 <= fenced_at <= 10_000  # broker.session.timeout.ms
    assert offline_at is not None and offline_at > fenced_at


def test_a_wrong_predict_answer_fails_the_walk_through() -> None:
    def claim_instant_fencing(data: dict[str, Any]) -> None:
        data["steps"][0]["predict"]["answer"] = True

    result = walk_through(_lesson(claim_instant_fencing))
    assert not result.passed
    assert result.problems == [
        "step 1 (Kill a leader): predict answer True but the cluster says False"
    ]


def test_a_claim_the_engine_does_not_bear_out_fails() -> None:
    def false_claim(data: dict[str, Any]) -> None:
        data["steps"][1]["claims"] = [
            {
                "text": "Unclean election brings the partitions back.",
                "expect": {"probe": "offline_partitions", "equals": 0},
            }
        ]

    result = walk_through(_lesson(false_claim))
    assert result.problems == [
        "step 2 (Everyone in the ISR is gone): claim not borne out: Unclean election brings "
        "the partitions back."
    ]


def test_a_goal_that_cannot_be_reached_in_time_fails_and_stops_the_walk() -> None:
    def too_soon(data: dict[str, Any]) -> None:
        data["steps"][0]["goal"]["within_ms"] = 2_000

    result = walk_through(_lesson(too_soon))
    assert not result.passed
    assert "step 1 (Kill a leader): goal broker_fenced event" in result.problems[0]
    assert "not reached within 2000 ms" in result.problems[0]
    assert result.step_times_ms == [None]


def test_a_goal_that_holds_before_the_step_is_performed_fails() -> None:
    def trivial(data: dict[str, Any]) -> None:
        data["steps"][1]["goal"]["expect"] = {"probe": "offline_partitions", "at_least": 0}

    result = walk_through(_lesson(trivial))
    assert (
        "step 2 (Everyone in the ISR is gone): the goal already holds before the step is "
        "performed" in result.problems
    )


def test_verify_lessons_prints_a_line_per_lesson_and_the_totals(tmp_path: Path) -> None:
    folder = tmp_path / "lessons"
    folder.mkdir()
    shutil.copy(LESSONS_DIR / "kraft-controller.yaml", folder / "kraft-controller.yaml")
    data = yaml.safe_load((LESSONS_DIR / "leader-failover.yaml").read_text(encoding="utf-8"))
    data["steps"][0]["predict"]["answer"] = True
    (folder / "leader-failover.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 lessons failed"):
        call_command("verify_lessons", lessons_dir=str(folder), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("FAIL leader-failover: step 1 (Kill a leader): predict answer")
    assert lines[1].startswith("PASS kraft-controller: 2 steps, goals at")
    assert lines[-1] == "1 passed, 1 failed"


def test_seed_coverage_ends_with_the_count_then_the_missing_ids(tmp_path: Path) -> None:
    from lessons.coverage import find_checklist

    items = json.loads(find_checklist().read_text(encoding="utf-8"))
    items.append({"id": "S009-1", "kind": "fact", "claim": "an item no lesson covers"})
    checklist = tmp_path / "checklist.json"
    checklist.write_text(json.dumps(items), encoding="utf-8")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 checklist items uncovered"):
        call_command("seed_coverage", checklist=str(checklist), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[-2:] == ["covered 294 of 295 checklist items", "S009-1"]
    assert any(line.startswith("lesson leader-failover: 8 items: S000-60") for line in lines)


def test_seed_coverage_of_the_shipped_lessons_is_complete() -> None:
    out = io.StringIO()
    call_command("seed_coverage", stdout=out)
    assert out.getvalue().splitlines()[-1] == "covered 294 of 294 checklist items"
