"""A predict drill's run as stage frames, and as a sandbox's command log."""

from __future__ import annotations

import pytest

from lessons.drills import keys
from lessons.drills.bank import default_bank
from lessons.scenarios import load_scenario, run_scenario
from webapp import drills_stage
from webapp.timeline import replay_until


def test_the_scenario_log_replays_to_the_same_state_as_the_runner() -> None:
    drill = default_bank().get("unclean-election-off")
    assert drill is not None
    spec, commands = drills_stage.scenario_log(drill.body["scenario"], source="t")
    assert [c["type"] for c in commands][:2] == ["create_topic", "set_acks"]
    replayed, _ = replay_until(spec=spec, commands=commands)
    ran = run_scenario(load_scenario(drill.body["scenario"], source="t")).runtime
    assert replayed.now_ms == ran.now_ms
    assert replayed.cluster.snapshot() == ran.cluster.snapshot()


def test_frames_cover_the_run_and_mark_the_tick_after_the_deciding_moment() -> None:
    assert drills_stage.frame_times(10_000, 9_002, [0, 500])[:1] == [0]
    times = drills_stage.frame_times(10_000, 9_002, [0, 500])
    assert 9_010 in times and 8_510 in times and times[-1] == 10_000
    assert len(times) <= drills_stage.MAX_FRAMES and times == sorted(set(times))


@pytest.mark.django_db
def test_drill_frames_draw_the_stage_and_flag_exactly_one_deciding_frame() -> None:
    drill = default_bank().get("two-of-three-down-acks-all")
    assert drill is not None
    moment = keys.compute_key(drill).moment_ms
    frames = drills_stage.drill_frames(drill, drill.body["scenario"], moment, variant="test")
    assert [f.deciding for f in frames].count(True) == 1
    deciding = next(f for f in frames if f.deciding)
    assert moment is not None and 0 <= deciding.time_ms - moment < 10
    assert all("<svg" in f.stage for f in frames)
    assert frames[0].time_ms == 0 and frames[-1].time_ms >= 137_500
