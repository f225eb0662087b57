"""The shell around the tools: bash's quoting, pipes from echo/printf, unknown commands."""

from __future__ import annotations

from tests.console.conftest import Console


def test_unknown_command_is_bash_s_command_not_found(console: Console) -> None:
    out = console.run("kafka-topcs.sh --list")
    assert (out.exit_code, out.stderr) == (127, "bash: kafka-topcs.sh: command not found\n")


def test_paths_and_confluent_names_reach_the_same_tool(console: Console) -> None:
    console.run("kafka-topics.sh $B --create --topic t")
    console.wait()
    assert console.text("bin/kafka-topics.sh $B --list") == "t\n"
    assert console.text("/opt/kafka/bin/kafka-topics.sh $B --list") == "t\n"
    assert console.text("kafka-topics $B --list") == "t\n"


def test_unbalanced_quote_is_refused_like_bash(console: Console) -> None:
    out = console.run("kafka-topics.sh $B --create --topic 'orders")
    assert out.exit_code == 2
    assert out.stderr == "bash: unexpected EOF while looking for matching `''\n"
    assert console.cluster.list_topics() == []


def test_blank_lines_do_nothing(console: Console) -> None:
    assert console.run("   ").text == ""


def test_kafka_reassign_partitions_is_a_tool_now(console: Console) -> None:
    out = console.run("kafka-reassign-partitions.sh $B --list")
    assert (out.exit_code, out.text) == (0, "No partition reassignments found.\n")


def test_options_removed_in_4_0_are_refused_as_each_tool_refuses_unknown_options(
    console: Console,
) -> None:
    groups = console.run("kafka-consumer-groups.sh --zookeeper localhost:2181 --list")
    assert groups.stderr == (
        'Exception in thread "main" joptsimple.UnrecognizedOptionException: zookeeper is not a '
        "recognized option\n"
    )
    producer = console.run("kafka-console-producer.sh --broker-list localhost:9092 --topic t")
    assert producer.stderr.startswith(
        "broker-list is not a recognized option\nOption                                   "
    )
    for out in (groups, producer):
        assert out.exit_code == 1
