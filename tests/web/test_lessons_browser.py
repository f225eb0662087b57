"""Lessons in Debian's Chromium against a real Daphne: a whole lesson done the way a learner
does it (predict, act, goal reached on the live cluster, recap), and one step of every lesson
photographed at desktop size (a few at phone size too).

Screenshots go to artifacts/screenshots/ (or $KAFKA_DOJO_SCREENSHOTS): lesson-*.png.
"""

from __future__ import annotations

import re

import pytest

from lessons.catalogue import get_catalogue
from tests.web.support import SCREENSHOTS, LiveServer, new_page

pytestmark = pytest.mark.browser

PHONE_LESSONS = ("log-not-queue", "producer-acks", "capacity-sizing")


def test_a_learner_completes_the_leader_failover_lesson(
    stage_server: LiveServer, chromium: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    page, page_errors = new_page(chromium, width=1280, height=800)
    page.goto(stage_server.url + "/")
    page.get_by_role("link", name="Start the lessons").click()
    expect(page.locator("h1")).to_have_text("Lessons")
    card = page.locator('.lesson-card[data-lesson="leader-failover"]')
    expect(card.locator('[data-role="progress"]')).to_contain_text("Not started")
    card.get_by_role("link").click()
    page.wait_for_url("**/lessons/leader-failover/")
    expect(page.locator("#connection")).to_have_text("live", timeout=20_000)

    step = page.locator('.player-step[data-step="0"]')
    goal = page.locator("#lesson-goal")
    expect(goal).to_contain_text("waiting for broker 1 to be fenced", timeout=20_000)
    kill = step.locator('form[data-command="stop_broker"] button[type="submit"]')
    # Predict first: the step's actions stay shut until the learner commits to an answer.
    expect(kill).to_be_disabled()
    step.get_by_role("button", name="No: it waits for the session timeout").click()
    expect(kill).to_be_enabled()
    page.screenshot(path=str(SCREENSHOTS / "lesson-flow-1-predicted-1280x800.png"))

    # Act: the learner's own kill, through the player's form (broker 1 is pre-filled), on a
    # paused clock so the moment of the kill is known exactly.
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#clock")).to_have_class(re.compile("is-paused"))
    kill.click()
    expect(page.locator("#stage svg .broker.is-stopped")).to_have_count(1)
    killed_at = int(page.locator("#clock .time").get_attribute("data-now-ms") or "0")
    page.locator('form[data-command="speed"] select').select_option("10")
    page.get_by_role("button", name="Resume").click()
    expect(goal).to_have_attribute("data-done", "1", timeout=20_000)
    expect(goal).to_contain_text("Done at")
    expect(goal).to_contain_text("broker 1 was fenced")
    done_ms = int(goal.get_attribute("data-done-ms") or "0")
    assert 7_000 <= done_ms - killed_at <= 10_000  # broker.session.timeout.ms, 9 s
    reveal = step.locator('[data-role="reveal"]')
    expect(reveal).to_be_visible()
    expect(reveal).to_contain_text("Right")
    expect(page.locator("#stage svg .broker.is-stopped")).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / "lesson-flow-2-goal-reached-1280x800.png"))

    # Step 2 by "show me": the same commands through the same socket.
    page.get_by_role("button", name="Next ›").click()
    second = page.locator('.player-step[data-step="1"]')
    expect(second).to_be_visible()
    expect(goal).to_have_attribute("data-step", "1", timeout=5_000)
    expect(goal).to_contain_text("waiting for the partitions to go offline")
    second.get_by_role("button", name="Show me").click()
    expect(goal).to_have_attribute("data-done", "1", timeout=20_000)
    expect(page.locator("#stage svg .broker.is-stopped")).to_have_count(3)

    # The recap: talking points, trade-off, red flag, follow-ups.
    page.get_by_role("button", name="Next ›").click()
    recap = page.locator(".player-step.recap")
    expect(recap).to_be_visible()
    expect(recap).to_contain_text("Talking points")
    expect(recap).to_contain_text("The red flag")
    expect(recap.locator("details.follow-up")).to_have_count(2)
    page.screenshot(path=str(SCREENSHOTS / "lesson-flow-3-recap-1280x800.png"))

    # The catalogue shows the lesson completed for this learner.
    page.goto(stage_server.url + "/lessons/")
    expect(card.locator('[data-role="progress"]')).to_contain_text("Completed")
    assert page_errors == []


