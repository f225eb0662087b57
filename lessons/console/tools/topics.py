"""kafka-topics.sh: TopicCommand (tools/src/main/java/org/apache/kafka/tools/TopicCommand.java)."""

from __future__ import annotations

from typing import Any

from engine import TopicPartition
from lessons.console.admin import AdminError
from lessons.console.context import KAFKA_VERSION, ToolContext, include_list
from lessons.console.jopt import REQUIRED, Opt, OptionError, OptionParser, OptionSet
from lessons.console.output import ToolExit

TOOL = "kafka-topics.sh"
ALTER_HINT = " (To alter topic configurations, the kafka-configs tool can be used.)"
ACTIONS = ("create", "list", "alter", "describe", "delete")
REPORTS = (
    "under-replicated-partitions",
    "under-min-isr-partitions",
    "at-min-isr-partitions",
    "unavailable-partitions",
)

PARSER = OptionParser(
    [
        Opt(
            "bootstrap-server",
            "REQUIRED: The Kafka server to connect to.",
            REQUIRED,
            described_as="server to connect to",
        ),
        Opt(
            "command-config",
            "Property file containing configs to be passed to Admin Client.",
            REQUIRED,
            described_as="command config property file",
        ),
        Opt("list", "List all available topics."),
        Opt("create", "Create a new topic."),
        Opt("delete", "Delete a topic."),
        Opt("alter", "Alter the number of partitions and replica assignment." + ALTER_HINT),
        Opt("describe", "List details for the given topics."),
        Opt(
            "topic",
            "The topic to create, alter, describe or delete. It also accepts a regular "
            "expression, except for --create option. Put topic name in double quotes and use "
            "the '\\' prefix to escape regular expression symbols; e.g. \"test\\.topic\".",
            REQUIRED,
            described_as="topic",
        ),
        Opt("topic-id", "The topic-id to describe.", REQUIRED, described_as="topic-id"),
        Opt(
            "config",
            "A topic configuration override for the topic being created. See the "
            "Kafka documentation for full details on the topic configs. It is supported only "
            "in combination with --create." + ALTER_HINT,
            REQUIRED,
            described_as="name=value",
        ),
        Opt(
            "delete-config",
            "This option is no longer supported and has been deprecated since 4.0",
            REQUIRED,
            described_as="name",
        ),
        Opt(
            "partitions",
            "The number of partitions for the topic being created or altered. If "
            "not supplied with --create, the topic uses the cluster default. (WARNING: If "
            "partitions are increased for a topic that has a key, the partition logic or "
            "ordering of the messages will be affected).",
            REQUIRED,
            "Integer",
            "# of partitions",
        ),
        Opt(
            "replication-factor",
            "The replication factor for each partition in the topic being "
            "created. If not supplied, the topic uses the cluster default.",
            REQUIRED,
            "Integer",
            "replication factor",
        ),
        Opt(
            "replica-assignment",
            "A list of manual partition-to-broker assignments for the "
            "topic being created or altered.",
            REQUIRED,
            described_as="broker_id_for_part1_"
            "replica1 : broker_id_for_part1_replica2 , broker_id_for_part2_replica1 : "
            "broker_id_for_part2_replica2 , ...",
        ),
        Opt(
            "under-replicated-partitions",
            "If set when describing topics, only show under-replicated partitions.",
        ),
        Opt(
            "unavailable-partitions",
            "If set when describing topics, only show partitions whose leader is not available.",
        ),
        Opt(
            "under-min-isr-partitions",
            "If set when describing topics, only show partitions "
            "whose isr count is less than the configured minimum.",
        ),
        Opt(
            "at-min-isr-partitions",
            "If set when describing topics, only show partitions whose "
            "isr count is equal to the configured minimum.",
        ),
        Opt(
            "topics-with-overrides",
            "If set when describing topics, only show topics that have overridden configs.",
        ),
        Opt(
            "if-exists",
            "If set when altering or deleting or describing topics, the action will "
            "only execute if the topic exists.",
        ),
        Opt(
            "if-not-exists",
            "If set when creating topics, the action will only execute if the "
            "topic does not already exist.",
        ),
        Opt(
            "exclude-internal",
            "Exclude internal topics when listing or describing topics. By "
            "default, the internal topics are included.",
        ),
        Opt(
            "partition-size-limit-per-response",
            "The maximum partition size to be included in one DescribeTopicPartitions response.",
            REQUIRED,
            "Integer",
            "maximum number of partitions per response",
        ),
    ]
)


