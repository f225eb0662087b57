"""Console lines in scenarios: steps of the `console` command, and the `console_output` probe a
drill uses to compute what a command prints."""

from __future__ import annotations

from lessons.console.readonly import is_read_only
from lessons.scenarios import load_scenario, read_probe, run_scenario

B = "--bootstrap-server localhost:9092"
SCENARIO = {
    "cluster": {"seed": 4, "brokers": 3},
    "topics": [{"name": "orders", "partitions": 3, "replication_factor": 3}],
    "steps": [
        {
            "command": "console",
            "line": f"kafka-topics.sh {B} --create --topic audit --partitions 2",
        },
        {"command": "console", "line": f"kafka-consumer-groups.sh {B} --describe --group none"},
        {"command": "stop_broker", "broker_id": 3},
        {"advance": 15000},
    ],
    "expect": [
        {
            "id": "under-replicated",
            "probe": "console_output",
            "args": {"line": f"kafka-topics.sh {B} --describe --under-replicated-partitions"},
            "at": "end",
            "not_equals": "",
        }
    ],
}


def test_console_steps_run_and_the_probe_prints_what_the_tool_prints() -> None:
    result = run_scenario(load_scenario(SCENARIO, source="test"))
    assert result.passed
    messages = [step.result.message for step in result.steps if step.path.startswith("steps")]
    assert messages[0] == "Created topic audit.\n"
    assert messages[1] == "\nError: Consumer group 'none' does not exist.\n"
    printed = result.outcomes[0].observed
    every = printed.splitlines()
    # Describing the group sent FindCoordinator, which created __consumer_offsets (as Kafka's
    # broker does for a group coordinator): its RF-3 partitions lost broker 3 too.
    offsets_topic = [line for line in every if line.startswith("\tTopic: __consumer_offsets\t")]
    assert len(offsets_topic) == 50
    lines = [line for line in every if line not in offsets_topic]
    # orders (RF 3) lost broker 3 from every ISR; audit has one replica, so it is never
    # under-replicated, only unavailable where broker 3 held it.
    assert len(lines) == 3
    assert all(line.startswith("\tTopic: orders\tPartition: ") for line in lines)
    assert all("Replicas: " in line and "3" not in line.split("\tIsr: ")[1] for line in lines)
    again = run_scenario(load_scenario(SCENARIO, source="test"))
    assert again.outcomes[0].observed == printed
    assert again.runtime.cluster.snapshot() == result.runtime.cluster.snapshot()


def test_the_probe_refuses_lines_that_would_change_the_cluster() -> None:
    runtime = run_scenario(load_scenario(SCENARIO, source="test")).runtime
    before = runtime.cluster.snapshot()
    line = f"kafka-topics.sh {B} --delete --topic orders"
    assert read_probe(runtime, "console_output", {"line": line}) is None
    assert runtime.cluster.snapshot() == before
    assert not is_read_only(f"kafka-consumer-groups.sh {B} --reset-offsets --group g --execute")
    assert is_read_only(f"kafka-consumer-groups.sh {B} --reset-offsets --group g --dry-run")
    assert is_read_only(f"kafka-get-offsets.sh {B} --topic orders")
    assert not is_read_only(f"echo x | kafka-console-producer.sh {B} --topic orders")


def test_the_example_scenario_with_console_lines_passes() -> None:
    from pathlib import Path

    path = Path("lessons/scenarios/examples/console-under-replicated.yaml")
    result = run_scenario(load_scenario(path))
    assert result.passed
    printed = result.outcome("broker-2-out-of-every-isr").observed
    assert [line.split("\t")[2] for line in printed.splitlines()] == [
        "Partition: 0",
        "Partition: 1",
    ]
    assert all("2" not in line.split("\tIsr: ")[1].split("\t")[0] for line in printed.splitlines())


def test_the_probe_refuses_a_line_that_ran_the_clock() -> None:
    """On a cluster without __consumer_offsets, describing a group waits for FindCoordinator to
    create it and elect a coordinator: cluster time a probe (not a logged command) may not run."""
    scenario = {"cluster": {"seed": 4, "brokers": 3}, "steps": [], "expect": []}
    runtime = run_scenario(load_scenario(scenario, source="test")).runtime
    line = f"kafka-consumer-groups.sh {B} --describe --group g"
    assert is_read_only(line)
    before = runtime.cluster.now_ms
    assert read_probe(runtime, "console_output", {"line": line}) is None
    assert runtime.cluster.now_ms > before
    # Now that the coordinator is there, the same line reads without running the clock.
    assert read_probe(runtime, "console_output", {"line": line}) == (
        "\nError: Consumer group 'g' does not exist.\n"
    )
