"""Predict drills' keys come from running the scenario; verify_drills catches a wrong author."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from lessons.drills import keys
from lessons.drills.bank import CONTENT_DIR, default_bank, load_bank, load_file
from lessons.drills.models import AnswerKey


def test_the_key_is_what_the_run_gives_not_what_the_author_wrote(tmp_path: Path) -> None:
    raw = yaml.safe_load((CONTENT_DIR / "lag-off-by-one.yaml").read_text())
    raw["expected"] = 4  # the classic slip: 9 - 5
    path = tmp_path / "lag-off-by-one.yaml"
    path.write_text(yaml.safe_dump(raw))
    drill = load_file(path)
    computed = keys.compute_key(drill)
    assert computed.key == 5
    assert not keys.matches_expected(drill, computed)
    assert computed.moment_ms is not None and computed.moment_ms >= 2000


def test_a_choice_key_maps_the_run_onto_a_choice() -> None:
    drill = default_bank().get("two-of-three-down-acks-all")
    assert drill is not None
    computed = keys.compute_key(drill)
    assert computed.observed == "TimeoutException"
    assert computed.key == "timeout"


@pytest.mark.django_db
def test_verify_drills_fails_a_scenario_that_refuses_a_command(tmp_path: Path) -> None:
    raw = yaml.safe_load((CONTENT_DIR / "lag-off-by-one.yaml").read_text())
    raw["scenario"]["steps"].insert(0, {"at": 100, "command": "commit_group", "app_id": 9})
    folder = tmp_path / "drills"
    folder.mkdir()
    (folder / "lag-off-by-one.yaml").write_text(yaml.safe_dump(raw))
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("verify_drills", "--dir", str(folder), stdout=out)
    assert (
        "FAIL lag-off-by-one: the scenario refused steps[0]: There is no consumer app 9"
        in out.getvalue()
    )


def test_a_what_if_changes_one_setting_and_the_answer() -> None:
    drill = default_bank().get("two-of-three-down-acks-all")
    assert drill is not None
    change = drill.body["what_if"][0]
    assert change["label"] == "acks=1"
    scenario = keys.with_change(drill.body["scenario"], change["path"], change["value"])
    assert drill.body["scenario"]["setup"][0]["acks"] == "all"  # the original is untouched
    assert keys.compute_key(drill, scenario=scenario).key == "acked"


def _bank_dir_with(tmp_path: Path, *overrides: tuple[str, dict[str, object]]) -> Path:
    folder = tmp_path / "drills"
    folder.mkdir(parents=True)
    for name in ("lag-off-by-one", "null-keys-sticky", "min-isr-above-replica-count"):
        shutil.copy(CONTENT_DIR / f"{name}.yaml", folder / f"{name}.yaml")
    for name, change in overrides:
        raw = yaml.safe_load((folder / f"{name}.yaml").read_text()) | change
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    return folder


@pytest.mark.django_db
def test_verify_drills_prints_a_line_per_drill_and_the_totals(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("verify_drills", "--dir", str(_bank_dir_with(tmp_path)), stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert lines[-1] == "3 passed, 0 failed"
    assert sum(line.startswith("ok   ") for line in lines) == 3
    # the keys (and the what-ifs' keys) are cached for serving
    bank = load_bank(_bank_dir_with(tmp_path / "again"))
    assert AnswerKey.objects.count() == sum(1 + len(d.body.get("what_if") or []) for d in bank)


@pytest.mark.django_db
def test_verify_drills_fails_on_a_wrong_author(tmp_path: Path) -> None:
    folder = _bank_dir_with(
        tmp_path, ("lag-off-by-one", {"expected": 4}), ("null-keys-sticky", {"expected": "three"})
    )
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_drills", "--dir", str(folder), stdout=out)
    assert exited.value.code == 1
    text = out.getvalue()
    assert "FAIL lag-off-by-one: the author expects 4, the engine gives 5" in text
    assert "FAIL null-keys-sticky: the author expects 'three', the engine gives 'one'" in text
    assert text.strip().splitlines()[-1] == "1 passed, 2 failed"
    assert not AnswerKey.objects.filter(drill_id="lag-off-by-one").exists()


@pytest.mark.django_db
def test_the_whole_bank_verifies_with_a_line_per_drill() -> None:
    out = io.StringIO()
    call_command("verify_drills", stdout=out)  # its time is measured by the test command
    last = out.getvalue().strip().splitlines()[-1]
    bank = default_bank()
    assert len(bank) >= 80
    assert last == f"{len(bank)} passed, 0 failed"
    lines = out.getvalue().splitlines()
    for drill in bank:  # a line per drill
        assert any(line.startswith(f"ok   {drill.id}: ") for line in lines), drill.id


def test_a_key_can_count_engine_events_and_a_what_if_can_change_a_setting_everywhere() -> None:
    drill = default_bank().get("cooperative-rebalance")
    assert drill is not None
    assert keys.compute_key(drill).key == 6  # eager: every member revokes both partitions
    change = drill.body["what_if"][0]
    scenario = keys.with_change(drill.body["scenario"], change["path"], change["value"])
    strategies = [c.get("strategy") for c in scenario["setup"]] + [scenario["steps"][0]["strategy"]]
    assert strategies == ["cooperative-sticky"] * 4
    assert keys.compute_key(drill, scenario=scenario).key == 1


@pytest.mark.django_db
def test_warm_drill_keys_fills_the_cache_once_and_drops_stale_keys() -> None:
    AnswerKey.objects.create(content_hash="stale", drill_id="gone", key=1)
    out = io.StringIO()
    call_command("warm_drill_keys", stdout=out)
    bank = default_bank()
    variants = sum(1 + len(d.body.get("what_if") or []) for d in bank if d.kind == "predict")
    assert f"answer keys: {variants} computed, 0 broken, 1 stale removed" in out.getvalue()
    assert AnswerKey.objects.count() == variants
    again = io.StringIO()
    call_command("warm_drill_keys", stdout=again)
    assert "answer keys: 0 computed, 0 broken, 0 stale removed" in again.getvalue()
