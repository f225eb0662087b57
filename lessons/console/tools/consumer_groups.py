"""kafka-consumer-groups.sh: ConsumerGroupCommand and ConsumerGroupCommandOptions
(tools/src/main/java/org/apache/kafka/tools/consumer/group/)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from engine import TopicPartition
from lessons.console.admin import AdminError
from lessons.console.context import KAFKA_VERSION, ToolContext
from lessons.console.jopt import OPTIONAL, REQUIRED, Opt, OptionError, OptionParser, OptionSet
from lessons.console.output import Output, ToolExit
from lessons.console.tools.common import log_line

LOGGER = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
MISSING = "-"
HOST = "/127.0.0.1"  # every simulated client runs on the learner's machine
STATES = (
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
    "Empty",
    "Assigning",
    "Reconciling",
)
TYPES = ("Classic", "Consumer", "Share", "Streams")
SCENARIOS = (
    "to-offset",
    "shift-by",
    "to-datetime",
    "by-duration",
    "to-earliest",
    "to-latest",
    "to-current",
    "from-file",
)
NL = "\n"

PARSER = OptionParser(
    [
        Opt(
            "bootstrap-server",
            "REQUIRED: The server(s) to connect to.",
            REQUIRED,
            described_as="server to connect to",
        ),
        Opt(
            "group",
            "The consumer group we wish to act on.",
            REQUIRED,
            described_as="consumer group",
        ),
        Opt(
            "topic",
            "The topic whose consumer group information should be deleted or topic "
            "whose should be included in the reset offset process. In `reset-offsets` case, "
            "partitions can be specified using this format: `topic1:0,1,2`, where 0,1,2 are the "
            "partition to be included in the process. Reset-offsets also supports multiple "
            "topic inputs.",
            REQUIRED,
            described_as="topic",
        ),
        Opt(
            "all-topics", "Consider all topics assigned to a group in the `reset-offsets` process."
        ),
        Opt("list", "List all consumer groups."),
        Opt(
            "describe",
            "Describe consumer group and list offset lag (number of messages not "
            "yet processed) related to given group.",
        ),
        Opt("all-groups", "Apply to all consumer groups."),
        Opt(
            "delete",
            "Pass in groups to delete topic partition offsets and ownership "
            "information over the entire consumer group. For instance --group g1 --group g2",
        ),
        Opt(
            "timeout",
            "The timeout that can be set for some use cases. For example, it can be "
            "used when describing the group to specify the maximum amount of time in "
            "milliseconds to wait before the group stabilizes (when the group is just created, "
            "or is going through some changes).",
            REQUIRED,
            "Long",
            "timeout (ms)",
            "5000",
        ),
        Opt(
            "command-config",
            "Property file containing configs to be passed to Admin Client and Consumer.",
            REQUIRED,
            described_as="command config property file",
        ),
        Opt(
            "reset-offsets",
            "Reset offsets of consumer group. Supports one consumer group at "
            "the time, and instances should be inactive" + NL + "Has 2 execution options: "
            "--dry-run (the default) to plan which offsets to reset, and --execute to update the "
            "offsets. Additionally, the --export option is used to export the results to a CSV "
            "format." + NL + "You must choose one of the following reset specifications: "
            "--to-datetime, --by-duration, --to-earliest, --to-latest, --shift-by, --from-file, "
            "--to-current, --to-offset." + NL + "To define the scope use --all-topics or "
            "--topic. One scope must be specified unless you use '--from-file'.",
        ),
        Opt(
            "delete-offsets",
            "Delete offsets of consumer group. Supports one consumer group at "
            "the time, and multiple topics.",
        ),
        Opt(
            "dry-run",
            "Only show results without executing changes on Consumer Groups. "
            "Supported operations: reset-offsets.",
        ),
        Opt("execute", "Execute operation. Supported operations: reset-offsets."),
        Opt(
            "export",
            "Export operation execution to a CSV file. Supported operations: reset-offsets.",
        ),
        Opt("to-offset", "Reset offsets to a specific offset.", REQUIRED, "Long", "offset"),
        Opt(
            "from-file",
            "Reset offsets to values defined in CSV file.",
            REQUIRED,
            described_as="path to CSV file",
        ),
        Opt(
            "to-datetime",
            "Reset offsets to offset from datetime. Format: 'YYYY-MM-DDTHH:mm:SS.sss'",
            REQUIRED,
            described_as="datetime",
        ),
        Opt(
            "by-duration",
            "Reset offsets to offset by duration from current timestamp. Format: 'PnDTnHnMnS'",
            REQUIRED,
            described_as="duration",
        ),
        Opt("to-earliest", "Reset offsets to earliest offset."),
        Opt("to-latest", "Reset offsets to latest offset."),
        Opt("to-current", "Reset offsets to current offset."),
        Opt(
            "shift-by",
            "Reset offsets shifting current offset by 'n', where 'n' can be positive or negative.",
            REQUIRED,
            "Long",
            "number-of-offsets",
        ),
        Opt(
            "members",
            "Describe members of the group. This option may be used with "
            "'--describe' and '--bootstrap-server' options only." + NL + "Example: "
            "--bootstrap-server localhost:9092 --describe --group group1 --members",
            available_if=("describe",),
        ),
        Opt(
            "verbose",
            "Provide additional information, if any, when describing the group. "
            "This option may be used with '--offsets'/'--members'/'--state' and "
            "'--bootstrap-server' options only." + NL + "Example: --bootstrap-server "
            "localhost:9092 --describe --group group1 --members --verbose",
            available_if=("describe",),
        ),
        Opt(
            "offsets",
            "Describe the group and list all topic partitions in the group along "
            "with their offset lag. This is the default sub-action of and may be used with "
            "'--describe' and '--bootstrap-server' options only." + NL + "Example: "
            "--bootstrap-server localhost:9092 --describe --group group1 --offsets",
            available_if=("describe",),
        ),
        Opt(
            "state",
            "When specified with '--describe', includes the state of the group."
            + NL
            + "Example: --bootstrap-server localhost:9092 --describe --group group1 --state"
            + NL
            + "When specified with '--list', it displays the state of all groups. It can also be "
            "used to list groups with specific states." + NL + "Example: --bootstrap-server "
            "localhost:9092 --list --state stable,empty" + NL + "This option may be used with "
            "'--describe', '--list' and '--bootstrap-server' options only.",
            OPTIONAL,
            available_if=("describe", "list"),
        ),
        Opt(
            "type",
            "When specified with '--list', it displays the types of all the groups. It "
            "can also be used to list groups with specific types." + NL + "Example: "
            "--bootstrap-server localhost:9092 --list --type classic,consumer" + NL + "This "
            "option may be used with the '--list' option only.",
            OPTIONAL,
            available_if=("list",),
        ),
    ]
)


def _s(name: str) -> str:
    return str(PARSER.by_name[name])


class UsageError(Exception):
    """An IllegalArgumentException the command turns into printUsageAndExit."""


class Failure(Exception):
    """Any other exception: main prints "Executing consumer group command failed due to" and
    the exception's message (`text`)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def run(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    try:
        opts = PARSER.parse(args)
    except OptionError as exc:  # thrown before main's try: the JVM reports it
        out.eprintln(f'Exception in thread "main" joptsimple.{exc.kind}: {exc.message}')
        raise ToolExit(1) from None
    check_args(out, opts, args)
    if (
        sum(opts.has(a) for a in ("list", "describe", "delete", "reset-offsets", "delete-offsets"))
        != 1
    ):
        out.usage_and_exit(
            PARSER,
            "Command must include exactly one action: --list, --describe, --delete, "
            "--reset-offsets, --delete-offsets",
        )
    service = GroupService(ctx, opts)
    try:
        if opts.has("list"):
            service.list_groups()
        elif opts.has("describe"):
            service.describe_groups()
        elif opts.has("delete"):
            service.delete_groups()
        elif opts.has("reset-offsets"):
            plan = service.reset_offsets()
            if opts.has("export"):
                out.println(service.export_csv(plan))
            else:
                print_offsets_to_reset(out, plan)
        elif opts.has("delete-offsets"):
            service.delete_offsets()
    except UsageError as exc:
        out.usage_and_exit(PARSER, str(exc))
    except Failure as exc:
        print_error(out, f"Executing consumer group command failed due to {exc.text}")
    except (AdminError, OptionError) as exc:
        print_error(out, f"Executing consumer group command failed due to {_message(exc)}")
        out.eprintln(str(exc) if isinstance(exc, AdminError) else f"joptsimple.{exc.kind}: {exc}")


