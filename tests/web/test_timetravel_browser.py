"""Time travel, share links and "Stress it" in Debian's Chromium against a real Daphne and a
real Celery worker (the embedded mode: filesystem broker, no server).

Screenshots go to artifacts/screenshots/ (or $KAFKA_DOJO_SCREENSHOTS).
"""

from __future__ import annotations

import pytest

from tests.web.support import SCREENSHOTS, LiveServer, new_page

pytestmark = pytest.mark.browser


def test_scrub_back_fork_share_and_stress_it(
    server_and_worker: LiveServer, chromium: object
) -> None:
    from playwright.sync_api import Browser, Page, expect

    assert isinstance(chromium, Browser)
    page, errors = new_page(chromium, width=1280, height=900)

    def produce(p: Page, value: str) -> None:
        p.get_by_label("Key", exact=True).fill("k-" + value)
        p.get_by_label("Value", exact=True).fill(value)
        p.locator("#produce-form").get_by_role("button", name="Produce").click()
        expect(p.locator("#topics")).to_contain_text(value, timeout=5_000)

    def now_ms(p: Page) -> int:
        return int(p.locator("#clock .time").get_attribute("data-now-ms") or "0")

    page.goto(server_and_worker.url + "/sandbox/")
    page.wait_for_url("**/sandbox/*/")
    original_url = page.url
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    produce(page, "before-fork")
    page.wait_for_timeout(1_000)
    moment = now_ms(page)
    page.wait_for_timeout(600)
    produce(page, "after-fork")
    page.wait_for_timeout(400)

    # Scrub the timeline back to the moment between the two records.
    page.get_by_role("link", name="Scrub the timeline").click()
    page.wait_for_url("**/timeline/")
    expect(page.locator("#past-banner")).to_contain_text("Viewing the past")
    expect(page.locator(".past-stage #topics")).to_contain_text("after-fork")
    page.locator("#scrub").evaluate("(el, v) => { el.value = v; }", str(moment // 10 * 10))
    page.get_by_role("button", name="Go").click()
    page.wait_for_url(f"**/timeline/?t={moment // 10 * 10}")
    expect(page.locator("#past-banner")).to_contain_text(f"t = {moment // 10 * 10 / 1000:.2f} s")
    expect(page.locator(".past-stage #topics")).to_contain_text("before-fork")
    expect(page.locator(".past-stage #topics")).not_to_contain_text("after-fork")
    page.screenshot(path=str(SCREENSHOTS / "timetravel-past.png"), full_page=True)

    # Fork from there: a new live sandbox without the later record; the original keeps it.
    page.get_by_role("button", name="Fork from here").click()
    page.wait_for_url("**/sandbox/*/")
    assert page.url != original_url
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(page.locator("#topics")).to_contain_text("before-fork", timeout=5_000)
    expect(page.locator("#topics")).not_to_contain_text("after-fork")
    page.screenshot(path=str(SCREENSHOTS / "timetravel-fork.png"), full_page=True)
    page.goto(original_url)
    expect(page.locator("#topics")).to_contain_text("after-fork", timeout=10_000)

    # Share the original's state; another visitor opens the link and gets the same state.
    page.get_by_role("button", name="Share this state").click()
    link = page.locator("#share-url").input_value()
    assert "/s/v1." in link or "/shared/" in link
    page.screenshot(path=str(SCREENSHOTS / "share-link.png"), full_page=True)
    visitor = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    visitor.goto(link)
    visitor.wait_for_url("**/sandbox/*/")
    assert visitor.url not in (original_url, page.url)
    expect(visitor.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(visitor.locator("#topics")).to_contain_text("before-fork", timeout=5_000)
    expect(visitor.locator("#topics")).to_contain_text("after-fork")
    expect(visitor.locator("#clock")).to_contain_text("paused")
    visitor.screenshot(path=str(SCREENSHOTS / "share-opened.png"), full_page=True)

    # Stress it: acks=1 loses acknowledged records, acks=all with min.insync.replicas=2 does not.
    page.goto(original_url)
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    runs = page.locator("#stress-runs")
    # Each run draws its own seed, and acks=1 loses an acknowledged record in only 14-17 % of runs
    # (`python -m scripts.bench.stress --runs 200 --base-seed S --acks 1 --min-isr 1 --quiet`
    # for S = 1, 2, 3: 34, 28 and 33 runs of 200). 30 runs then show no loss about 0.6 % of the
    # time, which made this test flaky; 120 runs leave a chance below 1e-8.
    for acks, min_isr in (("1", "1"), ("all", "2")):
        page.locator("#stress-runs-input").fill("120")
        page.locator("#stress-acks").select_option(acks)
        page.locator("#stress-min-isr").select_option(min_isr)
        page.get_by_role("button", name="Stress it").click()
        page.wait_for_url("**/sandbox/*/**")
        expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
        newest = runs.locator(".stress-run").first
        expect(newest).to_contain_text(f"acks={acks}", timeout=10_000)
        expect(newest).to_have_attribute("data-status", "done", timeout=90_000)
    lossy, safe = runs.locator(".stress-run").nth(1), runs.locator(".stress-run").nth(0)
    expect(lossy.locator("[data-role=verdict]")).to_contain_text("acknowledged records lost")
    assert int(lossy.locator('dd[data-kind="lost"]').inner_text()) > 0
    expect(safe.locator("[data-role=verdict]")).to_contain_text("No acknowledged record lost")
    assert int(safe.locator('dd[data-kind="lost"]').inner_text()) == 0
    # The runs panel is swapped in live; scroll to whichever copy is attached right now.
    page.evaluate("document.getElementById('stress-runs').scrollIntoView()")
    page.screenshot(path=str(SCREENSHOTS / "stress-reports.png"), full_page=True)

    # A failing run opens on the stage at the moment its first anomaly happened.
    lossy.locator("summary").click()
    lossy.get_by_role("link", name="Open on the stage").first.click()
    page.wait_for_url("**/timeline/?t=*")
    expect(page.locator("#past-banner")).to_contain_text("Viewing the past")
    page.screenshot(path=str(SCREENSHOTS / "stress-anomaly-on-stage.png"), full_page=True)
    assert errors == []
