"""The scenario runner: plays a scenario on a fresh runtime, deterministically, as fast as the
engine goes (no wall clock), and reports each expectation's outcome and the moment it held.

The clock runs in TICK_MS quanta; after every quantum the expectations not yet settled are
checked against the events that arrived and the probes' values. The same scenario and seed give
the same outcomes and the same final snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lessons.scenarios.limits import TICK_MS
from lessons.scenarios.probes import read_probe
from lessons.scenarios.results import ApplyResult
from lessons.scenarios.runtime import ClusterRuntime
from lessons.scenarios.scenario import Expectation, Scenario


@dataclass(frozen=True)
class Outcome:
    id: str
    held: bool
    time_ms: int | None  # the first cluster time at which the expectation held
    observed: Any
    message: str


@dataclass(frozen=True)
class StepResult:
    """What applying one setup command or step gave (an `advance` is always ok)."""

    path: str
    time_ms: int
    result: ApplyResult


@dataclass
class ScenarioResult:
    outcomes: list[Outcome]
    runtime: ClusterRuntime
    events: list[Any]
    steps: list[StepResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(outcome.held for outcome in self.outcomes)

    def outcome(self, ident: str) -> Outcome:
        for outcome in self.outcomes:
            if outcome.id == ident:
                return outcome
        raise KeyError(ident)


# -- matching -------------------------------------------------------------------------------------


def _norm(value: Any) -> Any:
    """Kafka error names match with either suffix: NotEnoughReplicasError is
    NotEnoughReplicasException (the engine's events carry Kafka's Java name)."""
    if isinstance(value, str):
        for suffix in ("Exception", "Error"):
            if value.endswith(suffix) and len(value) > len(suffix):
                return value[: -len(suffix)]
    return value


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _matches(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list | tuple):
        return len(expected) == len(actual) and all(
            _matches(e, a) for e, a in zip(expected, actual, strict=True)
        )
    if expected == actual:
        return True
    if isinstance(expected, int | str) and isinstance(actual, int | str):
        return _norm(str(expected)) == _norm(str(actual))
    return False


def event_matches(expectation: Expectation, event: Any) -> bool:
    return event.kind == expectation.event and _matches(dict(expectation.where), event.data)


def compare(expectation: Expectation, observed: Any) -> bool:
    wanted = expectation.value
    op = expectation.comparison
    if op == "equals":
        return _matches(wanted, observed)
    if op == "not_equals":
        return not _matches(wanted, observed)
    if op == "one_of":
        return any(_matches(option, observed) for option in wanted)
    if not isinstance(observed, int | float) or isinstance(observed, bool):
        return False
    return observed >= wanted if op == "at_least" else observed <= wanted


def evaluate(
    expectation: Expectation,
    runtime: ClusterRuntime,
    since_event_index: int = 0,
    *,
    since_ms: int | None = None,
) -> Outcome | None:
    """The expectation's outcome if it holds now, else None. An event expectation looks at the
    events from `since_event_index` on (and, with `within_ms`, up to `since_ms + within_ms`); a
    probe expectation reads its probe now. Lessons use this to check a goal on a live stage."""
    if expectation.event is not None:
        events = runtime.cluster.events_since(since_event_index)
        deadline = None
        if expectation.within_ms is not None and since_ms is not None:
            deadline = since_ms + expectation.within_ms
        for event in events:
            if deadline is not None and event.time_ms > deadline:
                break
            if event_matches(expectation, event):
                if expectation.never:
                    return None
                return Outcome(
                    expectation.id,
                    True,
                    int(event.time_ms),
                    dict(event.data),
                    f"{expectation.event} at {event.time_ms} ms",
                )
        if expectation.never:
            return Outcome(
                expectation.id, True, runtime.now_ms, None, f"no {expectation.event} event"
            )
        return None
    observed = read_probe(runtime, str(expectation.probe), expectation.args)
    if compare(expectation, observed):
        return Outcome(
            expectation.id,
            True,
            runtime.now_ms,
            observed,
            f"{expectation.describe()}: read {observed!r} at {runtime.now_ms} ms",
        )
    return None


# -- the runner -----------------------------------------------------------------------------------


class _Tracker:
    """Each expectation's state while the scenario plays."""

    def __init__(self, expectations: Sequence[Expectation], runtime: ClusterRuntime) -> None:
        self.expectations = list(expectations)
        self.runtime = runtime
        self.settled: dict[str, Outcome] = {}
        self.last_observed: dict[str, Any] = {}
        self.scanned = 0
        self.step_marks: dict[int, tuple[int, int]] = {}  # step -> (event index, time ms)
        self.ticking = {e.id for e in self.expectations if e.probe is not None and e.at == "ever"}

    def step_applied(self, index: int) -> None:
        self.step_marks[index] = (self.runtime.cluster.event_count, self.runtime.now_ms)

    def _window(self, expectation: Expectation) -> tuple[int, int, int | None] | None:
        """(first event index, window start ms, deadline ms) or None before its step."""
        if expectation.after_step is None:
            start_index, start_ms = 0, 0
        elif expectation.after_step in self.step_marks:
            start_index, start_ms = self.step_marks[expectation.after_step]
        else:
            return None
        deadline = None if expectation.within_ms is None else start_ms + expectation.within_ms
        return start_index, start_ms, deadline

    def check(self) -> None:
        cluster = self.runtime.cluster
        events = cluster.events
        # Absolute event indices (Cluster.event_count): a long run may have dropped old events.
        dropped = cluster.events_dropped
        fresh = range(max(self.scanned, dropped), dropped + len(events))
        self.scanned = dropped + len(events)
        for expectation in self.expectations:
            if expectation.id in self.settled:
                continue
            if expectation.event is not None:
                self._check_event(expectation, events, fresh, dropped)
            elif expectation.id in self.ticking:
                self._check_probe(expectation)

    def _check_event(
        self, expectation: Expectation, events: list[Any], fresh: range, dropped: int
    ) -> None:
        window = self._window(expectation)
        if window is None:
            return
        start_index, start_ms, deadline = window
        for position in fresh:
            if position < start_index:
                continue
            event = events[position - dropped]
            if deadline is not None and event.time_ms > deadline:
                break
            if not event_matches(expectation, event):
                continue
            elapsed = int(event.time_ms) - start_ms
            after = "" if expectation.after_step is None else f" ({elapsed} ms after the step)"
            if expectation.never:
                self.settled[expectation.id] = Outcome(
                    expectation.id,
                    False,
                    None,
                    dict(event.data),
                    f"{expectation.describe()}: it happened at {event.time_ms} ms{after}",
                )
            else:
                self.settled[expectation.id] = Outcome(
                    expectation.id,
                    True,
                    int(event.time_ms),
                    dict(event.data),
                    f"{expectation.describe()}: at {event.time_ms} ms{after}",
                )
            return

    def _check_probe(self, expectation: Expectation) -> None:
        observed = read_probe(self.runtime, str(expectation.probe), expectation.args)
        self.last_observed[expectation.id] = observed
        if compare(expectation, observed):
            self.settled[expectation.id] = Outcome(
                expectation.id,
                True,
                self.runtime.now_ms,
                observed,
                f"{expectation.describe()}: read {observed!r} at {self.runtime.now_ms} ms",
            )

    def finish(self) -> list[Outcome]:
        self.check()
        now = self.runtime.now_ms
        outcomes = []
        for expectation in self.expectations:
            settled = self.settled.get(expectation.id)
            if settled is not None:
                outcomes.append(settled)
            elif expectation.event is not None:
                outcomes.append(self._unsettled_event(expectation, now))
            else:
                observed = read_probe(self.runtime, str(expectation.probe), expectation.args)
                held = compare(expectation, observed)
                outcomes.append(
                    Outcome(
                        expectation.id,
                        held,
                        now if held else None,
                        observed,
                        f"{expectation.describe()}: read {observed!r} at the end ({now} ms)",
                    )
                )
        return outcomes

    def _unsettled_event(self, expectation: Expectation, now: int) -> Outcome:
        window = self._window(expectation)
        if window is None:
            return Outcome(
                expectation.id,
                False,
                None,
                None,
                f"{expectation.describe()}: step {expectation.after_step} never ran",
            )
        if expectation.never:
            return Outcome(
                expectation.id, True, now, None, f"{expectation.describe()}: none by {now} ms"
            )
        seen = sum(1 for e in self.runtime.cluster.events if e.kind == expectation.event)
        return Outcome(
            expectation.id,
            False,
            None,
            seen,
            f"{expectation.describe()}: no such event by {now} ms "
            f"({seen} {expectation.event} events in all)",
        )