def _spec(name: str) -> str:
    return str(PARSER.by_name[name])


def run(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    try:
        opts = PARSER.parse(args)
    except OptionError as exc:  # thrown in TopicCommandOptions' constructor: mainNoExit prints it
        out.eprintln(exc.message)
        out.eprintln(f"joptsimple.{exc.kind}: {exc.message}")
        raise ToolExit(1) from None
    check_args(ctx, opts, args)
    try:
        if opts.has("create"):
            create(ctx, opts)
        elif opts.has("alter"):
            alter(ctx, opts)
        elif opts.has("list"):
            out.println("\n".join(topics(ctx, opts)))
        elif opts.has("describe"):
            describe(ctx, opts)
        elif opts.has("delete"):
            delete(ctx, opts)
    except (AdminError, ValueError, OptionError) as exc:
        message = exc.message if isinstance(exc, (AdminError, OptionError)) else str(exc)
        out.println(f"Error while executing topic command : {message}")
        raise ToolExit(1) from None


def check_args(ctx: ToolContext, opts: OptionSet, args: list[str]) -> None:
    out = ctx.out
    if not args:
        out.usage_and_exit(PARSER, "Create, delete, describe, or change a topic.")
    if opts.has("help"):
        out.usage_and_exit(
            PARSER, "This tool helps to create, delete, describe, or change a topic."
        )
    if opts.has("version"):
        out.println(KAFKA_VERSION)
        raise ToolExit(0)
    if sum(opts.has(a) for a in ACTIONS) != 1:
        out.usage_and_exit(
            PARSER,
            "Command must include exactly one action: --list, --describe, --create, --alter or "
            "--delete",
        )
    if opts.has("delete-config"):
        out.eprintln(
            "delete-config option is no longer supported and deprecated since version 4.0. The "
            "config will be fully removed in future releases."
        )
    # checkRequiredArgs
    if not opts.has("bootstrap-server"):
        out.eprintln("--bootstrap-server must be specified")
        out.eprintln("java.lang.IllegalArgumentException: --bootstrap-server must be specified")
        raise ToolExit(1)
    if opts.has("describe") and opts.has("if-exists"):
        if not opts.has("topic") and not opts.has("topic-id"):
            out.usage_and_exit(PARSER, "--topic or --topic-id is required to describe a topic")
        if opts.has("topic") and opts.has("topic-id"):
            out.println(
                "Only topic id will be used when both --topic and --topic-id are specified and "
                "topicId is not Uuid.ZERO_UUID"
            )
    if not opts.has("list") and not opts.has("describe") and not opts.has("topic"):
        out.usage_and_exit(PARSER, f'Missing required argument "{_spec("topic")}"')
    if opts.has("alter"):
        if opts.has("bootstrap-server") and opts.has("config"):
            out.usage_and_exit(
                PARSER,
                f'Option combination "[{_spec("bootstrap-server")}, {_spec("config")}]" can\'t be '
                f'used with option "{_spec("alter")}"{ALTER_HINT}',
            )
        if not opts.has("partitions"):
            out.usage_and_exit(PARSER, f'Missing required argument "{_spec("partitions")}"')

    # checkInvalidArgs
    def invalid(used: str, allowed: tuple[str, ...], extra: tuple[str, ...] = ()) -> None:
        if not opts.has(used):
            return
        for other in (*[a for a in ACTIONS if a not in allowed], *extra):
            if opts.has(other):
                out.usage_and_exit(
                    PARSER, f'Option "{_spec(used)}" can\'t be used with option "{_spec(other)}"'
                )

    invalid("config", ("alter", "create"))
    invalid("partitions", ("alter", "create"))
    invalid("replication-factor", ("create",))
    invalid("replica-assignment", ("alter", "create"))
    if opts.has("create"):
        for other in ("partitions", "replication-factor"):
            if opts.has("replica-assignment") and opts.has(other):
                out.usage_and_exit(
                    PARSER,
                    f'Option "{_spec("replica-assignment")}" can\'t be used with option '
                    f'"{_spec(other)}"',
                )
    for report in REPORTS:
        invalid(report, ("describe",), ("topics-with-overrides",))
    invalid("topics-with-overrides", ("describe",), REPORTS)
    invalid("if-exists", ("alter", "delete", "describe"))
    invalid("if-not-exists", ("create",))
    invalid("exclude-internal", ("list", "describe"))


def topics(ctx: ToolContext, opts: OptionSet) -> list[str]:
    """`getTopics`: every topic, sorted, filtered by --topic (a regex) and --exclude-internal."""
    names = ctx.admin.list_topics(include_internal=not opts.has("exclude-internal"))
    pattern = opts.value("topic")
    matcher = include_list(pattern) if pattern is not None else None
    return [n for n in names if matcher is None or matcher.fullmatch(n)]


def ensure_exists(found: list[str], opts: OptionSet, require: bool) -> None:
    requested = opts.value("topic")
    if requested and require and not found:
        # Kafka formats the Optional itself into the message.
        raise ValueError(f"Topic 'Optional[{requested}]' does not exist as expected")


def parse_configs(values: list[str]) -> dict[str, str]:
    import re

    pairs = []
    for value in values:
        parts = re.split(r"\s*=\s*", value)
        while parts and parts[-1] == "":  # Java's String.split drops trailing empty strings
            parts.pop()
        pairs.append(parts)
    if not all(len(p) == 2 for p in pairs):
        raise ValueError(
            "requirement failed: Invalid topic config: all configs to be added must be in the "
            'format "key=val".'
        )
    return {p[0].strip(): p[1].strip() for p in pairs}


def create(ctx: ToolContext, opts: OptionSet) -> None:
    name = opts.value("topic") or ""
    configs = parse_configs(opts.values("config"))
    ctx.admin.validate_topic_configs(configs)
    if "." in name or "_" in name:
        ctx.out.println(
            "WARNING: Due to limitations in metric names, topics with a period ('.') or "
            "underscore ('_') could collide. To avoid issues it is best to use either, but not "
            "both."
        )
    factor = opts.int_value("replication-factor")
    partitions = opts.int_value("partitions")
    if factor is not None and not 1 <= factor <= 32767:
        raise ValueError("The replication factor must be between 1 and 32767 inclusive")
    if partitions is not None and partitions < 1:
        raise ValueError("The partitions must be greater than 0")
    if opts.has("replica-assignment") and opts.value("replica-assignment"):
        raise ValueError(
            "This simulator places replicas itself; --replica-assignment is not supported here."
        )
    try:
        ctx.admin.create_topic(name, partitions, factor, configs)
    except AdminError as exc:
        if exc.simple_name == "TopicExistsException" and opts.has("if-not-exists"):
            return
        raise
    ctx.out.println(f"Created topic {name}.")


def alter(ctx: ToolContext, opts: OptionSet) -> None:
    total = opts.int_value("partitions")
    parse_configs(opts.values("config"))
    found = topics(ctx, opts)
    ensure_exists(found, opts, not opts.has("if-exists"))
    if opts.has("replica-assignment") and opts.value("replica-assignment"):
        raise ValueError(
            "This simulator places replicas itself; --replica-assignment is not supported here."
        )
    for name in found:
        ctx.admin.create_partitions(name, int(total or 0))


def delete(ctx: ToolContext, opts: OptionSet) -> None:
    found = topics(ctx, opts)
    ensure_exists(found, opts, not opts.has("if-exists"))
    for name in found:
        ctx.admin.delete_topic(name)


def describe(ctx: ToolContext, opts: OptionSet) -> None:
    admin = ctx.admin
    out = ctx.out
    if opts.has("topic-id") and opts.value("topic-id") not in (None, "AAAAAAAAAAAAAAAAAAAAAA"):
        wanted = opts.value("topic-id")
        found = [
            n
            for n in admin.list_topics(include_internal=not opts.has("exclude-internal"))
            if admin.topic_id(n) == wanted
        ]
        if not found and not opts.has("if-exists"):
            raise ValueError(f"TopicId '{wanted}' does not exist as expected")
    else:
        found = topics(ctx, opts)
        ensure_exists(found, opts, not opts.has("if-exists"))
    reports = [r for r in REPORTS if opts.has(r)]
    describe_configs = not reports
    describe_partitions = not opts.has("topics-with-overrides")
    live = admin.live_brokers()
    described = [admin.describe_topic(name) for name in found]
    # listPartitionReassignments for every partition described (TopicCommand.listAllReassignments)
    reassignments = (
        admin.list_partition_reassignments(
            [TopicPartition(t.name, p.partition) for t in described for p in t.partitions]
        )
        if described
        else {}
    )
    for topic in described:
        name = topic.name
        entries = admin.topic_config_entries(name)
        overrides = [e for e in entries if not e.is_default]
        min_isr = int(next(e.value for e in entries if e.name == "min.insync.replicas"))
        if describe_configs and (not opts.has("topics-with-overrides") or overrides):
            first = topic.partitions[0]
            factor = _replication_factor(first, reassignments.get(TopicPartition(name, 0)))
            out.println(
                f"Topic: {name}\tTopicId: {admin.topic_id(name)}\t"
                f"PartitionCount: {len(topic.partitions)}\t"
                f"ReplicationFactor: {factor}\t"
                f"Configs: {','.join(f'{e.name}={e.value}' for e in overrides)}"
            )
        if not describe_partitions:
            continue
        for p in topic.partitions:
            reassignment = reassignments.get(TopicPartition(name, p.partition))
            has_leader = p.leader != -1
            shown = describe_configs or any(
                _reported(report, p, reassignment, live, min_isr) for report in reports
            )
            if shown:
                moving = ""
                if reassignment is not None:
                    moving = (
                        f"\tAdding Replicas: {','.join(map(str, reassignment.adding_replicas))}"
                        "\tRemoving Replicas: "
                        f"{','.join(map(str, reassignment.removing_replicas))}"
                    )
                out.println(
                    f"\tTopic: {name}\tPartition: {p.partition}\t"
                    f"Leader: {p.leader if has_leader else 'none'}\t"
                    f"Replicas: {','.join(map(str, p.replicas))}\t"
                    f"Isr: {','.join(map(str, p.isr))}{moving}\tElr: \tLastKnownElr: "
                )


def _replication_factor(p: Any, reassignment: Any) -> int:
    """`getReplicationFactor`: during a reassignment, the replicas not being removed."""
    if reassignment is None:
        return len(p.replicas)
    return len(reassignment.replicas) - len(reassignment.removing_replicas)


def _reported(report: str, p: Any, reassignment: Any, live: set[int], min_isr: int) -> bool:
    """`DescribeOptions.shouldPrint...`: whether a report flag picks this partition."""
    leader: int = p.leader
    isr: list[int] = p.isr
    has_leader = leader != -1
    if report == "under-replicated-partitions":
        return _replication_factor(p, reassignment) > len(isr)
    if report == "unavailable-partitions":
        return not has_leader or leader not in live
    if report == "under-min-isr-partitions":
        return not has_leader or len(isr) < min_isr
    return len(isr) == min_isr  # at-min-isr-partitions
