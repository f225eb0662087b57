"""What applying one command gives back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of one command. `error` holds Kafka's error name when the engine refused."""

    ok: bool
    message: str = ""
    error: str | None = None
    retriable: bool = False
