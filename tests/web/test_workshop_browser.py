"""A whole workshop in Debian's Chromium (Playwright) against a real Daphne: an instructor and
two learners, each in their own browser context (own cookies), through one room.

Screenshots go to artifacts/screenshots/ (or $KAFKA_DOJO_SCREENSHOTS): workshop-*.png.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.web.support import ROOT, SCREENSHOTS, LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "pw-long-enough-1"
DRILL_TITLE = "Where keyless records go"  # null-keys-sticky: the engine's key is "One: ..."
MAKE_INSTRUCTOR = f"""
import django
django.setup()
from django.contrib.auth import get_user_model
get_user_model().objects.create_user("teacher", password={PASSWORD!r}, is_staff=True)
"""


def in_view(page: object, *selectors: str) -> None:
    """Each element is wholly inside the window as it is, unscrolled."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    assert page.evaluate("window.scrollY") == 0
    try:
        for selector in selectors:
            expect(page.locator(selector).first).to_be_in_viewport(ratio=1.0, timeout=10_000)
    except AssertionError:
        page.screenshot(path=str(SCREENSHOTS / "workshop-not-in-view.png"))
        raise


def test_a_whole_workshop_instructor_and_two_learners(
    stage_server: LiveServer, chromium: object
) -> None:
    from playwright.sync_api import Browser, Page, expect

    assert isinstance(chromium, Browser)
    subprocess.run(
        [sys.executable, "-c", MAKE_INSTRUCTOR], cwd=ROOT, env=stage_server.env, check=True
    )
    errors: list[str] = []
    # htmx's complaints (logged with console.error), e.g. `htmx:oobErrorNoTarget`: the room's
    # host sent a fragment the page has no slot for.
    htmx_errors: list[str] = []

    def context_page() -> Page:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                htmx_errors.append(message.text)
                if message.type == "error" and "htmx:" in message.text
                else None
            ),
        )
        return page

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The instructor signs in, opens a room, and the control view goes live.
    teacher = context_page()
    teacher.goto(stage_server.url + "/workshops/login/")
    teacher.get_by_label("Username").fill("teacher")
    teacher.get_by_label("Password").fill(PASSWORD)
    teacher.get_by_role("button", name="Sign in").click()
    teacher.wait_for_url("**/workshops/")
    teacher.get_by_label("Title").fill("Kafka morning")
    teacher.get_by_role("button", name="Open a room").click()
    teacher.wait_for_url("**/control/")
    code = teacher.locator("h1 code").inner_text()
    assert re.fullmatch(r"[A-Z2-9]{6}", code)
    expect(teacher.locator("#connection")).to_have_text("live", timeout=15_000)

    # Two learners join by the code, each with a display name.
    def join(name: str) -> Page:
        page = context_page()
        page.goto(stage_server.url + "/w/")
        page.get_by_label("Room code").fill(code)
        page.get_by_role("button", name="Join").click()
        page.get_by_label("Your display name").fill(name)
        page.get_by_role("button", name="Join the room").click()
        expect(page.locator('[data-role="me"]')).to_have_text(name)
        expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
        return page

    ada, bob = join("Ada"), join("Bob")

    # Roles as the pages show them: the learners' stage has no node buttons, the instructor's
    # has; a learner is offered their own consumer once handed out, then its removal.
    expect(teacher.locator("#stage .stage-action").first).to_be_visible(timeout=10_000)
    expect(ada.locator("#stage .broker").first).to_be_visible(timeout=10_000)
    expect(ada.locator("#stage .stage-action")).to_have_count(0)
    expect(ada.locator("#ws-participate [data-role='watching']")).to_be_visible()
    teacher.get_by_label("Participation").select_option("consumers")
    teacher.get_by_role("button", name="Update the room").click()
    ada.get_by_role("button", name="Add my consumer").click()
    expect(ada.get_by_role("button", name="Remove my consumer")).to_be_visible(timeout=10_000)
    expect(ada.get_by_role("button", name="Add my consumer")).to_have_count(0)
    expect(bob.get_by_role("button", name="Add my consumer")).to_be_visible()
    ada.get_by_role("button", name="Remove my consumer").click()
    expect(ada.get_by_role("button", name="Add my consumer")).to_be_visible(timeout=10_000)

    # The instructor acts on the shared cluster (kills broker 1): both learners see it fall.
    teacher.locator('form[data-command="broker"]').get_by_role(
        "button", name="Kill (crash)"
    ).click()
    for learner in (ada, bob):
        broker = learner.locator('#stage .broker[data-broker="1"]')
        expect(broker).to_have_class("broker is-stopped", timeout=10_000)

    # A poll from the drills: learners answer, the histogram counts them live.
    teacher.get_by_label("Drill").select_option(label=DRILL_TITLE)
    teacher.get_by_role("button", name="Push the drill").click()
    for learner in (ada, bob):
        expect(learner.locator('#ws-poll [data-role="question"]')).to_contain_text(
            "Twelve records with no key"
        )
        expect(learner.locator("#stage")).to_contain_text("logs", timeout=10_000)
    # One screen at 1280x900: the live stage and the question both in view, no scrolling.
    for page in (ada, teacher):
        in_view(page, "#stage .stage-svg", "#ws-poll [data-role='question']", "#narration")
    ada.locator("#ws-poll").get_by_role("button", name=re.compile(r"^One")).click()
    bob.locator("#ws-poll").get_by_role("button", name="Two", exact=True).click()
    expect(teacher.locator("#ws-histogram h2")).to_have_text("Answers (2)", timeout=10_000)
    teacher.screenshot(path=str(SCREENSHOTS / "workshop-histogram-1280x900.png"))
    in_view(teacher, "#ws-histogram h2")
    ada.screenshot(path=str(SCREENSHOTS / "workshop-learner-poll-1280x900.png"))

    # The projector's view: the stage, the join code and the answers on one screen.
    projector = context_page()
    teacher_cookies = teacher.context.cookies()
    projector.context.add_cookies(teacher_cookies)  # type: ignore[arg-type]
    projector.goto(stage_server.url + f"/workshops/{code}/present/")
    expect(projector.locator("#connection")).to_have_text("live", timeout=15_000)
    expect(projector.locator("#ws-histogram h2")).to_have_text("Answers (2)", timeout=10_000)
    in_view(projector, "#stage .stage-svg", '[data-role="code"]', "#ws-histogram h2")
    qr = projector.get_by_alt_text("QR code of the join link")
    expect(qr).to_be_in_viewport()
    assert projector.evaluate("document.querySelector('.join-panel img').naturalWidth") > 0
    projector.screenshot(path=str(SCREENSHOTS / "workshop-presenter-1280x900.png"))
    projector.context.close()

    # A phone: the question first; the stage under it, as wide as on the sandbox page (it
    # scrolls sideways inside its panel, the page does not).
    phone = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.add_cookies(bob.context.cookies())  # type: ignore[arg-type]
    small = phone.new_page()
    small.on("pageerror", lambda error: errors.append(str(error)))
    small.goto(stage_server.url + f"/w/{code}/")
    expect(small.locator("#connection")).to_have_text("live", timeout=15_000)
    expect(small.locator("#stage")).to_contain_text("logs", timeout=10_000)
    in_view(small, "#ws-poll [data-role='question']")
    question = small.locator("#ws-poll [data-role='question']").bounding_box()
    stage = small.locator("#stage .stage-svg").bounding_box()
    assert question is not None and stage is not None
    assert question["y"] < stage["y"] and stage["x"] >= 0
    assert small.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    small.screenshot(path=str(SCREENSHOTS / "workshop-learner-390x844.png"), full_page=True)
    phone.close()
    # A 375 px phone, and a display name as long as allowed with no space to wrap at.
    narrow = chromium.new_context(viewport={"width": 375, "height": 812})
    small = narrow.new_page()
    small.goto(stage_server.url + f"/w/{code}/")
    small.get_by_label("Your display name").fill("W" * 40)
    small.get_by_role("button", name="Join the room").click()
    expect(small.locator("#stage")).to_contain_text("logs", timeout=10_000)
    expect(small.get_by_role("button", name="Add my consumer")).to_be_visible()
    small.screenshot(path=str(SCREENSHOTS / "workshop-learner-375x812.png"), full_page=True)
    assert small.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scroll
    narrow.close()

    # The reveal runs the drill's scenario on the room's cluster, then shows the answer.
    teacher.get_by_role("button", name="Reveal").click()
    expect(bob.locator('#ws-poll [data-role="running"]')).to_be_visible(timeout=10_000)
    for learner in (ada, bob):
        answer = learner.locator('#ws-poll [data-role="answer"]')
        expect(answer).to_contain_text("computed by the engine", timeout=30_000)
        expect(answer).to_contain_text("One")
        expect(learner.locator("#ws-histogram li.correct")).to_contain_text("One")
        expect(learner.locator("#ws-leaderboard")).to_contain_text("Ada · 1/1")
        expect(learner.locator("#ws-leaderboard")).to_contain_text("Bob · 0/1")
    expect(teacher.locator("#stage")).to_contain_text("logs")
    ada.screenshot(path=str(SCREENSHOTS / "workshop-revealed-1280x900.png"))

    # Ada reloads: back in the room with the same name and score, no name asked.
    ada.reload()
    expect(ada.locator('[data-role="me"]')).to_have_text("Ada")
    expect(ada.get_by_label("Your display name")).to_have_count(0)
    expect(ada.locator("#connection")).to_have_text("live", timeout=15_000)
    expect(ada.locator("#ws-leaderboard")).to_contain_text("Ada · 1/1")

    assert not htmx_errors, htmx_errors  # every fragment a room page got had its slot

    # Bob takes the shared cluster home: a private sandbox of his own, live.
    bob.get_by_role("button", name="Take this cluster home (fork)").click()
    bob.wait_for_url(re.compile(r".*/sandbox/[A-Za-z0-9_-]+/$"))
    expect(bob.locator("#connection")).to_have_text("live", timeout=15_000)
    expect(bob.locator("#stage")).to_contain_text("logs")
    expect(bob.locator("[data-role='forked-from']")).to_contain_text("Kafka morning")
    expect(bob.locator("[data-role='forked-from']")).to_contain_text(code)
    assert not errors, errors
