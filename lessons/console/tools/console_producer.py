"""kafka-console-producer.sh: ConsoleProducer and its LineMessageReader
(tools/src/main/java/org/apache/kafka/tools/ConsoleProducer.java, LineMessageReader.java)."""

from __future__ import annotations

from typing import Any

from lessons.console.admin import AdminError
from lessons.console.context import KAFKA_VERSION, ToolContext, validate_bootstrap
from lessons.console.jopt import OPTIONAL, REQUIRED, Opt, OptionError, OptionParser
from lessons.console.output import Output, ToolExit
from lessons.console.tools.common import client_config, key_value_args, log_line, renamed

CALLBACK_LOGGER = "org.apache.kafka.clients.producer.internals.ErrorLoggingCallback"

READER_HELP = (
    "A mechanism to pass user-defined properties in the form key=value to the message reader. "
    "This allows custom configuration for a user-defined message reader.\nDefault properties "
    "include:\n parse.key=false\n parse.headers=false\n ignore.error=false\n key.separator=\\t\n"
    " headers.delimiter=\\t\n headers.separator=,\n headers.key.separator=:\n null.marker=   "
    "When set, any fields (key, value and headers) equal to this will be replaced by null\n"
    "Default parsing pattern when:\n parse.headers=true and parse.key=true:\n  "
    '"h1:v1,h2:v2...\\tkey\\tvalue"\n parse.key=true:\n  "key\\tvalue"\n parse.headers=true:\n'
    '  "h1:v1,h2:v2...\\tvalue"'
)

