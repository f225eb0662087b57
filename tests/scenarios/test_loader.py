"""A scenario file with a mistake is refused with the file, the field path and what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lessons.scenarios import ScenarioError, load_scenario

GOOD: dict[str, Any] = {
    "cluster": {"seed": 7, "brokers": 3, "controllers": 3},
    "topics": [{"name": "orders", "partitions": 3, "replication_factor": 3}],
    "setup": [{"command": "start_producer", "topic": "orders", "rate": 5, "acks": "all"}],
    "steps": [
        {"at": 2000, "command": "stop_broker", "broker_id": 2},
        {"after": 500, "command": "produce", "topic": "orders", "key": "k", "value": "v"},
        {"advance": 1000},
    ],
    "expect": [
        {"id": "elected", "event": "leader_elected", "after_step": 0, "within_ms": 15000},
        {"id": "alive", "probe": "broker_alive", "args": {"broker": 2}, "equals": False},
    ],
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    """GOOD with one value replaced; `path` like "steps.0.broker_id"."""
    import copy

    doc = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[int(last) if last.isdigit() else last] = value
    return doc


def test_a_good_scenario_loads_with_its_steps_timed() -> None:
    scenario = load_scenario(GOOD, source="good.yaml")
    assert scenario.cluster.seed == 7
    assert [s.at_ms for s in scenario.steps] == [2000, 2500, 2500]
    assert scenario.steps[0].command == {"type": "stop_broker", "broker_id": 2}
    assert scenario.steps[1].command == {
        "type": "produce",
        "topic": "orders",
        "key": "k",
        "value": "v",
        "count": 1,
    }
    assert scenario.steps[2].advance_ms == 1000
    assert scenario.end_ms == 3500
    assert scenario.setup[0]["rate"] == 5.0


@pytest.mark.parametrize(
    ("path", "value", "where", "words"),
    [
        ("steps.0.broker_id", 7, "steps[0].broker_id", "There is no broker 7"),
        ("steps.0.command", "explode", "steps[0].command", "unknown command 'explode'"),
        ("steps.1.count", 500, "steps[1].count", "Send at most 100 records"),
        ("steps.1.colour", "red", "steps[1].colour", "unknown key 'colour'"),
        ("steps.2.at", 100, "steps[2].at", "before the previous step ends"),
        ("steps.2.advance", -5, "steps[2].advance", "out of range"),
        ("setup.0.rate", 0, "setup[0].rate", "at least 0.1"),
        ("setup.0.command", "pause", "setup[0].command", "unknown command 'pause'"),
        ("topics.0.replication_factor", 5, "topics[0].replication_factor", "needs 5 brokers"),
        ("topics.0.name", "a b", "topics[0].name", "topic name"),
        ("cluster.brokers", "three", "cluster.brokers", "expected a whole number"),
        ("cluster.zookeeper", True, "cluster.zookeeper", "unknown key 'zookeeper'"),
        ("expect.0.event", "leader_changed", "expect[0].event", "unknown event kind"),
        ("expect.0.after_step", 9, "expect[0].after_step", "out of range (0 to 2)"),
        ("expect.1.probe", "lag", "expect[1].probe", "unknown probe 'lag'"),
        ("expect.1.args", {"broker": 2, "rack": 1}, "expect[1].args.rack", "no argument 'rack'"),
        ("expect.1.args", {}, "expect[1].args", "needs the argument broker"),
        ("expect.1.id", "elected", "expect[1].id", "used twice"),
    ],
)
def test_each_mistake_names_the_file_and_the_field(
    path: str, value: Any, where: str, words: str
) -> None:
    with pytest.raises(ScenarioError) as raised:
        load_scenario(with_change(path, value), source="lessons/failover.yaml")
    message = str(raised.value)
    assert message.startswith(f"lessons/failover.yaml: {where}: "), message
    assert words in message
    assert raised.value.path == where


def test_an_inline_scenario_names_its_place_in_the_enclosing_file() -> None:
    with pytest.raises(ScenarioError) as raised:
        load_scenario(
            with_change("steps.0.broker_id", 9), source="lessons/x.yaml", at="steps[1].scenario"
        )
    assert str(raised.value).startswith("lessons/x.yaml: steps[1].scenario.steps[0].broker_id: ")


def test_a_file_with_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("cluster: {seed: 1\nsteps: [\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    assert str(raised.value).startswith(f"{path}: line ")
    assert "not valid YAML" in str(raised.value)


def test_a_file_is_read_and_validated_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "cluster: {seed: 1, brokers: 3}\n"
        "steps:\n"
        "  - {at: 0, command: partition_network, isolate: '2, 999'}\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    assert str(raised.value) == (f"{path}: steps[0].isolate: There is no node 999 in this cluster.")
