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
from lessons.scenarios.fields import Field, Limits
from lessons.scenarios.results import ApplyResult
from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec, kafka_error_text

__all__ = [
    "CLOCK_COMMANDS",
    "COMMANDS",
    "LOGGED_COMMANDS",
    "ApplyResult",
    "ClusterRuntime",
    "ClusterSpec",
    "CommandSpec",
    "Field",
    "Limits",
    "commands_for",
    "errors_text",
    "kafka_error_text",
    "validate",
]
