"""The drill bank: one YAML file per drill under lessons/content/drills/, loaded and validated.

A drill's file is named after its id (`hot-partition.yaml` holds `id: hot-partition`; lessons
link to drills by that id). Every drill has `id`, `kind`, `topic`, `difficulty`, `covers`
(checklist ids), `title`, `prompt` and `explanation`, optionally `lesson`; the rest depends on
the kind (see lessons/content/drills/README.md). A mistake is a `DrillError` naming the file
and the field (`hot-partition.yaml: question.choices[1].id: missing`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lessons.drills import numbers

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content" / "drills"

KINDS = ("predict", "number", "explain", "design", "order", "pick")
DIFFICULTIES = ("easy", "medium", "hard")
TOPICS: dict[str, str] = {
    "identity": "What Kafka is: a retained log",
    "storage": "Records, partitions, offsets, segments",
    "performance": "Why Kafka is fast",
    "partitioning": "Keys, partitions and ordering",
    "producer": "Producer: acks, idempotence, batching",
    "replication": "Replication, ISR and durability",
    "election": "Leader election and failures",
    "kraft": "Controller and KRaft",
    "consumer-groups": "Consumer groups and scaling",
    "offsets": "Offsets, commits and replay",
    "rebalancing": "Rebalancing and liveness",
    "delivery": "Delivery semantics and exactly-once",
    "retention": "Retention and compaction",
    "partition-count": "Choosing the partition count",
    "monitoring": "Lag, metrics and operations",
    "patterns": "Architecture patterns and ecosystem",
    "when-kafka": "When to reach for Kafka",
    "anti-patterns": "When not to use Kafka",
    "queues": "Kafka vs queues and Redis",
    "streaming": "Kafka vs Kinesis, Pulsar and managed offerings",
    "sizing": "Back-of-envelope sizing",
    "case-studies": "Interview case studies",
}
COMMON = {
    "id",
    "kind",
    "topic",
    "difficulty",
    "covers",
    "title",
    "prompt",
    "explanation",
    "lesson",
}
KIND_FIELDS: dict[str, set[str]] = {
    "predict": {"scenario", "question", "key", "expected", "moment", "what_if"},
    "number": {"params", "answer", "unit", "tolerance", "solution"},
    "explain": {"model_answer", "points"},
    "design": {"model", "partitions_range", "delivery", "points", "build"},
    "order": {"items"},
    "pick": {"variant", "choices", "answer"},
}
DELIVERY = ("at-most-once", "at-least-once", "exactly-once")
PICK_VARIANTS = ("tool", "red-flag", "which")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")
COVER_RE = re.compile(r"^S\d{3}-\d+$")
KEY_VERSION = "1"


class DrillError(ValueError):
    pass


REPO_DIR = Path(__file__).resolve().parent.parent.parent


@cache
def engine_fingerprint() -> str:
    """A hash of the engine's and the scenario runner's Python sources."""
    digest = hashlib.sha256()
    for folder in (REPO_DIR / "engine", REPO_DIR / "lessons" / "scenarios"):
        for path in sorted(folder.rglob("*.py")):
            digest.update(path.relative_to(REPO_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Choice:
    id: str
    text: str
    value: Any = None
    otherwise: bool = False


@dataclass(frozen=True)
class Drill:
    id: str
    kind: str
    topic: str
    difficulty: str
    covers: tuple[str, ...]
    title: str
    prompt: str
    explanation: str
    source: str
    body: Mapping[str, Any] = field(repr=False)
    lesson: str | None = None

    @property
    def content_hash(self) -> str:
        """The answer-key cache key: everything the drill says, the key format, and (for
        engine-backed drills) the engine and runner sources, so changing the engine
        recomputes every key instead of serving a stale one."""
        text = json.dumps(self.body, sort_keys=True, default=str)
        engine = engine_fingerprint() if self.engine_backed else ""
        return hashlib.sha256(f"{KEY_VERSION}\n{engine}\n{text}".encode()).hexdigest()[:32]

    @property
    def engine_backed(self) -> bool:
        return self.kind == "predict"

    @property
    def topic_title(self) -> str:
        return TOPICS[self.topic]

    # -- kind-specific views ------------------------------------------------------------------

    @property
    def choices(self) -> list[Choice]:
        raw = self.body["question"]["choices"] if self.kind == "predict" else self.body["choices"]
        if self.kind == "predict" and self.body["question"]["type"] != "choice":
            return []
        return [
            Choice(
                id=str(c["id"]),
                text=str(c["text"]),
                value=c.get("value"),
                otherwise=bool(c.get("otherwise", False)),
            )
            for c in raw
        ]

    @property
    def question_type(self) -> str:
        """For predict drills: "choice" or "number"."""
        return str(self.body["question"]["type"]) if self.kind == "predict" else ""

    @property
    def tolerance(self) -> dict[str, float]:
        raw = (
            self.body["question"].get("tolerance", {})
            if self.kind == "predict"
            else self.body.get("tolerance", {})
        )
        return {
            "absolute": float(raw.get("absolute", 0)),
            "relative": float(raw.get("relative", 0)),
        }

    @property
    def points(self) -> list[str]:
        return [str(p) for p in self.body.get("points", [])]

    @property
    def items(self) -> list[str]:
        return [str(i) for i in self.body.get("items", [])]

    @property
    def param_specs(self) -> list[numbers.ParamSpec]:
        specs = []
        for name, raw in self.body.get("params", {}).items():
            if "choices" in raw:
                specs.append(numbers.ParamSpec(name, choices=tuple(raw["choices"])))
            else:
                specs.append(numbers.ParamSpec(name, raw["min"], raw["max"], raw.get("step", 1)))
        return specs

    def number_instance(self, seed: int) -> dict[str, Any]:
        """One draw of a number drill: its parameters, prompt, key and worked solution."""
        values = numbers.draw_params(self.param_specs, seed)
        answer = numbers.evaluate_formula(numbers.parse_formula(self.body["answer"]), values)
        filled = dict(values) | {"answer": answer}
        return {
            "seed": seed,
            "params": values,
            "prompt": numbers.fill(self.prompt, values),
            "key": answer,
            "unit": str(self.body.get("unit", "")),
            "solution": numbers.fill(self.body["solution"], filled),
        }


@dataclass(frozen=True)
class Bank:
    drills: tuple[Drill, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {d.id: d for d in self.drills})

    def get(self, drill_id: str) -> Drill | None:
        return self._by_id.get(drill_id)  # type: ignore[attr-defined,no-any-return]

    def __iter__(self) -> Any:
        return iter(self.drills)

    def __len__(self) -> int:
        return len(self.drills)

    def by_topic(self) -> dict[str, list[Drill]]:
        grouped: dict[str, list[Drill]] = {t: [] for t in TOPICS}
        for drill in self.drills:
            grouped[drill.topic].append(drill)
        return {t: ds for t, ds in grouped.items() if ds}

    def for_lesson(self, lesson_id: str) -> list[Drill]:
        """The drills that practise a lesson (their `lesson` field), easiest first."""
        order = {d: i for i, d in enumerate(DIFFICULTIES)}
        linked = [d for d in self.drills if d.lesson == lesson_id]
        return sorted(linked, key=lambda d: (order[d.difficulty], d.id))

    def covered_ids(self) -> set[str]:
        return {c for d in self.drills for c in d.covers}


# -- validation ----------------------------------------------------------------------------------


def _need(raw: Mapping[str, Any], name: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if name not in raw or raw[name] is None:
        raise DrillError(f"{where}.{name}: missing")
    value = raw[name]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
        expected = "/".join(t.__name__ for t in _as_tuple(kind))
        raise DrillError(f"{where}.{name}: expected {expected}, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        raise DrillError(f"{where}.{name}: empty")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _check_choices(raw: Any, where: str, *, with_values: bool) -> None:
    if not isinstance(raw, list) or len(raw) < 2:
        raise DrillError(f"{where}: give at least two choices")
    ids = set()
    for index, choice in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(choice, dict):
            raise DrillError(f"{at}: expected a mapping")
        unknown = set(choice) - {"id", "text", "value", "otherwise"}
        if unknown:
            raise DrillError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")
        cid = _need(choice, "id", at, str)
        _need(choice, "text", at, str)
        if cid in ids:
            raise DrillError(f"{at}.id: {cid!r} is used twice")
        ids.add(cid)
        if with_values and "value" not in choice and not choice.get("otherwise"):
            raise DrillError(f"{at}: a predict choice needs a `value` (or `otherwise: true`)")


def _check_predict(raw: Mapping[str, Any], where: str) -> None:
    _need(raw, "scenario", where, dict)
    question = _need(raw, "question", where, dict)
    qtype = _need(question, "type", f"{where}.question", str)
    if qtype not in ("choice", "number"):
        raise DrillError(f"{where}.question.type: must be choice or number, not {qtype!r}")
    unknown = set(question) - {"type", "choices", "tolerance"}
    if unknown:
        raise DrillError(f"{where}.question: unknown field(s) {', '.join(sorted(unknown))}")
    key = _need(raw, "key", where, dict)
    if sum(name in key for name in ("probe", "expect", "events")) != 1:
        raise DrillError(f"{where}.key: give exactly one of `probe`, `expect` or `events`")
    unknown = set(key) - {
        "probe",
        "args",
        "expect",
        "events",
        "where",
        "since_ms",
        "field",
        "reduce",
    }
    if unknown:
        raise DrillError(f"{where}.key: unknown field(s) {', '.join(sorted(unknown))}")
    expect_ids = {e.get("id") for e in raw["scenario"].get("expect", []) if isinstance(e, dict)}
    if "expect" in key and key["expect"] not in expect_ids:
        raise DrillError(f"{where}.key.expect: no expectation {key['expect']!r} in the scenario")
    from lessons.drills.keys import REDUCERS

    if key.get("reduce") is not None and key["reduce"] not in REDUCERS:
        raise DrillError(f"{where}.key.reduce: one of {', '.join(REDUCERS)}")
    if "events" in key:
        from lessons.scenarios import EVENT_KINDS

        if key["events"] not in EVENT_KINDS:
            raise DrillError(f"{where}.key.events: {key['events']!r} is not an engine event kind")
    elif key.get("field", "held") not in ("held", "observed", "time_ms"):
        raise DrillError(f"{where}.key.field: held, observed or time_ms")
    if "expected" not in raw:
        raise DrillError(f"{where}.expected: missing (the author's answer, checked by the engine)")
    if qtype == "choice":
        _check_choices(question.get("choices"), f"{where}.question.choices", with_values=True)
        ids = [c["id"] for c in question["choices"]]
        if raw["expected"] not in ids:
            raise DrillError(f"{where}.expected: {raw['expected']!r} is not a choice id")
    else:
        if not isinstance(raw["expected"], int | float) or isinstance(raw["expected"], bool):
            raise DrillError(f"{where}.expected: a number question expects a number")
    moment = raw.get("moment")
    if moment is not None and moment not in expect_ids:
        raise DrillError(f"{where}.moment: no expectation {moment!r} in the scenario")
    for index, change in enumerate(raw.get("what_if", []) or []):
        at = f"{where}.what_if[{index}]"
        if not isinstance(change, dict) or set(change) - {"label", "path", "value"}:
            raise DrillError(f"{at}: expected {{label, path, value}}")
        _need(change, "label", at, str)
        path = _need(change, "path", at, list)
        for one in path if path and isinstance(path[0], list) else [path]:
            _resolve_path(raw["scenario"], one, at)


def _resolve_path(scenario: Any, path: list[Any], where: str) -> None:
    """A what-if path must name an existing setting's parent (the setting itself may be new)."""
    node = scenario
    for depth, step in enumerate(path[:-1]):
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            raise DrillError(f"{where}.path[{depth}]: {step!r} does not exist") from None
    if not isinstance(node, dict | list):
        raise DrillError(f"{where}.path: does not lead to a setting")


