"""Benchmark: N WebSocket viewers of one workshop room, the instructor acting on its cluster.

    python -m scripts.bench.room --viewers 200              # a minute, embedded default
    python -m scripts.bench.room --viewers 50 --seconds 15  # a quick run
    python -m scripts.bench.room --viewers 20 --seconds 60 --watch 180  # then nobody acts
    python -m scripts.bench.room --viewers 200 --seconds 600 --max-kept 8  # checkpoints capped
    python -m scripts.bench.room --viewers 500 --url http://127.0.0.1:8001 \\
        --url http://127.0.0.1:8002 --server-pid 1234 --server-pid 1235   # running servers

Without --url it starts a Daphne on a free loopback port (the embedded default: SQLite, the
in-memory channel layer, the room's engine host inside that process) with its own data folder.
With --url it targets servers already running; the room, the instructor and the learners are
then created through this process's settings (DATABASE_URL etc. must name the servers'
database), and viewers are spread over the URLs round-robin (the instructor uses the first).

With --clients K the viewers are spread over K client processes (this one keeps the instructor
and the home-page probe): one Python process decoding hundreds of sockets' frames can be what
limits on a small machine, and then the figures measure the client, not the server. Arrival
times are compared across processes on the system-wide monotonic clock (`time.monotonic`:
CLOCK_MONOTONIC). The client CPU is reported per process, like the servers' (give every server
process: Daphnes, the engine-host worker, Redis).

Each viewer is a learner of the room with their own session. The instructor produces one
record twice a second. The host's ack says which state version first shows the command
(`visible_in`); every viewer notes when each version reaches it, so "command -> last viewer" is
the time from sending the command until the slowest viewer holds that version. Prints p50/p95/
p99 of that (over commands) and of every viewer's delay, errors (refused commands, commands
with no answer, sockets that closed or never saw a version), the home page's response time
while the room runs, frames and bytes per viewer per second, and the server's resident memory
(start: all viewers connected; end: after the last command; `growth`: over the acting phase's
second half, per command acted then, and over the watch). This module measures wall time on
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
from collections import Counter
from pathlib import Path
from typing import Any

from scripts.bench.ws_viewers import client as ws_client
from scripts.bench.ws_viewers import free_port, memory_growth, summary

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
    """One socket: notes when each state version first arrives (on the system-wide monotonic
    clock, compared across client processes), and the JSON frames."""

    clock = staticmethod(time.monotonic)

    def onConnect(self, response: Any) -> None:  # noqa: N802 (autobahn's names)
        super().onConnect(response)
        self.seen: dict[int, float] = {}
        self.connect_s = 0.0

    def on_fragment(self, payload: bytes, now: float) -> None:
        match = VERSION.search(payload[:400].decode(errors="replace"))
        if match:
            self.seen.setdefault(int(match.group(1)), now)


async def open_viewer(base: str, code: str, cookie: str) -> Viewer:
    # The payload is the server's own HTML: no client-side UTF-8 check (pure Python). A
    # browser waits far longer than autobahn's 5 s for a handshake: how long each took is
    # reported (connect_ms), a socket that took over 30 s counts as failed.
    started = time.monotonic()
    viewer: Viewer = await ws_client.open_viewer(
        base,
        f"/ws/workshops/{code}/",
        cookie,
        protocol=Viewer,
        timeout_s=35,
        validate_utf8=False,
        handshake_timeout_s=30,
    )
    viewer.connect_s = time.monotonic() - started
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


def wait_s(pids: list[int]) -> float | None:
    """Seconds the processes' threads waited for a CPU while runnable (the scheduler's run
    queue, /proc/PID/task/TID/schedstat): on a shared machine, time lost to other load."""
    total = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            return None
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def process_name(pid: int) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(w.decode(errors="replace") for w in words if w)
    for known in ("daphne", "run_engine_hosts", "redis-server", "celery", "postgres"):
        if known in text:
            return known
    return Path(words[0].decode(errors="replace")).name if words and words[0] else "?"


def home_page_ms(base: str) -> float | None:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(base + "/", timeout=30) as response:
            response.read()
    except (OSError, urllib.error.HTTPError):
        return None
    return time.monotonic() - started


# Handshakes in flight at once, over all client processes: a burst of 500 is not what is
# measured.
CONNECTING = 25


async def open_viewers(
    bases: list[str], code: str, learners: list[tuple[int, str]], batch: int = CONNECTING
) -> tuple[list[Viewer], list[str]]:
    """Open the learners' sockets (index, cookie), in batches: a burst of 500 handshakes is
    not what is measured. Returns the open viewers and why the others failed to connect."""
    viewers: list[Viewer] = []
    failed: list[str] = []
    for start in range(0, len(learners), batch):
        results = await asyncio.gather(
            *(
                open_viewer(bases[i % len(bases)], code, cookie)
                for i, cookie in learners[start : start + batch]
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Viewer):
                viewers.append(result)
            else:
                failed.append(f"{type(result).__name__}: {result}"[:160])
    return viewers, failed


async def close_viewers(viewers: list[Viewer]) -> None:
    for viewer in viewers:
        viewer.sendClose()
    for _ in range(50):  # let the closing handshakes finish before the loop goes away
        if all(v.closed for v in viewers):
            break
        await asyncio.sleep(0.1)


class Pool:
    """Some of the viewers: in this process, or (`Remote`) in a client process of their own."""

    async def open(self) -> tuple[list[str], list[float]]:
        """Connect; returns why sockets failed to connect and how long the others took."""
        raise NotImplementedError

    async def mark(self) -> None:
        """The measured window starts (frames, bytes and CPU are counted from here)."""
        raise NotImplementedError

    async def finish(self) -> dict[str, Any]:
        """The window ended: what every socket saw, then close them."""
        raise NotImplementedError


class Local(Pool):
    def __init__(
        self, bases: list[str], code: str, learners: list[tuple[int, str]], batch: int
    ) -> None:
        self.bases, self.code, self.learners, self.batch = bases, code, learners, batch
        self.viewers: list[Viewer] = []

    async def open(self) -> tuple[list[str], list[float]]:
        self.viewers, failed = await open_viewers(self.bases, self.code, self.learners, self.batch)
        return failed, [v.connect_s for v in self.viewers]

    async def mark(self) -> None:
        self.frames = sum(v.frames for v in self.viewers)
        self.bytes = sum(v.bytes for v in self.viewers)

    async def finish(self) -> dict[str, Any]:
        result = {
            "seen": [v.seen for v in self.viewers],
            "closed": sum(v.closed for v in self.viewers),
            "frames": sum(v.frames for v in self.viewers) - self.frames,
            "bytes": sum(v.bytes for v in self.viewers) - self.bytes,
        }
        await close_viewers(self.viewers)
        return result


class Remote(Pool):
    """A client process (`--client-process`), spoken to by lines of JSON on its stdin/stdout."""

    def __init__(
        self, bases: list[str], code: str, learners: list[tuple[int, str]], batch: int
    ) -> None:
        self.job = {"bases": bases, "code": code, "learners": learners, "batch": batch}

    async def _line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"client process {self.process.pid} ended early")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def _say(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(word.encode() + b"\n")
        await self.process.stdin.drain()

    async def open(self) -> tuple[list[str], list[float]]:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scripts.bench.room",
            "--client-process",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 30,
        )
        await self._say(json.dumps(self.job))
        answer = await self._line()
        return list(answer["failed"]), list(answer["connect_s"])

    async def mark(self) -> None:
        await self._say("mark")
        await self._line()

    async def finish(self) -> dict[str, Any]:
        await self._say("finish")
        result = await self._line()
        result["seen"] = [{int(v): t for v, t in seen.items()} for seen in result["seen"]]
        await self.process.wait()
        return result


async def client_process() -> None:
    """One client process's part: open its viewers, count from "mark", report at "finish"."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    job = json.loads(await reader.readline())
    learners = [(int(i), str(c)) for i, c in job["learners"]]
    pool = Local(job["bases"], job["code"], learners, int(job["batch"]))
    failed, connect_s = await pool.open()
    print(json.dumps({"failed": failed, "connect_s": connect_s}), flush=True)
    await reader.readline()  # mark
    await pool.mark()
    cpu = time.process_time()
    print(json.dumps({"marked": True}), flush=True)
    await reader.readline()  # finish
    cpu = time.process_time() - cpu
    result = await pool.finish()
    result["cpu_s"] = cpu
    print(json.dumps(result), flush=True)


