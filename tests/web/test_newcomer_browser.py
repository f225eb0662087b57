"""The newcomer's path through the stage in Chromium, at 1280x800 and on a 375x667 phone:
first sight, produce, kill a leader, NOT_ENOUGH_REPLICAS, a rebalance, the past view and a
stress anomaly opened on the stage. The layout keeps the cluster picture on screen while the
learner acts. Screenshots: artifacts/screenshots/newcomer-<size>-<step>.png.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from engine.partitioner import partition_for_key
from tests.web.support import SCREENSHOTS, LiveServer, new_page

pytestmark = pytest.mark.browser

SIZES = {"desktop": (1280, 800), "phone": (375, 667)}

STAGE_TOP = "() => document.querySelector('#stage svg').getBoundingClientRect().top"

VISIBLE_SHARE = """() => {
  const r = document.querySelector('#stage svg').getBoundingClientRect();
  const top = Math.max(r.top, 0), bottom = Math.min(r.bottom, window.innerHeight);
  const dock = document.getElementById('dock').getBoundingClientRect();
  // On a phone the drawer covers the bottom of the screen: what it covers is not seen.
  const covered = getComputedStyle(document.getElementById('dock')).position === 'fixed'
    ? Math.max(0, bottom - Math.max(top, dock.top)) : 0;
  return Math.max(0, bottom - top - covered) / r.height;
}"""


def _shot(page: Any, size: str, step: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"newcomer-{size}-{step}.png"))


def _open(page: Any, size: str, tab: str) -> None:
    """Open a dock tab (on a phone: the drawer at that tab)."""
    from playwright.sync_api import expect

    page.locator(f'.dock-tab[data-tab="{tab}"]').click()
    expect(page.locator(f'.dock-pane[data-pane="{tab}"]')).to_be_visible()


def _close_drawer(page: Any, size: str) -> None:
    if size == "phone" and page.locator("#dock.is-open").count():
        page.locator('.dock-tab[aria-selected="true"]').click()


def _leader(page: Any, name: str) -> int:
    text = page.locator(f'#mirror li[data-partition="{name}"]').inner_text()
    match = re.search(r"leader broker (\d+)", text)
    assert match, text
    return int(match.group(1))


def _send(page: Any, command: dict[str, Any]) -> None:
    """Fill and submit a dock form by its field ids (the forms are laid out from the table)."""
    for dom_id, value in command.items():
        if dom_id == "button":
            continue
        field = page.locator(f"#{dom_id}")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))
    page.get_by_role("button", name=command["button"], exact=True).click()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_newcomer_path_keeps_the_cluster_in_view(
    server_and_worker: LiveServer, chromium: object, size: str
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    width, height = SIZES[size]
    page, page_errors = new_page(chromium, width=width, height=height)
    page.goto(server_and_worker.url + "/sandbox/")
    page.wait_for_url("**/sandbox/*/")
    sandbox_url = page.url
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(page.locator("#stage svg .broker")).to_have_count(3)

    # First sight: the stage is on screen, and exactly one of Pause / Resume can be pressed.
    assert page.evaluate(VISIBLE_SHARE) >= 0.99
    enabled = [page.locator(f"#{b}-button").is_enabled() for b in ("pause", "resume")]
    assert enabled == [True, False]
    stage_top = page.evaluate(STAGE_TOP)
    _shot(page, size, "1-first-sight")
    page.locator("#pause-button").click()
    expect(page.locator("#resume-button")).to_be_enabled()
    expect(page.locator("#pause-button")).to_be_disabled()
    page.locator("#resume-button").click()
    expect(page.locator("#pause-button")).to_be_enabled()
    expect(page.locator("#resume-button")).to_be_disabled()

    # Produce from the dock: at least half of the cluster picture stays on screen.
    key = "customer-42"
    name = f"orders-{partition_for_key(key.encode(), 3)}"
    _open(page, size, "produce")
    produce = page.locator("#produce-form button[type=submit]")
    box = produce.bounding_box()
    assert box is not None and box["y"] + box["height"] <= height, "Produce is off screen"
    page.locator("#produce-form [name=key]").fill(key)
    page.locator("#produce-form [name=value]").fill("first-order")
    produce.click()
    row = page.locator(f'#stage .partition-row[data-partition="{name}"]')
    expect(row.locator(".cell-record")).to_have_count(3, timeout=5_000)
    assert page.evaluate("window.scrollY") == 0
    # The acknowledgement's banner came and went over the page: the stage did not move.
    # The first send waits for the producer's metadata on the clock (a command never blocks).
    expect(page.locator("#flash")).to_contain_text(re.compile(r"Sent 1 record|Sending 1 record"))
    assert page.evaluate(STAGE_TOP) == stage_top
    # Keys and values in readable text, one click away.
    _close_drawer(page, size)
    page.locator("#values-toggle").click()
    expect(page.locator("#records-panel")).to_be_visible()
    expect(page.locator(f"#records-panel #partition-{name}")).to_contain_text(key)
    expect(page.locator(f"#records-panel #partition-{name}")).to_contain_text("first-order")
    page.locator("#values-toggle").click()
    expect(page.locator("#records-panel")).to_be_hidden()
    if size == "desktop":
        assert page.evaluate(VISIBLE_SHARE) >= 0.5
    _shot(page, size, "2-produced")
    _close_drawer(page, size)
    assert page.evaluate(VISIBLE_SHARE) >= 0.5

    # Kill the leader from the stage: "new leader for orders-N: broker M" is told at once.
    old_leader = _leader(page, name)
    page.get_by_label("Speed", exact=True).select_option("10")
    expect(page.locator("#clock .badge")).to_contain_text("10x")
    page.get_by_role("button", name=f"Kill broker {old_leader}").click()
    mirror_row = page.locator(f'#mirror li[data-partition="{name}"]')
    expect(mirror_row).not_to_contain_text(f"leader broker {old_leader}", timeout=20_000)
    new_leader = _leader(page, name)
    expect(page.locator("#narration")).to_contain_text(
        f"new leader for {name}: broker {new_leader}", timeout=1_000
    )
    _shot(page, size, "3-leader-killed")
    # Kafka's metric names, computed from the cluster: the dead broker's replicas are missing.
    _open(page, size, "metrics")
    under = page.locator('#metrics tr[data-metric="UnderReplicatedPartitions"] td.value')
    expect(under).to_have_text("3", timeout=15_000)
    expect(page.locator('#metrics tr[data-metric="ActiveControllerCount"] td.value')).to_have_text(
        "1"
    )
    _shot(page, size, "3b-metrics")
    _close_drawer(page, size)

    # min.insync.replicas=2, acks=all, a second broker down: the refusal is shown with its
    # name, its attempt count, the time left to delivery.timeout.ms and the lesson.
    _open(page, size, "clients")
    _send(
        page,
        {
            "alter-topic-config-key": "min.insync.replicas",
            "alter-topic-config-value": "2",
            "button": "Change setting",
        },
    )
    _open(page, size, "produce")
    _send(page, {"set-acks-acks": "all", "button": "Use these acks"})
    _close_drawer(page, size)
    survivors = [b for b in (1, 2, 3) if b != old_leader]
    page.get_by_role("button", name=f"Kill broker {survivors[0]}").click()
    expect(page.locator("#mirror")).to_contain_text(f"broker {survivors[0]} stopped", timeout=5_000)
    expect(page.locator(f'#mirror li[data-partition="{name}"]')).not_to_contain_text(
        f"ISR {survivors[0]}", timeout=20_000
    )
    _open(page, size, "produce")
    page.locator("#produce-form [name=value]").fill("refused-order")
    page.locator("#produce-form button[type=submit]").click()
    refusal = page.locator("#sends .refusal")
    expect(refusal).to_contain_text("NotEnoughReplicasException", timeout=10_000)
    expect(refusal).to_contain_text("attempt")
    expect(refusal).to_contain_text("left of delivery.timeout.ms")
    expect(refusal.locator("a[data-lesson]")).to_have_attribute("href", "/lessons/replication-isr/")
    expect(page.locator("#stage .refusal-label")).to_contain_text("NotEnoughReplicasException")
    _shot(page, size, "4-not-enough-replicas")

    # A group added while brokers are down is on the stage and in the mirror at once (the
    # charts know it too), even before a coordinator has loaded it.
    _open(page, size, "clients")
    _send(page, {"add-group-consumer-group": "billing", "button": "Add consumer to group"})
    expect(page.locator("#stage .group")).to_have_count(1, timeout=5_000)
    expect(page.locator('#mirror li[data-group="billing"]')).to_be_visible()
    expect(page.locator("#mirror")).not_to_contain_text("No consumer groups")
    # A rebalance once the brokers are back: the timeline says why and links the lesson.
    _close_drawer(page, size)
    for broker in (old_leader, survivors[0]):
        page.get_by_role("button", name=f"Restart broker {broker}").click()
        expect(page.get_by_role("button", name=f"Kill broker {broker}")).to_be_visible()
    _open(page, size, "clients")
    _send(page, {"add-group-consumer-group": "billing", "button": "Add consumer to group"})
    _open(page, size, "timeline")
    events = page.locator("#events")
    expect(events.locator('li[data-kind="rebalance_started"]').first).to_be_visible(timeout=40_000)
    expect(
        events.locator('li[data-kind="rebalance_started"] a[data-lesson]').first
    ).to_have_attribute("href", "/lessons/rebalancing/")
    # The timeline's filter: routine work (commits, joins) shows only when asked for.
    routine = events.locator("li.importance-routine")
    expect(routine.first).to_be_hidden()
    page.locator('#pane-timeline [data-filter="all"]').click()
    expect(routine.first).to_be_visible()
    page.locator('#pane-timeline [data-filter="key"]').click()
    _shot(page, size, "5-rebalance")
    _close_drawer(page, size)

    # The past view: read-only, with no buttons on brokers or controllers.
    page.goto(sandbox_url + "timeline/")
    expect(page.locator("#past-banner")).to_contain_text("Viewing the past")
    expect(page.locator("#stage svg .broker")).to_have_count(3)
    assert page.locator("#stage .stage-action").count() == 0
    _shot(page, size, "6-past")
    # Share this moment: the link has a copy button that copies it.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Share this moment").click()
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    link = page.locator("#share-url").input_value()
    assert page.evaluate("navigator.clipboard.readText()") == link

    # Stress it with acks=1, then open the first anomaly on the stage: it lands at a moment
    # where the anomaly exists, never before it.
    page.goto(sandbox_url)
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    page.locator("#stress-runs-input").fill("12")
    page.locator("#stress-acks").select_option("1")
    page.locator("#stress-min-isr").select_option("1")
    page.get_by_role("button", name="Stress it", exact=True).click()
    verdict = page.locator('#stress-runs [data-role="verdict"]').first
    expect(verdict).to_be_visible(timeout=60_000)
    page.locator("#stress-runs details summary").first.click()
    opener = page.locator("#stress-runs a", has_text="Open on the stage").first
    expect(opener).to_be_visible()
    opener.click()
    expect(page.locator("#past-banner")).to_contain_text("Viewing the past", timeout=20_000)
    at_ms = int(page.locator(".sandbox.past").get_attribute("data-at-ms") or "0")
    assert at_ms > 0
    assert page.locator(".points li.is-future .kind-event").count() >= 0
    banner = page.locator('[data-role="anomaly"]')
    expect(banner).to_be_visible()
    partition, offset = banner.get_attribute("data-partition"), banner.get_attribute("data-offset")
    mirror = page.locator(f'#mirror li[data-partition="{partition}"]').inner_text()
    log_end = re.search(r"LEO (\d+)", mirror)
    assert log_end
    if banner.get_attribute("data-kind") != "lost":  # a loss opens when the record is gone
        assert int(log_end.group(1)) > int(offset or 0), "the anomaly is not in the log yet"
    _shot(page, size, "7-stress-anomaly")
    text = page.content()
    for leak in ("b'", "time(s)", "[['", "({'"):
        assert leak not in text, leak
    assert page_errors == []
    time.sleep(0)
