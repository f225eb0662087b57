"""Lessons on the scenario runner: compiled goals, the live goal watch and the walk-through.

Free of Django. A lesson's scenario, its show-me commands, goals, claims and predict keys are
validated by the scenario runner's own loader (`lessons.scenarios.load_scenario`), with the
runner's error paths rewritten to the lesson file's (`steps[2].show_me[0].broker_id`).

- `compile_lesson(lesson)`: the lesson as payloads and `Expectation`s (cached per lesson).
- `GoalWatch`: one step's goal, claims and predict key checked against a live runtime, the
  way the engine host checks it after every tick of the stage's clock.
- `walk_through(lesson)`: a fresh runtime from the lesson's scenario, then every step
  performed with its show-me commands through the command table (`validate` and
  `ClusterRuntime.apply`, as the stage's socket and host do), the clock run until the goal
  holds, every claim and every predict answer checked against the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lessons.catalogue import Lesson, LessonContentError, Step
from lessons.scenarios import (
    COMMANDS,
    ClusterRuntime,
    Expectation,
    Outcome,
    Scenario,
    ScenarioError,
    evaluate,
    load_scenario,
    read_probe,
)
from lessons.scenarios.limits import TICK_MS

SCENARIO_KEYS = ("cluster", "topics", "setup")


# -- compiling: every part validated by the scenario runner ---------------------------------


@dataclass(frozen=True)
class CompiledStep:
    # (ms after the step starts, validated payload {"type": ..., ...}), in order
    show_me: tuple[tuple[int, dict[str, Any]], ...]
    goal: tuple[Expectation, ...]  # all hold at the same moment
    claims: tuple[Expectation, ...]
    key: Expectation | None  # the predict key (a probe read or an event expectation)


@dataclass(frozen=True)
class CompiledLesson:
    lesson: Lesson
    scenario: Scenario
    steps: tuple[CompiledStep, ...]

    def setup_payloads(self) -> list[dict[str, Any]]:
        """The commands that build the starting stage, in order: topics, then setup."""
        return [dict(p) for p in (*self.scenario.topics, *self.scenario.setup)]


def _rewrite(error: ScenarioError, source: str, synthetic: str, real: str) -> LessonContentError:
    path = error.path
    if path == synthetic or path.startswith((synthetic + ".", synthetic + "[")):
        path = real + path[len(synthetic) :]
    return LessonContentError(source, path, error.problem)


def _base(lesson: Lesson) -> dict[str, Any]:
    scenario = lesson.scenario
    for key in scenario:
        if key not in SCENARIO_KEYS:
            raise LessonContentError(
                lesson.source,
                f"scenario.{key}",
                f"unknown key; a lesson's scenario holds {', '.join(SCENARIO_KEYS)} "
                "(its steps and goals are the lesson's own steps)",
            )
    return {key: scenario[key] for key in SCENARIO_KEYS if key in scenario}


def _expectation(
    lesson: Lesson, base: dict[str, Any], raw: Mapping[str, Any], path: str
) -> Expectation:
    try:
        scenario = load_scenario(
            {**base, "expect": [{"id": "goal", **dict(raw)}]}, source=lesson.source
        )
    except ScenarioError as error:
        raise _rewrite(error, lesson.source, "expect[0]", path) from None
    return scenario.expect[0]


def _key(lesson: Lesson, base: dict[str, Any], raw: Mapping[str, Any], path: str) -> Expectation:
    if "event" in raw:
        return _expectation(lesson, base, raw, path)
    extra = sorted(set(raw) - {"probe", "args"})
    if extra:
        raise LessonContentError(
            lesson.source, f"{path}.{extra[0]}", "a probe key names only probe and args"
        )
    return _expectation(lesson, base, {**dict(raw), "equals": None}, path)


def _command_name(lesson: Lesson, path: str, name: str) -> None:
    spec = COMMANDS.get(name)
    if spec is None or "learner" not in spec.roles:
        usable = ", ".join(n for n, s in COMMANDS.items() if "learner" in s.roles and s.logged)
        raise LessonContentError(
            lesson.source, path, f"{name!r} is not a learner's command; one of: {usable}"
        )


def _compile_step(lesson: Lesson, base: dict[str, Any], step: Step) -> CompiledStep:
    where = f"steps[{step.index}]"
    for i, name in enumerate(step.enabled):
        _command_name(lesson, f"{where}.enabled[{i}]", name)
    show_me: list[tuple[int, dict[str, Any]]] = []
    if step.show_me:
        try:
            loaded = load_scenario({**base, "steps": list(step.show_me)}, source=lesson.source)
        except ScenarioError as error:
            raise _rewrite(error, lesson.source, "steps", f"{where}.show_me") from None
        for command_step in loaded.steps:
            if command_step.command is None:
                raise LessonContentError(
                    lesson.source,
                    f"{where}.show_me[{command_step.index}]",
                    "show me performs commands; the clock runs by itself",
                )
            show_me.append((command_step.at_ms, dict(command_step.command)))
    goal_path = f"{where}.goal.expect"
    if len(step.goal.expect) == 1:
        goal = (_expectation(lesson, base, step.goal.expect[0], goal_path),)
    else:
        goal = tuple(
            _expectation(lesson, base, raw, f"{goal_path}[{i}]")
            for i, raw in enumerate(step.goal.expect)
        )
    claims = tuple(
        _expectation(lesson, base, claim.expect, f"{where}.claims[{i}].expect")
        for i, claim in enumerate(step.claims)
    )
    key = None
    if step.predict is not None:
        key = _key(lesson, base, step.predict.key, f"{where}.predict.key")
    return CompiledStep(show_me=tuple(show_me), goal=goal, claims=claims, key=key)


_COMPILED: dict[tuple[str, str], CompiledLesson] = {}


def compile_lesson(lesson: Lesson) -> CompiledLesson:
    """The lesson validated by the scenario runner, as payloads and expectations."""
    cache_key = (lesson.source, lesson.id)
    cached = _COMPILED.get(cache_key)
    if cached is not None and cached.lesson is lesson:
        return cached
    base = _base(lesson)
    try:
        scenario = load_scenario(base, source=lesson.source, at="scenario")
    except ScenarioError as error:
        raise LessonContentError(lesson.source, error.path, error.problem) from None
    steps = tuple(_compile_step(lesson, base, step) for step in lesson.steps)
    compiled = CompiledLesson(lesson=lesson, scenario=scenario, steps=steps)
    _COMPILED[cache_key] = compiled
    return compiled


# -- the live goal watch -------------------------------------------------------------------


def key_value(key: Expectation, runtime: ClusterRuntime, since_index: int, since_ms: int) -> Any:
    """What the cluster says a predict key is: a probe's value, or whether an event held."""
    if key.event is not None:
        return evaluate(key, runtime, since_index, since_ms=since_ms) is not None
    return read_probe(runtime, str(key.probe), key.args)


