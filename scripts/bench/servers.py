"""Real servers for the scaled-mode tests and benchmarks: PostgreSQL and Redis as throwaway
processes (tests/scaled/servers.py re-exports them; scripts/bench/scaled.py starts them).

PostgreSQL comes from Debian's packages (./scripts/test installs `postgresql` when missing);
the tests never use the machine's own cluster: `initdb` makes a new one in a temporary folder
and `postgres` serves it on a free loopback port, fsync off. PostgreSQL refuses to run as root,
so under root the cluster belongs to, and runs as, the `postgres` user (made by the Debian
package) or else `nobody`, through `runuser`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

from scripts.bench.ws_viewers import free_port


def postgres_bin(name: str) -> str:
    """A PostgreSQL server program: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL's {name} is missing: ./scripts/test installs it (apt package postgresql)"
        )
    return candidates[-1]


def _run_as() -> tuple[list[str], int | None, int | None]:
    """The command prefix, uid and gid that run PostgreSQL (it refuses to run as root)."""
    if os.geteuid() != 0:
        return [], None, None
    for user in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"], entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root with neither a postgres nor a nobody user")


@contextmanager
def postgres_server(database: str = "dojo") -> Iterator[str]:
    """A PostgreSQL cluster of its own; yields a DATABASE_URL for `database` (already made)."""
    prefix, uid, gid = _run_as()
    root = Path(tempfile.mkdtemp(prefix="dojo-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if uid is not None and gid is not None:
        for path in (root, sockets):
            os.chown(path, uid, gid)
    log = root / "postgres.log"
    subprocess.run(
        [
            *prefix,
            postgres_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "dojo",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                *prefix,
                postgres_bin("postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(sockets),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    admin = f"postgresql://dojo@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(admin, autocommit=True, connect_timeout=2) as connection:
                    connection.execute(f'CREATE DATABASE "{database}"')
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("postgres did not start:\n" + log.read_text()) from None
                time.sleep(0.1)
        yield f"postgres://dojo@127.0.0.1:{port}/{database}"
    finally:
        process.terminate()  # SIGTERM: PostgreSQL's "smart" shutdown
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server of its own on a free loopback port, nothing saved; yields its URL."""
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(server).exists():
        raise RuntimeError("redis-server is missing: ./scripts/test installs it")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="dojo-redis-"))
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