def _message(exc: Exception) -> str:
    if isinstance(exc, AdminError):
        return f"java.util.concurrent.ExecutionException: {exc}"
    return str(exc)


def print_error(out: Output, message: str) -> None:
    out.println(f"\nError: {message}")


def check_args(out: Output, opts: OptionSet, args: list[str]) -> None:
    if not args or opts.has("help"):
        out.usage_and_exit(
            PARSER,
            "This tool helps to list all consumer groups, describe a consumer group, delete "
            "consumer group info, or reset consumer group offsets.",
        )
    if opts.has("version"):
        out.println(KAFKA_VERSION)
        raise ToolExit(0)
    if not opts.has("bootstrap-server"):
        out.usage_and_exit(PARSER, f'Missing required argument "{_s("bootstrap-server")}"')
    scopes = f"{_s('group')}, {_s('all-groups')}"
    if opts.has("describe"):
        if not opts.has("group") and not opts.has("all-groups"):
            out.usage_and_exit(
                PARSER, f"Option {_s('describe')} takes one of these options: {scopes}"
            )
        exclusive = ("members", "offsets", "state")
        if sum(opts.has(o) for o in exclusive) > 1:
            out.usage_and_exit(
                PARSER,
                f"Option {_s('describe')} takes at most one of these options: "
                + ", ".join(_s(o) for o in exclusive),
            )
        if opts.has("state") and opts.value("state") is not None:
            out.usage_and_exit(
                PARSER, f"Option {_s('describe')} does not take a value for {_s('state')}"
            )
    if opts.has("delete"):
        if not opts.has("group") and not opts.has("all-groups"):
            out.usage_and_exit(
                PARSER, f"Option {_s('delete')} takes one of these options: {scopes}"
            )
        if opts.has("topic"):
            out.usage_and_exit(
                PARSER,
                "The consumer does not support topic-specific offset deletion from a "
                "consumer group.",
            )
    if opts.has("delete-offsets") and (not opts.has("group") or not opts.has("topic")):
        out.usage_and_exit(
            PARSER,
            f"Option {_s('delete-offsets')} takes the following options: {_s('group')}, "
            f"{_s('topic')}",
        )
    if opts.has("reset-offsets"):
        if opts.has("dry-run") and opts.has("execute"):
            out.usage_and_exit(
                PARSER,
                f"Option {_s('reset-offsets')} only accepts one of {_s('execute')} and "
                f"{_s('dry-run')}",
            )
        if not opts.has("dry-run") and not opts.has("execute"):
            out.eprintln(
                "WARN: No action will be performed as the --execute option is missing.In a future "
                "major release, the default behavior of this command will be to prompt the user "
                "before executing the reset rather than doing a dry run. You should add the "
                "--dry-run option explicitly if you are scripting this command and want to keep "
                "the current default behavior without prompting."
            )
        if not opts.has("group") and not opts.has("all-groups"):
            out.usage_and_exit(
                PARSER, f"Option {_s('reset-offsets')} takes one of these options: {scopes}"
            )
        for used in SCENARIOS:
            if opts.has(used):
                for other in SCENARIOS:
                    if other != used and opts.has(other):
                        out.usage_and_exit(
                            PARSER, f'Option "{_s(used)}" can\'t be used with option "{_s(other)}"'
                        )
    if opts.has("group") and opts.has("all-groups"):
        out.usage_and_exit(
            PARSER, f'Option "{_s("group")}" can\'t be used with option "{_s("all-groups")}"'
        )
    if opts.has("group") and opts.has("list"):
        out.usage_and_exit(
            PARSER, f'Option "{_s("group")}" can\'t be used with option "{_s("list")}"'
        )
    if opts.has("topic"):
        for other in ("list", "describe"):
            if opts.has(other):
                out.usage_and_exit(
                    PARSER, f'Option "{_s("topic")}" can\'t be used with option "{_s(other)}"'
                )


