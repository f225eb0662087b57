"""Stress it spread over worker processes: the report is the same whatever their number."""

from __future__ import annotations

from lessons.scenarios import stress

CONFIG = stress.StressConfig(producer_config={"acks": "1"})


def test_the_report_does_not_depend_on_the_number_of_processes() -> None:
    progress: list[tuple[int, int]] = []
    alone = stress.stress_experiment(CONFIG, runs=7, base_seed=3, processes=1)
    spread = stress.stress_experiment(
        CONFIG, runs=7, base_seed=3, processes=2, on_progress=lambda d, t: progress.append((d, t))
    )
    assert spread == alone
    assert stress.stress_experiment(CONFIG, runs=7, base_seed=3, processes=3) == alone
    assert progress == [(done, 7) for done in range(1, 8)]  # in order, every run once
    assert alone["runs"] == 7 and alone["acknowledged"] > 0


def test_runs_come_back_in_seed_order() -> None:
    seeds = stress.run_seeds(5, 5)
    results = list(stress._run_all(CONFIG, seeds, 2))
    assert [r.seed for r in results] == seeds
    assert results == [stress.stress_run_one(CONFIG, seed) for seed in seeds]