def _check_number(raw: Mapping[str, Any], where: str) -> None:
    params = _need(raw, "params", where, dict)
    for name, spec in params.items():
        at = f"{where}.params.{name}"
        if not isinstance(spec, dict):
            raise DrillError(f"{at}: expected {{min, max, step}} or {{choices}}")
        if "choices" in spec:
            if not spec["choices"] or not all(isinstance(v, int | float) for v in spec["choices"]):
                raise DrillError(f"{at}.choices: a list of numbers")
        else:
            low = _need(spec, "min", at, (int, float))
            high = _need(spec, "max", at, (int, float))
            step = spec.get("step", 1)
            if high < low or step <= 0:
                raise DrillError(f"{at}: needs min <= max and step > 0")
    formula = _need(raw, "answer", where, str)
    try:
        tree = numbers.parse_formula(formula)
    except numbers.FormulaError as error:
        raise DrillError(f"{where}.answer: {error}") from None
    unknown = numbers.names_in(tree) - set(params)
    if unknown:
        raise DrillError(f"{where}.answer: uses {', '.join(sorted(unknown))}, not parameters")
    _need(raw, "solution", where, str)
    tolerance = _need(raw, "tolerance", where, dict)
    if not set(tolerance) <= {"absolute", "relative"} or not tolerance:
        raise DrillError(f"{where}.tolerance: give absolute and/or relative")
    for text_field in ("prompt", "solution"):
        try:
            numbers.fill(raw[text_field], dict.fromkeys(params, 1) | {"answer": 1})
        except (KeyError, ValueError, IndexError) as error:
            raise DrillError(f"{where}.{text_field}: bad placeholder {error}") from None


