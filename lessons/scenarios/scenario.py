"""Scenario files: a starting cluster, timed steps and expectations, loaded and validated.

The format is described in this package's README. Every mistake is a `ScenarioError` whose
message names the file and the field path (`steps[2].broker_id`) and says what is wrong, so a
person editing a lesson by hand finds it at once. Commands are checked by the command table's
own validation, against the scenario's cluster (its broker and controller counts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lessons.scenarios.commands import COMMANDS, validate
from lessons.scenarios.events import EVENT_KINDS
from lessons.scenarios.fields import Limits
from lessons.scenarios.probes import PROBES
from lessons.scenarios.runtime import ClusterSpec

MAX_BROKERS = 12
MAX_CONTROLLERS = 7
MAX_SCENARIO_MS = 6 * 60 * 60 * 1000
COMPARISONS = ("equals", "not_equals", "at_least", "at_most", "one_of")
TOP_KEYS = ("id", "name", "title", "description", "cluster", "topics", "setup", "steps", "expect")


class ScenarioError(ValueError):
    """A scenario that cannot be loaded: "<file>: <field path>: <what is wrong>"."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Step:
    """One timed step: a command of the table, or an `advance` of the clock."""

    index: int
    at_ms: int  # when it is applied, in ms since the scenario started (as written)
    command: dict[str, Any] | None = None  # a validated payload {"type": ..., ...}
    advance_ms: int | None = None
    path: str = ""


@dataclass(frozen=True)
class Expectation:
    id: str
    path: str = ""
    # an event expectation
    event: str | None = None
    where: Mapping[str, Any] = field(default_factory=dict)
    after_step: int | None = None
    within_ms: int | None = None
    never: bool = False
    # a probe expectation
    probe: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    comparison: str = "equals"
    value: Any = None
    at: str = "ever"  # "ever" (any tick) or "end" (after the last step)

    def describe(self) -> str:
        if self.event is not None:
            where = f" where {dict(self.where)}" if self.where else ""
            window = ""
            if self.after_step is not None:
                window = f" after step {self.after_step}"
            if self.within_ms is not None:
                window += f" within {self.within_ms} ms"
            return f"{'no ' if self.never else ''}{self.event} event{where}{window}"
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        wording = self.comparison.replace("_", " ")
        return f"{self.probe}({args}) {wording} {self.value!r} ({self.at})"


@dataclass(frozen=True)
class Scenario:
    source: str
    cluster: ClusterSpec
    topics: tuple[dict[str, Any], ...]  # create_topic payloads
    setup: tuple[dict[str, Any], ...]  # validated payloads applied at t=0
    steps: tuple[Step, ...]
    expect: tuple[Expectation, ...]
    name: str = ""
    description: str = ""

    @property
    def end_ms(self) -> int:
        """When the last step ends, as written (commands that block may take longer)."""
        end = 0
        for step in self.steps:
            end = max(end, step.at_ms + (step.advance_ms or 0))
        return end


# -- loading ------------------------------------------------------------------------------------


def load_scenario(
    document: str | Path | Mapping[str, Any], *, source: str | None = None, at: str = ""
) -> Scenario:
    """A validated scenario from a YAML file (a path) or from an already parsed mapping (inline
    under a lesson step or a drill: pass the file as `source` and the mapping's place as `at`,
    e.g. "steps[1].scenario")."""
    if isinstance(document, str | Path):
        path = Path(document)
        name = source or str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ScenarioError(name, "", f"cannot read the file ({error.strerror})") from None
        data = parse_yaml(text, source=name)
    else:
        name = source or "<scenario>"
        data = document
    return _Loader(name, at).scenario(data)


