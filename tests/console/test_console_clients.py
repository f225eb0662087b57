"""kafka-console-producer.sh (ConsoleProducer, LineMessageReader) and kafka-console-consumer.sh
(ConsoleConsumer, DefaultMessageFormatter)."""

from __future__ import annotations

from lessons.console import END_OF_INPUT, INTERRUPT
from tests.console.conftest import Console


def _values(console: Console, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    out = []
    for p in console.cluster.describe_topic(topic).partitions:
        out += [(r.key, r.value) for r in console.cluster.read(topic, p.partition)]
    return sorted(out, key=repr)


def test_piped_lines_become_keyed_records(orders: Console) -> None:
    assert _values(orders, "orders") == [(b"k1", b"one"), (b"k1", b"three"), (b"k2", b"two")]
    keyed = {
        p.partition: [r.key for r in orders.cluster.read("orders", p.partition)]
        for p in orders.cluster.describe_topic("orders").partitions
    }
    assert sum(1 for keys in keyed.values() if b"k1" in keys) == 1  # one key, one partition


def test_pasted_lines_after_the_command_are_its_standard_input(console: Console) -> None:
    console.run("kafka-topics.sh $B --create --topic t")
    out = console.run("kafka-console-producer.sh $B --topic t\nfirst\nsecond\n")
    assert (out.text, out.exit_code) == ("", 0)
    assert _values(console, "t") == [(None, b"first"), (None, b"second")]


def test_a_line_without_the_key_separator_stops_the_producer(console: Console) -> None:
    console.run("kafka-topics.sh $B --create --topic t")
    out = console.run(
        "printf 'a:1\\nbroken\\n' | kafka-console-producer.sh $B --topic t "
        "--reader-property parse.key=true --reader-property key.separator=:"
    )
    assert out.stderr == (
        "org.apache.kafka.common.KafkaException: No key separator found on line number 2: "
        "'broken'\n"
    )
    assert out.exit_code == 1
    assert _values(console, "t") == [(b"a", b"1")]


def test_interactive_producer_prompts_and_sends_until_end_of_input(console: Console) -> None:
    console.run("kafka-topics.sh $B --create --topic t")
    assert console.run("kafka-console-producer.sh $B --topic t").text == ""
    assert console.session.prompt == ">"
    assert console.run("hello").text == ""
    assert console.run("world").text == ""
    assert console.run(END_OF_INPUT).text == "\n"
    assert console.session.prompt == "$ "
    assert console.session.foreground is None
    assert _values(console, "t") == [(None, b"hello"), (None, b"world")]


def test_renamed_options_work_with_kip_1147_warnings(console: Console) -> None:
    console.run("kafka-topics.sh $B --create --topic t")
    out = console.run(
        "echo 'k=v' | kafka-console-producer.sh $B --topic t --property parse.key=true "
        "--property key.separator== --producer-property acks=1"
    )
    assert out.stderr == (
        "Option --producer-property is deprecated and will be removed in a future version. Use "
        "--command-property instead.\n"
        "Option --property is deprecated and will be removed in a future version. Use "
        "--reader-property instead.\n"
    )
    assert _values(console, "t") == [(b"k", b"v")]


def test_consumer_prints_formatted_fields_and_the_total(orders: Console) -> None:
    out = orders.run(
        "kafka-console-consumer.sh $B --topic orders --from-beginning --timeout-ms 5000 "
        "--formatter-property print.key=true --formatter-property print.offset=true "
        "--formatter-property print.partition=true --formatter-property key.separator=' | '"
    )
    records = []
    for p in orders.cluster.describe_topic("orders").partitions:
        records += orders.cluster.read("orders", p.partition)
    expected = {
        f"Partition:{r.partition} | Offset:{r.offset} | {r.key.decode()} | {r.value.decode()}"
        for r in records
    }
    printed = out.stdout.splitlines()
    assert set(printed) == expected and len(printed) == 3
    assert out.stderr.endswith(
        "ERROR Error processing message, terminating consumer process:  "
        "(org.apache.kafka.tools.consumer.ConsoleConsumer)\n"
        "org.apache.kafka.common.errors.TimeoutException\nProcessed a total of 3 messages\n"
    )


def test_consumer_timestamp_and_headers_fields(console: Console) -> None:
    console.run("kafka-topics.sh $B --create --topic t")
    console.run(
        "echo 'h1:x,h2:y\tkey\tvalue' | kafka-console-producer.sh $B --topic t "
        "--reader-property parse.headers=true --reader-property parse.key=true"
    )
    record = console.cluster.read("t", 0)[0]
    assert record.headers == (("h1", b"x"), ("h2", b"y"))
    out = console.run(
        "kafka-console-consumer.sh $B --topic t --partition 0 --offset 0 --max-messages 1 "
        "--timeout-ms 1000 --formatter-property print.timestamp=true "
        "--formatter-property print.headers=true --formatter-property print.value=false"
    )
    assert out.stdout == f"CreateTime:{record.timestamp}\th1:x,h2:y\n"
    assert out.stderr == "Processed a total of 1 messages\n"


def test_partition_and_offset_and_max_messages(orders: Console) -> None:
    partition = next(
        p for p in orders.cluster.describe_topic("orders").partitions if p.high_watermark == 2
    )
    records = orders.cluster.read("orders", partition.partition)
    out = orders.run(
        f"kafka-console-consumer.sh $B --topic orders --partition {partition.partition} "
        "--offset 1 --max-messages 1 --timeout-ms 1000"
    )
    assert out.stdout == records[1].value.decode() + "\n"


def test_consumer_usage_errors(orders: Console) -> None:
    cases = {
        "kafka-console-consumer.sh $B": "Exactly one of --include/--topic is required. ",
        "kafka-console-consumer.sh $B --topic orders --offset 3": (
            "The partition is required when offset is specified."
        ),
        "kafka-console-consumer.sh $B --topic orders --partition 0 --group g": (
            "Options group and partition cannot be specified together."
        ),
        "kafka-console-consumer.sh --topic orders": (
            'Missing required argument "[bootstrap-server]"'
        ),
        "kafka-console-consumer.sh $B --topic orders --partition 0 --offset -5": (
            "The provided offset value '-5' is incorrect. Valid values are 'earliest', 'latest', "
            "or a non-negative long."
        ),
    }
    for line, message in cases.items():
        out = orders.run(line)
        assert (out.exit_code, out.stderr.splitlines()[0]) == (1, message), line
    assert orders.session.foreground is None


def test_tailing_consumer_prints_records_as_the_clock_moves_and_stops_on_interrupt(
    orders: Console,
) -> None:
    start = orders.run("kafka-console-consumer.sh $B --topic orders --group tail")
    assert start.text == ""
    assert orders.session.foreground is not None
    seen = ""
    for _ in range(100):  # the group forms and the consumer starts at the log end
        orders.cluster.advance(100)
        seen += orders.session.tick().text
    assert seen == ""
    producer = orders.cluster.producer({"acks": "all"})
    producer.send("orders", value=b"live-1")
    producer.send("orders", value=b"live-2")
    producer.flush()
    for _ in range(20):
        orders.cluster.advance(100)
        seen += orders.session.tick().text
    assert seen == "live-1\nlive-2\n"
    stop = orders.run(INTERRUPT)
    assert stop.stderr == "Processed a total of 2 messages\n"
    assert orders.session.foreground is None
    assert orders.cluster.describe_group("tail").state == "Empty"


def test_a_tailing_consumer_ignores_typed_lines_and_end_of_input(orders: Console) -> None:
    orders.run("kafka-console-consumer.sh $B --topic orders --from-beginning")
    assert orders.run("kafka-topics.sh $B --list").text == ""  # typed into the consumer
    assert orders.run(END_OF_INPUT).text == ""
    assert orders.session.foreground is not None
    seen = ""
    for _ in range(60):
        orders.cluster.advance(100)
        seen += orders.session.tick().text
    assert sorted(seen.splitlines()) == ["one", "three", "two"]
    assert orders.run(INTERRUPT).stderr == "Processed a total of 3 messages\n"