def print_offsets_to_reset(out: Output, plan: dict[str, dict[TopicPartition, int]]) -> None:
    row = "\n{:<30} {:<30} {:<10} {:<15}"
    if plan:
        out.out(row.format("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"))
    for group, offsets in plan.items():
        for tp, offset in sorted(offsets.items()):
            out.out(row.format(group, tp.topic, tp.partition, offset))
    out.println()


class GroupService:
    def __init__(self, ctx: ToolContext, opts: OptionSet) -> None:
        self.ctx = ctx
        self.admin = ctx.admin
        self.out = ctx.out
        self.opts = opts

    def group_ids(self) -> list[str]:
        if self.opts.has("all-groups"):
            return self.admin.list_groups()
        return self.opts.values("group")

    # --- list ----------------------------------------------------------------------------

    def list_groups(self) -> None:
        include_type = self.opts.has("type")
        include_state = self.opts.has("state")
        groups = self.admin.list_groups()
        if not include_type and not include_state:
            for group in groups:
                self.out.println(group)
            return
        states = _parse_list(self.opts.value("state"), STATES, "state")
        types = _parse_list(self.opts.value("type"), TYPES, "types")
        rows = []
        for group in groups:
            state = self.admin.describe_group(group).state
            if states and state not in states:
                continue
            if types and "Classic" not in types:
                continue
            rows.append((group, "Classic", state))
        width = max([15, *(len(g) for g, _, _ in rows)]) + 10
        header = ["GROUP"]
        if include_type:
            header.append("TYPE")
        if include_state:
            header.append("STATE")

        def line(values: list[str]) -> str:
            text = values[0].ljust(width)
            for value in values[1:]:
                text += " " + value.ljust(20)
            return text

        self.out.println(line(header))
        for group, kind, state in rows:
            values = [group]
            if include_type:
                values.append(kind)
            if include_state:
                values.append(state)
            self.out.println(line(values))

    # --- describe ------------------------------------------------------------------------

    def _member_state(self, group: str, state: str, rows: int | None) -> bool:
        """`shouldPrintMemberState`."""
        if rows is None:
            print_error(self.out, f"The consumer group '{group}' does not exist.")
            return False
        if state == "Dead":
            print_error(self.out, f"Consumer group '{group}' does not exist.")
        elif state == "Empty":
            self.out.eprintln(f"\nConsumer group '{group}' has no active members.")
        elif state in ("PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling"):
            self.out.eprintln(f"\nWarning: Consumer group '{group}' is rebalancing.")
        return state != "Dead" and rows > 0

    def describe_groups(self) -> None:
        groups = sorted(set(self.group_ids()))
        if self.opts.has("members"):
            for group in groups:
                self._print_members(group, self.opts.has("verbose"))
        elif self.opts.has("state") and not self.opts.has("offsets"):
            for group in groups:
                self._print_state(group)
        else:
            for group in groups:
                self._print_offsets(group)

    def _end_offset(self, tp: TopicPartition) -> int | None:
        try:
            return self.admin.list_offsets(tp, "latest")
        except AdminError:
            return None  # Kafka's `Unknown` log offset: shown as "-"

    def _print_offsets(self, group: str) -> None:
        description = self.admin.describe_group(group)
        committed: dict[TopicPartition, int] = dict(description.offsets)
        rows: list[list[str]] = []
        assigned: set[TopicPartition] = set()
        members = [m for m in description.members if m.assignment]
        members.sort(key=lambda m: -len(m.assignment))
        for member in members:
            assigned |= set(member.assignment)
            for tp in sorted(member.assignment):
                rows.append(
                    self._row(group, tp, committed, member.member_id, HOST, member.client_id)
                )
        for tp in sorted(set(committed) - assigned):
            rows.append(self._row(group, tp, committed, MISSING, MISSING, MISSING))
        if not self._member_state(group, description.state, len(rows)):
            return
        widths = [15, 15, 15, 15]  # group, topic, consumer id, host
        for r in rows:
            widths = [
                max(widths[0], len(r[0])),
                max(widths[1], len(r[1])),
                max(widths[2], len(r[6])),
                max(widths[3], len(r[7])),
            ]

        def line(r: list[str]) -> str:
            return (
                f"\n{r[0]:<{widths[0]}} {r[1]:<{widths[1]}} {r[2]:<10} {r[3]:<15} {r[4]:<15} "
                f"{r[5]:<15} {r[6]:<{widths[2]}} {r[7]:<{widths[3]}} {r[8]}"
            )

        self.out.out(
            line(
                [
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "LOG-END-OFFSET",
                    "LAG",
                    "CONSUMER-ID",
                    "HOST",
                    "CLIENT-ID",
                ]
            )
        )
        for r in rows:
            self.out.out(line(r))
        self.out.println()

    def _row(
        self,
        group: str,
        tp: TopicPartition,
        committed: dict[TopicPartition, int],
        member: str,
        host: str,
        client: str,
    ) -> list[str]:
        offset = committed.get(tp)
        end = self._end_offset(tp)
        lag = end - offset if offset is not None and offset != -1 and end is not None else None
        return [
            group,
            tp.topic,
            str(tp.partition),
            MISSING if offset is None else str(offset),
            MISSING if end is None else str(end),
            MISSING if lag is None else str(lag),
            member,
            host,
            client,
        ]

    def _print_members(self, group: str, verbose: bool) -> None:
        description = self.admin.describe_group(group)
        members = list(description.members)
        widths = {"group": 15, "id": 15, "instance": 17, "host": 15, "client": 15}
        with_instance = False
        if self._member_state(group, description.state, len(members)):
            for m in members:
                widths["group"] = max(widths["group"], len(group))
                widths["id"] = max(widths["id"], len(m.member_id))
                widths["instance"] = max(widths["instance"], len(m.group_instance_id or ""))
                widths["host"] = max(widths["host"], len(HOST))
                widths["client"] = max(widths["client"], len(m.client_id))
                with_instance = with_instance or bool(m.group_instance_id)

        def line(values: list[str]) -> str:
            cells = [f"{values[0]:<{widths['group']}}", f"{values[1]:<{widths['id']}}"]
            if with_instance:
                cells.append(f"{values[2]:<{widths['instance']}}")
            cells += [
                f"{values[3]:<{widths['host']}}",
                f"{values[4]:<{widths['client']}}",
                f"{values[5]:<15}",
            ]
            return " ".join(cells) + " "

        header = line(
            ["GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]
        )
        self.out.out("\n" + header + ("ASSIGNMENT" if verbose else ""))
        self.out.println()
        for m in members:
            text = line(
                [
                    group,
                    m.member_id,
                    m.group_instance_id or "",
                    HOST,
                    m.client_id,
                    str(len(m.assignment)),
                ]
            )
            if verbose:
                text += _assignment_text(m.assignment)
            self.out.println(text)

    def _print_state(self, group: str) -> None:
        description = self.admin.describe_group(group)
        if not self._member_state(group, description.state, 1):
            return
        host, port = self.admin.broker_host_port(description.coordinator)
        coordinator = f"{host}:{port}  ({description.coordinator})"
        width = max(25, len(coordinator))

        def line(values: list[str]) -> str:
            return (
                f"\n{values[0]:<{width}} {values[1]:<25} {values[2]:<20} {values[3]:<15} "
                f"{values[4]}"
            )

        self.out.out(
            line(["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"])
        )
        self.out.out(
            line(
                [
                    group,
                    coordinator,
                    description.protocol or "",
                    description.state,
                    str(len(description.members)),
                ]
            )
        )
        self.out.println()

    # --- reset ---------------------------------------------------------------------------

    def reset_offsets(self) -> dict[str, dict[TopicPartition, int]]:
        plan: dict[str, dict[TopicPartition, int]] = {}
        for group in self.group_ids():
            state = self.admin.describe_group(group).state
            if state not in ("Empty", "Dead"):
                print_error(
                    self.out,
                    f"Assignments can only be reset if the group '{group}' is inactive, but the "
                    f"current state is {state}.",
                )
                plan[group] = {}
                continue
            partitions = self._partitions_to_reset(group)
            prepared = self._prepare(group, partitions)
            if self.opts.has("execute") and not self.opts.has("dry-run"):
                self.admin.alter_group_offsets(group, prepared)
            plan[group] = prepared
        return plan

    def _partitions_to_reset(self, group: str) -> list[TopicPartition]:
        if self.opts.has("all-topics"):
            return sorted(self.admin.describe_group(group).offsets)
        if self.opts.has("topic"):
            specified: list[TopicPartition] = []
            whole: list[str] = []
            for arg in self.opts.values("topic"):
                if ":" not in arg:
                    whole.append(arg)
                    continue
                parts = arg.split(":")
                if len(parts) != 2 or not parts[1]:
                    raise UsageError(
                        f"Invalid topic arg '{arg}', expected topic name and partitions"
                    )
                for partition in parts[1].split(","):
                    if not re.fullmatch(r"[+-]?\d+", partition):
                        raise UsageError(
                            f"Invalid partition '{partition}' specified in topic arg '{arg}''"
                        )
                    specified.append(TopicPartition(parts[0], int(partition)))
            for name in whole:
                description = self.admin.describe_topic(name)
                specified += [TopicPartition(name, p.partition) for p in description.partitions]
            return specified
        if not self.opts.has("from-file"):
            raise UsageError("One of the reset scopes should be defined: --all-topics, --topic.")
        return []

    def _prepare(self, group: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        opts = self.opts
        if opts.has("to-offset"):
            target = int(opts.int_value("to-offset") or 0)
            return self._in_range({tp: target for tp in partitions})
        if opts.has("to-earliest"):
            return {tp: self._offset(tp, "earliest", "starting") for tp in partitions}
        if opts.has("to-latest"):
            return {tp: self._offset(tp, "latest", "ending") for tp in partitions}
        if opts.has("shift-by"):
            shift = int(opts.int_value("shift-by") or 0)
            committed = self.admin.describe_group(group).offsets
            requested = {}
            for tp in partitions:
                if tp not in committed:
                    raise UsageError(
                        f"Cannot shift offset for partition {tp.topic}-{tp.partition} since there "
                        "is no current committed offset"
                    )
                requested[tp] = committed[tp] + shift
            return self._in_range(requested)
        if opts.has("to-datetime"):
            return self._by_time(partitions, parse_datetime(opts.value("to-datetime") or ""))
        if opts.has("by-duration"):
            duration = parse_duration(opts.value("by-duration") or "")
            return self._by_time(partitions, self.admin.now_ms - duration)
        if opts.has("from-file"):  # the console has no files to read
            raise Failure(f"java.nio.file.NoSuchFileException: {opts.value('from-file')}")
        if opts.has("to-current"):
            committed = self.admin.describe_group(group).offsets
            return {
                tp: committed[tp] if tp in committed else self._offset(tp, "latest", "ending")
                for tp in partitions
            }
        raise UsageError(
            f"Option '{_s('reset-offsets')}' requires one of the following scenarios: ["
            + ", ".join(_s(s) for s in SCENARIOS)
            + "]"
        )

    def _offset(self, tp: TopicPartition, spec: str, word: str) -> int:
        try:
            offset = self.admin.list_offsets(tp, spec)
        except AdminError:
            offset = None
        if offset is None:
            raise UsageError(
                f"Error getting {word} offset of topic partition: {tp.topic}-{tp.partition}"
            )
        return offset

    def _by_time(
        self, partitions: list[TopicPartition], timestamp: int
    ) -> dict[TopicPartition, int]:
        found = {}
        for tp in partitions:
            offset = self.admin.list_offsets(tp, timestamp)
            if offset is None:
                self.out.println(
                    f"\nWarn: Partition {tp.partition} from topic {tp.topic} is empty. Falling "
                    "back to latest known offset."
                )
                offset = self._offset(tp, "latest", "ending")
            found[tp] = offset
        return found

    def _in_range(self, requested: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """`checkOffsetsRange`: offsets outside the log are moved to its nearest end, with "
        "a WARN."""
        result = {}
        for tp, offset in requested.items():
            end = self._offset(tp, "latest", "ending")
            start = self._offset(tp, "earliest", "starting")
            name = f"{tp.topic}-{tp.partition}"
            if offset > end:
                log_line(
                    self.out,
                    self.admin.now_ms,
                    "WARN",
                    f"New offset ({offset}) is higher than latest offset for topic partition "
                    f"{name}. Value will be set to {end}",
                    LOGGER,
                )
                result[tp] = end
            elif offset < start:
                log_line(
                    self.out,
                    self.admin.now_ms,
                    "WARN",
                    f"New offset ({offset}) is lower than earliest offset for topic partition "
                    f"{name}. Value will be set to {start}",
                    LOGGER,
                )
                result[tp] = start
            else:
                result[tp] = offset
        return result

    def export_csv(self, plan: dict[str, dict[TopicPartition, int]]) -> str:
        single = len(self.opts.values("group")) == 1
        lines = []
        for group, offsets in plan.items():
            for tp, offset in sorted(offsets.items()):
                lines.append(
                    f"{tp.topic},{tp.partition},{offset}\n"
                    if single
                    else f"{group},{tp.topic},{tp.partition},{offset}\n"
                )
        return "".join(lines)

    # --- delete --------------------------------------------------------------------------

    def delete_groups(self) -> None:
        succeeded: list[str] = []
        failed: dict[str, AdminError] = {}
        for group in self.group_ids():
            try:
                self.admin.delete_group(group)
                succeeded.append(group)
            except AdminError as exc:
                failed[group] = exc
        if not failed:
            self.out.println(
                f"Deletion of requested consumer groups ('{', '.join(succeeded)}') was successful."
            )
            return
        print_error(self.out, "Deletion of some consumer groups failed:")
        for group, exc in failed.items():
            self.out.println(
                f"* Group '{group}' could not be deleted due to: "
                f"java.util.concurrent.ExecutionException: {exc}"
            )
        if succeeded:
            self.out.println(
                f"\nThese consumer groups were deleted successfully: '{chr(39).join(succeeded)}', '"
            )

    def delete_offsets(self) -> None:
        """`deleteOffsets`: the request's outcome, then TOPIC / PARTITION / STATUS per partition."""
        group = self.opts.value("group") or ""
        topics = self.opts.values("topic")
        results: dict[TopicPartition, Exception | None] = {}
        partitions: list[TopicPartition] = []
        for arg in topics:
            if ":" in arg:
                partitions += self._topic_partitions(arg)
                continue
            try:
                description = self.admin.describe_topic(arg)
            except AdminError as exc:
                results[TopicPartition(arg, -1)] = exc
                continue
            partitions += [TopicPartition(arg, p.partition) for p in description.partitions]
        top = ""
        try:
            answers = self.admin.delete_group_offsets(group, sorted(set(partitions)))
        except AdminError as exc:
            top = exc.simple_name
            answers = {tp: exc for tp in partitions}
        for tp, error in answers.items():
            results[tp] = error
            if error is not None and not top:
                top = error.simple_name
        if not top:
            self.out.println(
                f"Request succeed for deleting offsets with topic {', '.join(topics)} group {group}"
            )
        elif top == "GroupIdNotFoundException":
            print_error(self.out, f"'{group}' does not exist.")
        elif top in ("GroupSubscribedToTopicException", "UnknownTopicOrPartitionException"):
            print_error(
                self.out, "Encounter some partition level error, see the follow-up details:"
            )
        else:
            print_error(self.out, f"Encounter some unknown error: {top}")
        row = "\n{:<30} {:<15} {:<15}"
        self.out.out(row.format("TOPIC", "PARTITION", "STATUS"))
        for tp, error in sorted(results.items(), key=lambda e: e[0].topic + str(e[0].partition)):
            partition = str(tp.partition) if tp.partition >= 0 else "Not Provided"
            status = (
                f"Error: :java.util.concurrent.ExecutionException: {error}"
                if error is not None
                else "Successful"
            )
            self.out.out(row.format(tp.topic, partition, status))
        self.out.println()

    def _topic_partitions(self, arg: str) -> list[TopicPartition]:
        parts = arg.split(":")
        if len(parts) != 2 or not parts[1]:
            raise UsageError(f"Invalid topic arg '{arg}', expected topic name and partitions")
        out = []
        for partition in parts[1].split(","):
            if not re.fullmatch(r"[+-]?\d+", partition):
                raise UsageError(f"Invalid partition '{partition}' specified in topic arg '{arg}''")
            out.append(TopicPartition(parts[0], int(partition)))
        return out


def _assignment_text(assignment: Any) -> str:
    if not assignment:
        return MISSING
    by_topic: dict[str, list[str]] = {}
    for tp in assignment:
        by_topic.setdefault(tp.topic, []).append(str(tp.partition))
    return ", ".join(
        sorted(f"{topic}:{','.join(sorted(parts))}" for topic, parts in by_topic.items())
    )


def _parse_list(value: str | None, valid: tuple[str, ...], what: str) -> set[str]:
    if not value:
        return set()
    lookup = {v.lower(): v for v in valid}
    chosen = set()
    for item in value.split(","):
        name = lookup.get(item.strip().lower())
        if name is None:
            if what == "state":
                raise UsageError(
                    f"Invalid state list '{value}'. Valid states are: {', '.join(valid)}"
                )
            names = ", ".join(v.lower() for v in valid)
            raise UsageError(f"Invalid types list '{value}'. Valid types are: {names}")
        chosen.add(name)
    return chosen


def parse_datetime(text: str) -> int:
    """Kafka's `Utils.getDateTime`: 'yyyy-MM-ddTHH:mm:ss[.SSS]' with an optional zone (Z or
    ±HH:MM); without one the time is read in UTC (the simulation's clock has no zone)."""
    match = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})?",
        text,
    )
    if not match:
        raise Failure(f'java.text.ParseException: Unparseable date: "{text}"')
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    millis = int((match.group(7) or "0").ljust(3, "0"))
    zone = match.group(8)
    offset = timedelta(0)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError:
        raise Failure(f'java.text.ParseException: Unparseable date: "{text}"') from None
    return int(moment.timestamp() * 1000) + millis


def parse_duration(text: str) -> int:
    """Java's `Duration.parse` (PnDTnHnMn.nS), in milliseconds."""
    match = re.fullmatch(
        r"([-+]?)P(?:([-+]?\d+)D)?(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?",
        text.upper(),
    )
    if not match or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        raise Failure("Text cannot be parsed to a Duration")
    sign = -1 if match.group(1) == "-" else 1
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups()[1:5])
    fraction = match.group(6) or ""
    millis = int(fraction[:3].ljust(3, "0")) if fraction else 0
    if seconds < 0:
        millis = -millis
    return sign * ((((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000 + millis)
