"""Benchmark: the workshop room benchmark against a whole scaled-mode stack it starts itself.

    python -m scripts.bench.scaled --viewers 500 --clients 3            # this checkout
    python -m scripts.bench.scaled --viewers 500 --seconds 600 --watch 120 --max-kept 8  # memory
    python -m scripts.bench.scaled --viewers 500 --clients 3 --rounds 2 \\
        --server-root . --server-root /tmp/main-checkout                 # branch vs baseline

Per run it starts what ./scripts/run-scaled starts for a room (no Celery: the room does not
use it): a Redis, a database (PostgreSQL: a new database on one throwaway cluster for the whole
invocation; or `--database sqlite`: a file shared by the processes), one engine-host worker
(`manage.py run_engine_hosts`) and `--daphnes` Daphne processes, with the servers' code taken
from `--server-root` (default: this checkout) and the same Python. Then it runs
`scripts.bench.room` over all the Daphnes' URLs and stops the stack.

Several `--server-root`s run one after the other, each round in the same order (`--rounds`):
alternating on the same machine, so a baseline (e.g. main checked out in a `git worktree`) and
a change meet the same load. Per run it prints the room benchmark's JSON (command -> last
viewer p50/p95/p99, errors, per server process: CPU, CPU per frame a viewer received, resident
memory every 10 s), then one summary line per run and, per root, the medians. The machine's
load average (/proc/loadavg) is printed at the start and end of every run.

Measured CPU covers the Daphnes, the worker, Redis and PostgreSQL's processes alive when the
viewers have connected (its postmaster and backends). `--profile DIR` runs the Daphnes and
the worker under cProfile (DIR/<root>-<round>-<process>.prof).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from scripts.bench import room
from scripts.bench.servers import postgres_server, redis_server
from scripts.bench.ws_viewers import free_port

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(rb"engine-host worker \S+ ready")


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def pids_whose_command_has(*needles: str) -> list[int]:
    """Processes whose command line holds every one of `needles` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(needle in command for needle in needles):
            found.append(int(entry.name))
    return sorted(found)


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return sorted(found)


def postgres_pids(url: str) -> list[int]:
    """The postmaster serving `url` and its children (backends, background workers)."""
    port = re.search(r":(\d+)/", url)
    if port is None:
        return []
    postmasters = [
        pid
        for pid in pids_whose_command_has("postgres", f" -p {port.group(1)} ")
        if "runuser" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    ]
    return [pid for pm in postmasters for pid in (pm, *children_of(pm))]


class Stack:
    """One run's scaled stack: worker and Daphnes of `root`'s code on a given database and Redis."""

    def __init__(
        self,
        root: Path,
        *,
        database_url: str,
        redis_url: str,
        daphnes: int,
        folder: Path,
        viewers: int,
        profile: Path | None,
        label: str,
        max_kept: int | None = None,
    ) -> None:
        self.root, self.folder, self.daphne_count = root, folder, daphnes
        self.profile, self.label = profile, label
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
        env |= {
            "PYTHONPATH": str(root),  # the servers' code, whatever this process imports
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "DJANGO_SECRET_KEY": "scaled-bench-key-" + "x" * 40,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "KAFKA_DOJO_DATA_DIR": str(folder),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "KAFKA_DOJO_HOSTS": "worker",
            "KAFKA_DOJO_STATIC": "collected",
            "KAFKA_DOJO_WORKSHOP_MAX_PARTICIPANTS": str(max(viewers, 200)),
        }
        if max_kept is not None:
            env["KAFKA_DOJO_LIVE_CHECKPOINTS"] = str(max_kept)
        self.env = env
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.logs: list[Path] = []

    def _manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.root,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = self.folder / f"{name}.log"
        self.logs.append(log)
        profile = []
        if self.profile is not None:
            profile = ["-m", "cProfile", "-o", str(self.profile / f"{self.label}-{name}.prof")]
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, *profile, *command],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def start(self) -> None:
        self._manage("migrate", "--noinput")
        self._manage("collectstatic", "--noinput", "-v0")
        worker = self._start("worker", ["manage.py", "run_engine_hosts", "--name", "engine-bench"])
        deadline = time.monotonic() + 60
        while not READY.search((self.folder / "worker.log").read_bytes()):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker did not start:\n" + self.logs[0].read_text())
            time.sleep(0.1)
        for i in range(self.daphne_count):
            port = free_port()
            self._start(
                f"daphne-{i}",
                ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"],
            )
            self.urls.append(f"http://127.0.0.1:{port}")
        for url in self.urls:
            room.wait_healthy(url)

    def stop(self) -> None:
        # SIGINT: Daphne and the worker stop cleanly (and cProfile, if used, writes its stats).
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]