PARSER = OptionParser(
    [
        Opt(
            "topic",
            "REQUIRED: The topic name to produce messages to.",
            REQUIRED,
            described_as="topic",
        ),
        Opt(
            "bootstrap-server",
            "REQUIRED: The server(s) to connect to. The broker list string "
            "in the form HOST1:PORT1,HOST2:PORT2.",
            REQUIRED,
            described_as="server to connect to",
        ),
        Opt(
            "sync",
            "If set message send requests to the brokers are synchronously, one at a "
            "time as they arrive.",
        ),
        Opt(
            "compression-codec",
            "The compression codec: either 'none', 'gzip', 'snappy', "
            "'lz4', or 'zstd'.If specified without value, then it defaults to 'gzip'",
            OPTIONAL,
            described_as="compression-codec",
        ),
        Opt(
            "batch-size",
            "Number of messages to send in a single batch if they are not being "
            "sent synchronously. please note that this option will be replaced if "
            "max-partition-memory-bytes is also set",
            REQUIRED,
            "Integer",
            "size",
            "16384",
        ),
        Opt(
            "message-send-max-retries",
            "Brokers can fail receiving the message for multiple "
            "reasons, and being unavailable transiently is just one of them. This property "
            "specifies the number of retries before the producer give up and drop this message. "
            "This is the option to control `retries` in producer configs.",
            REQUIRED,
            "Integer",
            default="3",
        ),
        Opt(
            "retry-backoff-ms",
            "Before each retry, the producer refreshes the metadata of "
            "relevant topics. Since leader election takes a bit of time, this property specifies "
            "the amount of time that the producer waits before refreshing the metadata. This is "
            "the option to control `retry.backoff.ms` in producer configs.",
            REQUIRED,
            "Long",
            default="100",
        ),
        Opt(
            "timeout",
            "If set and the producer is running in asynchronous mode, this gives the "
            "maximum amount of time a message will queue awaiting sufficient batch size. The "
            "value is given in ms. This is the option to control `linger.ms` in producer "
            "configs.",
            REQUIRED,
            "Long",
            "timeout_ms",
            "1000",
        ),
        Opt(
            "request-required-acks",
            "The required `acks` of the producer requests",
            REQUIRED,
            described_as="request required acks",
            default="-1",
        ),
        Opt(
            "request-timeout-ms",
            "The ack timeout of the producer requests. Value must be non-negative and non-zero.",
            REQUIRED,
            "Integer",
            "request timeout ms",
            "1500",
        ),
        Opt(
            "metadata-expiry-ms",
            "The period of time in milliseconds after which we force a "
            "refresh of metadata even if we haven't seen any leadership changes. This is the "
            "option to control `metadata.max.age.ms` in producer configs.",
            REQUIRED,
            "Long",
            "metadata expiration interval",
            "300000",
        ),
        Opt(
            "max-block-ms",
            "The max time that the producer will block for during a send request.",
            REQUIRED,
            "Long",
            "max block on send",
            "60000",
        ),
        Opt(
            "max-memory-bytes",
            "The total memory used by the producer to buffer records "
            "waiting to be sent to the server. This is the option to control `buffer.memory` in "
            "producer configs.",
            REQUIRED,
            "Long",
            "total memory in bytes",
            "33554432",
        ),
        Opt(
            "max-partition-memory-bytes",
            "The buffer size allocated for a partition. When "
            "records are received which are smaller than this size the producer will attempt to "
            "optimistically group them together until this size is reached. This is the option "
            "to control `batch.size` in producer configs.",
            REQUIRED,
            "Integer",
            "memory in bytes per partition",
            "16384",
        ),
        Opt(
            "line-reader",
            "The class name of the class to use for reading lines from standard "
            "in. By default each line is read as a separate message.",
            REQUIRED,
            described_as="reader_class",
            default="org.apache.kafka.tools.LineMessageReader",
        ),
        Opt(
            "socket-buffer-size",
            "The size of the tcp RECV size. This is the option to control "
            "`send.buffer.bytes` in producer configs.",
            REQUIRED,
            "Integer",
            "size",
            "102400",
        ),
        Opt("property", "(DEPRECATED) " + READER_HELP, REQUIRED, described_as="prop"),
        Opt("reader-property", READER_HELP, REQUIRED, described_as="prop"),
        Opt(
            "reader-config",
            "Config properties file for the message reader. Note that "
            "[property] takes precedence over this config.",
            REQUIRED,
            described_as="config file",
        ),
        Opt(
            "producer-property",
            "(DEPRECATED) A mechanism to pass user-defined properties in "
            "the form key=value to the producer.",
            REQUIRED,
            described_as="producer_prop",
        ),
        Opt(
            "command-property",
            "A mechanism to pass user-defined properties in the form key=value to the producer.",
            REQUIRED,
            described_as="producer_prop",
        ),
        Opt(
            "producer.config",
            "(DEPRECATED) Producer config properties file. Note that "
            "[command-property] takes precedence over this config.",
            REQUIRED,
            described_as="config file",
        ),
        Opt(
            "command-config",
            "Producer config properties file. Note that [command-property] "
            "takes precedence over this config.",
            REQUIRED,
            described_as="config file",
        ),
    ]
)

OPTION_TO_CONFIG = (
    ("timeout", "linger.ms"),
    ("request-required-acks", "acks"),
    ("request-timeout-ms", "request.timeout.ms"),
    ("message-send-max-retries", "retries"),
    ("retry-backoff-ms", "retry.backoff.ms"),
    ("socket-buffer-size", "send.buffer.bytes"),
    ("max-memory-bytes", "buffer.memory"),
    ("batch-size", "batch.size"),
    ("max-partition-memory-bytes", "batch.size"),
    ("metadata-expiry-ms", "metadata.max.age.ms"),
    ("max-block-ms", "max.block.ms"),
)


