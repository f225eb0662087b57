"""A short quiz in Debian's Chromium against a real Daphne, including predict items whose run
plays on the stage and a what-if rerun side by side.

Screenshots go to artifacts/screenshots/ (or $KAFKA_DOJO_SCREENSHOTS): drills-*.png.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from lessons.drills import keys
from lessons.drills.bank import default_bank
from tests.web.support import ROOT, SCREENSHOTS, LiveServer, new_page

pytestmark = pytest.mark.browser


def test_a_short_quiz_with_a_predict_item_its_run_on_the_stage_and_a_what_if(
    daphne_server: LiveServer, chromium: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    # Answer keys are computed ahead (verify_drills caches them), so serving never runs one.
    warmed = subprocess.run(
        [sys.executable, "manage.py", "verify_drills"],
        cwd=ROOT,
        env=daphne_server.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert warmed.stdout.strip().splitlines()[-1].endswith(" passed, 0 failed")
    by_title = {d.title: d for d in default_bank()}

    page, page_errors = new_page(chromium, width=1280, height=900)
    page.goto(daphne_server.url + "/drills/")
    expect(page.locator("h1")).to_have_text("Drills")
    form = page.locator("#quiz-form")
    form.get_by_label("Replication, ISR and durability").check()
    form.get_by_label("predict").check()
    form.get_by_label("pick").check()
    form.get_by_label("Questions").select_option("3")
    page.screenshot(path=str(SCREENSHOTS / "drills-index-1280x900.png"), full_page=True)
    form.get_by_role("button", name="Start the quiz").click()
    page.wait_for_url("**/drills/quiz/*/")
    quiz_url = page.url

    watched = False
    predict_seen = 0
    for number in range(1, 4):
        expect(page.locator("#quiz-progress")).to_contain_text(f"question {number} of 3")
        drill = by_title[page.locator("article h1").inner_text()]
        assert drill.kind in ("predict", "pick")
        if drill.kind == "pick":
            right = drill.body["answer"]
        else:
            predict_seen += 1
            right = keys.compute_key(drill).key
        if drill.kind == "predict" and drill.question_type == "number":
            page.get_by_label("Your answer").fill(str(right))
        else:
            text = next(c.text for c in drill.choices if c.id == right)
            page.get_by_label(text, exact=True).check()
        page.get_by_role("button", name="Answer").click()
        expect(page.locator("#verdict")).to_contain_text("Correct")
        if drill.kind == "predict" and not watched and drill.body.get("what_if"):
            watched = True
            page.screenshot(
                path=str(SCREENSHOTS / "drills-predict-feedback-1280x900.png"), full_page=True
            )
            feedback_url = page.url
            page.locator("#watch-run").click()
            page.wait_for_url(f"**/drills/{drill.id}/run/")
            run = page.locator("#run-original")
            expect(run.locator(".frame.shown svg.stage-svg")).to_be_visible()
            deciding = int(run.get_attribute("data-deciding") or "0")
            # Play from the start: the player stops on the deciding moment, marked as such.
            run.get_by_role("button", name="Play").click()
            expect(run.locator(".frame.shown")).to_have_attribute(
                "data-index", str(deciding), timeout=20_000
            )
            expect(run.locator(".frame.shown .deciding-label")).to_be_visible()
            expect(run.locator(".frame-time")).to_contain_text("deciding moment")
            page.screenshot(
                path=str(SCREENSHOTS / "drills-run-deciding-1280x900.png"), full_page=True
            )
            # What if: one setting changed, the scenario run again, side by side.
            label = drill.body["what_if"][0]["label"]
            page.get_by_role("link", name=label, exact=True).click()
            page.wait_for_url(f"**/drills/{drill.id}/run/?whatif=0")
            expect(page.locator("#run-original")).to_be_visible()
            expect(page.locator("#run-whatif")).to_be_visible()
            expect(page.locator("#run-whatif h2")).to_have_text(label)
            expect(page.locator("#whatif-verdict")).to_contain_text(label)
            changed = keys.compute_key(
                drill,
                scenario=keys.with_change(
                    drill.body["scenario"],
                    drill.body["what_if"][0]["path"],
                    drill.body["what_if"][0]["value"],
                ),
            )
            expected_text = next(
                (c.text for c in drill.choices if c.id == changed.key), str(changed.key)
            )
            expect(page.locator("#run-whatif .run-answer")).to_contain_text(expected_text)
            page.locator("#run-whatif").scroll_into_view_if_needed()
            page.screenshot(
                path=str(SCREENSHOTS / "drills-what-if-side-by-side-1280x900.png"), full_page=True
            )
            page.goto(feedback_url)
        page.locator("#next-question").click()

    assert watched and predict_seen >= 2
    page.wait_for_url("**/results/")
    expect(page.locator("#results-summary")).to_contain_text("3 of 3 answered · overall 100%")
    expect(page.locator("#mastery")).to_contain_text("Replication, ISR and durability")
    expect(page.locator("#mastery")).to_contain_text("100%")
    page.screenshot(path=str(SCREENSHOTS / "drills-results-1280x900.png"), full_page=True)
    assert quiz_url in page.url.replace("results/", "")
    assert page_errors == []


def test_a_design_drill_self_graded_then_built_on_the_stage_and_a_number_drill(
    daphne_server: LiveServer, chromium: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    drill = default_bank().get("design-ad-clicks")
    assert drill is not None
    page, page_errors = new_page(chromium, width=1280, height=900)
    page.goto(daphne_server.url + "/drills/design-ad-clicks/")
    page.get_by_label("Topics").fill("ad-clicks, keyed by ad")
    page.get_by_label("Keys (what you partition by)").fill("ad_id")
    page.get_by_label("Partition count (main topic)").fill("300")
    page.get_by_label("Consumer groups").fill("billing, analytics, fraud")
    page.get_by_label("Delivery guarantee").select_option("at-least-once")
    page.get_by_label("Durability and failure handling").fill("acks=all, RF=3")
    page.get_by_role("button", name="Compare with the model answer").click()
    expect(page.locator("table.compare")).to_contain_text(str(drill.body["model"]["keys"]))
    for part in ("topics", "keys", "groups"):
        page.locator(f'input[name="match"][value="{part}"]').check()
    page.screenshot(path=str(SCREENSHOTS / "drills-design-selfgrade-1280x900.png"), full_page=True)
    page.get_by_role("button", name="Grade my answer").click()
    # 3 ticked + partitions in range; the guarantee differs from the model's exactly-once.
    expect(page.locator("#verdict")).to_contain_text("4 of 6 parts match")
    expect(page.locator("#verdict")).to_contain_text("exactly-once")
    page.get_by_role("button", name="Build it on the stage").click()
    page.wait_for_url("**/sandbox/*/")
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    for group in ("billing", "analytics", "fraud"):
        expect(page.locator("#mirror")).to_contain_text(group, timeout=10_000)
    page.screenshot(path=str(SCREENSHOTS / "drills-design-built-1280x900.png"), full_page=True)

    # A number drill: fresh parameters, a wrong answer, then the worked solution.
    page.goto(daphne_server.url + "/drills/storage-for-retention/")
    prompt = page.locator("#drill-prompt").inner_text()
    assert "{" not in prompt and "million messages a day" in prompt
    page.get_by_label("Your answer (TB)").fill("0.000001")
    page.get_by_role("button", name="Answer").click()
    expect(page.locator("#verdict")).to_contain_text("Not quite")
    expect(page.locator(".model")).to_contain_text("Worked solution.")
    page.screenshot(path=str(SCREENSHOTS / "drills-number-feedback-1280x900.png"), full_page=True)

    # A mock interview: a clock that counts down, no hints, a debrief when it ends.
    page.goto(daphne_server.url + "/drills/")
    page.locator("#mock-form").get_by_label("Questions").select_option("4")
    page.get_by_role("button", name="Start the mock interview").click()
    page.wait_for_url("**/drills/quiz/*/")
    clock = page.locator("#mock-clock")
    expect(clock).to_contain_text("left")
    first = clock.inner_text()
    expect(clock).not_to_have_text(first, timeout=3_000)  # it ticks
    expect(page.locator("article")).to_contain_text("no hints until the debrief")
    page.screenshot(path=str(SCREENSHOTS / "drills-mock-interview-1280x900.png"), full_page=True)
    page.get_by_role("button", name="End the interview").click()
    page.wait_for_url("**/results/")
    expect(page.locator("h1")).to_have_text("Mock interview debrief")
    expect(page.locator("#results-summary")).to_contain_text("0 of 4 answered")
    expect(page.locator(".debrief-item")).to_have_count(4)
    page.screenshot(path=str(SCREENSHOTS / "drills-mock-debrief-1280x900.png"), full_page=True)
    assert page_errors == []
