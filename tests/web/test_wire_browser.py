"""The sandbox page in Debian's Chromium against a real Daphne: open the Kafka listeners with
the button, copy bootstrap.servers from the page, and watch a real kafka-python producer appear
on the stage. Screenshots: artifacts/screenshots/kafka-clients-*.png."""

from __future__ import annotations

import re

import pytest

from tests.web.support import SCREENSHOTS, LiveServer, new_page

pytestmark = pytest.mark.browser


def test_the_button_opens_listeners_and_a_real_producer_shows_on_the_stage(
    stage_server: LiveServer, chromium: object
) -> None:
    from kafka import KafkaProducer
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    page, page_errors = new_page(chromium, width=1280, height=900)
    page.goto(stage_server.url + "/sandbox/")
    page.wait_for_url("**/sandbox/*/")
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(page.locator('[data-role="kafka-listeners-off"]')).to_be_visible()
    page.get_by_role("button", name="Open Kafka listeners").click()
    code = page.locator('[data-role="bootstrap-servers"]')
    expect(code).to_contain_text("bootstrap.servers=127.0.0.1:", timeout=10_000)
    bootstrap = code.inner_text().split("=", 1)[1].strip()
    assert re.fullmatch(r"127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}", bootstrap), bootstrap

    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="browser-test-app")
    try:
        for i in range(5):
            producer.send("orders", key=b"web-%d" % i, value=b"from a real client").get(30)
    finally:
        producer.close(timeout=5)
    expect(page.locator("#stage")).to_contain_text("browser-test-app · real Kafka client")
    expect(page.locator("#kafka-clients table")).to_contain_text("browser-test-app")
    page.screenshot(path=str(SCREENSHOTS / "kafka-clients-1280x900.png"), full_page=True)
    panel = page.locator("section.panel", has=page.locator("#kafka-clients"))
    panel.screenshot(path=str(SCREENSHOTS / "kafka-clients-panel.png"))
    assert page_errors == []
