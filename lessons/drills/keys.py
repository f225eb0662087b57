"""Predict drills' answer keys, computed by running the drill's scenario (never written by hand).

A predict drill's `key` says what decides the answer: a probe of the final runtime
(`{probe: last_send_error, args: {...}}`) or one of the scenario's expectations
(`{expect: not-enough}`: whether it held, or its observed value or time). For a choice
question, the key is the choice whose `value` equals what the run gave (or the `otherwise`
choice); for a number question, the number itself. The drill's `moment` names the expectation
whose first holding time is the deciding moment shown on the stage.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lessons.drills.bank import Drill


class KeyError_(RuntimeError):
    """The run gave a value no choice stands for, or the scenario would not load or run."""


@dataclass(frozen=True)
class ComputedKey:
    key: Any  # a choice id, or a number
    observed: Any  # what the run gave (the probe's value, or the expectation's field)
    moment_ms: int | None
    end_ms: int
    run_ms: float  # wall-clock time of the run, for verify_drills' report
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # setup commands or steps the run refused

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "observed": _jsonable(self.observed),
            "moment_ms": self.moment_ms,
            "end_ms": self.end_ms,
            "run_ms": round(self.run_ms, 1),
            "outcomes": self.outcomes,
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return str(value)


def with_change(scenario: Mapping[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    """A copy of `scenario` with the setting at `path` set to `value` (a what-if). `path` may
    also be a list of paths: one setting changed everywhere it appears (every consumer's
    assignment strategy)."""
    changed = copy.deepcopy(dict(scenario))
    paths = path if path and isinstance(path[0], list) else [path]
    for one in paths:
        node: Any = changed
        for step in one[:-1]:
            node = node[step]
        node[one[-1]] = value
    return changed


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple | set | frozenset) and isinstance(
        b, list | tuple | set | frozenset
    ):
        return sorted(map(repr, _jsonable(list(a)))) == sorted(map(repr, _jsonable(list(b))))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return _jsonable(a) == _jsonable(b)


REDUCERS = {
    "len": lambda v: len(v),
    "idle_members": lambda v: sum(1 for parts in v.values() if not parts),
    "busy_members": lambda v: sum(1 for parts in v.values() if parts),
    "max_share": lambda v: max((len(parts) for parts in v.values()), default=0),
    "count_nonzero": lambda v: sum(1 for x in v if x),
    "max": lambda v: max(v),
    "sum": lambda v: sum(v),
    "total_len": lambda v: sum(len(x) for x in v),
}


def reduce_value(name: str | None, value: Any) -> Any:
    """An optional reduction of the key's value (`reduce: idle_members` on an assignment)."""
    if name is None:
        return value
    if value is None:
        raise KeyError_(f"cannot reduce {name!r}: the run gave no value")
    return REDUCERS[name](value)


def choose(drill: Drill, observed: Any) -> str:
    fallback = None
    for choice in drill.choices:
        if choice.otherwise:
            fallback = choice.id
        elif _same(choice.value, observed):
            return choice.id
    if fallback is None:
        raise KeyError_(f"{drill.id}: the run gave {observed!r}, which no choice stands for")
    return fallback


def refused_steps(result: Any) -> list[str]:
    """`steps[2]: <why>` for every setup command or step the runtime turned down."""
    return [f"{s.path}: {s.result.message}" for s in result.steps if not s.result.ok]


def run_build(drill: Drill) -> list[str]:
    """Run a design drill's "build it" scenario; the refused commands (none, when it is sound)."""
    from lessons.scenarios import ScenarioError, load_scenario, run_scenario

    try:
        result = run_scenario(load_scenario(drill.body["build"], source=f"{drill.source}#build"))
    except ScenarioError as error:
        return [str(error)]
    return refused_steps(result)


def compute_key(drill: Drill, *, scenario: Mapping[str, Any] | None = None) -> ComputedKey:
    """Run the drill's scenario (or a what-if variant of it) and read the key off the run."""
    from lessons.scenarios import ScenarioError, load_scenario, read_probe, run_scenario

    raw = dict(scenario if scenario is not None else drill.body["scenario"])
    started = time.perf_counter()
    try:
        loaded = load_scenario(raw, source=f"{drill.source}#{drill.id}")
        result = run_scenario(loaded)
    except ScenarioError as error:
        raise KeyError_(f"{drill.id}: {error}") from None
    spec = drill.body["key"]
    outcomes = {o.id: o for o in result.outcomes}
    if "expect" in spec:
        outcome = outcomes[spec["expect"]]
        observed = getattr(outcome, spec.get("field", "held"))
    elif "events" in spec:  # the matching events of the run (one field of each, or all data)
        where = dict(spec.get("where", {}))
        field_name = spec.get("field")
        since = int(spec.get("since_ms", 0))
        observed = [
            (e.data.get(field_name) if field_name else dict(e.data))
            for e in result.events
            if e.kind == spec["events"]
            and e.time_ms >= since
            and all(e.data.get(k) == v for k, v in where.items())
        ]
        if spec.get("reduce") is None:
            observed = len(observed)
    else:
        args = spec.get("args", {})
        if isinstance(args, list):  # one probe read per args mapping: a list of values
            observed = [read_probe(result.runtime, str(spec["probe"]), dict(a)) for a in args]
        else:
            observed = read_probe(result.runtime, str(spec["probe"]), dict(args))
    observed = reduce_value(spec.get("reduce"), observed)
    run_ms = (time.perf_counter() - started) * 1000
    if drill.question_type == "choice":
        key: Any = choose(drill, observed)
    else:
        if not isinstance(observed, int | float) or isinstance(observed, bool):
            raise KeyError_(f"{drill.id}: a number question's key came out as {observed!r}")
        key = observed
    moment_id = drill.body.get("moment")
    moment = outcomes[moment_id].time_ms if moment_id else None
    return ComputedKey(
        key=key,
        observed=observed,
        moment_ms=moment,
        end_ms=int(result.runtime.now_ms),
        run_ms=run_ms,
        refused=refused_steps(result),
        outcomes=[
            {
                "id": o.id,
                "held": bool(o.held),
                "time_ms": o.time_ms,
                "observed": _jsonable(o.observed),
                "message": o.message,
            }
            for o in result.outcomes
        ],
    )


def matches_expected(drill: Drill, computed: ComputedKey) -> bool:
    expected = drill.body["expected"]
    if drill.question_type == "number":
        tol = drill.tolerance
        from lessons.drills.grading import within

        return within(float(computed.key), float(expected), **tol)
    return bool(computed.key == expected)
