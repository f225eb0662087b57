"""What happened in the cluster, in order: the raw material of narration, drills and grading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    time_ms: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"time_ms": self.time_ms, "kind": self.kind, "data": self.data}