def _check_explain(raw: Mapping[str, Any], where: str) -> None:
    _need(raw, "model_answer", where, str)
    points = _need(raw, "points", where, list)
    if len(points) < 2 or not all(isinstance(p, str) and p.strip() for p in points):
        raise DrillError(f"{where}.points: at least two must-hit points, as text")


def _check_design(raw: Mapping[str, Any], where: str) -> None:
    model = _need(raw, "model", where, dict)
    from lessons.drills.grading import DESIGN_FIELDS

    for name in DESIGN_FIELDS:
        _need(model, name, f"{where}.model", (str, int))
    rng = _need(raw, "partitions_range", where, list)
    if len(rng) != 2 or not all(isinstance(v, int) for v in rng) or rng[0] > rng[1]:
        raise DrillError(f"{where}.partitions_range: [low, high] integers")
    if not rng[0] <= int(model["partitions"]) <= rng[1]:
        raise DrillError(f"{where}.model.partitions: outside partitions_range")
    delivery = _need(raw, "delivery", where, str)
    if delivery not in DELIVERY:
        raise DrillError(f"{where}.delivery: one of {', '.join(DELIVERY)}")
    if not isinstance(raw.get("build"), dict):
        raise DrillError(f"{where}.build: a scenario (mapping) that builds the model design")


