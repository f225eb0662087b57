"""A real Daphne in a subprocess, killed and stopped as a server is: `kill -9` with a producer
app running loses nothing a viewer saw, and a SIGTERM under load stops every clock and ends the
process promptly.

A viewer socket (tests/web/server_process_client.py, its own process, as a browser would be)
records the last clock time and the committed records (the high watermarks of the stage's text
mirror) it was shown; after a restart a new viewer is sent the state the host rebuilt from the
log, and the two are compared."""

from __future__ import annotations

import http.cookiejar
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.support import ROOT, LiveServer, free_port, migrate, server_env

CLIENT = Path(__file__).with_name("server_process_client.py")
# A share link holding as much cluster time as the replay budget admits (as the load test's).
LONG_SHARE_TOKEN = """
import django; django.setup()
from lessons.scenarios import ClusterSpec
from webapp import timeline
from webapp.services import sandbox_setup_commands
log = list(sandbox_setup_commands(brokers=3))
log.append({"type": "start_producer", "topic": "orders", "rate": 20.0, "keys": 10, "acks": "all"})
per_second = timeline.COST_IDLE_S + timeline.COST_PER_RECORD_PER_S * 20
log.append({"type": "advance", "ms": int(timeline.REPLAY_BUDGET_S / per_second * 950)})
print(timeline.share_token_encode(spec=ClusterSpec(seed=5), commands=log))
"""


def client(mode: str, server: LiveServer, cluster_id: str, cookie: str, *extra: str) -> Any:
    assert server.process is not None
    done = subprocess.run(
        [sys.executable, str(CLIENT), mode, str(server.port), cluster_id, cookie]
        + [str(server.process.pid), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def new_sandbox(url: str) -> tuple[str, str]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(url + "/sandbox/", timeout=60) as response:
        cluster_id = response.geturl().rstrip("/").rsplit("/", 1)[-1]
    return cluster_id, "; ".join(f"{c.name}={c.value}" for c in jar)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    env = server_env(tmp_path)
    migrate(env)
    port = free_port()
    live = LiveServer(f"http://127.0.0.1:{port}", port, env, tmp_path / "daphne.log")
    yield live
    if live.process is not None and live.process.poll() is None:
        live.process.kill()
        live.process.wait()


def records(hw: dict[str, int]) -> int:
    return sum(hw.values())


def test_kill_9_with_a_producer_app_running_loses_nothing_a_viewer_saw(server: Any) -> None:
    server.start()
    cluster_id, cookie = new_sandbox(server.url)
    last_seen = client("kill", server, cluster_id, cookie)
    assert server.process is not None
    assert server.process.wait(timeout=10) == -signal.SIGKILL
    assert records(last_seen["hw"]) > 0, last_seen

    server.start()  # the same database: the host is rebuilt by replaying the log
    rebuilt = client("first", server, cluster_id, cookie)
    # Everything the viewer was shown is in the log: the clock and every committed record.
    assert rebuilt["now_ms"] >= last_seen["now_ms"], (rebuilt, last_seen)
    for partition, hw in last_seen["hw"].items():
        assert rebuilt["hw"].get(partition, -1) >= hw, (partition, rebuilt, last_seen)


def test_sigterm_under_load_stops_every_clock_and_exits_promptly(server: Any) -> None:
    server.start()
    cluster_id, cookie = new_sandbox(server.url)
    token = subprocess.run(
        [sys.executable, "-c", LONG_SHARE_TOKEN],
        cwd=ROOT,
        env=server.env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    seen = client("term", server, cluster_id, cookie, token)
    assert server.process is not None
    code = server.process.wait(timeout=60)
    took = time.time() - seen["at"]
    log = server.log_path.read_text()
    # Promptly, and as a controlled stop (hosts stopped, not killed by the fixture).
    assert took < 15, f"Daphne took {took:.1f} s to honour SIGTERM"
    assert code in (0, -signal.SIGTERM), (code, log[-3000:])
    assert f"host {cluster_id} stopped: shutdown" in log, log[-3000:]

    server.start()
    logged = client("first", server, cluster_id, cookie)
    # The clock stopped when the shutdown began: what was shown is in the log, and no more
    # than one tick of cluster time past it (the tick in flight when the signal came).
    assert logged["now_ms"] >= seen["seen_at_term_ms"], (logged, seen)
    assert logged["now_ms"] <= seen["last_shown_ms"] + 5_000, (logged, seen)
