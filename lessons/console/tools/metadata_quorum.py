"""kafka-metadata-quorum.sh: MetadataQuorumCommand
(tools/src/main/java/org/apache/kafka/tools/MetadataQuorumCommand.java). The tool parses with
argparse4j, a port of Python's argparse, so Python's argparse gives its usage and error lines."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from lessons.console.admin import AdminError
from lessons.console.context import ToolContext
from lessons.console.output import Output, ToolExit

PROG = "kafka-metadata-quorum"


class ParseError(Exception):
    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ParseError(self, message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise ToolExit(status)


def build_parser(out: Output) -> Parser:
    def print_help(parser: argparse.ArgumentParser) -> Any:
        def show(file: Any = None) -> None:
            out.out(parser.format_help())

        return show

    parser = Parser(
        prog=PROG,
        description="This tool describes kraft metadata quorum status.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.print_help = print_help(parser)  # type: ignore[method-assign]
    connection = parser.add_mutually_exclusive_group(required=True)
    connection.add_argument(
        "--bootstrap-server",
        help="A comma-separated list of host:port pairs "
        "to use for establishing the connection to the Kafka cluster.",
    )
    connection.add_argument(
        "--bootstrap-controller",
        help="A comma-separated list of host:port "
        "pairs to use for establishing the connection to the Kafka "
        "controllers.",
    )
    parser.add_argument(
        "--command-config", help="Property file containing configs to be passed to Admin Client."
    )
    commands = parser.add_subparsers(dest="command", parser_class=Parser)
    describe = commands.add_parser("describe", help="Describe the metadata quorum info")
    describe.print_help = print_help(describe)  # type: ignore[method-assign]
    status = describe.add_argument_group("Status")
    status.add_argument(
        "--status",
        action="store_true",
        help="A short summary of the quorum "
        "status and the other provides detailed information about the status of "
        "replication.",
    )
    replication = describe.add_argument_group("Replication")
    replication.add_argument(
        "--replication",
        action="store_true",
        help="Detailed information about the status of replication",
    )
    replication.add_argument("--human-readable", action="store_true", help="Human-readable output")
    add = commands.add_parser(
        "add-controller", help="Add a controller to the KRaft controller cluster"
    )
    add.add_argument(
        "--dry-run",
        action="store_true",
        help="True if we should print what would be done, but not do it.",
    )
    remove = commands.add_parser(
        "remove-controller", help="Remove a controller from the KRaft controller cluster"
    )
    remove.add_argument(
        "--controller-id", "-i", type=int, required=True, help="The id of the controller to remove."
    )
    remove.add_argument(
        "--controller-directory-id",
        "-d",
        required=True,
        help="The directory ID of the controller to remove.",
    )
    remove.add_argument(
        "--dry-run",
        action="store_true",
        help="True if we should print what would be done, but not do it.",
    )
    return parser


def run(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    parser = build_parser(out)
    try:
        namespace = parser.parse_args(args)
    except ParseError as exc:
        out.err(exc.parser.format_usage())
        out.eprintln(f"{exc.parser.prog}: error: {exc.message}")
        raise ToolExit(1) from None
    if namespace.command is None:
        out.err(parser.format_usage())
        out.eprintln(f"{PROG}: error: too few arguments")
        raise ToolExit(1)
    if namespace.command_config is not None:
        out.eprintln(f"Properties file {namespace.command_config} does not exists!")
        raise ToolExit(1)
    try:
        if namespace.command == "describe":
            if namespace.status and namespace.replication:
                terse(
                    out,
                    "Only one of --status or --replication should be specified with "
                    "describe sub-command",
                )
            elif namespace.replication:
                replication(ctx, namespace.human_readable)
            elif namespace.status:
                if namespace.human_readable:
                    terse(
                        out,
                        "The option --human-readable is only supported along with --replication",
                    )
                status(ctx)
            else:
                terse(
                    out,
                    "One of --status or --replication must be specified with describe sub-command",
                )
        elif namespace.command == "add-controller":
            terse(
                out,
                "You must supply the configuration file of the controller you are adding "
                "when using add-controller.",
            )
        else:
            raise AdminError(
                "UnsupportedVersionException",
                "This simulator's controller quorum is fixed when the sandbox is made; "
                "controllers cannot be removed.",
            )
    except AdminError as exc:
        out.eprintln(f"java.util.concurrent.ExecutionException: {exc}")
        out.eprintln(f"java.util.concurrent.ExecutionException: {exc}")
        raise ToolExit(1) from None


def terse(out: Output, message: str) -> NoReturn:
    out.eprintln(message)
    raise ToolExit(1)


def _node(ctx: ToolContext, node_id: int, with_endpoints: bool) -> str:
    admin = ctx.admin
    text = f'{{"id": {node_id}, "directoryId": "{admin.directory_id(node_id)}"'
    if with_endpoints:
        text += f', "endpoints": ["{admin.controller_endpoint(node_id)}"]'
    return text + "}"


def status(ctx: ToolContext) -> None:
    admin = ctx.admin
    quorum = admin.describe_quorum()
    leader = next(v for v in quorum.voters if v.id == quorum.leader_id)
    lagging = quorum.voters[0]
    for voter in quorum.voters[1:]:  # Stream.min keeps the first of equal elements
        if voter.log_end_offset < lagging.log_end_offset:
            lagging = voter
    lag = leader.log_end_offset - lagging.log_end_offset
    if lagging is leader:
        lag_ms = 0
    elif leader.last_caught_up_ms >= 0 and lagging.last_caught_up_ms >= 0:
        lag_ms = leader.last_caught_up_ms - lagging.last_caught_up_ms
    else:
        lag_ms = -1
    voters = ", ".join(_node(ctx, v.id, True) for v in quorum.voters)
    observers = ", ".join(_node(ctx, o.id, False) for o in quorum.observers)
    ctx.out.println(
        f"ClusterId:              {admin.cluster_id()}\n"
        f"LeaderId:               {quorum.leader_id}\n"
        f"LeaderEpoch:            {quorum.leader_epoch}\n"
        f"HighWatermark:          {quorum.high_watermark}\n"
        f"MaxFollowerLag:         {lag}\n"
        f"MaxFollowerLagTimeMs:   {lag_ms}\n"
        f"CurrentVoters:          [{voters}]\n"
        f"CurrentObservers:       [{observers}]"
    )


def replication(ctx: ToolContext, human: bool) -> None:
    admin = ctx.admin
    quorum = admin.describe_quorum()
    leader = next(v for v in quorum.voters if v.id == quorum.leader_id)
    now = admin.now_ms

    def when(ms: int, what: str) -> str:
        if ms < 0:
            return "-1"
        if not human:
            return str(ms)
        if not 0 < ms <= now:
            raise AdminError(
                "KafkaException",
                "Error while computing relative time, possible drift in system clock.\n"
                f"Current timestamp is {now}, {what} timestamp is {ms}",
            )
        return f"{now - ms} ms ago"

    rows = []
    ordered = [(leader, "Leader")]
    ordered += [(v, "Follower") for v in quorum.voters if v.id != leader.id]
    ordered += [(o, "Observer") for o in quorum.observers]
    for replica, role in ordered:
        rows.append(
            [
                str(replica.id),
                admin.directory_id(replica.id),
                str(replica.log_end_offset),
                str(leader.log_end_offset - replica.log_end_offset),
                when(replica.last_fetch_ms, "last fetch"),
                when(replica.last_caught_up_ms, "last caught up"),
                role,
            ]
        )
    headers = [
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in [headers, *rows]:  # ToolsUtils.prettyPrintTable: padded cells, each then a tab
        ctx.out.println("".join(cell.ljust(widths[i]) + "\t" for i, cell in enumerate(row)))
