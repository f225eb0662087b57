"""kafka-reassign-partitions.sh: ReassignPartitionsCommand
(tools/src/main/java/org/apache/kafka/tools/reassign/ReassignPartitionsCommand.java).

`--generate`, `--execute`, `--verify`, `--cancel` and `--list` run on the engine's admin client
(AlterPartitionReassignments, ListPartitionReassignments, DescribeCluster and the topics'
replica lists). JSON files are the console session's own files: write one with
`echo '{"version":1,"partitions":[...]}' > move.json` or paste it after `cat > move.json`, then
pass `--reassignment-json-file move.json`. The simulation models no replication quotas, so
`--throttle` and `--replica-alter-log-dirs-throttle` are refused, and it has one log directory
per broker, so `log_dirs` entries other than "any" are refused too.
"""

from __future__ import annotations

import json
from random import Random
from typing import Any

from engine import TopicPartition
from lessons.console.admin import AdminError
from lessons.console.context import KAFKA_VERSION, ToolContext
from lessons.console.jopt import OPTIONAL, REQUIRED, Opt, OptionError, OptionParser, OptionSet
from lessons.console.output import ToolExit

HELP_TEXT = "This tool helps to move topic partitions between replicas."
ACTIONS = ("generate", "execute", "verify", "cancel", "list")
ADMIN_FAILED = "org.apache.kafka.server.common.AdminCommandFailedException"
ADMIN_OPERATION = "org.apache.kafka.common.errors.AdminOperationException"
CANNOT_EXECUTE_BECAUSE_OF_EXISTING_MESSAGE = (
    "Cannot execute because there is an existing partition assignment.  Use --additional to "
    "override this and create a new partition assignment in addition to the existing one. The "
    "--additional flag can also be used to change the throttle by resubmitting the current "
    "reassignment."
)

PARSER = OptionParser(
    [
        Opt(
            "verify",
            "Verify if the reassignment completed as specified by the --reassignment-json-file "
            "option. If there is a throttle engaged for the replicas specified, and the "
            "rebalance has completed, the throttle will be removed",
        ),
        Opt(
            "generate",
            "Generate a candidate partition reassignment configuration. Note that this only "
            "generates a candidate assignment, it does not execute it.",
        ),
        Opt(
            "execute",
            "Kick off the reassignment as specified by the --reassignment-json-file option.",
        ),
        Opt("cancel", "Cancel an active reassignment."),
        Opt("list", "List all active partition reassignments."),
        Opt(
            "bootstrap-server",
            "the server(s) to use for bootstrapping.",
            OPTIONAL,
            described_as="Server(s) to use for bootstrapping",
        ),
        Opt(
            "command-config",
            "Property file containing configs to be passed to Admin Client.",
            REQUIRED,
            described_as="Admin client property file",
        ),
        Opt(
            "reassignment-json-file",
            "The JSON file with the partition reassignment configurationThe format to use is - \n"
            '{"partitions":\n\t[{"topic": "foo",\n\t  "partition": 1,\n\t  "replicas": '
            '[1,2,3],\n\t  "log_dirs": ["dir1","dir2","dir3"] }],\n"version":1\n}\nNote that '
            '"log_dirs" is optional. When it is specified, its length must equal the length of '
            'the replicas list. The value in this list can be either "any" or the absolution '
            "path of the log directory on the broker. If absolute log directory path is "
            "specified, the replica will be moved to the specified log directory on the broker.",
            REQUIRED,
            described_as="manual assignment json file path",
        ),
        Opt(
            "topics-to-move-json-file",
            "Generate a reassignment configuration to move the partitions of the specified "
            "topics to the list of brokers specified by the --broker-list option. The format to "
            'use is - \n{"topics":\n\t[{"topic": "foo"},{"topic": "foo1"}],\n"version":1\n}',
            REQUIRED,
            described_as="topics to reassign json file path",
        ),
        Opt(
            "broker-list",
            "The list of brokers to which the partitions need to be reassigned in the form "
            '"0,1,2". This is required if --topics-to-move-json-file is used to generate '
            "reassignment configuration",
            REQUIRED,
            described_as="brokerlist",
        ),
        Opt(
            "bootstrap-controller",
            "The controller to use for reassignment. By default, the tool will get the quorum "
            "controller. This option supports the actions --cancel and --list.",
            OPTIONAL,
            described_as="bootstrap controller to connect to",
        ),
        Opt("disable-rack-aware", "Disable rack aware replica assignment"),
        Opt(
            "throttle",
            "The movement of partitions between brokers will be throttled to this value "
            "(bytes/sec). This option can be included with --execute when a reassignment is "
            "started, and it can be altered by resubmitting the current reassignment along with "
            "the --additional flag. The throttle rate should be at least 1 KB/s.",
            REQUIRED,
            "Long",
            "throttle",
            default="-1",
        ),
        Opt(
            "replica-alter-log-dirs-throttle",
            "The movement of replicas between log directories on the same broker will be "
            "throttled to this value (bytes/sec). This option can be included with --execute "
            "when a reassignment is started, and it can be altered by resubmitting the current "
            "reassignment along with the --additional flag. The throttle rate should be at "
            "least 1 KB/s.",
            REQUIRED,
            "Long",
            "replicaAlterLogDirsThrottle",
            default="-1",
        ),
        Opt(
            "timeout",
            "The maximum time in ms to wait for log directory replica assignment to begin.",
            REQUIRED,
            "Long",
            "timeout",
            default="10000",
        ),
        Opt(
            "additional",
            "Execute this reassignment in addition to any other ongoing ones. This option can "
            "also be used to change the throttle of an ongoing reassignment.",
        ),
        Opt("preserve-throttles", "Do not modify broker or topic throttles."),
    ]
)

