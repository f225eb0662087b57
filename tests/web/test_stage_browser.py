"""The live stage in Debian's Chromium (Playwright) against a real Daphne: break the cluster
from the picture and watch the picture, the narration and the text mirror follow.

Screenshots go to artifacts/screenshots/ (or $KAFKA_DOJO_SCREENSHOTS): stage-*.png.
"""

from __future__ import annotations

import re

import pytest

from engine.partitioner import partition_for_key
from tests.web.support import SCREENSHOTS, LiveServer, new_page

pytestmark = pytest.mark.browser


def _leader(page: object, name: str) -> int:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    text = page.locator(f'#mirror li[data-partition="{name}"]').inner_text()
    match = re.search(r"leader broker (\d+)", text)
    assert match, text
    return int(match.group(1))


def test_kill_the_leader_and_watch_the_stage_and_the_mirror(
    stage_server: LiveServer, chromium: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    page, page_errors = new_page(chromium, width=1280, height=720)
    page.goto(stage_server.url + "/sandbox/")
    page.wait_for_url("**/sandbox/*/")
    sandbox_url = page.url
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(page.locator("#stage svg .broker")).to_have_count(3)
    expect(page.locator("#stage svg .controller.is-active")).to_have_count(1)

    # Produce: the record's cell appears on every replica's tape, the mirror shows HW 1.
    key, value = "customer-42", "first-order"
    partition = partition_for_key(key.encode(), 3)
    name = f"orders-{partition}"
    page.get_by_label("Key", exact=True).fill(key)
    page.get_by_label("Value", exact=True).fill(value)
    page.get_by_role("button", name="Produce").click()
    row = page.locator(f'#stage .partition-row[data-partition="{name}"]')
    expect(row.locator(".cell-record")).to_have_count(3, timeout=5_000)
    expect(row.locator(".cell-record title").first).to_contain_text(value)
    mirror_row = page.locator(f'#mirror li[data-partition="{name}"]')
    expect(mirror_row).to_contain_text("HW 1, LEO 1")
    expect(mirror_row).to_contain_text("ISR")
    expect(page.locator("#narration")).not_to_be_empty()
    page.screenshot(path=str(SCREENSHOTS / "stage-produced-1280x720.png"))

    # Kill the leader from the stage itself; at 10x the controller fences it within a second.
    old_leader = _leader(page, name)
    page.get_by_label("Speed", exact=True).select_option("10")
    expect(page.locator("#clock .badge")).to_contain_text("10x")
    page.get_by_role("button", name=f"Kill broker {old_leader}").click()
    broker = page.locator(f'#stage .broker[data-broker="{old_leader}"]')
    expect(broker).to_have_class("broker is-stopped", timeout=3_000)
    expect(page.get_by_role("button", name=f"Restart broker {old_leader}")).to_be_visible()
    expect(mirror_row).not_to_contain_text(f"leader broker {old_leader}", timeout=15_000)
    new_leader = _leader(page, name)
    assert new_leader != old_leader
    expect(mirror_row).to_contain_text(f"out of sync {old_leader}")
    isr_text = re.search(r"ISR ([\d, ]+);", mirror_row.inner_text())
    assert isr_text and str(old_leader) not in isr_text.group(1).split(", ")
    # ... and on the stage: the new leader's replica is marked, the old one is out of sync.
    expect(row.locator(f'.replica[data-broker="{new_leader}"]')).to_have_attribute(
        "data-role", "leader"
    )
    expect(row.locator(f'.replica[data-broker="{old_leader}"]')).to_have_attribute(
        "data-role", "out-of-sync"
    )
    expect(page.locator("#events")).to_contain_text("missed heartbeats")
    expect(page.locator("#events")).to_contain_text(f"removed from the ISR of {name}"[:30])
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "stage-leader-killed-1280x720.png"))
    page.screenshot(path=str(SCREENSHOTS / "stage-leader-killed-full.png"), full_page=True)

    # Pause, step exactly one step, slow down to 0.1x.
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#clock .badge")).to_contain_text("paused")
    before = int(page.locator("#clock .time").get_attribute("data-now-ms") or "0")
    page.get_by_role("button", name="Step 100 ms").click()
    expect(page.locator("#clock .time")).to_have_attribute("data-now-ms", str(before + 100))
    expect(page.locator("#stage svg.stage-svg")).to_have_attribute("data-now-ms", str(before + 100))
    page.get_by_label("Speed", exact=True).select_option("0.1")
    expect(page.locator("#clock .badge")).to_contain_text("0.1x")

    # Restart the broker from the keyboard: focus its stage button, press Enter.
    page.get_by_role("button", name="Resume").click()
    page.get_by_role("button", name=f"Restart broker {old_leader}").focus()
    page.keyboard.press("Enter")
    expect(broker).not_to_have_class(re.compile("is-stopped"), timeout=5_000)

    # Bad input gets a clear error next to the form; an engine refusal keeps its Kafka name.
    page.locator('.dock-tab[data-tab="brokers"]').click()
    page.get_by_label("Cut off nodes", exact=True).fill("999")
    page.get_by_role("button", name="Cut network").click()
    cut_form = page.locator('form[data-command="partition_network"] [data-role="form-error"]')
    expect(cut_form).to_contain_text("There is no node 999")
    page.locator('.dock-tab[data-tab="clients"]').click()
    page.get_by_label("Total partitions of orders", exact=True).fill("2")
    page.get_by_role("button", name="Add partitions").click()
    add_error = page.locator('form[data-command="add_partitions"] [data-role="form-error"]')
    expect(add_error).to_contain_text("InvalidPartitionsException")

    # Traffic on the cluster clock: a producer app and a consumer group with lag bars.
    page.get_by_label("Speed", exact=True).select_option("1")
    page.locator('.dock-tab[data-tab="produce"]').click()
    page.get_by_label("Records per second", exact=True).fill("8")
    page.get_by_role("button", name="Start sending at this rate").click()
    page.locator('.dock-tab[data-tab="clients"]').click()
    page.get_by_role("button", name="Add consumer to group").click()
    expect(page.locator('#stage .group[data-group="billing"]')).to_be_visible(timeout=5_000)
    expect(page.locator("#stage .producer").first).to_contain_text("acks=all")
    # The group is drawn at once (its coordinator still to be found), then gets its partitions.
    expect(page.locator('#mirror li[data-group="billing"]')).to_contain_text(
        "owns orders-", timeout=20_000
    )
    page.locator('.dock-tab[data-tab="brokers"]').click()
    page.get_by_label("Cut off nodes", exact=True).fill("3")
    page.get_by_role("button", name="Cut network").click()
    expect(page.locator("#stage .cut-banner")).to_contain_text("network cut: {3}")
    page.wait_for_timeout(1500)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "stage-traffic-1280x720.png"))

    # Slow motion: messages in flight are drawn as dots on their way.
    page.get_by_role("button", name="Heal network").click()
    expect(page.locator("#stage .cut-banner")).to_have_count(0)
    page.get_by_label("Speed", exact=True).select_option("0.1")
    page.evaluate("window.scrollTo(0, 0)")
    expect(page.locator("#stage .message").first).to_be_attached(timeout=10_000)
    page.locator(".stage-panel").screenshot(path=str(SCREENSHOTS / "stage-slow-motion-stage.png"))
    page.screenshot(path=str(SCREENSHOTS / "stage-slow-motion-1280x720.png"))

    # The dark theme toggle, and a phone-sized screen.
    page.get_by_role("button", name="Dark theme").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "stage-dark-1280x720.png"))
    phone = chromium.new_page(viewport={"width": 375, "height": 667}, reduced_motion="reduce")
    phone.goto(sandbox_url)
    expect(phone.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(phone.locator("#stage svg .broker")).to_have_count(3)
    # One synchronous look at the live page (a located element may be swapped out meanwhile).
    animation = phone.evaluate(
        "() => { const m = document.querySelector('#stage .message');"
        " return m ? getComputedStyle(m).animationName : 'none'; }"
    )
    assert animation == "none", "reduced motion: no dot animation"
    phone.screenshot(path=str(SCREENSHOTS / "stage-phone-375x667.png"))
    phone.screenshot(path=str(SCREENSHOTS / "stage-phone-full.png"), full_page=True)
    phone.locator('.dock-tab[data-tab="brokers"]').click()
    expect(phone.locator("#pane-brokers")).to_be_visible()
    phone.screenshot(path=str(SCREENSHOTS / "stage-phone-actions-375x667.png"))
    # The mirror is swapped in live; scroll to whichever copy is attached right now.
    phone.evaluate("document.getElementById('mirror').scrollIntoView()")
    phone.screenshot(path=str(SCREENSHOTS / "stage-phone-mirror-375x667.png"))
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the phone page scrolls sideways ({width}px)"
    assert page_errors == []


def test_the_create_topic_form_creates_a_topic_on_the_stage(
    stage_server: LiveServer, chromium: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    page, page_errors = new_page(chromium, width=1280, height=900)
    page.goto(stage_server.url + "/sandbox/")
    page.wait_for_url("**/sandbox/*/")
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)

    page.locator('.dock-tab[data-tab="clients"]').click()
    page.get_by_label("New topic", exact=True).fill("payments")
    page.get_by_label("Partitions", exact=True).fill("2")
    page.get_by_label("Replication factor", exact=True).fill("2")
    page.get_by_role("button", name="Create topic").click()
    form_error = page.locator('form[data-command="create_topic"] [data-role="form-error"]')
    for partition in (0, 1):
        expect(
            page.locator(f'#stage .partition-row[data-partition="payments-{partition}"]')
        ).to_be_visible(timeout=5_000)
        expect(page.locator(f'#mirror li[data-partition="payments-{partition}"]')).to_contain_text(
            "leader broker"
        )
    expect(form_error).to_be_hidden()

    # The same form explains a name Kafka would refuse, and nothing is created.
    page.get_by_label("New topic", exact=True).fill("no spaces")
    page.get_by_role("button", name="Create topic").click()
    expect(form_error).to_contain_text("A topic name uses letters, digits")
    expect(page.locator('#stage .partition-row[data-partition^="no spaces"]')).to_have_count(0)
    assert page_errors == []
