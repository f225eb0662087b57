"""The one command table: every command that changes a live cluster, listed once.

Each entry names the command, its fields and their validation, the stage's label, help and
buttons, whether it goes to the command log or drives the host's clock, who may issue it and
the function that applies it to a `ClusterRuntime`. Everything else is derived from this table:
the web forms, the socket's message types and dispatch, the host's logged and clock commands,
the timeline's known commands, the stage's buttons and forms, the scenario loader's steps and
the console. Adding a command is one entry here plus its apply function in `apply.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lessons.scenarios import apply as ap
from lessons.scenarios import console_command
from lessons.scenarios.fields import (
    GROUP_ID,
    Field,
    FieldError,
    Limits,
    broker_id,
    choices,
    clean_fields,
    controller_id,
    node_list,
    topic_name,
)
from lessons.scenarios.limits import DEFAULT_STEP_MS, MAX_PRODUCE_COUNT, SPEEDS, TICK_MS
from lessons.scenarios.results import ApplyResult

if TYPE_CHECKING:
    from lessons.scenarios.runtime import ClusterRuntime

ROLES = frozenset({"learner", "instructor", "scenario"})
EVERYONE = frozenset(ROLES)
PEOPLE = frozenset({"learner", "instructor"})
CLOCK_KINDS = ("pause", "resume", "step", "speed")
MAX_ADVANCE_MS = 6 * 60 * 60 * 1000
ACKS = (("0", "acks=0"), ("1", "acks=1"), ("all", "acks=all"))
STRATEGIES = ("range", "roundrobin", "sticky", "cooperative-sticky")

ApplyFn = Callable[["ClusterRuntime", Mapping[str, Any]], ApplyResult]
CheckFn = Callable[[dict[str, Any], Limits], dict[str, Any]]


@dataclass(frozen=True)
class Button:
    """One submit button of a stage form; `action` presets the form's hidden `action` field."""

    text: str
    danger: bool = False
    action: str = ""


@dataclass(frozen=True)
class NodeAction:
    """A button drawn on a node of the stage's picture, e.g. "kill" on a live broker."""

    node: str  # "broker" or "controller"
    when: str  # "alive" or "stopped"
    text: str  # the button's text on the picture
    label: str  # its accessible name; "{id}" is the node's id


@dataclass(frozen=True)
class CommandSpec:
    name: str
    label: str
    help: str
    fields: tuple[Field, ...] = ()
    apply: ApplyFn | None = None
    logged: bool = True
    clock: str | None = None  # pause / resume / step / speed: host-only, never logged
    roles: frozenset[str] = EVERYONE
    check: CheckFn | None = None  # cross-field rules; errors under "__all__"
    form: str = ""  # the stage form it belongs to (commands of one form share its fields)
    panel: str = ""  # "faults" or "clients": where that form sits on the stage
    buttons: tuple[Button, ...] = ()
    node_actions: tuple[NodeAction, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = self.roles - ROLES
        if unknown:
            raise ValueError(f"command {self.name}: unknown roles {sorted(unknown)}")
        if self.clock is not None and self.logged:
            raise ValueError(f"command {self.name}: a clock command is never logged")
        if self.clock is None and self.apply is None:
            raise ValueError(f"command {self.name}: a command needs an apply function")

    def field(self, name: str) -> Field:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields)