REQUIRED_ARGS = {
    "verify": ("reassignment-json-file",),
    "generate": ("topics-to-move-json-file", "broker-list"),
    "execute": ("reassignment-json-file",),
    "cancel": ("reassignment-json-file",),
    "list": (),
}


def _permitted(bootstrap_server: bool) -> dict[str, tuple[str, ...]]:
    bootstrap = "bootstrap-server" if bootstrap_server else "bootstrap-controller"
    return {
        "verify": ("bootstrap-server", "command-config", "preserve-throttles"),
        "generate": ("bootstrap-server", "broker-list", "command-config", "disable-rack-aware"),
        "execute": (
            "additional",
            "bootstrap-server",
            "command-config",
            "throttle",
            "replica-alter-log-dirs-throttle",
            "timeout",
        ),
        "cancel": (bootstrap, "command-config", "preserve-throttles", "timeout"),
        "list": (bootstrap, "command-config"),
    }


class Terse(Exception):
    """Kafka's TerseException: main prints only its message (on stdout), exit 1."""


class Failed(Exception):
    """Any other Throwable main catches: `Error: <message>` and its stack trace on stdout."""

    def __init__(self, message: str, java: str = ADMIN_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.java = java


def tp_text(tp: TopicPartition) -> str:
    return f"{tp.topic}-{tp.partition}"


def _tp_key(tp: TopicPartition) -> tuple[str, int]:
    return tp.topic, tp.partition


def _java_list(values: list[int]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def run(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    try:
        opts = PARSER.parse(args)
    except OptionError as exc:
        out.usage_and_exit(PARSER, exc.message)
        return
    if not args or opts.has("help"):
        out.usage_and_exit(PARSER, HELP_TEXT)
    if opts.has("version"):
        out.println(KAFKA_VERSION)
        raise ToolExit(0)
    given = [a for a in ACTIONS if opts.has(a)]
    if len(given) != 1:
        out.usage_and_exit(
            PARSER,
            "Command must include exactly one action: " + ", ".join(f"--{a}" for a in ACTIONS),
        )
    action = given[0]
    if opts.has("bootstrap-server") and opts.has("bootstrap-controller"):
        out.usage_and_exit(
            PARSER, "Please don't specify both --bootstrap-server and --bootstrap-controller"
        )
    if not opts.has("bootstrap-server") and not opts.has("bootstrap-controller"):
        out.usage_and_exit(
            PARSER, "Please specify either --bootstrap-server or --bootstrap-controller"
        )
    missing = [o for o in REQUIRED_ARGS[action] if not opts.has(o)]
    if missing:
        out.usage_and_exit(PARSER, f'Missing required argument "[{missing[0]}]"')
    allowed = {action, *REQUIRED_ARGS[action], *_permitted(opts.has("bootstrap-server"))[action]}
    for name in opts.order:
        if name not in allowed:
            out.usage_and_exit(PARSER, f'Option "[{name}]" can\'t be used with action "[{action}]"')
    try:
        if opts.has("command-config"):
            path = opts.value("command-config") or ""
            raise Failed(path, "java.nio.file.NoSuchFileException")
        _run_action(ctx, opts, action)
    except Terse as exc:
        out.println(str(exc))
        raise ToolExit(1) from None
    except Failed as exc:
        out.println(f"Error: {exc.message}")
        out.println(f"{exc.java}: {exc.message}")
        raise ToolExit(1) from None
    except AdminError as exc:
        # A failed admin future: ExecutionException's message is the cause's toString.
        out.println(f"Error: {exc}")
        out.println(f"java.util.concurrent.ExecutionException: {exc}")
        raise ToolExit(1) from None


def _read(ctx: ToolContext, opts: OptionSet, option: str) -> str:
    """Utils.readFileAsString on one of the session's files."""
    path = opts.value(option) or ""
    text = ctx.session.read_file(path)
    if text is None:
        raise Failed(path, "java.nio.file.NoSuchFileException")
    return text


def _run_action(ctx: ToolContext, opts: OptionSet, action: str) -> None:
    if action == "verify":
        _verify(ctx, _read(ctx, opts, "reassignment-json-file"), opts.has("preserve-throttles"))
    elif action == "generate":
        _generate(
            ctx, _read(ctx, opts, "topics-to-move-json-file"), opts.value("broker-list") or ""
        )
    elif action == "execute":
        for option in ("throttle", "replica-alter-log-dirs-throttle"):
            opts.int_value(option)  # a bad number is refused as joptsimple refuses it
            if int(opts.value(option) or "-1") >= 0:
                raise Terse(
                    f"--{option}: this simulator does not model replication quotas, so a "
                    "reassignment cannot be throttled here; run it without the throttle."
                )
        _execute(ctx, _read(ctx, opts, "reassignment-json-file"), opts.has("additional"))
    elif action == "cancel":
        _cancel(ctx, _read(ctx, opts, "reassignment-json-file"), opts.has("preserve-throttles"))
    else:
        ctx.out.println(_current_reassignments_text(ctx))


# --- JSON files -------------------------------------------------------------------------------


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Failed(
            f"com.fasterxml.jackson.core.JsonParseException: {exc}", ADMIN_OPERATION
        ) from None


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Failed(f"Expected JSON object, received {json.dumps(value)}", "JsonMappingException")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Failed(f"Expected `Int` value, received {json.dumps(value)}", "JsonMappingException")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise Failed(
            f"Expected `String` value, received {json.dumps(value)}", "JsonMappingException"
        )
    return value


def _field(obj: dict[str, Any], name: str) -> Any:
    if name not in obj:
        raise Failed(f"No such field exists: `{name}`", "JsonMappingException")
    return obj[name]


def parse_reassignment(text: str) -> list[tuple[TopicPartition, list[int]]]:
    """parsePartitionReassignmentData (version 1); log_dirs other than "any" are refused."""
    data = _object(_parse_json(text), "reassignment")
    version = _int(data["version"], "version") if "version" in data else 1
    if version != 1:
        raise Failed(f"Not supported version field value {version}", ADMIN_OPERATION)
    parts: list[tuple[TopicPartition, list[int]]] = []
    entries = data.get("partitions")
    if entries is None:
        return parts
    if not isinstance(entries, list):
        raise Failed(f"Expected JSON array, received {json.dumps(entries)}", "JsonMappingException")
    for entry in entries:
        fields = _object(entry, "partition")
        topic = _str(_field(fields, "topic"))
        partition = _int(_field(fields, "partition"), "partition")
        raw_replicas = _field(fields, "replicas")
        if not isinstance(raw_replicas, list):
            raise Failed(
                f"Expected JSON array, received {json.dumps(raw_replicas)}", "JsonMappingException"
            )
        replicas = [_int(r, "replica") for r in raw_replicas]
        dirs = fields.get("log_dirs")
        log_dirs = ["any"] * len(replicas) if dirs is None else [_str(d) for d in dirs]
        tp = TopicPartition(topic, partition)
        if len(log_dirs) != len(replicas):
            raise Failed(
                f"Size of replicas list {_java_list(replicas)} is different from size of log "
                f"dirs list {_java_list(log_dirs)} for partition {tp_text(tp)}"  # type: ignore[arg-type]
            )
        if any(d != "any" for d in log_dirs):
            raise Terse(
                f"{tp_text(tp)}: this simulator has one log directory per broker, so replicas "
                'cannot move between log directories; use "any" in log_dirs.'
            )
        parts.append((tp, replicas))
    return parts


def parse_topics(text: str) -> list[str]:
    """parseTopicsData (version 1)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise Failed("The input string is not a valid JSON", ADMIN_OPERATION) from None
    fields = _object(data, "topics")
    version = _int(fields["version"], "version") if "version" in fields else 1
    if version != 1:
        raise Failed(f"Not supported version field value {version}", ADMIN_OPERATION)
    entries = fields.get("topics")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise Failed(f"Expected JSON array, received {json.dumps(entries)}", "JsonMappingException")
    return [_str(_field(_object(e, "topic"), "topic")) for e in entries]


def reassignment_json(assignment: dict[TopicPartition, list[int]]) -> str:
    """formatAsReassignmentJson: Jackson's compact form, partitions sorted."""
    partitions = [
        {
            "topic": tp.topic,
            "partition": tp.partition,
            "replicas": assignment[tp],
            "log_dirs": ["any"] * len(assignment[tp]),
        }
        for tp in sorted(assignment, key=_tp_key)
    ]
    return json.dumps({"version": 1, "partitions": partitions}, separators=(",", ":"))


# --- the actions ------------------------------------------------------------------------------


def _replica_assignment(ctx: ToolContext, topics: list[str]) -> dict[TopicPartition, list[int]]:
    found: dict[TopicPartition, list[int]] = {}
    for name in topics:
        try:
            replicas = ctx.admin.topic_replicas(name)
        except AdminError as exc:
            if exc.simple_name != "UnknownTopicOrPartitionException":
                raise
            raise AdminError(
                "UnknownTopicOrPartitionException", f"Topic {name} not found."
            ) from None
        for partition, brokers in sorted(replicas.items()):
            found[TopicPartition(name, partition)] = brokers
    return found


def _generate(ctx: ToolContext, topics_json: str, broker_list: str) -> None:
    try:
        brokers = [int(b) for b in broker_list.split(",")]
    except ValueError:
        bad = next(b for b in broker_list.split(",") if not b.strip().lstrip("-").isdigit())
        raise Failed(f'For input string: "{bad}"', "java.lang.NumberFormatException") from None
    duplicates = sorted({b for b in brokers if brokers.count(b) > 1})
    if duplicates:
        raise Failed(f"Broker list contains duplicate entries: {_java_list(duplicates)}")
    topics = parse_topics(topics_json)
    duplicate_topics = sorted({t for t in topics if topics.count(t) > 1})
    if duplicate_topics:
        raise Failed(
            "List of topics to reassign contains duplicate entries: "
            + "["
            + ", ".join(duplicate_topics)
            + "]"
        )
    current = _replica_assignment(ctx, topics)
    nodes = sorted(b for b in ctx.admin.cluster_node_ids() if b in set(brokers))
    proposed: dict[TopicPartition, list[int]] = {}
    rng = Random(f"reassign-{ctx.admin.seed}-{ctx.session.runs}")
    for topic in dict.fromkeys(tp.topic for tp in current):
        parts = sorted((tp for tp in current if tp.topic == topic), key=_tp_key)
        factor = len(current[parts[0]])
        for partition, replicas in assign_replicas(nodes, len(parts), factor, rng).items():
            proposed[TopicPartition(topic, partition)] = replicas
    ctx.out.println("Current partition replica assignment")
    ctx.out.println(reassignment_json(current))
    ctx.out.println()
    ctx.out.println("Proposed partition reassignment configuration")
    ctx.out.println(reassignment_json(proposed))


def assign_replicas(
    brokers: list[int], partitions: int, factor: int, rng: Random
) -> dict[int, list[int]]:
    """AdminUtils.assignReplicasToBrokers (rack unaware), its random start drawn from `rng`."""
    if partitions <= 0:
        raise Failed(
            "Number of partitions must be larger than 0.",
            "org.apache.kafka.common.errors.InvalidPartitionsException",
        )
    if factor <= 0:
        raise Failed(
            "Replication factor must be larger than 0.",
            "org.apache.kafka.common.errors.InvalidReplicationFactorException",
        )
    if factor > len(brokers):
        raise Failed(
            f"Replication factor: {factor} larger than available brokers: {len(brokers)}.",
            "org.apache.kafka.common.errors.InvalidReplicationFactorException",
        )
    count = len(brokers)
    start = rng.randrange(count)
    shift = rng.randrange(count)
    out: dict[int, list[int]] = {}
    for partition in range(partitions):
        if partition > 0 and partition % count == 0:
            shift += 1
        first = (partition + start) % count
        replicas = [brokers[first]]
        for j in range(factor - 1):
            step = 1 + (shift + j) % (count - 1)
            replicas.append(brokers[(first + step) % count])
        out[partition] = replicas
    return out


def _validated_execute_parts(text: str) -> dict[TopicPartition, list[int]]:
    """parseExecuteAssignmentArgs."""
    parts = parse_reassignment(text)
    if not parts:
        raise Failed("Partition reassignment list cannot be empty")
    if any(not replicas for _, replicas in parts):
        raise Failed("Partition replica list cannot be empty")
    seen = [tp for tp, _ in parts]
    duplicated = sorted({tp for tp in seen if seen.count(tp) > 1}, key=_tp_key)
    if duplicated:
        raise Failed(
            "Partition reassignment contains duplicate topic partitions: "
            + ",".join(tp_text(tp) for tp in duplicated)
        )
    problems = []
    for tp, replicas in parts:
        repeated = sorted({r for r in replicas if replicas.count(r) > 1})
        if repeated:
            problems.append(
                f"{tp_text(tp)} contains multiple entries for {','.join(map(str, repeated))}"
            )
    if problems:
        raise Failed(
            "Partition replica lists may not contain duplicate entries: " + ". ".join(problems)
        )
    return dict(parts)


def _execute(ctx: ToolContext, text: str, additional: bool) -> None:
    proposed = _validated_execute_parts(text)
    admin = ctx.admin
    if not additional and admin.list_partition_reassignments():
        raise Terse(CANNOT_EXECUTE_BECAUSE_OF_EXISTING_MESSAGE)
    nodes = set(admin.cluster_node_ids())
    for replicas in proposed.values():
        for broker in replicas:
            if broker not in nodes:
                raise Failed(f"Unknown broker id {broker}")
    current = _replica_assignment(ctx, sorted({tp.topic for tp in proposed}))
    missing = [tp for tp in proposed if tp not in current]
    if missing:
        raise AdminError(
            "UnknownTopicOrPartitionException",
            "Unable to find partition: " + ", ".join(tp_text(tp) for tp in missing),
        )
    shown = {tp: replicas for tp, replicas in current.items() if tp in proposed}
    ctx.out.println("Current partition replica assignment")
    ctx.out.println()
    ctx.out.println(reassignment_json(shown))
    ctx.out.println()
    ctx.out.println("Save this to use as the --reassignment-json-file option during rollback")
    errors = admin.alter_partition_reassignments(proposed)
    if errors:
        lines = [f"{tp_text(tp)}: {errors[tp].message}" for tp in sorted(errors, key=_tp_key)]
        raise Terse("Error reassigning partition(s):\n" + "\n".join(lines))
    ctx.out.println(
        f"Successfully started partition reassignment{'' if len(proposed) == 1 else 's'} for "
        + ",".join(tp_text(tp) for tp in sorted(proposed, key=_tp_key))
    )


def _verify(ctx: ToolContext, text: str, preserve_throttles: bool) -> None:
    targets = parse_reassignment(text)
    admin = ctx.admin
    ongoing = admin.list_partition_reassignments()
    lines = ["Status of partition reassignment:"]
    states: dict[TopicPartition, str] = {}
    for tp, target in targets:
        if tp in ongoing:
            states[tp] = f"Reassignment of partition {tp_text(tp)} is still in progress."
            continue
        try:
            replicas = _replica_assignment(ctx, [tp.topic]).get(tp, [])
        except AdminError:
            replicas = []
        if replicas == target:
            states[tp] = f"Reassignment of partition {tp_text(tp)} is completed."
        else:
            states[tp] = (
                f"There is no active reassignment of partition {tp_text(tp)}, but replica set "
                f"is {','.join(map(str, replicas))} rather than {','.join(map(str, target))}."
            )
    lines += [states[tp] for tp in sorted(states, key=_tp_key)]
    ctx.out.println("\n".join(lines))
    ctx.out.println("")  # replicaMoveStatesToString: no log directory moves
    if not ongoing and not preserve_throttles:
        _clear_all_throttles(ctx, targets)


def _clear_all_throttles(ctx: ToolContext, targets: list[tuple[TopicPartition, list[int]]]) -> None:
    """clearAllThrottles: the simulation sets no throttles, so the deletes change nothing, but
    the tool prints what it clears (a Java HashSet's order: small ints ascending)."""
    brokers = set(ctx.admin.cluster_node_ids())
    for _, replicas in targets:
        brokers |= set(replicas)
    ids = ",".join(str(b) for b in java_hash_order(sorted(brokers)))
    ctx.out.println(
        f"Clearing broker-level throttles on broker{'' if len(brokers) == 1 else 's'} {ids}"
    )
    topics = list(dict.fromkeys(tp.topic for tp, _ in targets))
    ctx.out.println(
        f"Clearing topic-level throttles on topic{'' if len(topics) == 1 else 's'} "
        + ",".join(java_hash_order(topics))
    )


def _cancel(ctx: ToolContext, text: str, preserve_throttles: bool) -> None:
    targets = parse_reassignment(text)
    admin = ctx.admin
    ongoing = admin.list_partition_reassignments([tp for tp, _ in targets])
    # The tool's own filter (ReassignPartitionsCommand.cancelAssignment).
    cancelling = sorted(
        (tp for tp, r in ongoing.items() if not r.adding_replicas or r.removing_replicas),
        key=_tp_key,
    )
    if cancelling:
        errors = admin.alter_partition_reassignments({tp: None for tp in cancelling})
        if errors:
            lines = [f"{tp_text(tp)}: {errors[tp].message}" for tp in sorted(errors, key=_tp_key)]
            raise Terse(
                f"Error cancelling partition reassignment{'' if len(errors) == 1 else 's'} for:\n"
                + "\n".join(lines)
            )
        ctx.out.println(
            f"Successfully cancelled partition reassignment{'' if len(cancelling) == 1 else 's'}"
            " for: " + ",".join(tp_text(tp) for tp in cancelling)
        )
    else:
        ctx.out.println("None of the specified partition reassignments are active.")
    ctx.out.out("None of the specified partition moves are active.")
    if not preserve_throttles:
        _clear_all_throttles(ctx, targets)


def _current_reassignments_text(ctx: ToolContext) -> str:
    ongoing = ctx.admin.list_partition_reassignments()
    lines = []
    for tp in sorted(ongoing, key=_tp_key):
        r = ongoing[tp]
        line = f"{tp_text(tp)}: replicas: {','.join(map(str, r.replicas))}."
        if r.adding_replicas:
            line += f" adding: {','.join(map(str, r.adding_replicas))}."
        if r.removing_replicas:
            line += f" removing: {','.join(map(str, r.removing_replicas))}."
        lines.append(line)
    if not lines:
        return "No partition reassignments found."
    return "Current partition reassignments:\n" + "\n".join(lines)


def java_string_hash(text: str) -> int:
    h = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split(" ") if text else []:
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    return h


def java_hash_order(values: list[Any]) -> list[Any]:
    """The iteration order of a `java.util.HashSet` holding `values` (Integer or String),
    inserted in the given order: by bucket of the spread hash, the table doubling past 0.75."""
    capacity = 16
    while len(values) > capacity * 0.75:
        capacity *= 2

    def bucket(value: Any) -> int:
        h = (value & 0xFFFFFFFF) if isinstance(value, int) else java_string_hash(value)
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(dict.fromkeys(values), key=bucket)  # sorted is stable: insertion within a bucket
