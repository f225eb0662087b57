"""The console panel in Debian's Chromium (Playwright) against a real Daphne: type Kafka's tools
with the keyboard alone, see their answers, see the stage follow, and tail records produced from
the stage's own Produce form.

Screenshots go to artifacts/screenshots/ (or $KAFKA_DOJO_SCREENSHOTS): console-*.png.
"""

from __future__ import annotations

import pytest

from tests.web.support import SCREENSHOTS, LiveServer, new_page

pytestmark = pytest.mark.browser
B = "--bootstrap-server localhost:9092"


def test_type_commands_see_answers_and_tail_records_produced_from_the_stage(
    stage_server: LiveServer, chromium: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    page, page_errors = new_page(chromium, width=1280, height=900)
    page.goto(stage_server.url + "/sandbox/")
    page.wait_for_url("**/sandbox/*/")
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    line = page.get_by_label("Command line")
    output = page.locator("#console-output")

    # Keyboard only: Tab completes the tool's name and an option, Enter runs the line.
    line.focus()
    page.keyboard.type("kafka-top")
    page.keyboard.press("Tab")
    expect(line).to_have_value("kafka-topics.sh ")
    page.keyboard.type("--bootstrap-s")
    page.keyboard.press("Tab")
    expect(line).to_have_value("kafka-topics.sh --bootstrap-server ")
    page.keyboard.press("Tab")  # three brokers: their common prefix first ...
    expect(line).to_have_value("kafka-topics.sh --bootstrap-server localhost:909")
    page.keyboard.press("Tab")  # ... and, as in bash, the choices on the second Tab
    expect(output).to_contain_text("localhost:9092  localhost:9093  localhost:9094")
    page.keyboard.type("2 --create --topic payments --partitions 2 --replication-factor 3 --if-not")
    page.keyboard.press("Tab")
    expect(line).to_have_value(
        f"kafka-topics.sh {B} --create --topic payments --partitions 2 --replication-factor 3 "
        "--if-not-exists "
    )
    page.keyboard.press("Enter")
    expect(output).to_contain_text("Created topic payments.")
    # ... and the stage draws the new topic's partitions.
    expect(page.locator('#stage .partition-row[data-partition="payments-1"]')).to_have_count(
        1, timeout=5_000
    )

    page.keyboard.type(f"kafka-topics.sh {B} --describe --topic payments")
    page.keyboard.press("Enter")
    expect(output).to_contain_text("PartitionCount: 2\tReplicationFactor: 3")
    expect(output).to_contain_text(f"$ kafka-topics.sh {B} --describe --topic payments\n")
    expect(output).to_contain_text("\tTopic: payments\tPartition: 1\tLeader: ")

    # History: Up brings back the last line.
    page.keyboard.press("ArrowUp")
    expect(line).to_have_value(f"kafka-topics.sh {B} --describe --topic payments")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")

    # A usage error answers as the real tool does.
    page.keyboard.type(f"kafka-topics.sh {B} --under-replicated-partitions")
    page.keyboard.press("Enter")
    expect(output).to_contain_text("Command must include exactly one action")

    # An interactive producer: its prompt is ">", each line is a record, Ctrl+D ends it.
    page.keyboard.type(f"kafka-console-producer.sh {B} --topic payments")
    page.keyboard.press("Enter")
    expect(page.locator("#console-prompt")).to_have_text(">")
    for value in ("typed-1", "typed-2"):
        page.keyboard.type(value)
        page.keyboard.press("Enter")
        expect(output).to_contain_text(f">{value}\n")
    page.keyboard.press("Control+d")
    expect(page.locator("#console-prompt")).to_have_text("$ ")
    page.keyboard.type(f"kafka-get-offsets.sh {B} --topic payments")
    page.keyboard.press("Enter")
    expect(output).to_contain_text("payments:1:")
    offsets = [
        int(row.rsplit(":", 1)[1])
        for row in output.inner_text().splitlines()
        if row.startswith("payments:")
    ]
    assert sum(offsets[-2:]) == 2

    # Tail the stage's topic, then produce from the stage's form: the record arrives.
    page.keyboard.type(f"kafka-console-consumer.sh {B} --topic orders --property print.key=true")
    page.keyboard.press("Enter")
    expect(page.locator("[data-console]")).to_have_attribute("data-running", "yes")
    page.wait_for_timeout(4_000)  # the consumer joins its group (3 s initial rebalance delay)
    page.get_by_label("Key", exact=True).fill("customer-7")
    page.get_by_label("Value", exact=True).fill("from-the-stage")
    page.get_by_role("button", name="Produce").click()
    expect(output).to_contain_text("customer-7\tfrom-the-stage", timeout=15_000)
    page.locator("[data-console]").screenshot(path=str(SCREENSHOTS / "console-tailing.png"))

    line.focus()
    page.keyboard.press("Control+c")
    expect(output).to_contain_text("Processed a total of 1 messages", timeout=5_000)
    expect(page.locator("[data-console]")).to_have_attribute("data-running", "no")

    # `clear` empties the terminal, as in a shell.
    page.keyboard.type("clear")
    page.keyboard.press("Enter")
    expect(output).to_have_text("")
    assert page_errors == []
