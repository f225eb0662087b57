"""The lesson files: what ships loads and covers the seeds' checklist; a bad file is refused
with an error that names the file and the field."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from lessons.catalogue import (
    GLOSSARY_FILE,
    LESSONS_DIR,
    LessonContentError,
    load_catalogue,
    parse_glossary,
    parse_lesson,
    read_yaml,
)
from lessons.coverage import coverage, find_checklist, load_checklist

SOURCE = "lessons/content/lessons/leader-failover.yaml"


def _shipped(lesson_id: str = "leader-failover") -> dict[str, Any]:
    data = yaml.safe_load((LESSONS_DIR / f"{lesson_id}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _glossary() -> dict[str, Any]:
    return parse_glossary(read_yaml(GLOSSARY_FILE, "glossary.yaml"), source="glossary.yaml")


def _refused(data: dict[str, Any], *, drills: set[str] | None = None) -> LessonContentError:
    with pytest.raises(LessonContentError) as caught:
        parse_lesson(data, source=SOURCE, glossary=_glossary(), drill_ids=drills or set())
    return caught.value


def test_the_shipped_catalogue_loads_with_at_least_22_lessons_in_a_path() -> None:
    catalogue = load_catalogue()
    assert len(catalogue.lessons) >= 22
    orders = [lesson.order for lesson in catalogue.lessons]
    assert orders == sorted(orders)
    levels = [lesson.level for lesson in catalogue.lessons]
    assert levels[0] == "fundamentals" and levels[-1] == "senior"
    for lesson in catalogue.lessons:
        assert lesson.interview and lesson.recap.follow_ups and lesson.steps
        assert all(term in catalogue.glossary for term in lesson.glossary)


def test_the_lessons_alone_cover_every_checklist_item() -> None:
    checklist = load_checklist(find_checklist())
    result = coverage(load_catalogue(check_scenarios=False), checklist, drills_dir=Path("/none"))
    assert len(result.checklist_ids) == 294
    assert result.missing == []
    assert result.unknown == {}


def test_an_unknown_field_is_named_with_its_path() -> None:
    data = _shipped()
    data["steps"][1]["hnit"] = "typo"
    error = _refused(data)
    assert str(error).startswith(f"{SOURCE}: steps[1].hnit: unknown field")


def test_a_missing_required_field_is_named() -> None:
    data = _shipped()
    del data["recap"]["red_flag"]
    assert str(_refused(data)) == f"{SOURCE}: recap.red_flag: is required"


def test_a_checklist_id_must_look_like_one() -> None:
    data = _shipped()
    data["covers"] = ["S002-31", "lag"]
    assert "covers[1]: 'lag' is not a checklist id" in str(_refused(data))


def test_a_command_the_cluster_cannot_take_is_refused_by_the_command_table() -> None:
    data = _shipped()
    data["steps"][0]["show_me"] = [{"command": "stop_broker", "broker_id": 7}]
    error = _refused(data)
    assert error.path == "steps[0].show_me[0].broker_id"
    assert "7" in error.problem


def test_show_me_may_only_use_the_steps_enabled_commands() -> None:
    data = _shipped()
    data["steps"][0]["show_me"] = [{"command": "start_broker", "broker_id": 1}]
    error = _refused(data)
    assert error.path == "steps[0].show_me[0].command"
    assert "not among the step's enabled commands" in error.problem


def test_a_goal_with_an_unknown_probe_or_event_names_the_goal() -> None:
    data = _shipped()
    data["steps"][0]["goal"]["expect"] = {"probe": "leader_of", "args": {}, "equals": 1}
    assert _refused(data).path.startswith("steps[0].goal.expect")
    data = _shipped()
    data["steps"][1]["goal"]["expect"] = {"event": "broker_exploded"}
    error = _refused(data)
    assert error.path == "steps[1].goal.expect.event"
    assert "unknown event kind 'broker_exploded'" in error.problem


def test_a_goal_made_of_several_expectations_names_the_failing_one() -> None:
    data = _shipped()
    data["steps"][0]["goal"]["expect"] = [
        {"event": "broker_fenced", "where": {"broker": 1}},
        {"probe": "leader", "args": {"topic": "orders"}, "equals": 2},
    ]
    assert _refused(data).path.startswith("steps[0].goal.expect[1]")


def test_a_predict_answer_must_be_one_of_its_choices() -> None:
    data = _shipped()
    data["steps"][0]["predict"]["answer"] = "maybe"
    assert "steps[0].predict.answer: 'maybe' is not the value of any choice" in str(_refused(data))


def test_the_scenario_is_checked_by_the_scenario_loader() -> None:
    data = _shipped()
    data["scenario"]["cluster"]["brokers"] = 0
    error = _refused(data)
    assert error.path == "scenario.cluster.brokers"
    data = _shipped()
    data["scenario"]["steps"] = []
    assert _refused(data).path == "scenario.steps"


def test_links_to_missing_glossary_terms_and_drills_are_refused() -> None:
    data = _shipped()
    data["glossary"] = ["leader", "zookeeper-ensemble"]
    assert "glossary[1]: 'zookeeper-ensemble' is not a term" in str(_refused(data))
    data = _shipped()
    data["drills"] = ["failover-1"]
    assert "drills[0]: there is no drill 'failover-1'" in str(_refused(data))
    data = copy.deepcopy(data)
    parse_lesson(data, source=SOURCE, glossary=_glossary(), drill_ids={"failover-1"})


def test_the_file_name_must_match_the_lesson_id() -> None:
    data = _shipped()
    data["id"] = "failover"
    assert "id: 'failover' must match the file name 'leader-failover'" in str(_refused(data))


def test_bad_yaml_and_duplicate_orders_name_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / "broken.yaml").write_text("id: broken\ntitle: [unclosed\n", encoding="utf-8")
    with pytest.raises(LessonContentError) as caught:
        load_catalogue(folder)
    assert "broken.yaml: line" in str(caught.value) and "not valid YAML" in str(caught.value)
    (folder / "broken.yaml").unlink()
    for name in ("leader-failover", "kraft-controller"):
        shutil.copy(LESSONS_DIR / f"{name}.yaml", folder / f"{name}.yaml")
    data = _shipped("kraft-controller")
    data["order"] = _shipped()["order"]
    (folder / "kraft-controller.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(LessonContentError) as caught:
        load_catalogue(folder)
    assert "order" in caught.value.path and "also the order of" in caught.value.problem


def test_a_glossary_see_also_must_point_at_a_term() -> None:
    data = {"terms": [{"id": "log", "term": "Log", "definition": "d", "see": ["offset"]}]}
    with pytest.raises(LessonContentError) as caught:
        parse_glossary(data, source="glossary.yaml")
    assert str(caught.value) == (
        "glossary.yaml: terms[0].see[0]: 'offset' is not a term of the glossary"
    )


def test_drills_that_name_a_lesson_are_linked_from_it(tmp_path: Path) -> None:
    folder, drills = tmp_path / "lessons", tmp_path / "drills"
    folder.mkdir()
    drills.mkdir()
    shutil.copy(LESSONS_DIR / "leader-failover.yaml", folder / "leader-failover.yaml")
    (drills / "failover-timing.yaml").write_text(
        "id: failover-timing\nlesson: leader-failover\ncovers: [S002-39]\n", encoding="utf-8"
    )
    (drills / "unrelated.yaml").write_text("id: unrelated\nlesson: other\n", encoding="utf-8")
    catalogue = load_catalogue(folder, drills_dir=drills)
    lesson = catalogue.lesson("leader-failover")
    assert lesson is not None and lesson.drills == ("failover-timing",)


def test_a_real_client_step_reads_its_snippets() -> None:
    step = load_catalogue().lesson("keys-and-ordering").steps[2]  # type: ignore[union-attr]
    assert step.real_client is not None
    assert [s.language for s in step.real_client.snippets] == ["python", "shell"]
    assert all("{bootstrap}" in s.code for s in step.real_client.snippets)


def _keys_refused(data: dict[str, Any]) -> str:
    with pytest.raises(LessonContentError) as caught:
        parse_lesson(
            data,
            source="lessons/content/lessons/keys-and-ordering.yaml",
            glossary=_glossary(),
            drill_ids=set(),
        )
    return str(caught.value)


def test_a_real_client_snippet_needs_the_bootstrap_placeholder_and_a_known_language() -> None:
    data = _shipped("keys-and-ordering")
    step = next(s for s in data["steps"] if "real_client" in s)
    step["real_client"]["snippets"][0]["code"] = "print('no address')"
    assert "real_client.snippets[0].code: must contain {bootstrap}" in _keys_refused(data)
    data = _shipped("keys-and-ordering")
    step = next(s for s in data["steps"] if "real_client" in s)
    step["real_client"]["snippets"][1]["language"] = "ruby"
    assert "real_client.snippets[1].language: must be one of python, shell" in _keys_refused(data)


def test_a_real_client_step_still_needs_its_engine_equivalent() -> None:
    data = _shipped("keys-and-ordering")
    step = next(s for s in data["steps"] if "real_client" in s)
    del step["show_me"]
    assert "show_me: is required" in _keys_refused(data)