async def run(
    bases: list[str],
    setup: dict[str, Any],
    seconds: float,
    rate: float,
    pids: list[int],
    clients: int = 1,
    stalled: int = 0,
    watch: float = 0.0,
) -> dict[str, Any]:
    """`stalled`: that many more learners (the last of `setup`'s) connect and then stop
    reading (a stalled browser): not counted as viewers, they show what the servers keep for
    a socket that does not read (their memory). `watch`: after the last command, the viewers
    stay connected that many seconds more while the room's clock runs and nobody acts, and
    the servers' resident memory is sampled every 10 s (serving a room that stores nothing
    new: is it flat?)."""
    code = setup["code"]
    every = list(enumerate(setup["learners"]))
    learners, stalled_learners = every[: len(every) - stalled], every[len(every) - stalled :]
    pools: list[Pool]
    if clients <= 1:
        pools = [Local(bases, code, learners, CONNECTING)]
    else:
        batch = max(1, CONNECTING // clients)
        pools = [Remote(bases, code, learners[i::clients], batch) for i in range(clients)]
    opened = await asyncio.gather(*(pool.open() for pool in pools))
    failures = Counter(why for failed, _ in opened for why in failed)
    connect_errors = sum(failures.values())
    connect_s = [took for _, times in opened for took in times]
    instructor = None
    for _ in range(5):  # as a browser's page does, the instructor's socket tries again
        try:
            instructor = await open_viewer(bases[0], code, setup["instructor"])
            break
        except (OSError, TimeoutError) as error:
            failures[f"instructor: {type(error).__name__}: {error}"[:160]] += 1
            connect_errors += 1
    if instructor is None:
        raise RuntimeError(f"the instructor could not connect: {dict(failures)}")
    stuck, stuck_failed = await open_viewers(bases, code, stalled_learners)
    for viewer in stuck:
        viewer.transport.pause_reading()  # type: ignore[attr-defined]
    await asyncio.sleep(2.0)  # every socket got its full state
    rss_start = {pid: rss_mb([pid]) for pid in pids}
    cpu_start = {pid: cpu_s([pid]) for pid in pids}
    wait_start = {pid: wait_s([pid]) for pid in pids}
    await asyncio.gather(*(pool.mark() for pool in pools))
    client_start = time.process_time()
    sent: list[tuple[float, int]] = []  # (sent at, visible_in)
    acked: list[float] = []  # command -> the host's ack at the instructor
    refused = unanswered = 0
    page_s: list[float] = []
    loop = asyncio.get_running_loop()

    rss_series: list[float | None] = []
    rss_each: dict[int, list[float | None]] = {pid: [] for pid in pids}

    async def memory() -> None:
        """The servers' resident memory every 10 s of the run (is it flat?), in all and per
        process."""
        while loop.time() < deadline:
            rss_series.append(rss_mb(pids))
            for pid in pids:
                rss_each[pid].append(rss_mb([pid]))
            await asyncio.sleep(10.0)

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
        started = time.monotonic()
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
            answered_at, frame = await asyncio.wait_for(waiter, 10)
        except TimeoutError:
            unanswered += 1
            return
        if frame.get("type") != "ack" or "visible_in" not in frame:
            refused += 1
            return
        sent.append((started, int(frame["visible_in"])))
        acked.append(answered_at - started)

    started_at = loop.time()
    deadline = started_at + seconds
    pages = asyncio.create_task(home_pages())
    memory_task = asyncio.create_task(memory()) if pids else None
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
    if memory_task is not None:
        await memory_task
    rss_end = {pid: rss_mb([pid]) for pid in pids}
    cpu_end = {pid: cpu_s([pid]) for pid in pids}
    wait_end = {pid: wait_s([pid]) for pid in pids}
    client_cpu = [time.process_time() - client_start]
    watch_series: list[float | None] = []
    watched = 0.0
    if watch > 0 and pids:
        watch_started = loop.time()
        while True:
            watch_series.append(rss_mb(pids))
            if loop.time() - watch_started + 10.0 > watch:
                break
            await asyncio.sleep(10.0)
        watched = loop.time() - watch_started
    parts = await asyncio.gather(*(pool.finish() for pool in pools))
    if clients > 1:
        client_cpu += [part["cpu_s"] for part in parts]
    else:
        client_cpu = [client_cpu[0]]
    seen_all = [seen for part in parts for seen in part["seen"]]
    last_viewer: list[float] = []
    first_viewer: list[float] = []
    every_viewer: list[float] = []
    missed = 0
    for at, version in sent:
        delays = []
        for seen in seen_all:
            times = [t for v, t in seen.items() if v >= version]
            if not times:
                missed += 1
            else:
                delays.append(max(0.0, min(times) - at))
        every_viewer.extend(delays)
        if delays:
            last_viewer.append(max(delays))
            first_viewer.append(min(delays))
    closed = sum(part["closed"] for part in parts)
    frames = sum(part["frames"] for part in parts)
    size = sum(part["bytes"] for part in parts)
    await close_viewers([instructor])
    for viewer in stuck:
        viewer.transport.abort()  # type: ignore[attr-defined]
    # Frames and bytes are counted until the sockets close, the watch included.
    per_viewer = max(len(seen_all), 1) * (elapsed + watched)

    def percent(used: float | None) -> int | None:
        return None if used is None else round(100 * used / elapsed)

    def used(pid: int) -> float | None:
        start, end = cpu_start[pid], cpu_end[pid]
        return None if start is None or end is None else end - start

    def per_frame_us(pid: int) -> float | None:
        """CPU this process spent per frame a viewer received (microseconds)."""
        spent = used(pid)
        return None if spent is None or not frames else round(1e6 * spent / frames, 1)

    per_process = {
        f"{process_name(pid)} {pid}": {
            "cpu_percent": percent(used(pid)),
            "cpu_us_per_viewer_frame": per_frame_us(pid),
            "rss_mb": {"start": rss_start[pid], "end": rss_end[pid], "every_10_s": rss_each[pid]},
            # Of the run's wall time: how long its threads were runnable but not running.
            "cpu_wait_percent": percent(
                None
                if wait_end[pid] is None or wait_start[pid] is None
                else wait_end[pid] - wait_start[pid]  # type: ignore[operator]
            ),
        }
        for pid in pids
    }
    known = [p for p in pids if cpu_start[p] is not None and cpu_end[p] is not None]
    return {
        "viewers": len(seen_all),
        "servers": bases,
        "seconds": round(elapsed, 1),
        "commands": seq,
        "connect_ms": summary(connect_s),
        # Where the time goes: to the host and back (the ack), to the first viewer (the
        # host published and one relay wrote it), to the last (every socket written and read).
        "command_to_ack_ms": summary(acked),
        "command_to_first_viewer_ms": summary(first_viewer),
        "command_to_last_viewer_ms": summary(last_viewer),
        "command_to_each_viewer_ms": summary(every_viewer),
        "errors": {
            "connect_failed": connect_errors,
            "refused": refused,
            "unanswered": unanswered,
            "sockets_closed": closed,
            "versions_never_seen": missed,
        },
        "connect_failures": dict(failures.most_common(5)),
        "home_page_ms": summary(page_s),
        "frames_per_viewer_per_s": round(frames / per_viewer, 2),
        "kb_per_viewer_per_s": round(size / per_viewer / 1024, 1),
        "bytes_per_frame": round(size / frames) if frames else None,
        "server_rss_mb": {
            "start": round(sum(rss_start[p] or 0 for p in pids), 1) if pids else None,
            "end": round(sum(rss_end[p] or 0 for p in pids), 1) if pids else None,
            "every_10_s": rss_series,
            # --watch: after the last command, viewers connected, nobody acting.
            "watch_every_10_s": watch_series,
            "growth": memory_growth(rss_series, seq, watch_series),
        },
        # Of one core: above ~90 % a process (a server or a client) is what limits.
        "server_cpu_percent": percent(
            sum(cpu_end[p] - cpu_start[p] for p in known)  # type: ignore[operator]
        )
        if known
        else None,
        "server_processes": per_process,
        "stalled_sockets": {"open": len(stuck), "failed": len(stuck_failed)},
        "client_processes": len(pools) + (1 if clients > 1 else 0),
        "client_cpu_percent": [percent(c) for c in client_cpu],
    }


def make_room(viewers: int, env: dict[str, str], root: Path = ROOT) -> dict[str, Any]:
    """The room, its instructor and `viewers` learners, made by the server code in `root`."""
    done = subprocess.run(
        [sys.executable, "-c", SETUP_CODE, str(viewers)],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def wait_healthy(base: str, seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.2)):
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
    parser.add_argument(
        "--watch",
        type=float,
        default=0.0,
        help="seconds the viewers stay after the last command, the clock running, nobody acting"
        " (the servers' memory sampled every 10 s)",
    )
    parser.add_argument("--url", action="append", default=[], help="a running server (repeat)")
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument("--goal-p95-ms", type=float, default=150.0)
    parser.add_argument(
        "--clients", type=int, default=1, help="client processes the viewers are spread over"
    )
    parser.add_argument(
        "--stalled", type=int, default=0, help="more sockets that connect, then stop reading"
    )
    parser.add_argument("--client-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--trace-server",
        type=Path,
        help="run the started Daphne under tracemalloc (scripts.bench.traced), snapshots every"
        " 30 s to this folder; prints where its memory grew",
    )
    parser.add_argument(
        "--profile", type=Path, help="run the started Daphne under cProfile, stats to this file"
    )
    parser.add_argument(
        "--max-kept",
        type=int,
        help="time-travel checkpoints the started Daphne's host keeps of its own"
        " (KAFKA_DOJO_LIVE_CHECKPOINTS; unset: 128), so a run can reach the cap early",
    )
    args = parser.parse_args()
    if args.client_process:
        asyncio.run(client_process())
        return 0
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
            if args.max_kept is not None:
                env["KAFKA_DOJO_LIVE_CHECKPOINTS"] = str(args.max_kept)
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
            if args.trace_server:
                profile = ["-m", "scripts.bench.traced", str(args.trace_server), "30"]
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
                wait_healthy(base, 180.0 if args.trace_server else 30.0)  # tracemalloc: slow
            setup = make_room(args.viewers + args.stalled, env)
            result = asyncio.run(
                run(
                    bases,
                    setup,
                    args.seconds,
                    args.rate,
                    pids,
                    args.clients,
                    args.stalled,
                    args.watch,
                )
            )
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
    if args.trace_server:
        from scripts.bench.traced import report

        print(report(args.trace_server))
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