def validate(
    spec: CommandSpec,
    data: Mapping[str, Any],
    *,
    runtime_limits: Limits | None = None,
    defaults: bool = True,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The payload of `spec` for raw `data` ({"type": name, ...cleaned fields}) and the errors
    by field name ("__all__" for rules across fields). Keys of `data` that are not fields are
    ignored; absent fields take their defaults unless `defaults` is False (the stage's forms
    always send every field, so there a missing one is an error). The one validation used by
    forms, sockets, share links, scenarios and the console."""
    limits = runtime_limits or Limits()
    cleaned, errors = clean_fields(spec.fields, data, limits, defaults=defaults)
    if not errors and spec.check is not None:
        try:
            cleaned = spec.check(cleaned, limits)
        except FieldError as error:
            errors["__all__"] = [str(error)]
    return {"type": spec.name, **cleaned}, errors


def errors_text(errors: Mapping[str, list[str]]) -> str:
    """One readable sentence from errors by field: "count: Send at most 100 records ..."."""
    parts = []
    for name, messages in errors.items():
        prefix = "" if name == "__all__" else f"{name}: "
        parts.append(prefix + " ".join(messages))
    return "; ".join(parts)


# -- field helpers ------------------------------------------------------------------------------


def _topic(name: str = "topic", **kw: Any) -> Field:
    kw.setdefault("max_length", 249)
    return Field(name, check=topic_name, **kw)


def _broker(label: str = "Broker", min_value: int | None = None) -> Field:
    return Field(
        "broker_id",
        "int",
        min_value=min_value,
        check=broker_id,
        label=label,
        widget="broker",
        messages={"invalid": "A broker id is a whole number."},
    )


def _group(label: str) -> Field:
    return Field(
        "group",
        regex=GROUP_ID,
        label=label,
        initial="billing",
        messages={"invalid": "A group id uses letters, digits, '.', '_' and '-'."},
    )


def _app_id() -> Field:
    return Field(
        "app_id",
        "int",
        min_value=1,
        label="App number",
        widget="number",
        initial=1,
        messages={"invalid": "An app id is a number."},
    )


def _produce_key(value: Any, limits: Limits) -> str | None:
    return str(value) if value else None


def _produce_rules(cleaned: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """A produce that is not a tombstone logs no `tombstone` key (its payload stays as before)."""
    if not cleaned.get("tombstone"):
        cleaned = {k: v for k, v in cleaned.items() if k != "tombstone"}
    return cleaned


def _step_ms(value: Any, limits: Limits) -> int:
    if value is None:
        return DEFAULT_STEP_MS
    if int(value) % TICK_MS:
        raise FieldError(f"A step is a multiple of {TICK_MS} ms.")
    return int(value)


def _speed(value: Any, limits: Limits) -> float:
    return float(value)


def _replication_factor(value: Any, limits: Limits) -> int:
    factor = int(value)
    if factor > limits.brokers:
        raise FieldError(
            f"A replication factor of {factor} needs {factor} brokers; this cluster has "
            f"{limits.brokers}."
        )
    return factor


def _topic_config_value(payload: dict[str, Any], limits: Limits) -> dict[str, Any]:
    key, value = payload.get("key"), str(payload.get("value", "")).strip()
    if key in ("min.insync.replicas", "retention.ms", "segment.ms"):
        if not re.fullmatch(r"-?\d{1,15}", value):
            raise FieldError(f"{key} is a whole number.")
    elif key == "unclean.leader.election.enable":
        if value not in ("true", "false"):
            raise FieldError(f"{key} is true or false.")
    elif key == "cleanup.policy" and value not in ("delete", "compact", "compact,delete"):
        raise FieldError("cleanup.policy is delete, compact or compact,delete.")
    return {**payload, "value": value}


def _config_map(value: Any, limits: Limits) -> dict[str, Any] | None:
    if value in (None, "", {}):
        return None
    if not isinstance(value, Mapping):
        raise FieldError("A topic config is a mapping of Kafka config keys to values.")
    return {str(k): v for k, v in value.items()}


def _engine_entry(payload: dict[str, Any], limits: Limits) -> dict[str, Any]:
    entry = payload.get("entry")
    if not isinstance(entry, Mapping) or entry.get("op") not in ap.ENGINE_LOG_OPS:
        raise FieldError("An engine log entry names one of the engine's logged operations.")
    return payload


def _wire_request(payload: dict[str, Any], limits: Limits) -> dict[str, Any]:
    from engine.server.remote_requests import APIS

    request = payload.get("request")
    if not isinstance(request, Mapping) or request.get("api") not in APIS:
        raise FieldError("A wire request names one of the Kafka APIs the listener serves.")
    return payload


# -- the table ------------------------------------------------------------------------------------

# One controller id field, shared by the stop and start commands.
CONTROLLER_ID = Field(
    "controller_id",
    "int",
    check=controller_id,
    label="Controller",
    widget="controller",
    messages={"invalid": "A controller id is a whole number (101, 102, ...)."},
)

_COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "produce",
        label="Produce",
        help="Send records with the stage's own producer; the same key goes to the same partition.",
        apply=ap.produce,
        check=_produce_rules,
        fields=(
            _topic(initial="orders", widget="hidden"),
            Field(
                "key",
                required=False,
                max_length=200,
                check=_produce_key,
                label="Key",
                help="Records with the same key go to the same partition. Empty: no key.",
            ),
            Field(
                "value",
                max_length=1000,
                label="Value",
                messages={"required": "Type a value for the record."},
            ),
            Field(
                "count",
                "int",
                min_value=1,
                max_value=MAX_PRODUCE_COUNT,
                default=1,
                label="Count",
                widget="number",
                messages={
                    "min_value": "Send at least 1 record.",
                    "max_value": f"Send at most {MAX_PRODUCE_COUNT} records at a time.",
                    "invalid": "Count must be a whole number.",
                },
            ),
            Field(
                "tombstone",
                "choice",
                required=False,
                choices=(("", "no"), ("yes", "yes")),
                label="Tombstone (null value)",
                help="Send the key with a null value: on a compacted topic the cleaner later "
                "removes every record of that key. The value typed is ignored.",
            ),
        ),
    ),
    CommandSpec(
        "stop_broker",
        label="Kill (crash)",
        help="Kill a broker without a controlled shutdown: its leaderships fail over once "
        "the controller notices the missed heartbeats.",
        apply=ap.stop_broker,
        fields=(_broker(min_value=1),),
        form="broker",
        panel="faults",
        buttons=(Button("Kill (crash)", danger=True),),
        node_actions=(NodeAction("broker", "alive", "kill", "Kill broker {id}"),),
    ),
    CommandSpec(
        "start_broker",
        label="Start",
        help="Start a stopped broker again; it catches up from the leaders and rejoins the ISR.",
        apply=ap.start_broker,
        fields=(_broker(min_value=1),),
        form="broker",
        panel="faults",
        buttons=(Button("Start"),),
        node_actions=(NodeAction("broker", "stopped", "restart", "Restart broker {id}"),),
    ),
    CommandSpec(
        "pause",
        label="Pause",
        help="Stop the cluster clock.",
        clock="pause",
        logged=False,
        roles=PEOPLE,
    ),
    CommandSpec(
        "resume",
        label="Resume",
        help="Run the cluster clock again.",
        clock="resume",
        logged=False,
        roles=PEOPLE,
    ),
    CommandSpec(
        "step",
        label="Step",
        help="Move a paused clock forward by a few milliseconds (logged as an advance).",
        clock="step",
        logged=False,
        roles=PEOPLE,
        fields=(
            Field(
                "ms",
                "int",
                required=False,
                min_value=TICK_MS,
                max_value=60_000,
                initial=DEFAULT_STEP_MS,
                check=_step_ms,
                messages={
                    "min_value": f"A step is at least {TICK_MS} ms.",
                    "max_value": "A step is at most 60000 ms (one minute).",
                    "invalid": "A step is a whole number of milliseconds.",
                },
            ),
        ),
    ),
    CommandSpec(
        "speed",
        label="Speed",
        help="How fast cluster time runs against the wall clock.",
        clock="speed",
        logged=False,
        roles=PEOPLE,
        fields=(
            Field(
                "speed",
                "choice",
                choices=tuple((f"{s:g}", f"{s:g}x") for s in SPEEDS),
                check=_speed,
                messages={
                    "invalid_choice": "Speed must be one of "
                    + ", ".join(f"{s:g}" for s in SPEEDS)
                    + "."
                },
            ),
        ),
    ),
    CommandSpec(
        "stop_controller",
        label="Stop controller",
        help="Stop a KRaft controller; a majority keeps the metadata quorum going.",
        apply=ap.stop_controller,
        fields=(CONTROLLER_ID,),
        form="controller",
        panel="faults",
        buttons=(Button("Stop controller", danger=True),),
        node_actions=(NodeAction("controller", "alive", "stop", "Stop controller {id}"),),
    ),
    CommandSpec(
        "start_controller",
        label="Start controller",
        help="Start a stopped controller again.",
        apply=ap.start_controller,
        fields=(CONTROLLER_ID,),
        form="controller",
        panel="faults",
        buttons=(Button("Start controller"),),
        node_actions=(NodeAction("controller", "stopped", "start", "Start controller {id}"),),
    ),
    CommandSpec(
        "shutdown_broker",
        label="Controlled shutdown",
        help="Shut a broker down cleanly: its leaderships move away before it stops.",
        apply=ap.shutdown_broker,
        fields=(_broker(),),
        form="broker",
        panel="faults",
        buttons=(Button("Controlled shutdown"),),
        node_actions=(NodeAction("broker", "alive", "shut down", "Shut down broker {id}"),),
    ),
    CommandSpec(
        "lose_responses",
        label="Lose responses",
        help="Drop the next responses a broker sends: the requests took effect, the clients "
        "never hear so.",
        apply=ap.lose_responses,
        fields=(
            _broker("Lose responses from broker"),
            Field(
                "count",
                "int",
                min_value=1,
                max_value=100,
                default=1,
                label="How many",
                widget="number",
                messages={
                    "min_value": "Lose at least 1 response.",
                    "max_value": "Lose at most 100 responses.",
                    "invalid": "Count must be a whole number.",
                },
            ),
        ),
        form="lose_responses",
        panel="faults",
        buttons=(Button("Lose responses"),),
    ),
    CommandSpec(
        "partition_network",
        label="Cut network",
        help='Cut nodes off from the rest, comma-separated: "3", "2, 101", "clients".',
        apply=ap.partition_network,
        fields=(
            Field(
                "isolate",
                max_length=200,
                check=node_list,
                many=True,
                label="Cut off nodes",
                help='Nodes cut off from the rest, comma-separated: "3", "2, 101", "clients".',
                placeholder="e.g. 3 or 2, 101 or clients",
                messages={"required": "Name the nodes to cut off, e.g. 3 or 2, 101."},
            ),
        ),
        form="partition_network",
        panel="faults",
        buttons=(Button("Cut network", danger=True),),
    ),
    CommandSpec(
        "heal_network",
        label="Heal network",
        help="Every node reaches every other again.",
        apply=ap.heal_network,
        form="partition_network",
        panel="faults",
        buttons=(Button("Heal network"),),
    ),
    CommandSpec(
        "start_producer",
        label="Start sending at this rate",
        help="A producer app that sends keyed records at a steady rate on the cluster clock.",
        apply=ap.start_producer,
        fields=(
            _topic(initial="orders", widget="hidden"),
            Field(
                "rate",
                "float",
                min_value=0.1,
                max_value=200,
                initial=5,
                label="Records per second",
                widget="number",
                messages={
                    "min_value": "A rate is at least 0.1 records a second.",
                    "max_value": "A rate is at most 200 records a second.",
                    "invalid": "The rate is a number of records a second.",
                },
            ),
            Field(
                "keys",
                "int",
                required=False,
                min_value=1,
                max_value=1000,
                check=lambda value, limits: value or 10,
                widget="none",
            ),
            Field("acks", "choice", choices=ACKS, default="all", label="Acks", widget="select"),
        ),
        form="start_producer",
        panel="clients",
        buttons=(Button("Start sending at this rate"),),
    ),
    CommandSpec(
        "set_acks",
        label="Use these acks",
        help="The stage's own producer is rebuilt with these acks.",
        apply=ap.set_acks,
        fields=(
            Field(
                "acks",
                "choice",
                choices=ACKS,
                initial="all",  # the stage's producer starts with Kafka's default, acks=all
                label="Produce form's acks",
                widget="select",
                messages={"invalid_choice": "acks is 0, 1 or all."},
            ),
        ),
        form="set_acks",
        panel="clients",
        buttons=(Button("Use these acks"),),
    ),
    CommandSpec(
        "add_group_consumer",
        label="Add consumer to group",
        help="A consumer app that joins a group and reads the topic on the cluster clock.",
        apply=ap.add_group_consumer,
        fields=(
            _group("Group"),
            _topic(initial="orders", widget="hidden"),
            Field(
                "commit",
                "choice",
                choices=(("auto", "auto"), ("after", "after processing"), ("before", "before")),
                default="auto",
                label="Commits",
                widget="select",
            ),
            Field(
                "strategy",
                "choice",
                choices=choices(*STRATEGIES),
                default="range",
                label="Assignment strategy",
                widget="select",
            ),
            Field(
                "isolation",
                "choice",
                choices=choices("read_uncommitted", "read_committed"),
                default="read_uncommitted",
                label="Isolation level",
                widget="select",
            ),
        ),
        form="add_group_consumer",
        panel="clients",
        buttons=(Button("Add consumer to group"),),
    ),
    CommandSpec(
        "app_control",
        label="Control an app",
        help="Stop, start, crash or restart a producer or consumer app by its number.",
        apply=ap.app_control,
        fields=(
            _app_id(),
            Field(
                "action",
                "choice",
                choices=choices(*ap.APP_ACTIONS),
                initial="crash",
                widget="hidden",
            ),
        ),
        form="app_control",
        panel="clients",
        buttons=(
            Button("Crash app", danger=True, action="crash"),
            Button("Close / stop app", action="stop"),
            Button("Restart app", action="restart"),
        ),
    ),
    CommandSpec(
        "commit_group",
        label="Commit now",
        help="A consumer app commits its current positions synchronously.",
        apply=ap.commit_group,
        fields=(_app_id(),),
        form="app_control",
        panel="clients",
        buttons=(Button("Commit now"),),
    ),
    CommandSpec(
        "reset_offsets",
        label="Reset offsets",
        help="Move a group's committed offsets on a topic to earliest, latest or an offset.",
        apply=ap.reset_offsets,
        fields=(
            _group("Reset group"),
            _topic(initial="orders", widget="hidden"),
            Field(
                "to",
                regex=r"^(earliest|latest|\d{1,12})$",
                label="to",
                initial="earliest",
                messages={"invalid": "Reset to earliest, latest or an offset (a whole number)."},
            ),
        ),
        form="reset_offsets",
        panel="clients",
        buttons=(Button("Reset offsets"),),
    ),
    CommandSpec(
        "transaction",
        label="Run a transaction",
        help=(
            "A transactional producer app writes records in one transaction: commit, abort, "
            "leave it open, or restart the app with the same transactional.id (fencing the old "
            "instance)."
        ),
        apply=ap.transaction,
        fields=(
            Field(
                "transactional_id",
                regex=r"^[A-Za-z0-9._-]{1,64}$",
                label="transactional.id",
                initial="payments-app",
                messages={"invalid": "A transactional.id uses letters, digits, '.', '_' and '-'."},
            ),
            _topic(initial="orders", widget="hidden"),
            Field(
                "count",
                "int",
                min_value=1,
                max_value=MAX_PRODUCE_COUNT,
                default=3,
                initial=3,
                label="Records",
                widget="number",
            ),
            Field(
                "outcome",
                "choice",
                choices=(
                    ("commit", "commit"),
                    ("abort", "abort"),
                    ("open", "leave open"),
                    ("restart", "restart the app"),
                ),
                default="commit",
                label="Then",
                widget="select",
            ),
        ),
        form="transaction",
        panel="clients",
        buttons=(Button("Run transaction"),),
    ),
    CommandSpec(
        "create_topic",
        label="Create topic",
        help="A new topic with its partitions spread over the brokers.",
        apply=ap.create_topic,
        fields=(
            _topic("name", label="New topic", initial="", placeholder="payments"),
            Field(
                "partitions",
                "int",
                min_value=1,
                max_value=64,
                default=1,
                initial=3,
                label="Partitions",
                widget="number",
            ),
            Field(
                "replication_factor",
                "int",
                min_value=1,
                max_value=9,
                default=1,
                initial=3,
                check=_replication_factor,
                label="Replication factor",
                widget="number",
            ),
            Field("config", "raw", required=False, check=_config_map, widget="none"),
        ),
        form="create_topic",
        panel="clients",
        buttons=(Button("Create topic"),),
    ),
    CommandSpec(
        "add_partitions",
        label="Add partitions",
        help="Grow a topic to a new total of partitions (keys may move to other partitions).",
        apply=ap.add_partitions,
        fields=(
            _topic(initial="orders", widget="hidden"),
            Field(
                "total",
                "int",
                min_value=2,
                max_value=64,
                initial=4,
                label="Total partitions of orders",
                widget="number",
                messages={
                    "min_value": "A topic has at least 1 partition: the new total is 2 or more."
                },
            ),
        ),
        form="add_partitions",
        panel="clients",
        buttons=(Button("Add partitions"),),
    ),
    CommandSpec(
        "alter_topic_config",
        label="Change setting",
        help="Change one of a topic's configs.",
        apply=ap.alter_topic_config,
        fields=(
            _topic(initial="orders", widget="hidden"),
            Field(
                "key",
                "choice",
                choices=choices(*ap.TOPIC_CONFIG_KEYS),
                label="Topic setting",
                widget="select",
            ),
            Field("value", max_length=100, label="Set to", placeholder="2 / true / compact"),
        ),
        check=_topic_config_value,
        form="alter_topic_config",
        panel="clients",
        buttons=(Button("Change setting"),),
    ),
    CommandSpec(
        "add_consumer",
        label="Add a standalone consumer",
        help="A consumer that is assigned every partition of a topic (no group) and polls it "
        "on the cluster clock.",
        apply=ap.add_consumer,
        roles=frozenset({"instructor", "scenario"}),
        fields=(
            Field("name", regex=r"^[A-Za-z0-9._-]{1,64}$", label="Consumer name"),
            _topic(),
            Field("poll_interval_ms", "int", min_value=TICK_MS, max_value=60_000, default=500),
            Field("max_records", "int", min_value=1, max_value=500, default=1),
        ),
    ),
    CommandSpec(
        "advance",
        label="Advance the clock",
        help="Run the cluster clock this many milliseconds (the host logs the time it ran).",
        apply=ap.advance,
        roles=frozenset({"scenario"}),
        fields=(Field("ms", "int", min_value=0, max_value=MAX_ADVANCE_MS),),
    ),
    CommandSpec(
        "console",
        label="Console",
        help="Run one Kafka 4.0 command line (kafka-topics.sh, kafka-consumer-groups.sh, ...) "
        "against the cluster; the answer is what the real tool prints. Lines typed while a "
        "tool runs are its input; ^C stops it, ^D ends its input.",
        apply=console_command.apply_console,
        # Not a stage-socket message (the learner's console posts to /sandbox/<id>/console/).
        roles=frozenset({"instructor", "scenario"}),
        fields=(
            Field(
                "line",
                "raw",
                check=console_command.check_line,
                label="Command line",
                messages={"required": "Type a command line."},
            ),
        ),
    ),
    CommandSpec(
        "engine",
        label="Engine log entry",
        help="One entry of an engine log (a Stress it run opened on the stage); written by "
        "the server only.",
        apply=ap.engine_entry,
        roles=frozenset(),
        fields=(Field("entry", "raw"),),
        check=_engine_entry,
    ),
    CommandSpec(
        "wire_request",
        label="Real client request",
        help="A request a real Kafka client sent to a broker's loopback listener, decoded "
        "(the wire front door); written by the server only.",
        apply=ap.wire_request,
        roles=frozenset(),
        fields=(
            Field("connection", "int", min_value=1),
            _broker(),
            Field("request", "raw"),
        ),
        check=_wire_request,
    ),
)

COMMANDS: dict[str, CommandSpec] = {spec.name: spec for spec in _COMMANDS}


def commands_for(role: str) -> dict[str, CommandSpec]:
    """The commands `role` may issue, in table order."""
    return {name: spec for name, spec in COMMANDS.items() if role in spec.roles}


LOGGED_COMMANDS = frozenset(name for name, spec in COMMANDS.items() if spec.logged)
CLOCK_COMMANDS = frozenset(name for name, spec in COMMANDS.items() if spec.clock is not None)
