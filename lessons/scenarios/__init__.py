"""The command table, the cluster runtime and the scenario runner (free of Django).

See README.md in this package for the contract: the Python API and the scenario file format.
"""

from __future__ import annotations

from lessons.scenarios.commands import (
    CLOCK_COMMANDS,
    COMMANDS,
    LOGGED_COMMANDS,
    CommandSpec,
    commands_for,
    errors_text,
    validate,
)
from lessons.scenarios.events import EVENT_KINDS
from lessons.scenarios.fields import Field, Limits
from lessons.scenarios.probes import PROBES, Probe, read_probe
from lessons.scenarios.results import ApplyResult
from lessons.scenarios.runner import Outcome, ScenarioResult, StepResult, evaluate, run_scenario
from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec, kafka_error_text
from lessons.scenarios.scenario import (
    Expectation,
    Scenario,
    ScenarioError,
    Step,
    load_scenario,
    parse_yaml,
)

__all__ = [
    "CLOCK_COMMANDS",
    "COMMANDS",
    "EVENT_KINDS",
    "LOGGED_COMMANDS",
    "PROBES",
    "ApplyResult",
    "ClusterRuntime",
    "ClusterSpec",
    "CommandSpec",
    "Expectation",
    "Field",
    "Limits",
    "Outcome",
    "Probe",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "Step",
    "StepResult",
    "commands_for",
    "errors_text",
    "evaluate",
    "kafka_error_text",
    "load_scenario",
    "parse_yaml",
    "read_probe",
    "run_scenario",
    "validate",
]
