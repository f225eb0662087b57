"""kafka-producer-perf-test.sh and kafka-consumer-perf-test.sh (ProducerPerformance.java,
ConsumerPerformance.java), run on cluster time: sends are paced by the cluster's clock, latency
is the cluster time from send to acknowledgement, rates are per second of cluster time."""

from __future__ import annotations

import argparse
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from engine.errors import KafkaError
from lessons.console.context import KAFKA_VERSION, ToolContext
from lessons.console.jopt import REQUIRED, Opt, OptionError, OptionParser
from lessons.console.output import Output, ToolExit
from lessons.console.tools.common import client_config, key_value_args, renamed

# A perf test runs inside one command, holding the cluster's host: 5000 records take about 2 s
# of wall time to simulate (python -m lessons.console.bench), so that is the most it runs.
MAX_RECORDS = 5_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def jfloat(value: float, places: int) -> str:
    """Java's %.Nf, including its Infinity and NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return f"{value:.{places}f}"


def ratio(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a)
    return a / b


def java_name(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "KafkaTimeoutError":
        return "org.apache.kafka.common.errors.TimeoutException"
    return "org.apache.kafka.common.errors." + name.removesuffix("Error") + "Exception"


class ArgError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ArgError(message)


# --- producer -------------------------------------------------------------------------------


def producer_parser() -> Parser:
    parser = Parser(
        prog="producer-performance",
        add_help=True,
        description="This tool is used to verify the producer performance. To enable "
        "transactions, you can specify a transaction id or set a transaction "
        "duration using --transaction-duration-ms.",
    )
    payload = parser.add_mutually_exclusive_group()
    parser.add_argument("--topic", metavar="TOPIC", help="produce messages to this topic")
    parser.add_argument(
        "--num-records",
        metavar="NUM-RECORDS",
        type=int,
        dest="num_records",
        help="number of messages to produce",
    )
    payload.add_argument(
        "--record-size",
        metavar="RECORD-SIZE",
        type=int,
        dest="record_size",
        help="message size in bytes.",
    )
    payload.add_argument(
        "--payload-file",
        metavar="PAYLOAD-FILE",
        dest="payload_file",
        help="file to read the message payloads from.",
    )
    payload.add_argument(
        "--payload-monotonic",
        action="store_true",
        dest="payload_monotonic",
        help="payload is monotonically increasing integer.",
    )
    parser.add_argument("--payload-delimiter", metavar="PAYLOAD-DELIMITER", default="\\n")
    parser.add_argument(
        "--throughput",
        metavar="THROUGHPUT",
        type=float,
        help="throttle maximum message throughput to *approximately* THROUGHPUT "
        "messages/sec. Set this to -1 to disable throttling.",
    )
    parser.add_argument(
        "--producer-props", nargs="+", metavar="PROP-NAME=PROP-VALUE", dest="producer_props"
    )
    parser.add_argument(
        "--command-property", nargs="+", metavar="PROP-NAME=PROP-VALUE", dest="command_property"
    )
    parser.add_argument("--producer.config", metavar="CONFIG-FILE", dest="producer_config")
    parser.add_argument("--command-config", metavar="CONFIG-FILE", dest="command_config")
    parser.add_argument("--print-metrics", action="store_true", dest="print_metrics")
    parser.add_argument("--transactional-id", metavar="TRANSACTIONAL-ID", dest="transactional_id")
    parser.add_argument(
        "--transaction-duration-ms",
        metavar="TRANSACTION-DURATION",
        type=int,
        dest="transaction_duration_ms",
    )
    return parser


def run_producer_perf(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    parser = producer_parser()
    if not args:
        out.out(parser.format_help())
        raise ToolExit(0)
    try:
        ns = parser.parse_args(args)
        for name, flag in (
            ("topic", "--topic"),
            ("num_records", "--num-records"),
            ("throughput", "--throughput"),
        ):
            if getattr(ns, name) is None:
                raise ArgError(f"argument {flag} is required")
        if ns.record_size is None and ns.payload_file is None and not ns.payload_monotonic:
            raise ArgError(
                "one of the arguments --record-size --payload-file --payload-monotonic is required"
            )
    except ArgError as exc:
        out.err(parser.format_usage())
        out.eprintln(f"producer-performance: error: {exc}")
        raise ToolExit(1) from None
    if ns.producer_props:
        out.eprintln(
            "Option --producer-props is deprecated and will be removed in a future version. Use "
            "--command-property instead."
        )
    for path in (ns.producer_config, ns.command_config, ns.payload_file):
        if path:
            out.eprintln(f'Exception in thread "main" java.nio.file.NoSuchFileException: {path}')
            raise ToolExit(1)
    props: dict[str, Any] = {}
    for prop in (ns.producer_props or []) + (ns.command_property or []):
        pieces = prop.split("=")
        if len(pieces) != 2:
            out.eprintln(
                'Exception in thread "main" java.lang.IllegalArgumentException: Invalid '
                f"property: {prop}"
            )
            raise ToolExit(1)
        props[pieces[0]] = pieces[1]
    if "bootstrap.servers" not in props:
        out.eprintln(
            'Exception in thread "main" org.apache.kafka.common.config.ConfigException: Missing '
            'required configuration "bootstrap.servers" which has no default value.'
        )
        raise ToolExit(1)
    if ns.num_records > MAX_RECORDS:
        out.eprintln(
            f"This simulator runs at most {MAX_RECORDS} records per perf test (it computes every "
            "request on the cluster's clock)."
        )
        raise ToolExit(1)
    props.setdefault("client.id", "perf-producer-client")
    transactional = ns.transactional_id or props.get("transactional.id")
    duration = ns.transaction_duration_ms
    if duration is not None and transactional is None:
        rng = random.Random(f"{ctx.admin.seed}/{ctx.session.runs}")
        transactional = f"performance-producer-{rng.getrandbits(128):032x}"
    if transactional is not None:
        props["transactional.id"] = transactional
        duration = duration if duration is not None else 3000
    admin = ctx.admin
    try:
        producer = admin.producer(client_config(out, admin.now_ms, props, "producer"))
        if transactional is not None:
            producer.init_transactions()
    except KafkaError as exc:
        out.eprintln(f'Exception in thread "main" org.apache.kafka.common.KafkaException: {exc}')
        raise ToolExit(1) from None
    stats = Stats(out, ns.num_records, admin.now_ms)
    rng = random.Random(0)
    start = admin.now_ms
    in_transaction = 0
    transaction_start = 0
    for i in range(ns.num_records):
        if ns.record_size is not None:
            payload = bytes(rng.randrange(26) + 65 for _ in range(ns.record_size))
        else:
            payload = str(i).encode()
        if transactional is not None and in_transaction == 0:
            producer.begin_transaction()
            transaction_start = admin.now_ms
        sent = admin.now_ms
        try:
            future = producer.send(ns.topic, value=payload)
        except KafkaError as exc:
            out.eprintln(f"{java_name(exc)}: {exc}")
            continue
        future.callbacks.append(stats.callback(sent, len(payload), admin))
        in_transaction += 1
        if (
            transactional is not None
            and duration is not None
            and duration <= sent - transaction_start
        ):
            producer.commit_transaction()
            in_transaction = 0
        if ns.throughput > 0:
            due = start + math.ceil((i + 1) * 1000 / ns.throughput)
            if due > admin.now_ms:
                admin.wait(due - admin.now_ms)
    if transactional is not None and in_transaction:
        producer.commit_transaction()
    producer.close()
    stats.print_total(admin.now_ms)


class Stats:
    """ProducerPerformance.Stats: a window line every 5 s of cluster time, then the total."""

    def __init__(self, out: Output, records: int, now_ms: int) -> None:
        self.out = out
        self.start = now_ms
        self.window_start = now_ms
        self.sampling = max(1, records // min(max(records, 1), 500000))
        self.latencies: list[int] = []
        self.iteration = 0
        self.count = self.bytes = self.total_latency = self.max_latency = 0
        self.window_count = self.window_bytes = self.window_latency = self.window_max = 0

    def callback(self, sent: int, size: int, admin: Any) -> Any:
        iteration = self.iteration
        self.iteration += 1

        def done(metadata: Any, error: Any) -> None:
            now = admin.now_ms
            if error is None:
                self.record(iteration, now - sent, size, now)
            else:
                self.out.eprintln(f"{java_name(error)}: {error}")

        return done

    def record(self, iteration: int, latency: int, size: int, now: int) -> None:
        self.count += 1
        self.bytes += size
        self.total_latency += latency
        self.max_latency = max(self.max_latency, latency)
        self.window_count += 1
        self.window_bytes += size
        self.window_latency += latency
        self.window_max = max(self.window_max, latency)
        if iteration % self.sampling == 0:
            self.latencies.append(latency)
        if now - self.window_start >= 5000:
            elapsed = now - self.window_start
            self.out.println(
                f"{self.window_count} records sent, "
                f"{jfloat(ratio(1000.0 * self.window_count, elapsed), 1)} records/sec "
                f"({jfloat(ratio(1000.0 * self.window_bytes, elapsed) / (1024 * 1024), 2)} "
                f"MB/sec), "
                f"{jfloat(ratio(self.window_latency, self.window_count), 1)} ms avg latency, "
                f"{jfloat(float(self.window_max), 1)} ms max latency."
            )
            self.window_start = now
            self.window_count = self.window_bytes = self.window_latency = self.window_max = 0

    def print_total(self, now: int) -> None:
        elapsed = now - self.start
        ordered = sorted(self.latencies)

        def percentile(p: float) -> int:
            return ordered[int(p * len(ordered))] if ordered else 0

        self.out.println(
            f"{self.count} records sent, {jfloat(ratio(1000.0 * self.count, elapsed), 1)} "
            f"records/sec ({jfloat(ratio(1000.0 * self.bytes, elapsed) / (1024 * 1024), 2)} "
            f"MB/sec), {jfloat(ratio(self.total_latency, self.count), 2)} ms avg latency, "
            f"{jfloat(float(self.max_latency), 2)} ms max latency, {percentile(0.5)} ms 50th, "
            f"{percentile(0.95)} ms 95th, {percentile(0.99)} ms 99th, {percentile(0.999)} "
            f"ms 99.9th."
        )


# --- consumer -------------------------------------------------------------------------------

CONSUMER_PARSER = OptionParser(
    [
        Opt(
            "bootstrap-server",
            "REQUIRED: The server(s) to connect to.",
            REQUIRED,
            described_as="server to connect to",
        ),
        Opt("topic", "REQUIRED: The topic to consume from.", REQUIRED, described_as="topic"),
        Opt("group", "The group id to consume on.", REQUIRED, described_as="gid"),
        Opt(
            "fetch-size",
            "The amount of data to fetch in a single request.",
            REQUIRED,
            "Integer",
            "size",
            "1048576",
        ),
        Opt(
            "from-latest",
            "If the consumer does not already have an established offset to "
            "consume from, start with the latest message present in the log rather than the "
            "earliest message.",
        ),
        Opt(
            "socket-buffer-size",
            "The size of the tcp RECV size.",
            REQUIRED,
            "Integer",
            "size",
            "2097152",
        ),
        Opt(
            "consumer.config",
            "(DEPRECATED) Consumer config properties file.",
            REQUIRED,
            described_as="config file",
        ),
        Opt(
            "command-config",
            "Consumer config properties file.",
            REQUIRED,
            described_as="config file",
        ),
        Opt(
            "command-property",
            "Consumer related configuration properties like client.id.",
            REQUIRED,
            described_as="prop",
        ),
        Opt("print-metrics", "Print out the metrics."),
        Opt(
            "show-detailed-stats",
            "If set, stats are reported for each reporting interval as "
            "configured by reporting-interval",
        ),
        Opt(
            "timeout",
            "The maximum allowed time in milliseconds between returned records.",
            REQUIRED,
            "Long",
            "milliseconds",
            "10000",
        ),
        Opt(
            "messages",
            "REQUIRED: The number of messages to send or consume",
            REQUIRED,
            "Long",
            "count",
        ),
        Opt(
            "reporting-interval",
            "Interval in milliseconds at which to print progress info.",
            REQUIRED,
            "Long",
            "interval_ms",
            "5000",
        ),
        Opt(
            "date-format",
            "The date format to use for formatting the time field. See "
            "java.text.SimpleDateFormat for options.",
            REQUIRED,
            described_as="date format",
            default="yyyy-MM-dd HH:mm:ss:SSS",
        ),
        Opt("hide-header", "If set, skips printing the header for the stats"),
    ]
)


def date_text(ms: int, pattern: str) -> str:
    moment = EPOCH + timedelta(milliseconds=ms)
    text = pattern
    for token, value in (
        ("yyyy", f"{moment.year:04d}"),
        ("MM", f"{moment.month:02d}"),
        ("dd", f"{moment.day:02d}"),
        ("HH", f"{moment.hour:02d}"),
        ("mm", f"{moment.minute:02d}"),
        ("ss", f"{moment.second:02d}"),
        ("SSS", f"{moment.microsecond // 1000:03d}"),
    ):
        text = text.replace(token, value)
    return text


def run_consumer_perf(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    try:
        opts = CONSUMER_PARSER.parse(args)
    except OptionError as exc:
        out.usage_and_exit(CONSUMER_PARSER, exc.message)
    if not args or opts.has("help"):
        out.usage_and_exit(CONSUMER_PARSER, "This tool is used to verify the consumer performance.")
    if opts.has("version"):
        out.println(KAFKA_VERSION)
        raise ToolExit(0)
    for required in ("bootstrap-server", "topic", "messages"):
        if not opts.has(required):
            out.usage_and_exit(
                CONSUMER_PARSER, f'Missing required argument "{CONSUMER_PARSER.by_name[required]}"'
            )
    renamed(out, opts, "consumer.config", "command-config")
    for name in ("consumer.config", "command-config"):
        if opts.has(name):
            out.eprintln(f"{opts.value(name)}")
            out.eprintln(f"java.nio.file.NoSuchFileException: {opts.value(name)}")
            raise ToolExit(1)
    admin = ctx.admin
    try:
        messages = int(opts.int_value("messages") or 0)
        timeout = int(opts.int_value("timeout") or 0)
        interval = int(opts.int_value("reporting-interval") or 0)
        fetch_size = opts.int_value("fetch-size")
    except OptionError as exc:
        out.eprintln(exc.message)
        raise ToolExit(1) from None
    if interval <= 0:
        out.eprintln("Reporting interval must be greater than 0.")
        raise ToolExit(1)
    group = opts.value("group")
    if group is None:
        rng = random.Random(f"{admin.seed}/{ctx.session.runs}/{admin.now_ms}")
        group = f"perf-consumer-{rng.randrange(100000)}"
    props: dict[str, Any] = key_value_args(opts.values("command-property"))
    props.update(
        {
            "bootstrap.servers": opts.value("bootstrap-server"),
            "group.id": group,
            "max.partition.fetch.bytes": fetch_size,
            "auto.offset.reset": "latest" if opts.has("from-latest") else "earliest",
            "check.crcs": "false",
        }
    )
    props.setdefault("client.id", "perf-consumer-client")
    pattern = opts.value("date-format") or "yyyy-MM-dd HH:mm:ss:SSS"
    if not opts.has("hide-header"):
        extra = ", rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
        if opts.has("show-detailed-stats"):
            out.println(
                f"time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, "
                f"nMsg.sec{extra}"
            )
        else:
            out.println(
                f"start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, "
                f"nMsg.sec{extra}"
            )
    try:
        consumer = admin.consumer(client_config(out, admin.now_ms, props, "consumer"))
        start = admin.now_ms
        consumer.subscribe([opts.value("topic") or ""])
        read = bytes_read = 0
        join_ms = 0
        joined = False
        last_consumed = start
        now = start
        while read < messages and now - last_consumed <= timeout:
            records = consumer.poll(timeout_ms=100)
            now = admin.now_ms
            if not joined and consumer.assignment():
                joined = True
                join_ms = now - start
            if records:
                last_consumed = now
            for record in records:
                read += 1
                bytes_read += len(record.key or b"") + len(record.value or b"")
        if read < messages:
            out.println(
                f"WARNING: Exiting before consuming the expected number of messages: timeout "
                f"({timeout} ms) exceeded. You can use the --timeout option to increase the "
                f"timeout."
            )
        end = admin.now_ms
        consumer.close()
    except KafkaError as exc:
        out.eprintln(str(exc))
        raise ToolExit(1) from None
    elapsed_s = (end - start) / 1000.0
    fetch_ms = (end - start) - join_ms
    mb = bytes_read / (1024 * 1024)
    if not opts.has("show-detailed-stats"):
        out.println(
            f"{date_text(start, pattern)}, {date_text(end, pattern)}, {jfloat(mb, 4)}, "
            f"{jfloat(ratio(mb, elapsed_s), 4)}, {read}, {jfloat(ratio(read, elapsed_s), 4)}, "
            f"{join_ms}, {fetch_ms}, {jfloat(ratio(mb, fetch_ms / 1000.0), 4)}, "
            f"{jfloat(ratio(read, fetch_ms / 1000.0), 4)}"
        )
