"""One learner can never hurt another: a bounded loopback load test.

Starts a Daphne on a free loopback port with its own SQLite database. Visitor A builds the worst
cluster the limits allow (producer apps at the most the cluster accepts, group consumer apps up
to the app limit, speed 20x, every broker stopped) and opens share links with long logs, while
visitor B's home page and sandbox commands are timed. Prints p50/p95/max of B's page loads and
command round trips (sent -> ack or error frame) and how many of B's commands got no answer.

    .venv/bin/python scripts/loadtest_isolation.py --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench.ws_viewers import free_port, summary  # noqa: E402
from scripts.bench.ws_viewers.client import Viewer, open_viewer  # noqa: E402


class Browser:
    """A visitor: a cookie jar for HTTP and WebSockets that carry its session."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str, float]:
        started = time.perf_counter()
        try:
            with self.opener.open(self.base + path, timeout=60) as response:
                response.read()
                return response.status, response.geturl(), time.perf_counter() - started
        except urllib.error.HTTPError as error:
            return error.code, path, time.perf_counter() - started

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


class Socket(Viewer):
    """Visitor A's or B's socket: notes whether the stage said the cluster is throttled."""

    throttled = False

    def on_fragment(self, payload: bytes, now: float) -> None:
        if b"too much work" in payload:
            self.throttled = True


async def open_socket(port: int, cluster_id: str, browser: Browser) -> Socket:
    socket: Socket = await open_viewer(
        f"http://127.0.0.1:{port}",
        f"/ws/clusters/{cluster_id}/",
        browser.cookie_header(),
        protocol=Socket,
        timeout_s=10,
    )
    return socket


async def command(
    socket: Socket, seq: int, client: str, body: dict[str, Any]
) -> tuple[dict[str, Any] | None, float]:
    """A command's answer frame (None: none within 10 s) and its round trip in seconds."""
    started = time.perf_counter()
    try:
        answered_at, frame = await socket.command(seq, {**body, "client": client}, timeout_s=10)
    except TimeoutError:
        return None, time.perf_counter() - started
    return frame, answered_at - started


TOKEN_CODE = """
from lessons.scenarios import ClusterSpec
from webapp import timeline
from webapp.services import sandbox_setup_commands

log = list(sandbox_setup_commands(brokers=3))
log.append({"type": "start_producer", "topic": "orders", "rate": 20.0, "keys": 10, "acks": "all"})
# As much cluster time as the replay budget lets a link carry.
per_second = timeline.COST_IDLE_S + timeline.COST_PER_RECORD_PER_S * 20
log.append({"type": "advance", "ms": int(timeline.REPLAY_BUDGET_S / per_second * 950)})
print(timeline.share_token_encode(spec=ClusterSpec(seed=5), commands=log))
"""


def long_share_token(env: dict[str, str]) -> str:
    """A share link holding the longest log the replay budget admits (made by the app)."""
    code = "import django; django.setup()\n" + TOKEN_CODE
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip().splitlines()[-1]


async def run(port: int, seconds: float, env: dict[str, str], share: bool) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    heavy, calm = Browser(base), Browser(base)
    _, url, _ = await asyncio.to_thread(heavy.get, "/sandbox/")
    heavy_id = url.rstrip("/").rsplit("/", 1)[-1]
    socket_a = await open_socket(port, heavy_id, heavy)
    setup = [{"type": "speed", "speed": "20"}]
    setup += [
        {"type": "start_producer", "topic": "orders", "rate": "200", "keys": "10", "acks": "all"}
    ] * 2
    setup += [
        {
            "type": "add_group_consumer",
            "group": f"g{i}",
            "topic": "orders",
            "commit": "after",
            "strategy": "range",
            "isolation": "read_uncommitted",
        }
        for i in range(6)
    ]
    setup += [{"type": "stop_broker", "broker_id": str(b)} for b in (1, 2, 3)]
    heavy_answers = []
    for seq, body in enumerate(setup, start=1):
        frame, _ = await command(socket_a, seq, "heavy-visitor-1", body)
        heavy_answers.append((body["type"], (frame or {}).get("type"), (frame or {}).get("code")))
    token = await asyncio.to_thread(long_share_token, env)

    share_open_s: list[float] = []

    async def share_links() -> list[int]:
        statuses = []
        while share and time.perf_counter() < deadline:
            status, _, took = await asyncio.to_thread(heavy.get, f"/s/{token}/")
            statuses.append(status)
            share_open_s.append(round(took, 2))
            await asyncio.sleep(2.0)
        return statuses

    _, url, _ = await asyncio.to_thread(calm.get, "/sandbox/")
    calm_id = url.rstrip("/").rsplit("/", 1)[-1]
    socket_b = await open_socket(port, calm_id, calm)
    deadline = time.perf_counter() + seconds
    shares = asyncio.create_task(share_links())
    page_s: list[float] = []
    command_s: list[float] = []
    lost = answered = 0
    seq = 0
    while time.perf_counter() < deadline:
        status, _, took = await asyncio.to_thread(calm.get, "/")
        if status == 200:
            page_s.append(took)
        seq += 1
        frame, took = await command(
            socket_b,
            seq,
            "calm-visitor-1",
            {"type": "produce", "topic": "orders", "key": "k", "value": f"v{seq}", "count": "1"},
        )
        if frame is None:
            lost += 1
        else:
            answered += 1
            command_s.append(took)
        await asyncio.sleep(0.2)
    share_statuses = await shares
    socket_a.sendClose()
    socket_b.sendClose()
    return {
        "seconds": seconds,
        "heavy_setup": heavy_answers,
        "heavy_share_link_statuses": share_statuses,
        "heavy_share_link_open_s": share_open_s,
        "heavy_stage_said_throttled": socket_a.throttled,
        "calm_home_page_ms": summary(page_s, (0.50, 0.95)),
        "calm_command_ms": summary(command_s, (0.50, 0.95)),
        "calm_commands_sent": seq,
        "calm_commands_answered": answered,
        "calm_commands_lost": lost,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--no-share-links", action="store_true", help="visitor A opens no share links"
    )
    parser.add_argument("--server-log", type=Path, help="copy the server's log here at the end")
    parser.add_argument(
        "--py-spy",
        type=Path,
        help="sample the server with py-spy (threads apart, collapsed stacks) into this file",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dojo-load-") as folder:
        tmp = Path(folder)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_URL"))}
        env |= {
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "KAFKA_DOJO_DATA_DIR": str(tmp),
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        port = free_port()
        log = (tmp / "daphne.log").open("ab")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "webapp.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.2)
            spy = None
            if args.py_spy:
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).with_name("py-spy")),
                        "record",
                        "--pid",
                        str(server.pid),
                        "--threads",
                        "--format",
                        "raw",
                        "--duration",
                        str(int(args.seconds + 10)),
                        "-o",
                        str(args.py_spy),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            result = asyncio.run(run(port, args.seconds, env, not args.no_share_links))
            if spy is not None:
                spy.wait(timeout=60)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
            if args.server_log:
                args.server_log.write_bytes((tmp / "daphne.log").read_bytes())
    print(json.dumps(result, indent=2))
    page, cmd = result["calm_home_page_ms"], result["calm_command_ms"]
    ok = (
        page["p95"] is not None
        and cmd["p95"] is not None
        and page["p95"] < 200
        and cmd["p95"] < 200
        and result["calm_commands_lost"] == 0
    )
    print("goal (p95 < 200 ms, nothing lost):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