def test_every_lesson_opens_on_its_live_stage(stage_server: LiveServer, chromium: object) -> None:
    """One screenshot of the first step of every lesson (goal live), and phone views."""
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page, page_errors = new_page(chromium, width=1280, height=800)
    for lesson in get_catalogue().lessons:
        page.goto(f"{stage_server.url}/lessons/{lesson.id}/")
        expect(page.locator("#connection")).to_have_text("live", timeout=20_000)
        goal = page.locator("#lesson-goal")
        expect(goal).to_have_attribute("data-step", "0", timeout=20_000)
        # The live clock runs: a goal the cluster reaches by itself (a lesson's apps at work)
        # may already read as done by the time the page is looked at.
        first = lesson.steps[0].goal
        expect(goal).to_contain_text(
            re.compile(f"{re.escape(first.waiting[:20])}|{re.escape(first.done[:20])}")
        )
        expect(page.locator("#stage svg .broker")).to_have_count(
            int(lesson.scenario["cluster"]["brokers"])
        )
        page.screenshot(
            path=str(SCREENSHOTS / f"lesson-{lesson.order:02d}-{lesson.id}-1280x800.png")
        )
    phone, phone_errors = new_page(chromium, width=375, height=667)
    for lesson_id in PHONE_LESSONS:
        phone.goto(f"{stage_server.url}/lessons/{lesson_id}/")
        expect(phone.locator("#lesson-goal")).to_have_attribute("data-step", "0", timeout=20_000)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{lesson_id} scrolls sideways on a phone ({width}px)"
        phone.screenshot(path=str(SCREENSHOTS / f"lesson-phone-{lesson_id}-375x667.png"))
    assert page_errors == [] and phone_errors == []


def test_a_lesson_page_loads_nothing_from_other_origins(
    stage_server: LiveServer, chromium: object
) -> None:
    """Works offline: every request the page makes goes to the app itself."""
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    page, _ = new_page(chromium, width=1280, height=800)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(stage_server.url + "/lessons/producer-acks/")
    expect(page.locator("#connection")).to_have_text("live", timeout=20_000)
    origins = {url.split("/")[2] for url in requested if url.startswith("http")}
    assert origins == {stage_server.url.split("/")[2]}


def test_the_sizing_calculators_answer_from_their_inputs(
    stage_server: LiveServer, chromium: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    page, page_errors = new_page(chromium, width=1280, height=800)
    page.goto(stage_server.url + "/lessons/capacity-sizing/")
    storage = page.locator('form[data-calculator="storage"]')
    result = storage.locator('[data-role="calc-result"]')
    expect(result).to_contain_text("5.25 TB across the cluster, 1.75 TB per broker")
    storage.get_by_label("Retention (days)").fill("3")
    expect(result).to_contain_text("2.25 TB across the cluster, 0.75 TB per broker")
    page.get_by_role("button", name="Step 2: Brokers").click()
    brokers = page.locator('form[data-calculator="brokers"]')
    expect(brokers.locator('[data-role="calc-result"]')).to_contain_text(
        "3 for storage, 1 for throughput: storage-bound, so 4 brokers"
    )
    brokers.get_by_label("Peak throughput (MB/s)").fill("1500")
    expect(brokers.locator('[data-role="calc-result"]')).to_contain_text(
        "3 for storage, 5 for throughput: throughput-bound, so 6 brokers"
    )
    assert page_errors == []
