"""The kinds of typed events the engine emits (`cluster.events`), listed once.

Scenario expectations name these kinds (an unknown kind is an error in the scenario file), the
stage's narration tells them, and lessons wait on them. The list is the engine's own catalogue
(`engine.common.events`, where each kind also has its payload type).
"""

from __future__ import annotations

from engine.common.events import EVENT_KINDS

__all__ = ["EVENT_KINDS"]
