"""The scaled-mode room benchmark starts its own stack (Redis, PostgreSQL, an engine-host
worker, two Daphnes) from a given server root, and reports per process the CPU per frame a
viewer received and the resident memory every 10 s, also while nobody acts (no timing
asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.support import ROOT

pytestmark = [pytest.mark.scaled, pytest.mark.redis]


def test_the_scaled_bench_runs_the_whole_stack_of_a_server_root(tmp_path: Path) -> None:
    out = tmp_path / "runs.json"
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench.scaled", "--viewers", "4", "--clients", "2"]
        + ["--seconds", "3", "--watch", "12", "--max-kept", "4"]
        + ["--server-root", str(ROOT), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    (result,) = json.loads(out.read_text())
    assert result["root"] == str(ROOT)
    assert result["viewers"] == 4 and sum(result["errors"].values()) == 0
    assert result["command_to_each_viewer_ms"]["n"] == 4 * result["commands"]
    kinds = sorted({name.split()[0] for name in result["server_processes"]})
    assert kinds == ["daphne", "postgres", "redis-server", "run_engine_hosts"]
    daphnes = [f for n, f in result["server_processes"].items() if n.startswith("daphne")]
    assert len(daphnes) == 2
    for figures in result["server_processes"].values():
        assert figures["cpu_us_per_viewer_frame"] is not None
        assert figures["rss_mb"]["every_10_s"]
    # --watch: the servers' memory after the last command, and how much it grew then.
    watched = result["server_rss_mb"]["watch_every_10_s"]
    assert len(watched) == 2
    assert result["server_rss_mb"]["growth"]["watch_mb"] == round(watched[1] - watched[0], 1)
    assert "loadavg" in result and "summary" in done.stdout
