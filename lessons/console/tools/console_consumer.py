"""kafka-console-consumer.sh: ConsoleConsumer, ConsoleConsumerOptions and DefaultMessageFormatter
(tools/src/main/java/org/apache/kafka/tools/consumer/)."""

from __future__ import annotations

import random
from typing import Any

from engine import TopicPartition
from engine.errors import KafkaError
from lessons.console.context import KAFKA_VERSION, ToolContext, include_list
from lessons.console.jopt import REQUIRED, Opt, OptionError, OptionParser, OptionSet
from lessons.console.output import Output, ToolExit
from lessons.console.tools.common import client_config, key_value_args, log_line, renamed

LOGGER = "org.apache.kafka.tools.consumer.ConsoleConsumer"

FORMATTER_HELP = (
    "The properties to initialize the message formatter. Default properties include: \n"
    " print.timestamp=true|false\n print.key=true|false\n print.offset=true|false\n"
    " print.epoch=true|false\n print.partition=true|false\n print.headers=true|false\n"
    " print.value=true|false\n key.separator=<key.separator>\n line.separator=<line.separator>\n"
    " headers.separator=<line.separator>\n null.literal=<null.literal>\n"
    " key.deserializer=<key.deserializer>\n value.deserializer=<value.deserializer>\n"
    " header.deserializer=<header.deserializer>\n\nUsers can also pass in customized properties "
    "for their formatter; more specifically, users can pass in properties keyed with "
    "'key.deserializer.', 'value.deserializer.' and 'headers.deserializer.' prefixes to configure "
    "their deserializers."
)

PARSER = OptionParser(
    [
        Opt("topic", "The topic to consume on.", REQUIRED, described_as="topic"),
        Opt(
            "include",
            "Regular expression specifying list of topics to include for consumption.",
            REQUIRED,
            described_as="Java regex (String)",
        ),
        Opt(
            "partition",
            "The partition to consume from. Consumption starts from the end of the "
            "partition unless '--offset' is specified.",
            REQUIRED,
            "Integer",
            "partition",
        ),
        Opt(
            "offset",
            "The offset to consume from (a non-negative number), or 'earliest' which "
            "means from beginning, or 'latest' which means from end",
            REQUIRED,
            described_as="consume offset",
            default="latest",
        ),
        Opt(
            "consumer-property",
            "(DEPRECATED) A mechanism to pass user-defined properties in "
            "the form key=value to the consumer.",
            REQUIRED,
            described_as="consumer_prop",
        ),
        Opt(
            "command-property",
            "A mechanism to pass user-defined properties in the form key=value to the consumer.",
            REQUIRED,
            described_as="consumer_prop",
        ),
        Opt(
            "consumer.config",
            "(DEPRECATED) Consumer config properties file. Note that "
            "[command-property] takes precedence over this config.",
            REQUIRED,
            described_as="config file",
        ),
        Opt(
            "command-config",
            "Consumer config properties file. Note that [command-property] "
            "takes precedence over this config.",
            REQUIRED,
            described_as="config file",
        ),
        Opt(
            "formatter",
            "The name of a class to use for formatting kafka messages for display.",
            REQUIRED,
            described_as="class",
            default="org.apache.kafka.tools.consumer.DefaultMessageFormatter",
        ),
        Opt("property", "(DEPRECATED) " + FORMATTER_HELP, REQUIRED, described_as="prop"),
        Opt("formatter-property", FORMATTER_HELP, REQUIRED, described_as="prop"),
        Opt(
            "formatter-config",
            "Config properties file to initialize the message formatter. "
            "Note that [formatter-property] takes precedence over this config.",
            REQUIRED,
            described_as="config file",
        ),
        Opt(
            "from-beginning",
            "If the consumer does not already have an established offset to "
            "consume from, start with the earliest message present in the log rather than the "
            "latest message.",
        ),
        Opt(
            "max-messages",
            "The maximum number of messages to consume before exiting. If not "
            "set, consumption is continual.",
            REQUIRED,
            "Integer",
            "num_messages",
        ),
        Opt(
            "timeout-ms",
            "If specified, exit if no message is available for consumption for "
            "the specified interval.",
            REQUIRED,
            "Long",
            "timeout_ms",
        ),
        Opt(
            "skip-message-on-error",
            "If there is an error when processing a message, skip it instead of halt.",
        ),
        Opt(
            "bootstrap-server",
            "REQUIRED: The server(s) to connect to.",
            REQUIRED,
            described_as="server to connect to",
        ),
        Opt("key-deserializer", "", REQUIRED, described_as="deserializer for key"),
        Opt("value-deserializer", "", REQUIRED, described_as="deserializer for values"),
        Opt(
            "enable-systest-events",
            "Log lifecycle events of the consumer in addition to "
            "logging consumed messages. (This is specific for system tests.)",
        ),
        Opt(
            "isolation-level",
            "Set to read_committed in order to filter out transactional "
            "messages which are not committed. Set to read_uncommitted to read all messages.",
            REQUIRED,
            default="read_uncommitted",
        ),
        Opt(
            "group",
            "The consumer group id of the consumer.",
            REQUIRED,
            described_as="consumer group id",
        ),
    ]
)

