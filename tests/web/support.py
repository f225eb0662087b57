"""Helpers shared by the web tests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery
from channels.testing import WebsocketCommunicator

from scripts.bench.ws_viewers import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# The flags the project launches Chromium with (headless, no sandbox, no background traffic).
chromium_launch_args = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_ARGS = chromium_launch_args
SCREENSHOTS = Path(os.environ.get("KAFKA_DOJO_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))
CELERY_WORKER_COMMAND = [
    sys.executable,
    "-m",
    "celery",
    "-A",
    "webapp",
    "worker",
    "-B",  # as ./scripts/run: the embedded worker runs the periodic schedule itself
    "--pool=solo",
    "--loglevel=INFO",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
]


def bench_output(module: str, *arguments: str) -> str:
    """What `python -m module arguments` (a benchmark of scripts/bench) printed, once it exited
    cleanly; run from the repository without this process's Django settings."""
    done = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def room_bench(*arguments: str) -> dict[str, Any]:
    """A short run of scripts/bench/room.py (4 viewers, 3 s, no goal) with `arguments` added:
    its printed result, once it exited cleanly."""
    out = bench_output(
        "scripts.bench.room", "--viewers", "4", "--seconds", "3", "--goal-p95-ms", "1e9", *arguments
    )
    result: dict[str, Any] = json.loads(out[: out.rindex("}") + 1])
    return result


async def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float = 5.0, interval_s: float = 0.02
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval_s)


async def receive_until(
    communicator: WebsocketCommunicator,
    predicate: Callable[[str], bool],
    *,
    timeout_s: float = 5.0,
) -> str:
    """Frames until one satisfies `predicate`; fails with the frames seen if none does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    seen: list[str] = []
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no matching frame in {timeout_s}s; saw: {seen[-5:]!r}")
        try:
            # A timeout here also stops the consumer (asgiref cancels it): it ends the test.
            text = await communicator.receive_from(timeout=remaining)
        except TimeoutError:
            raise AssertionError(f"no matching frame in {timeout_s}s; saw: {seen[-5:]!r}") from None
        if predicate(text):
            return text
        seen.append(text[:300])


def json_frame(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    frame = json.loads(text)
    return frame if isinstance(frame, dict) else None


async def receive_json_frame(
    communicator: WebsocketCommunicator, *, kind: str, timeout_s: float = 5.0
) -> dict[str, Any]:
    """The next JSON frame of type `kind`, skipping HTML state frames."""
    text = await receive_until(
        communicator,
        lambda t: (frame := json_frame(t)) is not None and frame.get("type") == kind,
        timeout_s=timeout_s,
    )
    frame = json_frame(text)
    assert frame is not None
    return frame


def stop_process(process: subprocess.Popen[Any], *, timeout_s: float) -> None:
    """Terminate `process`, killing it if it does not exit within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class LiveServer:
    url: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "webapp.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("daphne did not start:\n" + self.log_path.read_text())
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process, timeout_s=15)
        self.process = None


def server_env(tmp_path: Path, *, without_celery: bool = False) -> dict[str, str]:
    """The environment of a live server on its own data folder and SQLite database."""
    dropped = ("DJANGO_", "REDIS_URL", "CELERY_") if without_celery else ("DJANGO_", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env |= {
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "KAFKA_DOJO_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    return env


def migrate(env: Mapping[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=dict(env),
        check=True,
        capture_output=True,
    )


@contextmanager
def running_daphne(tmp_path: Path, env: dict[str, str]) -> Iterator[LiveServer]:
    """A Daphne on a free port, logging to tmp_path/daphne.log, stopped when the block ends."""
    port = free_port()
    server = LiveServer(f"http://127.0.0.1:{port}", port, env, tmp_path / "daphne.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextmanager
def celery_worker_process(env: Mapping[str, str], log_path: Path) -> Iterator[None]:
    """A real `celery -A webapp worker` process while the block runs, as ./scripts/run."""
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            CELERY_WORKER_COMMAND, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield
        finally:
            stop_process(worker, timeout_s=20)


def celery_client(celery_conf: Mapping[str, Any]) -> Celery:
    """A client app on the same broker and result folders as the embedded worker."""
    client = Celery("test-client")
    client.conf.update(
        broker_url=celery_conf["CELERY_BROKER_URL"],
        result_backend=celery_conf["CELERY_RESULT_BACKEND"],
        broker_transport_options=celery_conf["CELERY_BROKER_TRANSPORT_OPTIONS"],
    )
    return client


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright, headless, with the project's flags."""
    import pytest

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: ./scripts/test installs it (apt package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_launch_args
        )
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, *, width: int, height: int) -> tuple[Any, list[str]]:
    """A page of `browser` and the list its uncaught page errors are collected in.

    Also makes sure the screenshots folder exists.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def sandbox_runtime(seed: int) -> tuple[Any, list[dict[str, Any]]]:
    """A runtime of a new sandbox (its topic and its reader, as `services.sandbox_create` logs
    them) and that log, so a test can append to the log and replay it."""
    from lessons.scenarios import ClusterRuntime, ClusterSpec
    from webapp.services import sandbox_setup_commands

    log = list(sandbox_setup_commands(brokers=3))
    runtime = ClusterRuntime(ClusterSpec(seed=seed, brokers=3))
    for command in log:
        result = runtime.apply(command)
        assert result.ok, (command, result.message)
    return runtime, log
