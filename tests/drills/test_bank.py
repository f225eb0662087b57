"""The drill bank: every file loads and validates; the validator names file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lessons.drills.bank import CONTENT_DIR, KINDS, DrillError, load_bank, load_file, parse_drill

REQUIRED_KINDS = {
    "qa",
    "follow-up",
    "red-flag",
    "drill",
    "sizing",
    "tradeoff",
    "anti-pattern",
    "comparison",
}


def test_every_drill_file_loads_and_validates() -> None:
    files = sorted(CONTENT_DIR.glob("*.yaml"))
    assert len(files) >= 80
    drills = [load_file(path) for path in files]
    assert {d.id for d in drills} == {p.stem for p in files}


def test_the_bank_has_every_kind_topics_and_difficulties() -> None:
    bank = load_bank()
    assert len(bank) >= 80
    assert {d.kind for d in bank} == set(KINDS)
    assert {d.difficulty for d in bank} == {"easy", "medium", "hard"}
    assert len(bank.by_topic()) >= 20
    assert sum(d.kind == "predict" for d in bank) >= 15


def _checklist() -> list[dict[str, object]]:
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "shared" / "seeds" / "checklist.json"
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    raise AssertionError("the seeds' checklist.json is not beside the repository")


def test_drills_cover_every_interview_item_of_the_checklist() -> None:
    """Every qa, follow-up, red flag, drill, sizing, trade-off, anti-pattern and comparison."""
    items = _checklist()
    known = {str(i["id"]) for i in items}
    required = {str(i["id"]) for i in items if i["kind"] in REQUIRED_KINDS}
    bank = load_bank()
    covered = bank.covered_ids()
    assert covered <= known, f"drills name ids the checklist lacks: {sorted(covered - known)}"
    assert required - covered == set()


def test_number_drills_draw_fresh_parameters_and_fill_every_placeholder() -> None:
    for drill in (d for d in load_bank() if d.kind == "number"):
        draws = [drill.number_instance(seed) for seed in range(12)]
        assert len({json.dumps(d["params"], sort_keys=True) for d in draws}) > 1, drill.id
        for draw in draws:
            assert "{" not in draw["prompt"] and "{" not in draw["solution"], drill.id
            assert draw["key"] > 0, drill.id


def _valid_pick() -> dict[str, object]:
    return yaml.safe_load(
        """
        id: sample-pick
        kind: pick
        topic: queues
        difficulty: easy
        covers: [S001-56]
        title: T
        prompt: P
        explanation: E
        variant: tool
        choices: [{id: a, text: A}, {id: b, text: B}]
        answer: a
        """
    )


def test_a_valid_drill_parses() -> None:
    drill = parse_drill(_valid_pick(), source="sample-pick.yaml")
    assert drill.kind == "pick" and [c.id for c in drill.choices] == ["a", "b"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "essay"}, "sample-pick.yaml: drill.kind: 'essay' is not one of"),
        ({"topic": "cooking"}, "drill.topic: 'cooking' is not a topic"),
        ({"covers": ["S1-2"]}, "drill.covers[0]: 'S1-2' is not a checklist id"),
        ({"covers": []}, "drill.covers: name at least one checklist id"),
        ({"answer": "c"}, "drill.answer: 'c' is not a choice id"),
        ({"id": "other-id"}, "must match the file name"),
        ({"surprise": 1}, "unknown field(s) surprise for pick"),
        ({"prompt": "  "}, "drill.prompt: empty"),
    ],
)
def test_mistakes_name_the_file_and_the_field(change: dict[str, object], message: str) -> None:
    raw = _valid_pick() | change
    with pytest.raises(DrillError) as caught:
        parse_drill(raw, source="sample-pick.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("sample-pick.yaml: ")


def test_a_predict_drill_must_state_an_answer_and_a_key_the_run_can_give() -> None:
    raw = yaml.safe_load((CONTENT_DIR / "lag-off-by-one.yaml").read_text())
    parse_drill(raw, source="lag-off-by-one.yaml")
    del raw["expected"]
    with pytest.raises(DrillError, match="expected: missing"):
        parse_drill(raw, source="lag-off-by-one.yaml")
    raw = yaml.safe_load((CONTENT_DIR / "lag-off-by-one.yaml").read_text())
    raw["key"] = {"expect": "no-such-expectation"}
    with pytest.raises(DrillError, match="no expectation 'no-such-expectation'"):
        parse_drill(raw, source="lag-off-by-one.yaml")


def test_a_number_drill_formula_may_use_only_its_parameters_and_safe_functions() -> None:
    raw = yaml.safe_load((CONTENT_DIR / "storage-for-retention.yaml").read_text())
    raw["answer"] = "__import__('os').system('true')"
    with pytest.raises(DrillError, match="answer"):
        parse_drill(raw, source="storage-for-retention.yaml")
    raw["answer"] = "per_day * unknown"
    with pytest.raises(DrillError, match="uses unknown, not parameters"):
        parse_drill(raw, source="storage-for-retention.yaml")


def test_a_broken_file_is_reported_by_name(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
    with pytest.raises(DrillError, match=r"^broken\.yaml: not valid YAML"):
        load_bank(tmp_path)


def test_the_content_hash_changes_with_the_drill() -> None:
    one = parse_drill(_valid_pick(), source="sample-pick.yaml")
    other = parse_drill(_valid_pick() | {"prompt": "Q"}, source="sample-pick.yaml")
    assert one.content_hash == parse_drill(_valid_pick(), source="sample-pick.yaml").content_hash
    assert one.content_hash != other.content_hash


def test_every_drill_names_a_lesson_that_exists() -> None:
    bank = load_bank()
    assert all(d.lesson for d in bank)
    lesson_files = {p.stem for p in (CONTENT_DIR.parent / "lessons").glob("*.yaml")}
    if lesson_files:  # the lessons' own files, once they are in the tree
        assert {d.lesson for d in bank} <= lesson_files
    linked = bank.for_lesson("replication-isr")
    assert linked and all(d.lesson == "replication-isr" for d in linked)
    assert [d.difficulty for d in linked] == sorted(
        (d.difficulty for d in linked), key=["easy", "medium", "hard"].index
    )


def test_a_predict_drills_cache_key_follows_the_engine_sources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lessons.drills import bank as bank_module

    predict = load_bank().get("lag-off-by-one")
    pick = load_bank().get("tool-task-queue")
    assert predict is not None and pick is not None
    before, pick_before = predict.content_hash, pick.content_hash
    monkeypatch.setattr(bank_module, "engine_fingerprint", lambda: "another-engine")
    assert predict.content_hash != before
    assert pick.content_hash == pick_before  # no engine behind it
