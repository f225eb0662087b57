"""The lesson catalogue: lesson and glossary data files, loaded and validated.

Free of Django, like `lessons.scenarios` below it. Every lesson is a YAML file in
`lessons/content/lessons/`; the glossary is `lessons/content/glossary.yaml`. Anything wrong in a
file is a `LessonContentError` whose message names the file and the field path
(`lessons/content/lessons/acks.yaml: steps[2].goal.expect: ...`), so a bad edit stops the app
at startup with a sentence that says what to fix.

What a lesson's scenario, commands and expectations may hold is decided by the scenario
runner's own validation (`lessons.scenarios`), never re-implemented here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

CONTENT_DIR = Path(__file__).resolve().parent / "content"
LESSONS_DIR = CONTENT_DIR / "lessons"
DRILLS_DIR = CONTENT_DIR / "drills"
GLOSSARY_FILE = CONTENT_DIR / "glossary.yaml"

LEVELS = ("fundamentals", "core", "advanced", "senior")
LESSON_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
CHECKLIST_ID = re.compile(r"^S\d{3}-\d+$")
TERM_ID = LESSON_ID
# Cluster time a walk-through waits for a step's goal unless the step says otherwise.
DEFAULT_GOAL_WITHIN_MS = 60_000
MAX_GOAL_WITHIN_MS = 600_000
WIDGETS = ("queue_model", "partitions_calculator", "storage_calculator", "brokers_calculator")


class LessonContentError(ValueError):
    """A data file that does not say what the loader needs; the message names file and field."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        self.problem = message
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {message}")


# -- the loaded shapes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    label: str
    value: Any


@dataclass(frozen=True)
class Predict:
    """Commit to an answer before the cluster shows it. `key` is a probe read or an
    expectation (held -> True) evaluated once the step's goal is reached; `answer` is the
    author's expected value, which the walk-through checks against the engine."""

    question: str
    choices: tuple[Choice, ...]
    answer: Any
    key: Mapping[str, Any]
    explain: str


@dataclass(frozen=True)
class Quiz:
    """A choose-the-tool or reasoning question with no cluster behaviour behind it."""

    question: str
    choices: tuple[str, ...]
    answer: int
    explain: str


@dataclass(frozen=True)
class Claim:
    """A sentence the lesson states about the cluster, checked by an expectation."""

    text: str
    expect: Mapping[str, Any]


@dataclass(frozen=True)
class Goal:
    """`expect` holds one expectation or several that must all hold at the same moment."""

    waiting: str
    done: str
    expect: tuple[Mapping[str, Any], ...]
    within_ms: int


@dataclass(frozen=True)
class Snippet:
    """A real client's code for a step, with `{bootstrap}` where the cluster's
    bootstrap.servers go (the lesson page fills in the lesson cluster's listener addresses)."""

    label: str
    language: str  # "python" (kafka-python) or "shell" (kcat)
    code: str


@dataclass(frozen=True)
class RealClient:
    """A step the learner may do with a real Kafka client over the wire. The step's show_me
    does the same through the engine (the walk-through checks the goal with it), and the test
    suite runs each python snippet with kafka-python against a live listener."""

    text: str
    snippets: tuple[Snippet, ...]


SNIPPET_LANGUAGES = ("python", "shell")
BOOTSTRAP_PLACEHOLDER = "{bootstrap}"


@dataclass(frozen=True)
class Step:
    index: int
    title: str
    text: str
    enabled: tuple[str, ...]
    goal: Goal
    hint: str
    show_me: tuple[Mapping[str, Any], ...]
    predict: Predict | None
    claims: tuple[Claim, ...]
    quiz: Quiz | None
    widget: Mapping[str, Any] | None
    real_client: RealClient | None = None


@dataclass(frozen=True)
class FollowUp:
    question: str
    answer: str


@dataclass(frozen=True)
class Recap:
    talking_points: tuple[str, ...]
    trade_off: str
    red_flag: str
    follow_ups: tuple[FollowUp, ...]
    kafka_today: tuple[str, ...]


