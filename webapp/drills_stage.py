"""A predict drill's run on the stage: the scenario as a command log, frames of the stage along
the run (the deciding moment marked), and a sandbox built from it.

A scenario becomes the same command log a live sandbox keeps (its topics and setup at t=0,
then an `advance` up to each step and the step's command), so the frames, the sandbox opened
from a drill and the runner all make the same engine calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from lessons.drills.bank import Drill
from lessons.scenarios import ClusterRuntime, ClusterSpec, load_scenario
from lessons.scenarios.limits import TICK_MS
from webapp import timeline
from webapp.engine_host import render as stage_render

MAX_FRAMES = 16
CACHE_SECONDS = 6 * 3600


def scenario_log(
    raw: Mapping[str, Any], *, source: str
) -> tuple[ClusterSpec, list[dict[str, Any]]]:
    """The scenario's cluster spec and its command log (what a sandbox stores).

    The log is made by playing the scenario the way the runner does: before each step the
    clock runs up to the step's time as the runtime sees it (a command may itself move the
    clock a few ms), so replaying the log makes exactly the runner's engine calls.
    """
    scenario = load_scenario(raw, source=source)
    runtime = ClusterRuntime(scenario.cluster)
    commands: list[dict[str, Any]] = []

    def apply(payload: Mapping[str, Any]) -> None:
        commands.append(dict(payload))
        runtime.apply(payload)

    for payload in [*scenario.topics, *scenario.setup]:
        apply(payload)
    for step in scenario.steps:
        if step.at_ms > runtime.now_ms:
            apply({"type": "advance", "ms": step.at_ms - runtime.now_ms})
        if step.advance_ms is not None:
            apply({"type": "advance", "ms": step.advance_ms})
        elif step.command is not None:
            apply(step.command)
    return scenario.cluster, commands


@dataclass(frozen=True)
class Frame:
    time_ms: int
    stage: str  # the stage's SVG fragment
    narration: str
    events: str
    deciding: bool

    @property
    def seconds(self) -> float:
        return self.time_ms / 1000


def _tick_after(ms: int) -> int:
    """The first tick boundary at or after `ms`: a frame there shows what happened at `ms`."""
    return -(-int(ms) // TICK_MS) * TICK_MS


def frame_times(end_ms: int, moment_ms: int | None, marks: Sequence[int]) -> list[int]:
    """Moments worth a frame: the start, each step, the deciding moment (and just before it),
    the end, and evenly spaced fill-ins, at most MAX_FRAMES in all."""
    wanted = {0, end_ms, *(m for m in marks if 0 <= m <= end_ms)}
    if moment_ms is not None:
        wanted |= {_tick_after(moment_ms), max(0, moment_ms - 500)}
    spacing = max(1, end_ms // (MAX_FRAMES // 2))
    fill = list(range(0, end_ms, spacing))
    for t in fill:
        if len(wanted) >= MAX_FRAMES:
            break
        wanted.add(t)
    ordered = sorted(min(end_ms, _tick_after(t)) for t in wanted)
    if len(ordered) > MAX_FRAMES:
        keep = {0, ordered[-1]} | ({_tick_after(moment_ms)} if moment_ms else set())
        rest = [t for t in ordered if t not in keep]
        step = len(rest) / (MAX_FRAMES - len(keep))
        ordered = sorted(keep | {rest[int(i * step)] for i in range(MAX_FRAMES - len(keep))})
    return sorted(set(ordered))


def _render(runtime: ClusterRuntime, deciding: bool) -> Frame:
    clock = stage_render.ClockView(now_ms=runtime.now_ms, paused=True, speed=1.0, viewers=0)
    fragments = stage_render.render_fragments(runtime, clock)
    return Frame(
        time_ms=runtime.now_ms,
        stage=fragments["stage"],
        narration=fragments["narration"],
        events=fragments["events"],
        deciding=deciding,
    )


def build_frames(
    spec: ClusterSpec, commands: Sequence[Mapping[str, Any]], moment_ms: int | None
) -> list[Frame]:
    """Replay the log once, stopping at each frame time to draw the stage."""
    step_times: list[int] = []
    end_ms = 0
    for payload in commands:
        ms = timeline._advance_ms(payload)
        if ms is None:
            step_times.append(end_ms)
        else:
            end_ms += ms
    runtime = ClusterRuntime(spec)
    times = frame_times(end_ms, moment_ms, step_times)
    moment_tick = min(end_ms, _tick_after(moment_ms)) if moment_ms is not None else None
    frames: list[Frame] = []
    pending = list(times)
    for payload in commands:
        ms = timeline._advance_ms(payload)
        if ms is None:
            while pending and pending[0] < runtime.now_ms:
                pending.pop(0)
            runtime.apply(payload)
            continue
        target = runtime.now_ms + ms
        while pending and pending[0] <= target:
            at = pending.pop(0)
            if at > runtime.now_ms:
                runtime.apply({"type": "advance", "ms": at - runtime.now_ms})
            frames.append(_render(runtime, deciding=at == moment_tick))
        if target > runtime.now_ms:
            runtime.apply({"type": "advance", "ms": target - runtime.now_ms})
    if not frames or frames[-1].time_ms != runtime.now_ms:
        frames.append(_render(runtime, deciding=runtime.now_ms == moment_tick))
    return frames


def drill_frames(
    drill: Drill, scenario: Mapping[str, Any], moment_ms: int | None, *, variant: str
) -> list[Frame]:
    """The frames of a drill's run (or a what-if variant), cached by content and variant."""
    key = f"drill-frames:{drill.content_hash}:{variant}:{moment_ms}"
    cached = cache.get(key)
    if cached is not None:
        return list(cached)
    spec, commands = scenario_log(scenario, source=f"{drill.source}#{drill.id}")
    frames = build_frames(spec, commands, moment_ms)
    cache.set(key, frames, CACHE_SECONDS)
    return frames


def open_sandbox(
    drill: Drill, scenario: Mapping[str, Any], *, session_key: str
) -> Any:  # a LiveCluster
    """A new paused sandbox whose log is the drill's run: scrub it, fork it, act on it."""
    spec, commands = scenario_log(scenario, source=f"{drill.source}#{drill.id}")
    return timeline.sandbox_from_log(spec=spec, commands=commands, session_key=session_key)
