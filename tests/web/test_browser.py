"""The sandbox in Debian's Chromium (Playwright) against a real Daphne, as a learner uses it.

Screenshots go to artifacts/screenshots/ (or $KAFKA_DOJO_SCREENSHOTS).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.partitioner import partition_for_key
from tests.web.support import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("KAFKA_DOJO_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))


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
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture
def daphne_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real Daphne in a subprocess, on a free port, with its own SQLite database."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_URL"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "KAFKA_DOJO_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", port, env, tmp_path / "daphne.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: ./scripts/test installs it (apt package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def test_produce_from_the_form_and_watch_the_cluster_live(
    daphne_server: LiveServer, browser: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))

    page.goto(daphne_server.url + "/")
    page.get_by_role("link", name="Open your sandbox").click()
    page.wait_for_url("**/sandbox/*/")
    sandbox_url = page.url
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(page.locator("#partition-orders-0")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    key, value = "customer-42", "first-order"
    partition = partition_for_key(key.encode(), 3)
    page.get_by_label("Key").fill(key)
    page.get_by_label("Value").fill(value)
    started = time.monotonic()
    page.get_by_role("button", name="Produce").click()
    cell = page.locator(f"#partition-orders-{partition} .cell .value", has_text=value)
    expect(cell).to_be_visible(timeout=3_000)
    assert time.monotonic() - started < 3.0
    assert page.evaluate("window.__sameDocument") is True, "the page must not reload"
    for other in {0, 1, 2} - {partition}:
        expect(page.locator(f"#partition-orders-{other}")).not_to_contain_text(value)

    # The running consumer reads the record: its marker moves past it, to the next offset.
    marker = page.locator(
        f'#partition-orders-{partition} .cell.next .marker[data-consumer="reader"]'
    )
    expect(marker).to_be_visible(timeout=5_000)
    expect(page.locator("#consumers")).to_contain_text(f"orders-{partition}: position 1")
    page.screenshot(path=str(SCREENSHOTS / "sandbox-produced.png"), full_page=True)

    # Kill a broker from its card; the picture shows it stopped.
    page.get_by_role("button", name="Kill broker 2").click()
    broker = page.locator('.broker[data-broker="2"]')
    expect(broker).to_have_class("broker is-stopped", timeout=3_000)
    expect(broker.locator(".badge")).to_have_text("stopped")
    expect(page.get_by_role("button", name="Restart broker 2")).to_be_visible()
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOTS / "sandbox-broker-killed.png"), full_page=True)

    # Pause, step, and the clock moves by exactly one step.
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#clock .badge")).to_contain_text("paused")
    before = int(page.locator("#clock .time").get_attribute("data-now-ms") or "0")
    page.get_by_role("button", name="Step 100 ms").click()
    expect(page.locator("#clock .time")).to_have_attribute("data-now-ms", str(before + 100))

    # A server restart loses nothing: the sandbox is replayed from its command log.
    daphne_server.stop()
    daphne_server.start()
    page.goto(sandbox_url)
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(cell).to_be_visible(timeout=5_000)
    expect(broker.locator(".badge")).to_have_text("stopped")
    page.screenshot(path=str(SCREENSHOTS / "sandbox-after-restart.png"), full_page=True)
    assert page_errors == []