@dataclass(frozen=True)
class Lesson:
    id: str
    order: int
    title: str
    level: str
    minutes: int
    summary: str
    interview: str
    covers: tuple[str, ...]
    glossary: tuple[str, ...]
    scenario: Mapping[str, Any]
    steps: tuple[Step, ...]
    recap: Recap
    drills: tuple[str, ...]
    source: str

    @property
    def step_count(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Term:
    id: str
    term: str
    definition: str
    kafka_today: str
    see: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    lessons: tuple[Lesson, ...]
    glossary: Mapping[str, Term]
    by_id: Mapping[str, Lesson] = field(default_factory=dict)

    def lesson(self, lesson_id: str) -> Lesson | None:
        return self.by_id.get(lesson_id)

    def covered_ids(self) -> set[str]:
        return {item for lesson in self.lessons for item in lesson.covers}


# -- field readers ---------------------------------------------------------------------------


class _Reader:
    """Reads one mapping of a file, remembering where it is, so errors name the field."""

    def __init__(self, source: str, data: Any, path: str) -> None:
        self.source = source
        self.path = path
        if not isinstance(data, Mapping):
            raise self.error("", f"expected a mapping, got {_kind(data)}")
        self.data = data
        self.read: set[str] = set()

    def error(self, key: str, message: str) -> LessonContentError:
        return LessonContentError(self.source, _join(self.path, key), message)

    def _get(self, key: str, required: bool) -> Any:
        self.read.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.error(key, "is required")
            return None
        return self.data[key]

    def text(self, key: str, *, required: bool = True, default: str = "") -> str:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected non-empty text, got {_kind(value)}")
        return " ".join(value.split()) if "\n\n" not in value else value.strip()

    def integer(
        self, key: str, *, required: bool = True, default: int = 0, low: int = 0, high: int = 10**9
    ) -> int:
        value = self._get(key, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected a whole number, got {_kind(value)}")
        if not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}, got {value}")
        return value

    def mapping(self, key: str, *, required: bool = True) -> Mapping[str, Any] | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping, got {_kind(value)}")
        return value

    def items(self, key: str, *, required: bool = True, min_items: int = 0) -> list[Any]:
        value = self._get(key, required)
        if value is None:
            value = []
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {_kind(value)}")
        if len(value) < min_items:
            raise self.error(key, f"needs at least {min_items} entries, has {len(value)}")
        return value

    def texts(self, key: str, *, required: bool = True, min_items: int = 0) -> tuple[str, ...]:
        values = self.items(key, required=required, min_items=min_items)
        out = []
        for i, value in enumerate(values):
            if not isinstance(value, str) or not value.strip():
                raise self.error(f"{key}[{i}]", f"expected non-empty text, got {_kind(value)}")
            out.append(" ".join(value.split()))
        return tuple(out)

    def child(self, key: str, *, required: bool = True) -> _Reader | None:
        value = self._get(key, required)
        if value is None:
            return None
        return _Reader(self.source, value, _join(self.path, key))

    def done(self) -> None:
        unknown = sorted(str(k) for k in self.data if k not in self.read)
        if unknown:
            raise self.error(unknown[0], f"unknown field (known: {', '.join(sorted(self.read))})")


def _join(path: str, key: str) -> str:
    if not key:
        return path
    if key.startswith("["):
        return f"{path}{key}"
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        str: "text",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def read_yaml(path: Path, source: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise LessonContentError(source, "", f"cannot be read ({error.strerror})") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise LessonContentError(source, where, f"is not valid YAML ({problem})") from error


# -- lessons ---------------------------------------------------------------------------------


def parse_lesson(
    data: Any,
    *,
    source: str,
    glossary: Mapping[str, Term] | None = None,
    drill_ids: set[str] | None = None,
    check_scenario: bool = True,
) -> Lesson:
    """One lesson from its parsed YAML. `glossary` and `drill_ids`, when given, are what
    links must point at; with `check_scenario` the scenario runner validates the scenario,
    every command and every expectation (`lessons.walkthrough.compile_lesson`)."""
    top = _Reader(source, data, "")
    lesson_id = top.text("id")
    if not LESSON_ID.match(lesson_id):
        raise top.error("id", f"{lesson_id!r} is not a lowercase-dashed id")
    stem = Path(source).stem
    if Path(source).suffix in (".yaml", ".yml") and stem != lesson_id:
        raise top.error("id", f"{lesson_id!r} must match the file name {stem!r}")
    level = top.text("level")
    if level not in LEVELS:
        raise top.error("level", f"must be one of {', '.join(LEVELS)}, got {level!r}")
    covers = top.texts("covers", min_items=1)
    for i, item in enumerate(covers):
        if not CHECKLIST_ID.match(item):
            raise top.error(f"covers[{i}]", f"{item!r} is not a checklist id like S002-31")
    duplicates = sorted({c for c in covers if covers.count(c) > 1})
    if duplicates:
        raise top.error("covers", f"lists {duplicates[0]} twice")
    terms = top.texts("glossary", required=False)
    if glossary is not None:
        for i, term in enumerate(terms):
            if term not in glossary:
                raise top.error(f"glossary[{i}]", f"{term!r} is not a term of the glossary")
    drills = top.texts("drills", required=False)
    if drill_ids is not None:
        for i, drill in enumerate(drills):
            if drill not in drill_ids:
                raise top.error(
                    f"drills[{i}]", f"there is no drill {drill!r} in lessons/content/drills"
                )
    scenario = top.mapping("scenario")
    assert scenario is not None
    steps = tuple(
        _parse_step(source, i, raw) for i, raw in enumerate(top.items("steps", min_items=1))
    )
    recap_reader = top.child("recap")
    assert recap_reader is not None
    lesson = Lesson(
        id=lesson_id,
        order=top.integer("order", low=1, high=999),
        title=top.text("title"),
        level=level,
        minutes=top.integer("minutes", low=1, high=120),
        summary=top.text("summary"),
        interview=top.text("interview"),
        covers=covers,
        glossary=terms,
        scenario=scenario,
        steps=steps,
        recap=_parse_recap(recap_reader),
        drills=drills,
        source=source,
    )
    top.done()
    if check_scenario:
        from lessons import walkthrough

        walkthrough.compile_lesson(lesson)
    return lesson


def _parse_step(source: str, index: int, raw: Any) -> Step:
    r = _Reader(source, raw, f"steps[{index}]")
    enabled = r.texts("enabled", required=False)
    show_me_raw = r.items("show_me", required=False)
    show_me: list[Mapping[str, Any]] = []
    for i, command in enumerate(show_me_raw):
        where = f"{r.path}.show_me[{i}]"
        if not isinstance(command, Mapping):
            raise LessonContentError(source, where, f"expected a command, got {_kind(command)}")
        show_me.append(command)
    for i, command in enumerate(show_me):
        name = str(command.get("command"))
        if name not in enabled:
            raise LessonContentError(
                source,
                f"{r.path}.show_me[{i}].command",
                f"{name!r} is not among the step's enabled commands ({', '.join(enabled)})",
            )
    goal_reader = r.child("goal")
    assert goal_reader is not None
    goal_expect = _expectations(goal_reader, "expect")
    goal = Goal(
        waiting=goal_reader.text("waiting"),
        done=goal_reader.text("done"),
        expect=goal_expect,
        within_ms=goal_reader.integer(
            "within_ms",
            required=False,
            default=DEFAULT_GOAL_WITHIN_MS,
            low=10,
            high=MAX_GOAL_WITHIN_MS,
        ),
    )
    goal_reader.done()
    claims = []
    for i, raw_claim in enumerate(r.items("claims", required=False)):
        c = _Reader(source, raw_claim, f"{r.path}.claims[{i}]")
        expect = c.mapping("expect")
        assert expect is not None
        claim = Claim(text=c.text("text"), expect=expect)
        c.done()
        claims.append(claim)
    predict = None
    predict_reader = r.child("predict", required=False)
    if predict_reader is not None:
        predict = _parse_predict(predict_reader)
    quiz = None
    quiz_reader = r.child("quiz", required=False)
    if quiz_reader is not None:
        quiz = _parse_quiz(quiz_reader)
    widget = r.mapping("widget", required=False)
    if widget is not None and widget.get("kind") not in WIDGETS:
        raise r.error("widget.kind", f"must be one of {', '.join(WIDGETS)}")
    real_client = None
    real_reader = r.child("real_client", required=False)
    if real_reader is not None:
        real_client = _parse_real_client(real_reader)
    step = Step(
        index=index,
        title=r.text("title"),
        text=r.text("text"),
        enabled=enabled,
        goal=goal,
        hint=r.text("hint"),
        show_me=tuple(show_me),
        predict=predict,
        claims=tuple(claims),
        quiz=quiz,
        widget=widget,
        real_client=real_client,
    )
    if not step.show_me and not _goal_needs_no_action(step):
        raise r.error("show_me", "is required: 'show me' must be able to perform the step")
    if real_client is not None and not step.show_me:
        raise r.error(
            "show_me",
            "is required with real_client: it does the step through the engine, so the "
            "walk-through can check the goal a real client reaches",
        )
    r.done()
    return step


def _parse_real_client(r: _Reader) -> RealClient:
    snippets = []
    for i, raw in enumerate(r.items("snippets", min_items=1)):
        sr = _Reader(r.source, raw, f"{r.path}.snippets[{i}]")
        language = sr.text("language")
        if language not in SNIPPET_LANGUAGES:
            raise sr.error("language", f"must be one of {', '.join(SNIPPET_LANGUAGES)}")
        code = sr.data.get("code")
        sr.read.add("code")
        if not isinstance(code, str) or not code.strip():
            raise sr.error("code", f"expected non-empty text, got {_kind(code)}")
        if BOOTSTRAP_PLACEHOLDER not in code:
            raise sr.error(
                "code", f"must contain {BOOTSTRAP_PLACEHOLDER} (where bootstrap.servers go)"
            )
        snippets.append(Snippet(label=sr.text("label"), language=language, code=code.strip()))
        sr.done()
    client = RealClient(text=r.text("text"), snippets=tuple(snippets))
    r.done()
    return client


def _expectations(r: _Reader, key: str) -> tuple[Mapping[str, Any], ...]:
    """One expectation (a mapping) or a non-empty list of them."""
    raw = r.data.get(key)
    if isinstance(raw, list):
        items = r.items(key, min_items=1)
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise r.error(f"{key}[{i}]", f"expected an expectation, got {_kind(item)}")
        return tuple(items)
    value = r.mapping(key)
    assert value is not None
    return (value,)


def _goal_needs_no_action(step: Step) -> bool:
    """A step whose goal the running clock reaches by itself (waiting for a fencing, a
    rebalance, a timeout) needs no show-me commands."""
    return not step.enabled


def _parse_predict(r: _Reader) -> Predict:
    choices = []
    for i, raw in enumerate(r.items("choices", min_items=2)):
        c = _Reader(r.source, raw, f"{r.path}.choices[{i}]")
        c.read.add("value")
        if "value" not in c.data:
            raise c.error("value", "is required")
        choices.append(Choice(label=c.text("label"), value=c.data["value"]))
        c.done()
    r.read.add("answer")
    if "answer" not in r.data:
        raise r.error("answer", "is required")
    answer = r.data["answer"]
    if answer not in [c.value for c in choices]:
        raise r.error("answer", f"{answer!r} is not the value of any choice")
    key = r.mapping("key")
    assert key is not None
    predict = Predict(
        question=r.text("question"),
        choices=tuple(choices),
        answer=answer,
        key=key,
        explain=r.text("explain"),
    )
    r.done()
    return predict


def _parse_quiz(r: _Reader) -> Quiz:
    choices = r.texts("choices", min_items=2)
    answer = r.integer("answer", low=0, high=len(choices) - 1)
    quiz = Quiz(
        question=r.text("question"), choices=choices, answer=answer, explain=r.text("explain")
    )
    r.done()
    return quiz


def _parse_recap(r: _Reader) -> Recap:
    follow_ups = []
    for i, raw in enumerate(r.items("follow_ups", min_items=1)):
        f = _Reader(r.source, raw, f"{r.path}.follow_ups[{i}]")
        follow_ups.append(FollowUp(question=f.text("question"), answer=f.text("answer")))
        f.done()
    recap = Recap(
        talking_points=r.texts("talking_points", min_items=2),
        trade_off=r.text("trade_off"),
        red_flag=r.text("red_flag"),
        follow_ups=tuple(follow_ups),
        kafka_today=r.texts("kafka_today", required=False),
    )
    r.done()
    return recap


# -- glossary --------------------------------------------------------------------------------


def parse_glossary(data: Any, *, source: str) -> dict[str, Term]:
    top = _Reader(source, data, "")
    terms: dict[str, Term] = {}
    for i, raw in enumerate(top.items("terms", min_items=1)):
        r = _Reader(source, raw, f"terms[{i}]")
        term_id = r.text("id")
        if not TERM_ID.match(term_id):
            raise r.error("id", f"{term_id!r} is not a lowercase-dashed id")
        if term_id in terms:
            raise r.error("id", f"{term_id!r} is defined twice")
        terms[term_id] = Term(
            id=term_id,
            term=r.text("term"),
            definition=r.text("definition"),
            kafka_today=r.text("kafka_today", required=False),
            see=r.texts("see", required=False),
        )
        r.done()
    top.done()
    for term in terms.values():
        for j, other in enumerate(term.see):
            if other not in terms:
                index = list(terms).index(term.id)
                raise LessonContentError(
                    source, f"terms[{index}].see[{j}]", f"{other!r} is not a term of the glossary"
                )
    return terms


# -- the whole catalogue ---------------------------------------------------------------------


def drill_ids_present(drills_dir: Path = DRILLS_DIR) -> set[str]:
    """Ids of the drill files present (a drill's id is its file name, as for lessons)."""
    if not drills_dir.is_dir():
        return set()
    return {p.stem for p in drills_dir.glob("*.yaml")} | {p.stem for p in drills_dir.glob("*.yml")}


def drills_by_lesson(drills_dir: Path = DRILLS_DIR) -> dict[str, list[str]]:
    """Drill ids by the lesson each drill names in its own `lesson` field (the drills' loader
    validates the rest of a drill file; an unreadable one is simply not linked here)."""
    links: dict[str, list[str]] = {}
    if not drills_dir.is_dir():
        return links
    for path in sorted(drills_dir.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, Mapping) and isinstance(data.get("lesson"), str):
            links.setdefault(data["lesson"], []).append(path.stem)
    return links


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(CONTENT_DIR.parent.parent))
    except ValueError:
        return str(path)


def load_catalogue(
    lessons_dir: Path = LESSONS_DIR,
    glossary_file: Path = GLOSSARY_FILE,
    drills_dir: Path = DRILLS_DIR,
    *,
    check_scenarios: bool = True,
) -> Catalogue:
    """Every lesson and the glossary, validated; raises `LessonContentError` on the first
    problem, naming its file and field."""
    glossary = parse_glossary(
        read_yaml(glossary_file, _relative(glossary_file)), source=_relative(glossary_file)
    )
    drill_ids = drill_ids_present(drills_dir)
    lessons: list[Lesson] = []
    files = sorted(lessons_dir.glob("*.yaml"))
    if not files:
        raise LessonContentError(_relative(lessons_dir), "", "holds no lesson files (*.yaml)")
    for path in files:
        source = _relative(path)
        lessons.append(
            parse_lesson(
                read_yaml(path, source),
                source=source,
                glossary=glossary,
                drill_ids=drill_ids,
                check_scenario=check_scenarios,
            )
        )
    _check_unique(lessons)
    # A lesson links its own `drills` and every drill that names the lesson.
    linked = drills_by_lesson(drills_dir)
    lessons = [
        replace(lesson, drills=tuple(dict.fromkeys([*lesson.drills, *linked.get(lesson.id, [])])))
        for lesson in lessons
    ]
    ordered = tuple(sorted(lessons, key=lambda lesson: (lesson.order, lesson.id)))
    return Catalogue(lessons=ordered, glossary=glossary, by_id={x.id: x for x in ordered})


def _check_unique(lessons: Sequence[Lesson]) -> None:
    seen: dict[int, Lesson] = {}
    for lesson in lessons:
        other = seen.get(lesson.order)
        if other is not None:
            raise LessonContentError(
                lesson.source, "order", f"{lesson.order} is also the order of {other.source}"
            )
        seen[lesson.order] = lesson


_CACHE: dict[str, Catalogue] = {}


def get_catalogue() -> Catalogue:
    """The default catalogue, loaded once per process (at startup by the app config)."""
    if "default" not in _CACHE:
        _CACHE["default"] = load_catalogue()
    return _CACHE["default"]