class LineReader:
    """Kafka's LineMessageReader: one record per line, key and headers split off when asked."""

    def __init__(self, props: dict[str, str]) -> None:
        def flag(name: str) -> bool:
            return props.get(name, "false").strip().lower() == "true"

        self.parse_key = flag("parse.key")
        self.parse_headers = flag("parse.headers")
        self.ignore_error = flag("ignore.error")
        self.key_separator = props.get("key.separator", "\t")
        self.headers_delimiter = props.get("headers.delimiter", "\t")
        self.headers_separator = props.get("headers.separator", ",")
        self.headers_key_separator = props.get("headers.key.separator", ":")
        self.null_marker = props.get("null.marker")
        self.line_number = 0
        pairs = (
            (
                "headers.delimiter",
                self.headers_delimiter,
                "headers.separator",
                self.headers_separator,
            ),
            (
                "headers.delimiter",
                self.headers_delimiter,
                "headers.key.separator",
                self.headers_key_separator,
            ),
            (
                "headers.separator",
                self.headers_separator,
                "headers.key.separator",
                self.headers_key_separator,
            ),
        )
        for a, va, b, vb in pairs:
            if va == vb:
                raise ValueError(f"{a} and {b} may not be equal")
        if self.null_marker is not None:
            for name, value in (
                ("key.separator", self.key_separator),
                ("headers.separator", self.headers_separator),
                ("headers.delimiter", self.headers_delimiter),
                ("headers.key.separator", self.headers_key_separator),
            ):
                if value == self.null_marker:
                    raise ValueError(f"null.marker and {name} may not be equal")

    def record(
        self, line: str
    ) -> tuple[bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]:
        self.line_number += 1
        headers = self._part(
            self.parse_headers, line, 0, self.headers_delimiter, "headers delimiter"
        )
        header_offset = 0 if headers is None else len(headers) + len(self.headers_delimiter)
        key = self._part(self.parse_key, line, header_offset, self.key_separator, "key separator")
        key_offset = 0 if key is None else len(key) + len(self.key_separator)
        value = line[header_offset + key_offset :]
        parsed_headers: tuple[tuple[str, bytes | None], ...] = ()
        if headers is not None and headers != self.null_marker:
            parsed_headers = tuple(self._headers(headers))
        return (
            key.encode() if key is not None and key != self.null_marker else None,
            value.encode() if value != self.null_marker else None,
            parsed_headers,
        )

    def _part(self, enabled: bool, line: str, start: int, mark: str, name: str) -> str | None:
        if not enabled:
            return None
        index = line.find(mark, start)
        if index == -1:
            if self.ignore_error:
                return None
            raise ValueError(f"No {name} found on line number {self.line_number}: '{line}'")
        return line[start:index]

    def _headers(self, text: str) -> list[tuple[str, bytes | None]]:
        import re

        out: list[tuple[str, bytes | None]] = []
        for pair in re.split(self.headers_separator, text):
            index = pair.find(self.headers_key_separator)
            if index == -1:
                if self.ignore_error:
                    out.append((pair, None))
                    continue
                raise ValueError(
                    f"No header key separator found in pair '{pair}' on line number "
                    f"{self.line_number}"
                )
            key = pair[:index]
            if key == self.null_marker:
                raise ValueError(
                    f"Header keys should not be equal to the null marker '{self.null_marker}' as "
                    "they can't be null"
                )
            value = pair[index + len(self.headers_key_separator) :]
            out.append((key, None if value == self.null_marker else value.encode()))
        return out