@dataclass
class GoalWatch:
    """One step's goal checked against a live runtime from the moment the step started."""

    lesson: Lesson
    step_index: int
    since_index: int
    since_ms: int
    outcome: Outcome | None = None
    claims: list[bool] = field(default_factory=list)
    key: Any = None
    key_read: bool = False
    error: str = ""

    @property
    def step(self) -> CompiledStep:
        return compile_lesson(self.lesson).steps[self.step_index]

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def check(self, runtime: ClusterRuntime) -> bool:
        """Evaluate the goal now; once it holds, read the claims and the predict key once.
        Returns True when something changed."""
        if self.outcome is not None:
            return False
        outcomes = []
        for expectation in self.step.goal:
            try:
                outcome = evaluate(expectation, runtime, self.since_index, since_ms=self.since_ms)
            except (KeyError, ValueError) as error:  # a topic or group that is not there yet
                message = str(error).strip("'\"")
                changed = message != self.error
                self.error = message
                return changed
            if outcome is None:
                self.error = ""
                return False
            outcomes.append(outcome)
        self.error = ""
        # The goal holds from the latest of its parts.
        self.outcome = max(outcomes, key=lambda o: o.time_ms if o.time_ms is not None else -1)
        self.claims = [self._holds(claim, runtime) for claim in self.step.claims]
        if self.step.key is not None:
            self.key = self._read_key(runtime)
            self.key_read = True
        return True

    def _holds(self, expectation: Expectation, runtime: ClusterRuntime) -> bool:
        try:
            return (
                evaluate(expectation, runtime, self.since_index, since_ms=self.since_ms) is not None
            )
        except (KeyError, ValueError):
            return False

    def _read_key(self, runtime: ClusterRuntime) -> Any:
        assert self.step.key is not None
        try:
            return key_value(self.step.key, runtime, self.since_index, self.since_ms)
        except (KeyError, ValueError) as error:
            return f"unreadable ({error})"

    def status(self) -> dict[str, Any]:
        """JSON-safe state for the page: goal, claims and the engine's answer to the predict."""
        step = self.lesson.steps[self.step_index]
        return {
            "lesson": self.lesson.id,
            "step": self.step_index,
            "done": self.done,
            "done_ms": self.outcome.time_ms if self.outcome else None,
            "since_ms": self.since_ms,
            "waiting": step.goal.waiting,
            "done_text": step.goal.done,
            "claims": [
                {"text": claim.text, "held": held}
                for claim, held in zip(step.claims, self.claims, strict=False)
            ],
            "key": self.key if self.key_read else None,
            "key_read": self.key_read,
            "error": self.error,
            "highlight": highlights(self.step),
        }


def highlights(step: CompiledStep) -> list[str]:
    """What a step's goal, claims and predict key are about, for the stage to highlight:
    "partition:orders-0", "broker:1", "group:billing", "controller:101"."""
    marks: list[str] = []
    expectations = [*step.goal, *step.claims, *([step.key] if step.key is not None else [])]
    for expectation in expectations:
        for source in (expectation.args, expectation.where):
            topic, partition = source.get("topic"), source.get("partition")
            found = []
            if topic is not None and partition is not None:
                found.append(f"partition:{topic}-{partition}")
            for key in ("broker", "group", "controller"):
                if source.get(key) is not None:
                    found.append(f"{key}:{source[key]}")
            marks.extend(mark for mark in found if mark not in marks)
    return marks