def _check_order(raw: Mapping[str, Any], where: str) -> None:
    items = _need(raw, "items", where, list)
    if len(items) < 3 or len(set(items)) != len(items):
        raise DrillError(f"{where}.items: at least three distinct items")


def _check_pick(raw: Mapping[str, Any], where: str) -> None:
    variant = _need(raw, "variant", where, str)
    if variant not in PICK_VARIANTS:
        raise DrillError(f"{where}.variant: one of {', '.join(PICK_VARIANTS)}")
    _check_choices(raw.get("choices"), f"{where}.choices", with_values=False)
    answer = _need(raw, "answer", where, str)
    if answer not in [c["id"] for c in raw["choices"]]:
        raise DrillError(f"{where}.answer: {answer!r} is not a choice id")


CHECKS = {
    "predict": _check_predict,
    "number": _check_number,
    "explain": _check_explain,
    "design": _check_design,
    "order": _check_order,
    "pick": _check_pick,
}


def parse_drill(raw: Any, *, source: str) -> Drill:
    where = f"{source}: drill"
    if not isinstance(raw, dict):
        raise DrillError(f"{source}: expected a mapping (one drill per file)")
    drill_id = _need(raw, "id", where, str)
    if not ID_RE.match(drill_id):
        raise DrillError(f"{where}.id: lower-case letters, digits and dashes")
    if source.endswith((".yaml", ".yml")) and source.rsplit(".", 1)[0] != drill_id:
        raise DrillError(f"{where}.id: {drill_id!r} must match the file name ({source})")
    lesson = raw.get("lesson")
    if lesson is not None and not (isinstance(lesson, str) and ID_RE.match(lesson)):
        raise DrillError(f"{where}.lesson: a lesson id (lower-case letters, digits, dashes)")
    kind = _need(raw, "kind", where, str)
    if kind not in KINDS:
        raise DrillError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    unknown = set(raw) - COMMON - KIND_FIELDS[kind]
    if unknown:
        raise DrillError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} for {kind}")
    topic = _need(raw, "topic", where, str)
    if topic not in TOPICS:
        raise DrillError(f"{where}.topic: {topic!r} is not a topic ({', '.join(TOPICS)})")
    difficulty = _need(raw, "difficulty", where, str)
    if difficulty not in DIFFICULTIES:
        raise DrillError(f"{where}.difficulty: one of {', '.join(DIFFICULTIES)}")
    covers = _need(raw, "covers", where, list)
    if not covers:
        raise DrillError(f"{where}.covers: name at least one checklist id")
    for i, cover in enumerate(covers):
        if not isinstance(cover, str) or not COVER_RE.match(cover):
            raise DrillError(f"{where}.covers[{i}]: {cover!r} is not a checklist id (S001-23)")
    for text_field in ("title", "prompt", "explanation"):
        _need(raw, text_field, where, str)
    CHECKS[kind](raw, where)
    return Drill(
        id=drill_id,
        kind=kind,
        topic=topic,
        difficulty=difficulty,
        covers=tuple(covers),
        title=raw["title"].strip(),
        prompt=raw["prompt"].strip(),
        explanation=raw["explanation"].strip(),
        lesson=raw.get("lesson"),
        source=source,
        body=raw,
    )


def load_file(path: Path) -> Drill:
    source = path.name
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DrillError(f"{source}: not valid YAML ({error})") from None
    except OSError as error:
        raise DrillError(f"{source}: cannot be read ({error})") from None
    return parse_drill(document, source=source)


def load_bank(directory: Path | None = None, paths: Iterable[Path] | None = None) -> Bank:
    if paths is None:
        folder = directory or CONTENT_DIR
        paths = [*folder.glob("*.yaml"), *folder.glob("*.yml")]
    drills = [load_file(path) for path in sorted(paths)]
    return Bank(tuple(sorted(drills, key=lambda d: (list(TOPICS).index(d.topic), d.id))))


@cache
def default_bank() -> Bank:
    """The bank the app serves (loaded once per process)."""
    return load_bank()