def run(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    try:
        opts = PARSER.parse(args)
    except OptionError as exc:
        out.usage_and_exit(PARSER, exc.message)
    if opts.has("help") or not args:
        out.usage_and_exit(
            PARSER, "This tool helps to read data from standard input and publish it to Kafka."
        )
    if opts.has("version"):
        out.println(KAFKA_VERSION)
        raise ToolExit(0)
    if not opts.has("topic"):
        out.usage_and_exit(PARSER, f'Missing required argument "{PARSER.by_name["topic"]}"')
    problem = validate_bootstrap(opts.value("bootstrap-server"))
    if problem:
        out.usage_and_exit(PARSER, problem)
    renamed(out, opts, "producer-property", "command-property")
    renamed(out, opts, "producer.config", "command-config")
    renamed(out, opts, "property", "reader-property")
    for name in ("producer.config", "command-config", "reader-config"):
        if opts.has(name):
            out.eprintln(f"java.nio.file.NoSuchFileException: {opts.value(name)}")
            raise ToolExit(1)
    try:
        props: dict[str, Any] = key_value_args(
            opts.values("producer-property") + opts.values("command-property")
        )
        codec = "none"
        if opts.has("compression-codec"):
            codec = opts.value("compression-codec") or "gzip"
        props["bootstrap.servers"] = opts.value("bootstrap-server")
        props["compression.type"] = codec
        props.setdefault("client.id", "console-producer")
        for option, key in OPTION_TO_CONFIG:
            if opts.has(option) or key not in props:
                value = (
                    opts.int_value(option)
                    if PARSER.by_name[option].type != "String"
                    else opts.value(option)
                )
                props[key] = value
        reader = LineReader(
            key_value_args(opts.values("property") + opts.values("reader-property"))
        )
    except OptionError as exc:
        out.eprintln(exc.message)
        raise ToolExit(1) from None
    except ValueError as exc:
        out.eprintln(f"org.apache.kafka.common.KafkaException: {exc}")
        raise ToolExit(1) from None
    config = client_config(out, ctx.admin.now_ms, props, "producer")
    try:
        producer = ctx.admin.producer(config)
    except Exception as exc:  # the engine refused the config: KafkaProducer's constructor throws
        out.eprintln(f"org.apache.kafka.common.config.ConfigException: {exc}")
        raise ToolExit(1) from None
    process = ProducerProcess(ctx, producer, reader, opts.value("topic") or "", opts.has("sync"))
    if ctx.stdin is not None:
        for line in ctx.stdin:
            process.feed(line, out)
            if process.done:
                break
        if not process.done:
            process.end_input(out)
        raise ToolExit(process.exit_code)
    # Reading a terminal, the tool prompts with ">" before each line: the session's prompt
    # (the console shows it in front of the input and in its echo of each line).
    ctx.session.foreground = process


class ProducerProcess:
    """The running console producer: each line is a record, end of input closes the producer."""

    def __init__(
        self, ctx: ToolContext, producer: Any, reader: LineReader, topic: str, sync: bool
    ) -> None:
        self.ctx = ctx
        self.producer = producer
        self.reader = reader
        self.topic = topic
        self.sync = sync
        self.pending: list[tuple[Any, bytes | None, bytes | None]] = []
        self.done = False
        self.exit_code = 0
        self.interactive = ctx.stdin is None
        self.prompt = ">"

    def feed(self, line: str, out: Output) -> None:
        try:
            key, value, headers = self.reader.record(line)
        except ValueError as exc:
            out.eprintln(f"org.apache.kafka.common.KafkaException: {exc}")
            self._close(out)
            self.exit_code = 1
            return
        try:
            future = self.producer.send(self.topic, value=value, key=key, headers=headers or None)
        except Exception as exc:  # send() itself failed (an unknown partition, a closed client)
            self._report(out, key, value, exc)
            return
        if self.sync:
            try:
                future.get()
            except Exception as exc:
                out.eprintln(f"{_java_name(exc)}: {exc}")
                self._close(out)
                self.exit_code = 1
                return
        else:
            self.pending.append((future, key, value))
        self._report_done(out)

    def tick(self, out: Output) -> None:
        self._report_done(out)

    def end_input(self, out: Output) -> None:
        if self.interactive:
            out.println()
        self._close(out)

    def interrupt(self, out: Output) -> None:
        if self.interactive:
            out.println()
        self._close(out)

    def _close(self, out: Output) -> None:
        if self.done:
            return
        self.producer.close()
        self._report_done(out)
        self.done = True

    def _report_done(self, out: Output) -> None:
        still = []
        for future, key, value in self.pending:
            if not future.done():
                still.append((future, key, value))
            elif future.exception is not None:
                self._report(out, key, value, future.exception)
        self.pending = still

    def _report(self, out: Output, key: bytes | None, value: bytes | None, exc: Exception) -> None:
        key_text = "null" if key is None else f"{len(key)} bytes"
        value_text = "null" if value is None else f"{len(value)} bytes"
        log_line(
            out,
            self.ctx.admin.now_ms,
            "ERROR",
            f"Error when sending message to topic {self.topic} with key: {key_text}, value: "
            f"{value_text} with error: ",
            CALLBACK_LOGGER,
        )
        out.eprintln(f"{_java_name(exc)}: {exc}")


def _java_name(exc: Exception) -> str:
    if isinstance(exc, AdminError):
        return exc.java_class
    name = type(exc).__name__
    if name == "KafkaTimeoutError":
        return "org.apache.kafka.common.errors.TimeoutException"
    return "org.apache.kafka.common.errors." + name.removesuffix("Error") + "Exception"
