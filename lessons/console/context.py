"""What every tool run gets: the admin adapter, where to print, standard input and the session."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lessons.console.admin import ConsoleAdmin
from lessons.console.output import Output

if TYPE_CHECKING:
    from lessons.console.session import ConsoleSession

KAFKA_VERSION = "4.0.0"


@dataclass
class ToolContext:
    admin: ConsoleAdmin
    out: Output
    stdin: list[str] | None
    session: ConsoleSession
    extra: dict[str, Any] = field(default_factory=dict)


def include_list(pattern: str) -> re.Pattern[str]:
    """Kafka's `IncludeList`: a Java regex where commas separate alternatives, matched whole."""
    cleaned = pattern.strip().replace(",", "|")
    if cleaned.startswith('"') and cleaned.endswith('"') and len(cleaned) > 1:
        cleaned = cleaned[1:-1]
    try:
        return re.compile(cleaned)
    except re.error:
        raise ValueError(f"{pattern} is an invalid regex.") from None


def validate_bootstrap(value: str | None) -> str | None:
    """`ToolsUtils.validateBootstrapServer`: the problem, or None when every entry is host:port."""
    if value is None or not value.strip():
        return "Error while validating the bootstrap address\n"
    for entry in value.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit():
            return "Please provide valid host:port like host1:9091,host2:9092\n"
    return None
