"""The benchmark's baseline is installed by the project's own files (the `bench` extra, which
scripts/test installs), so `python -m scripts.bench.engine` compares against it from a fresh
clone."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from scripts.bench import engine as bench

ROOT = Path(__file__).resolve().parents[2]


def test_the_baseline_is_mockafka_py_0_2_3_and_consumes_what_it_was_given() -> None:
    assert importlib.metadata.version("mockafka-py") == "0.2.3"
    assert bench.run_mockafka(500) == 500


def test_the_benchmark_runs_as_a_module_from_the_repository_root() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench.engine", "--records", "3000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "engine full run / mockafka-py = " in done.stdout


def test_alternating_rounds_report_a_ratio_per_round_and_their_median(capsys) -> None:
    results = bench.main(["--records", "3000", "--runs", "3"])
    assert len(results["full_ratios"]) == 3 and len(results["rf1_ratios"]) == 3
    assert results["full_median"] == sorted(results["full_ratios"])[1]
    assert results["rf1_median"] == sorted(results["rf1_ratios"])[1]
    assert results["full_cpu_median"] > 0 and results["rf1_cpu_median"] > 0
    out = capsys.readouterr().out
    assert out.count("round ") == 3 and "median engine full run / mockafka-py" in out