def _run_until(runtime: ClusterRuntime, tracker: _Tracker, target_ms: int) -> None:
    while runtime.now_ms < target_ms:
        step = min(TICK_MS - runtime.now_ms % TICK_MS, target_ms - runtime.now_ms)
        runtime.advance(step)
        tracker.check()


def run_scenario(scenario: Scenario, *, seed: int | None = None) -> ScenarioResult:
    """Play `scenario` (with `seed` instead of the file's seed, if given) and judge it."""
    spec = scenario.cluster if seed is None else replace(scenario.cluster, seed=seed)
    runtime = ClusterRuntime(spec)
    tracker = _Tracker(scenario.expect, runtime)
    results: list[StepResult] = []
    for index, payload in enumerate(scenario.topics):
        results.append(StepResult(f"topics[{index}]", runtime.now_ms, runtime.apply(payload)))
    for index, payload in enumerate(scenario.setup):
        results.append(StepResult(f"setup[{index}]", runtime.now_ms, runtime.apply(payload)))
    tracker.check()
    for step in scenario.steps:
        _run_until(runtime, tracker, step.at_ms)
        tracker.step_applied(step.index)
        if step.advance_ms is not None:
            _run_until(runtime, tracker, runtime.now_ms + step.advance_ms)
            results.append(StepResult(step.path, runtime.now_ms, ApplyResult(ok=True)))
        else:
            assert step.command is not None
            results.append(StepResult(step.path, runtime.now_ms, runtime.apply(step.command)))
            tracker.check()
    outcomes = tracker.finish()
    return ScenarioResult(
        outcomes=outcomes, runtime=runtime, events=list(runtime.cluster.events), steps=results
    )
