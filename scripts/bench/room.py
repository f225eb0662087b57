"""Benchmark: N WebSocket viewers of one workshop room, the instructor acting on its cluster.

    python -m scripts.bench.room --viewers 200              # a minute, embedded default
    python -m scripts.bench.room --viewers 50 --seconds 15  # a quick run
    python -m scripts.bench.room --viewers 500 --url http://127.0.0.1:8001 \\
        --url http://127.0.0.1:8002 --server-pid 1234 --server-pid 1235   # running servers

Without --url it starts a Daphne on a free loopback port (the embedded default: SQLite, the
in-memory channel layer, the room's engine host inside that process) with its own data folder.
With --url it targets servers already running; the room, the instructor and the learners are
then created through this process's settings (DATABASE_URL etc. must name the servers'
database), and viewers are spread over the URLs round-robin (the instructor uses the first).

Each viewer is a learner of the room with their own session. The instructor produces one
record twice a second. The host's ack says which state version first shows the command
(`visible_in`); every viewer notes when each version reaches it, so "command -> last viewer" is
the time from sending the command until the slowest viewer holds that version. Prints p50/p95/
p99 of that (over commands) and of every viewer's delay, errors (refused commands, commands
with no answer, sockets that closed or never saw a version), the home page's response time
while the room runs, frames and bytes per viewer per second, and the server's resident memory
(start: all viewers connected; end: after the last command). This module measures wall time on
purpose; the figures depend on the machine, so compare runs made on the same one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from scripts.bench.ws_viewers import client as ws_client
from scripts.bench.ws_viewers import free_port, summary

ROOT = Path(__file__).resolve().parents[2]
VERSION = re.compile(r'id="state-version" data-version="(\d+)"')

SETUP_CODE = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from webapp.workshops import services
from webapp.workshops.models import Participant

viewers = int(sys.argv[1])
settings.DOJO_WORKSHOP_MAX_PARTICIPANTS = max(viewers, settings.DOJO_WORKSHOP_MAX_PARTICIPANTS)
User = get_user_model()
teacher, _ = User.objects.get_or_create(username="bench-teacher", defaults={"is_staff": True})
workshop = services.workshop_create(owner=teacher, title="Room benchmark")
client = Client()
client.force_login(teacher)
learners = []
for i in range(viewers):
    participant = Participant.objects.create(workshop=workshop, name=f"viewer {i}")
    session = SessionStore()
    session[services.session_key_for(workshop)] = participant.token
    session.create()
    learners.append(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
instructor = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
print(json.dumps({"code": workshop.code, "instructor": instructor, "learners": learners}))
"""


class Viewer(ws_client.Viewer):
    """One socket: notes when each state version first arrives, and the JSON frames."""

    def onConnect(self, response: Any) -> None:  # noqa: N802 (autobahn's names)
        super().onConnect(response)
        self.seen: dict[int, float] = {}

    def on_fragment(self, payload: bytes, now: float) -> None:
        match = VERSION.search(payload[:400].decode(errors="replace"))
        if match:
            self.seen.setdefault(int(match.group(1)), now)

    def first_at_or_after(self, version: int) -> float | None:
        times = [t for v, t in self.seen.items() if v >= version]
        return min(times) if times else None


async def open_viewer(base: str, code: str, cookie: str) -> Viewer:
    viewer: Viewer = await ws_client.open_viewer(
        base, f"/ws/workshops/{code}/", cookie, protocol=Viewer, validate_utf8=False
    )
    return viewer


def rss_mb(pids: list[int]) -> float | None:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return round(total / 1024, 1) if pids else None