@contextlib.contextmanager
def database(kind: str, cluster_url: str | None, name: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'db.sqlite3'}"
        return
    assert cluster_url is not None
    admin = re.sub(r"/[^/]+$", "/postgres", cluster_url)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield re.sub(r"/[^/]+$", f"/{name}", cluster_url)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_once(
    root: Path, label: str, args: argparse.Namespace, cluster_url: str | None
) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="dojo-scaled-") as folder_name,
        redis_server() as redis_url,
    ):
        folder = Path(folder_name)
        with database(args.database, cluster_url, f"bench_{label}", folder) as database_url:
            stack = Stack(
                root,
                database_url=database_url,
                redis_url=redis_url,
                daphnes=args.daphnes,
                folder=folder,
                viewers=args.viewers,
                profile=args.profile,
                label=label,
                max_kept=args.max_kept,
            )
            load_start = loadavg()
            try:
                stack.start()
                setup = room.make_room(args.viewers + args.stalled, stack.env, root)
                redis_port = redis_url.rsplit(":", 1)[1].split("/")[0]
                pids = stack.pids + pids_whose_command_has("redis-server", f":{redis_port}")
                if args.database == "postgres":
                    pids += postgres_pids(database_url)
                result = asyncio.run(
                    room.run(
                        stack.urls,
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
                stack.stop()
            result["root"] = str(root)
            result["label"] = label
            result["loadavg"] = {"start": load_start, "end": loadavg()}
            return result


def kind_of(process: str) -> str:
    return process.split()[0]


def per_kind(result: dict[str, Any], key: str) -> dict[str, float]:
    """A per-process figure summed over the processes of each kind (daphne, postgres...)."""
    totals: dict[str, float] = {}
    for name, figures in result["server_processes"].items():
        value = figures.get(key)
        if value is not None:
            totals[kind_of(name)] = round(totals.get(kind_of(name), 0.0) + value, 1)
    return totals


def line(result: dict[str, Any]) -> str:
    last = result["command_to_last_viewer_ms"]
    return (
        f"{result['label']}: viewers {result['viewers']}, errors {sum(result['errors'].values())}, "
        f"command -> last viewer p50/p95/p99 {last['p50']}/{last['p95']}/{last['p99']} ms, "
        f"CPU us per viewer frame {per_kind(result, 'cpu_us_per_viewer_frame')}, "
        f"CPU % {per_kind(result, 'cpu_percent')}, "
        f"server RSS {result['server_rss_mb']['every_10_s']} MB, "
        f"RSS growth {result['server_rss_mb']['growth']}, "
        f"loadavg {result['loadavg']['start']} -> {result['loadavg']['end']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=2.0, help="instructor commands a second")
    parser.add_argument("--clients", type=int, default=3, help="viewer client processes")
    parser.add_argument("--daphnes", type=int, default=2)
    parser.add_argument(
        "--stalled", type=int, default=0, help="more sockets that connect, then stop reading"
    )
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument(
        "--server-root",
        type=Path,
        action="append",
        default=[],
        help="a checkout whose server code runs (repeat: each round runs them in this order)",
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--watch",
        type=float,
        default=0.0,
        help="seconds the viewers stay after the last command, nobody acting (scripts.bench.room)",
    )
    parser.add_argument(
        "--max-kept",
        type=int,
        help="time-travel checkpoints the worker's host keeps of its own"
        " (KAFKA_DOJO_LIVE_CHECKPOINTS; unset: 128)",
    )
    parser.add_argument("--goal-p95-ms", type=float, default=250.0)
    parser.add_argument("--profile", type=Path, help="cProfile the Daphnes and worker into DIR")
    parser.add_argument("--json", type=Path, help="also write every run's result to this file")
    args = parser.parse_args()
    roots = [path.resolve() for path in args.server_root] or [ROOT]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    names = [f"r{i}-{path.name}" for i, path in enumerate(roots)]
    results: list[dict[str, Any]] = []
    with contextlib.ExitStack() as servers:
        cluster_url = None
        if args.database == "postgres":
            cluster_url = servers.enter_context(postgres_server("dojo"))
        for round_number in range(args.rounds):
            for root, name in zip(roots, names, strict=True):
                label = f"{name}-{round_number}"
                result = run_once(root, label, args, cluster_url)
                results.append(result)
                print(json.dumps(result, indent=2), flush=True)
                print(line(result), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    print("\nsummary")
    ok = True
    for name, root in zip(names, roots, strict=True):
        mine = [r for r in results if r["root"] == str(root)]
        for result in mine:
            print(" ", line(result))
        p95s = [r["command_to_last_viewer_ms"]["p95"] for r in mine]
        errors = sum(sum(r["errors"].values()) for r in mine)
        known = [p for p in p95s if p is not None]
        median = statistics.median(known) if known else None
        print(f"  {name} ({root}): median p95 {median} ms over {len(mine)} runs, errors {errors}")
        ok = ok and median is not None and median < args.goal_p95_ms and errors == 0
    if len(roots) > 1:
        first = [r for r in results if r["root"] == str(roots[0])]
        for other_root, other_name in zip(roots[1:], names[1:], strict=True):
            other = [r for r in results if r["root"] == str(other_root)]
            for key in ("cpu_us_per_viewer_frame",):
                mine_kinds = [per_kind(r, key) for r in first]
                their_kinds = [per_kind(r, key) for r in other]
                for kind in sorted({k for kinds in mine_kinds + their_kinds for k in kinds}):
                    a = round(statistics.median(k.get(kind, 0.0) for k in mine_kinds), 1)
                    b = round(statistics.median(k.get(kind, 0.0) for k in their_kinds), 1)
                    ratio = f"{a / b:.2f}" if b else "n/a"
                    print(f"  {key} {kind}: {names[0]} {a} / {other_name} {b} = {ratio}")
    print(
        f"goal (command -> last viewer median p95 < {args.goal_p95_ms:g} ms, no errors) for every"
        " root:",
        "met" if ok else "NOT met",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