def watch_start(lesson: Lesson, step_index: int, runtime: ClusterRuntime) -> GoalWatch:
    return GoalWatch(
        lesson=lesson,
        step_index=step_index,
        since_index=runtime.cluster.event_count,
        since_ms=runtime.now_ms,
    )


# -- the automated walk-through ------------------------------------------------------------


@dataclass
class WalkResult:
    lesson_id: str
    passed: bool
    problems: list[str]
    step_times_ms: list[int | None]
    runtime: ClusterRuntime | None = None

    def line(self) -> str:
        if self.passed:
            times = ", ".join(f"{(t or 0) / 1000:.1f} s" for t in self.step_times_ms)
            return f"PASS {self.lesson_id}: {len(self.step_times_ms)} steps, goals at {times}"
        return f"FAIL {self.lesson_id}: " + "; ".join(self.problems)


def start_runtime(
    compiled: CompiledLesson, *, seed: int | None = None
) -> tuple[ClusterRuntime, list[str]]:
    """A runtime with the lesson's starting stage; refusals of setup commands are problems."""
    spec = compiled.scenario.cluster
    if seed is not None:
        from dataclasses import replace

        spec = replace(spec, seed=seed)
    runtime = ClusterRuntime(spec)
    problems = []
    for i, payload in enumerate(compiled.setup_payloads()):
        result = runtime.apply(payload)
        if not result.ok:
            problems.append(f"setup command {i + 1} ({payload['type']}) refused: {result.message}")
    return runtime, problems


def walk_through(lesson: Lesson) -> WalkResult:
    compiled = compile_lesson(lesson)
    runtime, problems = start_runtime(compiled)
    times: list[int | None] = []
    if problems:
        return WalkResult(lesson.id, False, problems, times, runtime)
    for step, plan in zip(lesson.steps, compiled.steps, strict=True):
        label = f"step {step.index + 1} ({step.title})"
        watch = watch_start(lesson, step.index, runtime)
        # A goal that already holds before the learner does anything checks nothing.
        before = GoalWatch(lesson, step.index, watch.since_index, watch.since_ms)
        before.check(runtime)
        if before.done:
            problems.append(f"{label}: the goal already holds before the step is performed")
        for at_ms, payload in plan.show_me:
            while runtime.now_ms < watch.since_ms + at_ms:
                runtime.advance(min(TICK_MS, watch.since_ms + at_ms - runtime.now_ms))
            result = runtime.apply(payload)
            if not result.ok:
                problems.append(f"{label}: show me {payload['type']} refused: {result.message}")
        deadline = watch.since_ms + step.goal.within_ms
        while True:
            watch.check(runtime)
            if watch.done or runtime.now_ms >= deadline:
                break
            runtime.advance(TICK_MS)
        if not watch.done:
            detail = f" ({watch.error})" if watch.error else ""
            problems.append(
                f"{label}: goal {' and '.join(g.describe() for g in plan.goal)} not reached within "
                f"{step.goal.within_ms} ms{detail}"
            )
            times.append(None)
            break
        times.append(watch.outcome.time_ms if watch.outcome else None)
        for claim, held in zip(step.claims, watch.claims, strict=True):
            if not held:
                problems.append(f"{label}: claim not borne out: {claim.text}")
        if step.predict is not None and watch.key != step.predict.answer:
            problems.append(
                f"{label}: predict answer {step.predict.answer!r} but the cluster says "
                f"{watch.key!r}"
            )
    return WalkResult(lesson.id, not problems, problems, times, runtime)


# -- widgets fed by the live cluster -------------------------------------------------------


def widget_values(runtime: ClusterRuntime, widget: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers a step's widget shows beside the stage, read through the engine's facade.

    `queue_model`: the same records in a delete-on-acknowledge queue: everything the group has
    committed would be gone from the queue, the rest waiting; the log keeps all of it."""
    kind = str(widget.get("kind"))
    values: dict[str, Any] = {"kind": kind}
    if kind != "queue_model":
        return values
    topic, group = str(widget.get("topic")), str(widget.get("group"))
    try:
        partitions = runtime.cluster.describe_topic(topic).partitions
    except Exception:  # the topic is not there (yet)
        partitions = []
    produced = sum(int(p.high_watermark) for p in partitions)
    retained = sum(int(p.high_watermark) - int(p.log_start_offset) for p in partitions)
    try:
        offsets = runtime.cluster.describe_group(group).offsets
    except Exception:
        offsets = {}
    acknowledged = sum(
        int(offset) for tp, offset in offsets.items() if tp.topic == topic and int(offset) > 0
    )
    acknowledged = min(acknowledged, produced)
    values.update(
        topic=topic,
        group=group,
        produced=produced,
        retained=retained,
        queue_waiting=produced - acknowledged,
        queue_deleted=acknowledged,
    )
    return values