def parse_yaml(text: str, *, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(source, line, f"not valid YAML: {error.problem}") from None
    except yaml.YAMLError as error:
        raise ScenarioError(source, "", f"not valid YAML: {error}") from None


def _join(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


class _Loader:
    def __init__(self, source: str, at: str) -> None:
        self.source = source
        self.at = at

    def fail(self, path: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, path, problem)

    # generic shapes

    def mapping(self, value: Any, path: str, keys: Sequence[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if key not in keys:
                raise self.fail(
                    _join(path, str(key)),
                    f"unknown key {key!r}; expected one of: {', '.join(keys)}",
                )
        return value

    def listing(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        return value

    def integer(self, value: Any, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected a whole number, got {value!r}")
        if not low <= value <= high:
            raise self.fail(path, f"{value} is out of range ({low} to {high})")
        return value

    def text(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"expected a non-empty text, got {value!r}")
        return value

    # sections

    def scenario(self, data: Any) -> Scenario:
        root = self.at
        doc = self.mapping(data, root, TOP_KEYS)
        cluster = self.cluster(doc.get("cluster") or {}, _join(root, "cluster"))
        limits = Limits(brokers=cluster.brokers, controllers=cluster.controllers)
        topics = tuple(
            self.topic(item, _join(_join(root, "topics"), i), limits)
            for i, item in enumerate(self.listing(doc.get("topics"), _join(root, "topics")))
        )
        setup = tuple(
            self.command(item, _join(_join(root, "setup"), i), limits, timed=False)[0]
            for i, item in enumerate(self.listing(doc.get("setup"), _join(root, "setup")))
        )
        steps = self.steps(doc.get("steps"), _join(root, "steps"), limits)
        expect = self.expectations(doc.get("expect"), _join(root, "expect"), len(steps))
        return Scenario(
            source=self.source,
            cluster=cluster,
            topics=topics,
            setup=setup,
            steps=steps,
            expect=expect,
            name=str(doc.get("name") or doc.get("title") or doc.get("id") or ""),
            description=str(doc.get("description") or ""),
        )

    def cluster(self, data: Any, path: str) -> ClusterSpec:
        doc = self.mapping(data, path, ("seed", "brokers", "controllers", "config"))
        config = doc.get("config") or {}
        if not isinstance(config, Mapping):
            raise self.fail(_join(path, "config"), f"expected a mapping, got {_kind(config)}")
        return ClusterSpec(
            seed=self.integer(doc.get("seed", 0), _join(path, "seed"), 0, 2**63 - 1),
            brokers=self.integer(doc.get("brokers", 3), _join(path, "brokers"), 1, MAX_BROKERS),
            controllers=self.integer(
                doc.get("controllers", 3), _join(path, "controllers"), 1, MAX_CONTROLLERS
            ),
            config={str(k): v for k, v in config.items()} or None,
        )

    def topic(self, data: Any, path: str, limits: Limits) -> dict[str, Any]:
        doc = self.mapping(data, path, ("name", "partitions", "replication_factor", "config"))
        raw = {
            "name": doc.get("name"),
            "partitions": doc.get("partitions", 1),
            "replication_factor": doc.get("replication_factor", min(3, limits.brokers)),
            "config": doc.get("config"),
        }
        return self.validated("create_topic", raw, path, limits)

    def validated(
        self, name: str, raw: Mapping[str, Any], path: str, limits: Limits
    ) -> dict[str, Any]:
        spec = COMMANDS[name]
        payload, errors = validate(spec, raw, runtime_limits=limits)
        for field_name, messages in errors.items():
            where = path if field_name == "__all__" else _join(path, field_name)
            raise self.fail(where, " ".join(messages))
        return payload

    def command(
        self, data: Any, path: str, limits: Limits, *, timed: bool
    ) -> tuple[dict[str, Any], Mapping[str, Any]]:
        if not isinstance(data, Mapping):
            raise self.fail(path, f"expected a mapping with a command, got {_kind(data)}")
        name = data.get("command")
        if not isinstance(name, str):
            raise self.fail(_join(path, "command"), "name a command of the command table")
        spec = COMMANDS.get(name)
        if spec is None or "scenario" not in spec.roles:
            usable = ", ".join(n for n, s in COMMANDS.items() if "scenario" in s.roles)
            raise self.fail(
                _join(path, "command"),
                f"unknown command {name!r}; a scenario may use: {usable}",
            )
        timing = ("at", "after") if timed else ()
        allowed = ("command", *timing, *spec.field_names)
        self.mapping(data, path, allowed)
        raw = {k: v for k, v in data.items() if k in spec.field_names}
        return self.validated(name, raw, path, limits), data

    def steps(self, data: Any, path: str, limits: Limits) -> tuple[Step, ...]:
        steps: list[Step] = []
        end = 0
        for index, item in enumerate(self.listing(data, path)):
            where = _join(path, index)
            if isinstance(item, Mapping) and "advance" in item:
                self.mapping(item, where, ("advance", "at", "after"))
                payload = None
                advance = self.integer(item["advance"], _join(where, "advance"), 0, MAX_SCENARIO_MS)
            else:
                payload, item = self.command(item, where, limits, timed=True)
                advance = None
            if "at" in item and "after" in item:
                raise self.fail(_join(where, "after"), "give either at or after, not both")
            if "at" in item:
                at = self.integer(item["at"], _join(where, "at"), 0, MAX_SCENARIO_MS)
                if at < end:
                    raise self.fail(
                        _join(where, "at"),
                        f"{at} ms is before the previous step ends ({end} ms); steps run in order",
                    )
            else:
                at = end + self.integer(
                    item.get("after", 0), _join(where, "after"), 0, MAX_SCENARIO_MS
                )
            steps.append(Step(index, at, payload, advance, where))
            end = at + (advance or 0)
            if end > MAX_SCENARIO_MS:
                raise self.fail(where, f"the scenario runs longer than {MAX_SCENARIO_MS} ms")
        return tuple(steps)

    def expectations(self, data: Any, path: str, step_count: int) -> tuple[Expectation, ...]:
        out: list[Expectation] = []
        seen: set[str] = set()
        for index, item in enumerate(self.listing(data, path)):
            where = _join(path, index)
            if not isinstance(item, Mapping):
                raise self.fail(where, f"expected a mapping, got {_kind(item)}")
            ident = self.text(item.get("id", f"expect-{index}"), _join(where, "id"))
            if ident in seen:
                raise self.fail(_join(where, "id"), f"the id {ident!r} is used twice")
            seen.add(ident)
            if ("event" in item) == ("probe" in item):
                raise self.fail(where, "an expectation names either an event or a probe")
            if "event" in item:
                out.append(self.event_expectation(item, where, ident, step_count))
            else:
                out.append(self.probe_expectation(item, where, ident))
        return tuple(out)

    def event_expectation(
        self, item: Mapping[str, Any], where: str, ident: str, step_count: int
    ) -> Expectation:
        self.mapping(item, where, ("id", "event", "where", "after_step", "within_ms", "never"))
        kind = item["event"]
        if kind not in EVENT_KINDS:
            raise self.fail(
                _join(where, "event"),
                f"unknown event kind {kind!r}; the engine's kinds are: {', '.join(EVENT_KINDS)}",
            )
        match = item.get("where") or {}
        if not isinstance(match, Mapping):
            raise self.fail(_join(where, "where"), f"expected a mapping, got {_kind(match)}")
        after_step = None
        if item.get("after_step") is not None:
            if step_count == 0:
                raise self.fail(_join(where, "after_step"), "the scenario has no steps")
            after_step = self.integer(
                item["after_step"], _join(where, "after_step"), 0, step_count - 1
            )
        within = None
        if item.get("within_ms") is not None:
            within = self.integer(item["within_ms"], _join(where, "within_ms"), 0, MAX_SCENARIO_MS)
        never = item.get("never", False)
        if not isinstance(never, bool):
            raise self.fail(_join(where, "never"), f"expected true or false, got {never!r}")
        return Expectation(
            id=ident,
            path=where,
            event=str(kind),
            where=dict(match),
            after_step=after_step,
            within_ms=within,
            never=never,
        )

    def probe_expectation(self, item: Mapping[str, Any], where: str, ident: str) -> Expectation:
        self.mapping(item, where, ("id", "probe", "args", "at", *COMPARISONS))
        name = item["probe"]
        probe = PROBES.get(name) if isinstance(name, str) else None
        if probe is None:
            raise self.fail(
                _join(where, "probe"),
                f"unknown probe {name!r}; the probes are: {', '.join(PROBES)}",
            )
        args = item.get("args") or {}
        if not isinstance(args, Mapping):
            raise self.fail(_join(where, "args"), f"expected a mapping, got {_kind(args)}")
        for key, value in args.items():
            arg = next((a for a in probe.args if a.name == key), None)
            if arg is None:
                known = ", ".join(probe.arg_names()) or "none"
                raise self.fail(
                    _join(_join(where, "args"), str(key)),
                    f"{name} takes no argument {key!r} (its arguments: {known})",
                )
            if arg.type is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise self.fail(
                    _join(_join(where, "args"), key), f"expected a whole number, got {value!r}"
                )
            if arg.type is str and not isinstance(value, str | int):
                raise self.fail(_join(_join(where, "args"), key), f"expected text, got {value!r}")
        for arg in probe.args:
            if arg.required and arg.name not in args:
                raise self.fail(
                    _join(where, "args"), f"{name} needs the argument {arg.name} ({arg.help})"
                )
        given = [c for c in COMPARISONS if c in item]
        if len(given) != 1:
            raise self.fail(
                where, f"a probe expectation has exactly one of: {', '.join(COMPARISONS)}"
            )
        comparison = given[0]
        value = item[comparison]
        if comparison == "one_of" and not isinstance(value, list):
            raise self.fail(_join(where, "one_of"), f"expected a list, got {_kind(value)}")
        if comparison in ("at_least", "at_most") and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise self.fail(_join(where, comparison), f"expected a number, got {value!r}")
        at = item.get("at", "ever")
        if at not in ("ever", "end"):
            raise self.fail(_join(where, "at"), f"expected ever or end, got {at!r}")
        return Expectation(
            id=ident,
            path=where,
            probe=name,
            args={k: (str(v) if arg_type(probe, k) is str else v) for k, v in args.items()},
            comparison=comparison,
            value=value,
            at=str(at),
        )


def arg_type(probe: Any, name: str) -> type:
    return next(a.type for a in probe.args if a.name == name)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a text", bool: "true/false"}.get(
        type(value), f"a {type(value).__name__}"
    )
