"""The sandbox in Debian's Chromium (Playwright) against a real Daphne, as a learner uses it.

Screenshots go to artifacts/screenshots/ (or $KAFKA_DOJO_SCREENSHOTS).
"""

from __future__ import annotations

import time

import pytest

from engine.partitioner import partition_for_key
from tests.web.support import SCREENSHOTS, LiveServer, new_page

pytestmark = pytest.mark.browser


def test_produce_from_the_form_and_watch_the_cluster_live(
    daphne_server: LiveServer, browser: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    page, page_errors = new_page(browser, width=1280, height=900)

    page.goto(daphne_server.url + "/")
    page.get_by_role("link", name="Open your sandbox").click()
    page.wait_for_url("**/sandbox/*/")
    sandbox_url = page.url
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    page.get_by_role("button", name="Show keys and values").click()  # the records as text
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
    page.get_by_role("button", name="Show keys and values").click()
    expect(cell).to_be_visible(timeout=5_000)
    expect(broker.locator(".badge")).to_have_text("stopped")
    page.screenshot(path=str(SCREENSHOTS / "sandbox-after-restart.png"), full_page=True)
    assert page_errors == []