def cpu_s(pids: list[int]) -> float | None:
    """CPU seconds (user + system) the server processes used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def home_page_ms(base: str) -> float | None:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(base + "/", timeout=30) as response:
            response.read()
    except (OSError, urllib.error.HTTPError):
        return None
    return time.perf_counter() - started


async def run(
    bases: list[str], setup: dict[str, Any], seconds: float, rate: float, pids: list[int]
) -> dict[str, Any]:
    code = setup["code"]
    viewers: list[Viewer] = []
    connect_errors = 0
    batch = 25  # connect in batches: a burst of 500 handshakes is not what is measured
    learners = setup["learners"]
    for start in range(0, len(learners), batch):
        results = await asyncio.gather(
            *(
                open_viewer(bases[(start + i) % len(bases)], code, cookie)
                for i, cookie in enumerate(learners[start : start + batch])
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Viewer):
                viewers.append(result)
            else:
                connect_errors += 1
    instructor = await open_viewer(bases[0], code, setup["instructor"])
    await asyncio.sleep(2.0)  # every socket got its full state
    rss_start = rss_mb(pids)
    cpu_start, client_start = cpu_s(pids), time.process_time()
    frames_start = sum(v.frames for v in viewers)
    bytes_start = sum(v.bytes for v in viewers)
    sent: list[tuple[float, int]] = []  # (sent at, visible_in)
    refused = unanswered = 0
    page_s: list[float] = []
    loop = asyncio.get_running_loop()

    async def home_pages() -> None:
        while loop.time() < deadline:
            took = await asyncio.to_thread(home_page_ms, bases[0])
            if took is not None:
                page_s.append(took)
            await asyncio.sleep(1.0)

    async def act(seq: int) -> None:
        nonlocal refused, unanswered
        waiter = loop.create_future()
        instructor.factory.waiting[seq] = waiter
        started = time.perf_counter()
        body = {
            "type": "produce",
            "seq": seq,
            "topic": "orders",
            "key": f"k{seq % 7}",
            "value": f"bench-{seq}",
            "count": 1,
        }
        instructor.sendMessage(json.dumps(body).encode())
        try:
            _, frame = await asyncio.wait_for(waiter, 10)
        except TimeoutError:
            unanswered += 1
            return
        if frame.get("type") != "ack" or "visible_in" not in frame:
            refused += 1
            return
        sent.append((started, int(frame["visible_in"])))

    started_at = loop.time()
    deadline = started_at + seconds
    pages = asyncio.create_task(home_pages())
    actions = []
    seq = 0
    while loop.time() < deadline:
        seq += 1
        actions.append(asyncio.create_task(act(seq)))
        await asyncio.sleep(max(0.0, started_at + seq / rate - loop.time()))
    await asyncio.gather(*actions)
    await asyncio.sleep(3.0)  # the last versions reach everyone
    elapsed = loop.time() - started_at
    await pages
    rss_end = rss_mb(pids)
    cpu_end, client_end = cpu_s(pids), time.process_time()
    last_viewer: list[float] = []
    every_viewer: list[float] = []
    missed = 0
    for at, version in sent:
        delays = []
        for viewer in viewers:
            arrived = viewer.first_at_or_after(version)
            if arrived is None:
                missed += 1
            else:
                delays.append(max(0.0, arrived - at))
        every_viewer.extend(delays)
        if delays:
            last_viewer.append(max(delays))
    closed = sum(v.closed for v in viewers)
    frames = sum(v.frames for v in viewers) - frames_start
    size = sum(v.bytes for v in viewers) - bytes_start
    for viewer in [*viewers, instructor]:
        viewer.sendClose()
    for _ in range(50):  # let the closing handshakes finish before the loop goes away
        if all(v.closed for v in [*viewers, instructor]):
            break
        await asyncio.sleep(0.1)
    per_viewer = max(len(viewers), 1) * elapsed
    return {
        "viewers": len(viewers),
        "servers": bases,
        "seconds": round(elapsed, 1),
        "commands": seq,
        "command_to_last_viewer_ms": summary(last_viewer),
        "command_to_each_viewer_ms": summary(every_viewer),
        "errors": {
            "connect_failed": connect_errors,
            "refused": refused,
            "unanswered": unanswered,
            "sockets_closed": closed,
            "versions_never_seen": missed,
        },
        "home_page_ms": summary(page_s),
        "frames_per_viewer_per_s": round(frames / per_viewer, 2),
        "kb_per_viewer_per_s": round(size / per_viewer / 1024, 1),
        "bytes_per_frame": round(size / frames) if frames else None,
        "server_rss_mb": {"start": rss_start, "end": rss_end},
        # Of one core: above ~90 % the process (server or this client) is what limits.
        "server_cpu_percent": (
            round(100 * (cpu_end - cpu_start) / elapsed)
            if cpu_start is not None and cpu_end is not None
            else None
        ),
        "client_cpu_percent": round(100 * (client_end - client_start) / elapsed),
    }


def make_room(viewers: int, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SETUP_CODE, str(viewers)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def wait_healthy(base: str) -> None:
    for _ in range(150):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{base} did not answer /healthz")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=2.0, help="instructor commands a second")
    parser.add_argument("--url", action="append", default=[], help="a running server (repeat)")
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument("--goal-p95-ms", type=float, default=150.0)
    parser.add_argument(
        "--profile", type=Path, help="run the started Daphne under cProfile, stats to this file"
    )
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items()}
    env.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    with tempfile.TemporaryDirectory(prefix="dojo-room-") as folder:
        server = None
        log = None
        pids = list(args.server_pid)
        bases = [u.rstrip("/") for u in args.url]
        if not bases:
            tmp = Path(folder)
            env = {k: v for k, v in env.items() if not k.startswith(("DJANGO_", "REDIS_URL"))}
            env |= {
                "DJANGO_SETTINGS_MODULE": "webapp.settings",
                "KAFKA_DOJO_DATA_DIR": str(tmp),
                "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "KAFKA_DOJO_WORKSHOP_MAX_PARTICIPANTS": str(max(args.viewers, 200)),
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
            profile = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
            server = subprocess.Popen(
                [sys.executable, *profile, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
                + ["webapp.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            pids = [server.pid]
            bases = [f"http://127.0.0.1:{port}"]
        try:
            for base in bases:
                wait_healthy(base)
            setup = make_room(args.viewers, env)
            result = asyncio.run(run(bases, setup, args.seconds, args.rate, pids))
        finally:
            if server is not None:
                # SIGINT: Daphne stops cleanly (and cProfile, if used, writes its stats).
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
            if log is not None:
                log.close()
    print(json.dumps(result, indent=2))
    p95 = result["command_to_last_viewer_ms"]["p95"]
    errors = sum(result["errors"].values())
    ok = p95 is not None and p95 < args.goal_p95_ms and errors == 0
    print(
        f"goal (command -> last viewer p95 < {args.goal_p95_ms:g} ms, no errors):",
        "met" if ok else "NOT met",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