EARLIEST, LATEST = -2, -1


class Formatter:
    """DefaultMessageFormatter's `writeTo`."""

    def __init__(self, props: dict[str, str]) -> None:
        def flag(name: str, default: bool) -> bool:
            return props[name].strip().lower() == "true" if name in props else default

        self.timestamp = flag("print.timestamp", False)
        self.key = flag("print.key", False)
        self.offset = flag("print.offset", False)
        self.epoch = flag("print.epoch", False)
        self.partition = flag("print.partition", False)
        self.headers = flag("print.headers", False)
        self.value = flag("print.value", True)
        self.delivery = flag("print.delivery", False)
        self.key_separator = props.get("key.separator", "\t")
        self.line_separator = props.get("line.separator", "\n")
        self.headers_separator = props.get("headers.separator", ",")
        self.null_literal = props.get("null.literal", "null")

    def write(self, record: Any, timestamp_type: str, leader_epoch: int | None) -> str:
        parts: list[str] = []
        if self.timestamp:
            parts.append(f"{timestamp_type}:{record.timestamp}")
        if self.partition:
            parts.append(f"Partition:{record.partition}")
        if self.offset:
            parts.append(f"Offset:{record.offset}")
        if self.delivery:
            parts.append("Delivery:NOT_PRESENT")
        if self.epoch:
            parts.append(f"Epoch:{leader_epoch if leader_epoch is not None else 'NOT_PRESENT'}")
        if self.headers:
            if not record.headers:
                parts.append("NO_HEADERS")
            else:
                parts.append(
                    self.headers_separator.join(f"{k}:{self._text(v)}" for k, v in record.headers)
                )
        if self.key:
            parts.append(self._text(record.key))
        if self.value:
            parts.append(self._text(record.value))
        # Every field is followed by key.separator when another follows, else line.separator.
        return self.key_separator.join(parts) + self.line_separator if parts else ""

    def _text(self, data: bytes | None) -> str:
        if data is None:
            return self.null_literal
        return data.decode("utf-8", errors="replace")


