"""kafka-get-offsets.sh: GetOffsetShell "
"(tools/src/main/java/org/apache/kafka/tools/GetOffsetShell.java)."""

from __future__ import annotations

import re

from engine import TopicPartition
from lessons.console.admin import AdminError
from lessons.console.context import KAFKA_VERSION, ToolContext, include_list, validate_bootstrap
from lessons.console.jopt import REQUIRED, Opt, OptionError, OptionParser
from lessons.console.output import ToolExit

USAGE = "An interactive shell for getting topic-partition offsets."
TOPIC_PARTITION_PATTERN = r"([^:,]*)(?::(?:([0-9]*)|(?:([0-9]*)-([0-9]*))))?"
INT_MAX = 2**31 - 1

PARSER = OptionParser(
    [
        Opt(
            "bootstrap-server",
            "REQUIRED. The server(s) to connect to in the form HOST1:PORT1,HOST2:PORT2.",
            REQUIRED,
            described_as="HOST1:PORT1,...,HOST3:PORT3",
        ),
        Opt(
            "topic-partitions",
            "Comma separated list of topic-partition patterns to get the "
            f"offsets for, with the format of '{TOPIC_PARTITION_PATTERN}'. The first group is an "
            "optional regex for the topic name, if omitted, it matches any topic name. The "
            "section after ':' describes a 'partition' pattern, which can be: a number, a range "
            "in the format of 'NUMBER-NUMBER' (lower inclusive, upper exclusive), an inclusive "
            "lower bound in the format of 'NUMBER-', an exclusive upper bound in the format of "
            "'-NUMBER' or may be omitted to accept all partitions.",
            REQUIRED,
            described_as="topic1:1,topic2:0-3,topic3,topic4:5-,topic5:-3",
        ),
        Opt(
            "topic",
            "The topic to get the offsets for. It also accepts a regular expression. "
            "If not present, all authorized topics are queried. Cannot be used if "
            "--topic-partitions is present.",
            REQUIRED,
            described_as="topic",
        ),
        Opt(
            "partitions",
            "Comma separated list of partition ids to get the offsets for. If not "
            "present, all partitions of the authorized topics are queried. Cannot be used if "
            "--topic-partitions is present.",
            REQUIRED,
            described_as="partition ids",
        ),
        Opt(
            "time",
            "timestamp of the offsets before that. [Note: No offset is returned, if the "
            "timestamp greater than recently committed record timestamp is given.]",
            REQUIRED,
            described_as="<timestamp> / -1 or latest / -2 or earliest / -3 or max-timestamp / -4 "
            "or earliest-local / -5 or latest-tiered",
            default="latest",
        ),
        Opt(
            "command-config",
            "Property file containing configs to be passed to Admin Client.",
            REQUIRED,
            described_as="config file",
        ),
        Opt(
            "exclude-internal-topics",
            "By default, internal topics are included. If specified, internal topics are excluded.",
        ),
    ]
)


class Terse(Exception):
    """TerseException: main prints "Error occurred: <message>"."""


def run(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    if not args:
        out.usage_and_exit(PARSER, USAGE)
    try:
        try:
            opts = PARSER.parse(args)
        except OptionError as exc:
            raise Terse(exc.message) from None
        if opts.has("help"):
            out.usage_and_exit(PARSER, USAGE)
        if opts.has("version"):
            out.println(KAFKA_VERSION)
            raise ToolExit(0)
        if not opts.has("bootstrap-server"):
            out.usage_and_exit(
                PARSER, f'Missing required argument "{PARSER.by_name["bootstrap-server"]}"'
            )
        problem = validate_bootstrap(opts.value("bootstrap-server"))
        if problem:
            out.usage_and_exit(PARSER, problem)
        if opts.has("topic-partitions") and (opts.has("topic") or opts.has("partitions")):
            raise Terse("--topic-partitions cannot be used with --topic or --partitions")
        spec = parse_time(opts.value("time") or "latest")
        if opts.has("topic-partitions"):
            rules = [parse_rule(r) for r in (opts.value("topic-partitions") or "").split(",")]
        else:
            rules = [
                (include_list(opts.value("topic") or ".*"), partition_set(opts.value("partitions")))
            ]
        admin = ctx.admin
        exclude = opts.has("exclude-internal-topics")
        found: list[TopicPartition] = []
        for name in admin.list_topics(include_internal=not exclude):
            description = admin.describe_topic(name)
            for p in description.partitions:
                if any(_allowed(rule, name, p.partition) for rule in rules):
                    found.append(TopicPartition(name, p.partition))
        if not found:
            raise Terse("Could not match any topic-partitions with the specified filters")
        results = {}
        for tp in found:
            if spec in ("earliest-local", "latest-tiered"):  # no tiered storage: local is all
                query: str | int = "earliest" if spec == "earliest-local" else "latest"
            else:
                query = spec
            try:
                offset = admin.list_offsets(tp, query)
            except AdminError as exc:
                out.eprintln(
                    f"Skip getting offsets for topic-partition {tp.topic}-{tp.partition} due to "
                    f"error: java.util.concurrent.ExecutionException: {exc}"
                )
                continue
            if spec == "latest-tiered":
                offset = -1  # nothing is tiered: ListOffsets answers -1
            if offset is not None:
                results[f"{tp.topic}-{tp.partition}"] = (tp, offset)
        for key in sorted(results):
            tp, offset = results[key]
            out.println(f"{tp.topic}:{tp.partition}:{offset}")
    except (Terse, ValueError) as exc:
        out.eprintln(f"Error occurred: {exc}")
        raise ToolExit(1) from None


def parse_time(text: str) -> str | int:
    named = {
        "earliest": "earliest",
        "latest": "latest",
        "max-timestamp": "max-timestamp",
        "earliest-local": "earliest-local",
        "latest-tiered": "latest-tiered",
    }
    if text in named:
        return named[text]
    if not re.fullmatch(r"[+-]?\d+", text):
        raise Terse(
            f"Malformed time argument {text}. Please use -1 or latest / -2 or earliest / -3 or "
            "max-timestamp / -4 or earliest-local / -5 or latest-tiered, or a specified long "
            "format timestamp"
        )
    number = int(text)
    return {
        -2: "earliest",
        -1: "latest",
        -3: "max-timestamp",
        -4: "earliest-local",
        -5: "latest-tiered",
    }.get(number, number)


Rule = tuple[re.Pattern[str], object]


def partition_set(text: str | None) -> set[int]:
    if not text:
        return set()
    try:
        return {int(p) for p in text.split(",")}
    except ValueError:
        raise Terse(
            "--partitions expects a comma separated list of numeric partition ids, but "
            f"received: {text}"
        ) from None


def parse_rule(spec: str) -> Rule:
    match = re.fullmatch(TOPIC_PARTITION_PATTERN, spec)
    if not match:
        raise Terse(f"Invalid rule specification: {spec}")
    topic = match.group(1) or ".*"
    if match.group(2):
        return include_list(topic), int(match.group(2))
    low = int(match.group(3)) if match.group(3) else 0
    high = int(match.group(4)) if match.group(4) else INT_MAX
    return include_list(topic), (low, high)


def _allowed(rule: Rule, topic: str, partition: int) -> bool:
    pattern, partitions = rule
    if not pattern.fullmatch(topic):
        return False
    if isinstance(partitions, set):
        return not partitions or partition in partitions
    if isinstance(partitions, tuple):
        return bool(partitions[0] <= partition < partitions[1])
    return partition == partitions
