"""kafka-leader-election.sh: LeaderElectionCommand
(tools/src/main/java/org/apache/kafka/tools/LeaderElectionCommand.java)."""

from __future__ import annotations

from engine import TopicPartition
from lessons.console.admin import AdminError
from lessons.console.context import KAFKA_VERSION, ToolContext
from lessons.console.jopt import REQUIRED, Opt, OptionError, OptionParser
from lessons.console.output import ToolExit
from lessons.console.tools.common import renamed

PARSER = OptionParser(
    [
        Opt(
            "bootstrap-server",
            "A hostname and port for the broker to connect to, in the form "
            "host:port. Multiple comma separated URLs can be given. REQUIRED.",
            REQUIRED,
            described_as="host:port",
        ),
        Opt(
            "admin.config",
            "(DEPRECATED) Configuration properties files to pass to the admin client",
            REQUIRED,
            described_as="config file",
        ),
        Opt(
            "command-config",
            "Configuration properties files to pass to the admin client",
            REQUIRED,
            described_as="config file",
        ),
        Opt(
            "path-to-json-file",
            "The JSON file with the list  of partition for which leader "
            'elections should be performed. This is an example format. \n{"partitions":\n\t'
            '[{"topic": "foo", "partition": 1},\n\t {"topic": "foobar", "partition": '
            "2}]\n}\nNot allowed if --all-topic-partitions or --topic flags are specified.",
            REQUIRED,
            described_as="Path to JSON file",
        ),
        Opt(
            "topic",
            "Name of topic for which to perform an election. Not allowed if "
            "--path-to-json-file or --all-topic-partitions is specified.",
            REQUIRED,
            described_as="topic name",
        ),
        Opt(
            "partition",
            "Partition id for which to perform an election. REQUIRED if --topic is specified.",
            REQUIRED,
            "Integer",
            "partition id",
        ),
        Opt(
            "all-topic-partitions",
            "Perform election on all of the eligible topic partitions "
            "based on the type of election (see the --election-type flag). Not allowed if "
            "--topic or --path-to-json-file is specified.",
        ),
        Opt(
            "election-type",
            'Type of election to attempt. Possible values are "preferred" for '
            'preferred leader election or "unclean" for unclean leader election. If preferred '
            "election is selection, the election is only performed if the current leader is not "
            "the preferred leader for the topic partition. If unclean election is selected, the "
            "election is only performed if there are no leader for the topic partition. "
            "REQUIRED.",
            REQUIRED,
            "[PREFERRED, UNCLEAN]",
            "election type",
        ),
    ]
)


class Failed(Exception):
    """Any exception main catches: its message, then its stack trace (here: its first line) on
    stderr, exit 1."""

    def __init__(
        self, message: str, java: str = "org.apache.kafka.server.common.AdminCommandFailedException"
    ) -> None:
        super().__init__(message)
        self.java = java


def run(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    try:
        try:
            opts = PARSER.parse(args)
        except OptionError as exc:
            raise Failed(exc.message, f"joptsimple.{exc.kind}") from None
        if not args or opts.has("help"):
            out.usage_and_exit(
                PARSER,
                "This tool attempts to elect a new leader for a set of topic partitions. The "
                "type of elections supported are preferred replicas and unclean replicas.",
            )
        if opts.has("version"):
            out.println(KAFKA_VERSION)
            raise ToolExit(0)
        missing = [o for o in ("bootstrap-server", "election-type") if not opts.has(o)]
        if missing:
            raise Failed(f"Missing required option(s): {', '.join(missing)}")
        exclusive = ("topic", "all-topic-partitions", "path-to-json-file")
        if sum(opts.has(o) for o in exclusive) != 1:
            raise Failed(
                "One and only one of the following options is required: " + ", ".join(exclusive)
            )
        if opts.has("topic") and not opts.has("partition"):
            raise Failed("Missing required option(s): partition")
        if not opts.has("topic") and opts.has("partition"):
            raise Failed("Option partition is only allowed if topic is used")
        renamed(out, opts, "admin.config", "command-config")
        raw_type = opts.value("election-type") or ""
        election = raw_type.lower()
        if election not in ("preferred", "unclean"):
            raise Failed(
                f"Cannot parse argument '{raw_type}' of option election-type",
                "joptsimple.OptionArgumentConversionException",
            )
        if opts.has("path-to-json-file"):
            path = opts.value("path-to-json-file") or ""
            raise Failed(path, "java.nio.file.NoSuchFileException")
        if opts.has("admin.config") or opts.has("command-config"):
            path = opts.value("admin.config") or opts.value("command-config") or ""
            raise Failed(path, "java.nio.file.NoSuchFileException")
        partitions: list[TopicPartition] | None = None
        if opts.has("topic"):
            partitions = [
                TopicPartition(opts.value("topic") or "", int(opts.int_value("partition") or 0))
            ]
        try:
            results = ctx.admin.elect_leaders(election, partitions)
        except AdminError as exc:
            out.println("Timeout waiting for election results")
            raise Failed("Timeout waiting for election results") from exc
        kind = election.upper()
        succeeded = [tp for tp, error in results.items() if error is None]
        noop = [
            tp
            for tp, e in results.items()
            if e is not None and e.simple_name == "ElectionNotNeededException"
        ]
        failed = {tp: e for tp, e in results.items() if e is not None and tp not in noop}
        if succeeded:
            out.println(
                f"Successfully completed leader election ({kind}) for partitions "
                + ", ".join(f"{tp.topic}-{tp.partition}" for tp in succeeded)
            )
        if noop:
            out.println(
                "Valid replica already elected for partitions "
                + ", ".join(f"{tp.topic}-{tp.partition}" for tp in noop)
            )
        if failed:
            for tp, error in failed.items():
                out.println(
                    f"Error completing leader election ({kind}) for partition: "
                    f"{tp.topic}-{tp.partition}: {error}"
                )
            raise Failed(f"{len(failed)} replica(s) could not be elected")
    except Failed as exc:
        out.eprintln(str(exc))
        out.eprintln(f"{exc.java}: {exc}")
        raise ToolExit(1) from None
