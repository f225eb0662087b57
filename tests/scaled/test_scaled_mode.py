"""Scaled mode for real: PostgreSQL, Redis, two Daphne processes and an engine-host worker,
each its own process, wired as ./scripts/run-scaled wires them (KAFKA_DOJO_HOSTS=worker).

- A command sent through one Daphne reaches the sockets on the other.
- The Daphne processes host nothing: the cluster's lease belongs to the worker.
- kill -9 of the worker, then a restart under the same name: the cluster is rebuilt from the
  command log in PostgreSQL, the open sockets (on both Daphnes) get its state again and watch
  it go on, and commands keep working.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect

from tests.web.support import ROOT, LiveServer, free_port, stop_process

pytestmark = [pytest.mark.scaled, pytest.mark.redis]

WORKER_NAME = "engine-1"


@dataclass
class Stack:
    env: dict[str, str]
    database_url: str
    redis_url: str
    daphnes: list[LiveServer]
    worker_log: Path
    worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        offset = self.worker_log.stat().st_size if self.worker_log.exists() else 0
        log = self.worker_log.open("ab")
        self.worker = subprocess.Popen(
            [sys.executable, "manage.py", "run_engine_hosts", "--name", WORKER_NAME],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        ready = re.compile(rb"engine-host worker \S+ ready")
        while not ready.search(self.worker_log.read_bytes()[offset:]):
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker did not start:\n" + self.worker_log.read_text())
            time.sleep(0.1)


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args, "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("scaled")
    database_url = postgres_url
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "DJANGO_SECRET_KEY": "scaled-mode-test-key",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "KAFKA_DOJO_DATA_DIR": str(tmp),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "KAFKA_DOJO_HOSTS": "worker",
        "KAFKA_DOJO_STATIC": "collected",
    }
    with ThreadPoolExecutor() as pool:  # independent: run side by side
        list(pool.map(lambda args: _manage(env, *args), [["migrate"], ["collectstatic"]]))
    daphnes = []
    for name in ("a", "b"):
        port = free_port()
        daphnes.append(
            LiveServer(f"http://127.0.0.1:{port}", port, env, tmp / f"daphne-{name}.log")
        )
    scaled = Stack(env, database_url, redis_url, daphnes, tmp / "worker.log")
    try:
        with ThreadPoolExecutor() as pool:  # each waits for its own process to be ready
            for started in [pool.submit(scaled.start_worker)] + [
                pool.submit(daphne.start) for daphne in daphnes
            ]:
                started.result()
        yield scaled
    finally:
        for daphne in daphnes:
            daphne.stop()
        if scaled.worker is not None and scaled.worker.poll() is None:
            stop_process(scaled.worker, timeout_s=20)


def _new_sandbox(server: LiveServer) -> tuple[str, str]:
    """GET /sandbox/ makes a sandbox and redirects to it: (its id, the page)."""
    with urllib.request.urlopen(server.url + "/sandbox/", timeout=30) as response:
        page = response.read().decode()
        match = re.search(r"/sandbox/([^/]+)/$", response.url)
    assert match, response.url
    return match.group(1), page


def _socket(server: LiveServer, cluster_id: str) -> Any:
    return connect(
        f"ws://127.0.0.1:{server.port}/ws/clusters/{cluster_id}/",
        origin=server.url,  # type: ignore[arg-type]
        open_timeout=30,
        max_size=None,
    )


async def _receive_until(
    socket: ClientConnection, predicate: Callable[[str], bool], *, timeout_s: float = 20.0
) -> str:
    deadline = asyncio.get_running_loop().time() + timeout_s
    seen = 0
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no matching frame in {timeout_s} s ({seen} frames seen)")
        text = await asyncio.wait_for(socket.recv(), remaining)
        assert isinstance(text, str)
        seen += 1
        if predicate(text):
            return text


def _is_full(text: str) -> bool:
    return text.startswith('<div id="state-version"') and "data-base" not in text.split(">")[0]


def _frame(kind: str) -> Callable[[str], bool]:
    def matches(text: str) -> bool:
        if text.startswith("<"):
            return False
        return bool(json.loads(text).get("type") == kind)

    return matches


def _produce(seq: int, value: str) -> str:
    return json.dumps(
        {
            "type": "produce",
            "seq": seq,
            "client": "scaled-test-client",
            "topic": "orders",
            "key": "k",
            "value": value,
            "count": 1,
        }
    )


def _logged_values(database_url: str, cluster_id: str) -> list[str]:
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as db:
        rows = db.execute(
            "SELECT payload FROM webapp_clustercommand WHERE cluster_id = %s ORDER BY seq",
            (cluster_id,),
        ).fetchall()
    return [row[0].get("value") for row in rows if row[0].get("type") == "produce"]


@pytest.mark.asyncio
async def test_a_command_through_one_daphne_reaches_sockets_on_the_other(stack: Stack) -> None:
    a, b = stack.daphnes
    cluster_id, page = _new_sandbox(a)
    # collectstatic's hashed htmx, served by WhiteNoise from either process, cached for good.
    htmx = re.search(r'src="(/static/vendor/htmx-2\.0\.11\.min\.[0-9a-f]{12}\.js)"', page)
    assert htmx, "the page does not load the collected, hashed htmx"
    with urllib.request.urlopen(b.url + htmx.group(1), timeout=10) as response:
        assert response.status == 200
        assert "immutable" in response.headers["Cache-Control"]
        assert b"htmx" in response.read()

    async with _socket(a, cluster_id) as on_a, _socket(b, cluster_id) as on_b:
        assert "hello-from-a" not in await _receive_until(on_a, _is_full)
        await _receive_until(on_b, _is_full)
        await on_a.send(_produce(1, "hello-from-a"))
        ack = json.loads(await _receive_until(on_a, _frame("ack")))
        assert (ack["seq"], ack["duplicate"]) == (1, False)
        await _receive_until(on_b, lambda text: "hello-from-a" in text)
        await on_b.send(_produce(2, "hello-from-b"))
        await _receive_until(on_a, lambda text: "hello-from-b" in text)

    # Logged in PostgreSQL; the host runs in the worker, not in either Daphne.
    assert _logged_values(stack.database_url, cluster_id) == ["hello-from-a", "hello-from-b"]
    owner = redis.Redis.from_url(stack.redis_url).get(f"dojo:host-lease:{cluster_id}")
    assert owner is not None and owner.decode().startswith(f"{WORKER_NAME}/")
    assert stack.worker is not None
    assert f"commands of {cluster_id}" in stack.worker_log.read_text()  # "replayed N ..."
    for daphne in stack.daphnes:
        assert f"commands of {cluster_id}" not in daphne.log_path.read_text()


@pytest.mark.asyncio
async def test_kill_9_of_the_engine_worker_loses_nothing_and_viewers_see_it_go_on(
    stack: Stack,
) -> None:
    a, b = stack.daphnes
    cluster_id, _ = _new_sandbox(b)
    async with _socket(a, cluster_id) as on_a, _socket(b, cluster_id) as on_b:
        await _receive_until(on_a, _is_full)
        await _receive_until(on_b, _is_full)
        for seq, value in enumerate(("before-1", "before-2", "before-3"), start=1):
            await on_b.send(_produce(seq, value))
            assert json.loads(await _receive_until(on_b, _frame("ack")))["seq"] == seq
        await _receive_until(on_a, lambda text: "before-3" in text)
        owner_before = redis.Redis.from_url(stack.redis_url).get(f"dojo:host-lease:{cluster_id}")

        assert stack.worker is not None
        stack.worker.send_signal(signal.SIGKILL)
        stack.worker.wait(timeout=10)
        stack.start_worker()  # the same name: it takes its leases back and replays at once

        # Both sockets get the rebuilt state, from a new host (its own version numbers).
        for socket in (on_a, on_b):
            full = await _receive_until(socket, _is_full)
            for value in ("before-1", "before-2", "before-3"):
                assert value in full
        owner_after = redis.Redis.from_url(stack.redis_url).get(f"dojo:host-lease:{cluster_id}")
        assert owner_after is not None and owner_after != owner_before
        assert owner_after.decode().startswith(f"{WORKER_NAME}/")
        log = stack.worker_log.read_text()
        replays = re.findall(rf"replayed (\d+) commands of {cluster_id}", log)
        assert len(replays) == 2 and int(replays[1]) >= int(replays[0]) + 3  # from the log
        # The clock goes on (both sockets count as viewers again) ...
        await _receive_until(on_a, lambda text: 'data-base="' in text and 'id="clock"' in text)
        # ... and commands through either process reach the other.
        await on_a.send(_produce(4, "after-restart"))
        assert json.loads(await _receive_until(on_a, _frame("ack")))["duplicate"] is False
        await _receive_until(on_b, lambda text: "after-restart" in text)
        # A command the dead host had acknowledged is still known: a resend is a duplicate.
        await on_b.send(_produce(3, "before-3"))
        assert json.loads(await _receive_until(on_b, _frame("ack")))["duplicate"] is True

    assert _logged_values(stack.database_url, cluster_id) == [
        "before-1",
        "before-2",
        "before-3",
        "after-restart",
    ]