def run(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    try:
        opts = PARSER.parse(args)
    except OptionError as exc:
        out.usage_and_exit(PARSER, exc.message)
    if opts.has("help") or not args:
        out.usage_and_exit(
            PARSER,
            "This tool helps to read data from Kafka topics and outputs it to standard output.",
        )
    if opts.has("version"):
        out.println(KAFKA_VERSION)
        raise ToolExit(0)
    check_required(out, opts)
    renamed(out, opts, "consumer-property", "command-property")
    renamed(out, opts, "consumer.config", "command-config")
    renamed(out, opts, "property", "formatter-property")
    for name in ("consumer.config", "command-config", "formatter-config"):
        if opts.has(name):
            out.eprintln(
                f'Exception in thread "main" java.nio.file.NoSuchFileException: {opts.value(name)}'
            )
            raise ToolExit(1)
    try:
        extra = key_value_args(opts.values("consumer-property") + opts.values("command-property"))
        props, offset = build(ctx, opts, extra)
        max_messages = opts.int_value("max-messages")
        timeout_ms = opts.int_value("timeout-ms")
        partition = opts.int_value("partition")
    except OptionError as exc:
        out.usage_and_exit(PARSER, exc.message)
    formatter = Formatter(
        key_value_args(opts.values("property") + opts.values("formatter-property"))
    )
    config = client_config(out, ctx.admin.now_ms, props, "consumer")
    try:
        consumer = ctx.admin.consumer(config)
    except KafkaError as exc:
        out.eprintln(f'Exception in thread "main" org.apache.kafka.common.KafkaException: {exc}')
        raise ToolExit(1) from None
    process = ConsumerProcess(ctx, consumer, formatter, max_messages, timeout_ms)
    topic = opts.value("topic")
    try:
        if topic is not None and partition is not None:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            if offset == EARLIEST:
                consumer.seek_to_beginning([tp])
            elif offset == LATEST:
                consumer.seek_to_end([tp])
            else:
                consumer.seek(tp, offset)
        elif topic is not None:
            consumer.subscribe([topic])
        else:
            pattern = include_list(opts.value("include") or "")
            names = [
                n for n in ctx.admin.list_topics(include_internal=False) if pattern.fullmatch(n)
            ]
            consumer.subscribe(names)
    except (KafkaError, ValueError) as exc:
        process.fail(out, exc)
        raise ToolExit(1) from None
    if timeout_ms is not None:
        process.run_bounded(out)
        raise ToolExit(process.exit_code)
    ctx.session.foreground = process
    process.tick(out)


def check_required(out: Output, opts: OptionSet) -> None:
    if sum(opts.has(o) for o in ("topic", "include")) != 1:
        out.usage_and_exit(PARSER, "Exactly one of --include/--topic is required. ")
    if opts.has("partition"):
        if not opts.has("topic"):
            out.usage_and_exit(PARSER, "The topic is required when partition is specified.")
        if opts.has("from-beginning") and opts.has("offset"):
            out.usage_and_exit(
                PARSER, "Options from-beginning and offset cannot be specified together."
            )
    elif opts.has("offset"):
        out.usage_and_exit(PARSER, "The partition is required when offset is specified.")
    if not opts.has("bootstrap-server"):
        out.usage_and_exit(
            PARSER, f'Missing required argument "{PARSER.by_name["bootstrap-server"]}"'
        )


def build(ctx: ToolContext, opts: OptionSet, extra: dict[str, str]) -> tuple[dict[str, Any], int]:
    out = ctx.out
    groups = []
    if opts.has("group"):
        groups.append(opts.value("group") or "")
    if "group.id" in extra and extra["group.id"] not in groups:
        groups.append(extra["group.id"])
    if len(groups) > 1:
        out.usage_and_exit(
            PARSER,
            "The group ids provided in different places (directly using '--group', via "
            "'--consumer-property', or via '--consumer.config') do not match. Detected group ids: "
            + ", ".join(f"'{g}'" for g in groups),
        )
    if groups and opts.has("partition"):
        out.usage_and_exit(PARSER, "Options group and partition cannot be specified together.")
    props: dict[str, Any] = dict(extra)
    if "auto.offset.reset" in props:
        if opts.has("from-beginning") and props["auto.offset.reset"] != "earliest":
            out.eprintln(
                f"Can't simultaneously specify --from-beginning and 'auto.offset.reset="
                f"{props['auto.offset.reset']}', please remove one option"
            )
            raise ToolExit(1)
    else:
        props["auto.offset.reset"] = "earliest" if opts.has("from-beginning") else "latest"
    props["bootstrap.servers"] = opts.value("bootstrap-server")
    props.setdefault("client.id", "console-consumer")
    if opts.has("isolation-level") or "isolation.level" not in props:
        props["isolation.level"] = opts.value("isolation-level")
    if not groups:
        # Kafka draws a random number; the console draws it from the cluster's seed and the
        # session's history, so a replay names the group the same way.
        rng = random.Random(f"{ctx.admin.seed}/{ctx.session.runs}/{ctx.admin.now_ms}")
        props["group.id"] = f"console-consumer-{rng.randrange(100000)}"
        props.setdefault("enable.auto.commit", "false")
    else:
        props["group.id"] = groups[0]
    offset = LATEST
    if opts.has("offset"):
        text = (opts.value("offset") or "").lower()
        if text == "earliest":
            offset = EARLIEST
        elif text == "latest":
            offset = LATEST
        else:
            raw = opts.value("offset") or ""
            if not raw.lstrip("-").isdigit() or int(raw) < 0:
                out.usage_and_exit(
                    PARSER,
                    f"The provided offset value '{raw}' is incorrect. Valid values are 'earliest', "
                    "'latest', or a non-negative long.",
                )
            offset = int(raw)
    elif opts.has("from-beginning"):
        offset = EARLIEST
    return props, offset


class ConsumerProcess:
    """A running console consumer: prints records as they arrive, stops at --max-messages, on
    --timeout-ms without records, or when interrupted, then prints its total on stderr."""

    prompt = ""

    def __init__(
        self,
        ctx: ToolContext,
        consumer: Any,
        formatter: Formatter,
        max_messages: int | None,
        timeout_ms: int | None,
    ) -> None:
        self.ctx = ctx
        self.consumer = consumer
        self.formatter = formatter
        self.max_messages = max_messages if max_messages is not None else -1
        self.timeout_ms = timeout_ms
        self.count = 0
        self.done = False
        self.exit_code = 0  # ConsoleConsumer exits 0 even when a poll failed (it logs the error)
        self.timestamp_types: dict[str, str] = {}

    def _wanted(self) -> int | None:
        return None if self.max_messages < 0 else self.max_messages - self.count

    def _poll(self, out: Output, timeout_ms: int) -> bool:
        """One poll; prints what came. False when the consumer had to stop."""
        wanted = self._wanted()
        try:
            records = self.consumer.poll(timeout_ms=timeout_ms, max_records=wanted)
        except (KafkaError, ValueError) as exc:
            self.fail(out, exc)
            return False
        for record in records:
            self.count += 1
            out.out(self.formatter.write(record, self._timestamp_type(record.topic), None))
        if wanted is not None and self.count >= self.max_messages:
            self._finish(out)
            return False
        return True

    def _timestamp_type(self, topic: str) -> str:
        """The topic's message.timestamp.type (CreateTime or LogAppendTime), as the record's
        timestamp type reads."""
        if topic not in self.timestamp_types:
            value = self.ctx.admin.topic_config_value(topic, "message.timestamp.type")
            self.timestamp_types[topic] = value or "CreateTime"
        return self.timestamp_types[topic]

    def run_bounded(self, out: Output) -> None:
        """--timeout-ms: ConsumerWrapper.receive on cluster time. Each poll blocks up to the
        timeout; once more than the timeout has passed without a record the consumer stops."""
        limit = max(int(self.timeout_ms or 0), 0)
        started = self.ctx.admin.now_ms
        while not self.done:
            before = self.count
            if not self._poll(out, max(limit, 1)):
                return
            if self.count > before:
                started = self.ctx.admin.now_ms
            elif self.ctx.admin.now_ms - started > limit:
                log_line(
                    out,
                    self.ctx.admin.now_ms,
                    "ERROR",
                    "Error processing message, terminating consumer process: ",
                    LOGGER,
                )
                out.eprintln("org.apache.kafka.common.errors.TimeoutException")
                self._finish(out)
                return

    def tick(self, out: Output) -> None:
        """The live clock moved: take what arrived (polling without blocking)."""
        if not self.done:
            self._poll(out, 0)

    def feed(self, line: str, out: Output) -> None:
        """Typing into a tailing consumer does nothing: it does not read standard input (the
        terminal, not the tool, shows what was typed)."""

    def end_input(self, out: Output) -> None:
        """^D: the consumer does not read standard input, so it keeps running."""

    def interrupt(self, out: Output) -> None:
        self._finish(out)

    def fail(self, out: Output, exc: Exception) -> None:
        log_line(
            out,
            self.ctx.admin.now_ms,
            "ERROR",
            "Error processing message, terminating consumer process: ",
            LOGGER,
        )
        out.eprintln(f"{_java_name(exc)}: {exc}")
        self._finish(out)

    def _finish(self, out: Output) -> None:
        if self.done:
            return
        try:
            self.consumer.close()
        finally:
            self.done = True
            out.eprintln(f"Processed a total of {self.count} messages")


def _java_name(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "KafkaTimeoutError":
        return "org.apache.kafka.common.errors.TimeoutException"
    if isinstance(exc, ValueError):
        return "java.lang.IllegalArgumentException"
    return "org.apache.kafka.common.errors." + name.removesuffix("Error") + "Exception"
