"""kafka-topics.sh against TopicCommand.java's formats and errors."""

from __future__ import annotations

from tests.console.conftest import Console


def test_create_prints_created_topic_and_warns_about_period_and_underscore(
    console: Console,
) -> None:
    assert console.text("kafka-topics.sh $B --create --topic orders") == "Created topic orders.\n"
    assert console.text("kafka-topics.sh $B --create --topic my.orders") == (
        "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore "
        "('_') could collide. To avoid issues it is best to use either, but not both.\n"
        "Created topic my.orders.\n"
    )
    assert console.cluster.list_topics() == ["my.orders", "orders"]


def test_describe_prints_the_topic_line_and_one_tab_separated_line_per_partition(
    console: Console,
) -> None:
    console.run(
        "kafka-topics.sh $B --create --topic orders --partitions 2 --replication-factor 3 "
        "--config min.insync.replicas=2 --config retention.ms=60000"
    )
    console.wait()
    topic_id = console.session.admin.topic_id("orders")
    assert len(topic_id) == 22
    described = console.cluster.describe_topic("orders")
    lines = [
        f"Topic: orders\tTopicId: {topic_id}\tPartitionCount: 2\tReplicationFactor: 3\t"
        "Configs: min.insync.replicas=2,retention.ms=60000"
    ]
    for p in described.partitions:
        replicas = ",".join(map(str, p.replicas))
        isr = ",".join(map(str, p.isr))
        lines.append(
            f"\tTopic: orders\tPartition: {p.partition}\tLeader: {p.leader}\t"
            f"Replicas: {replicas}\tIsr: {isr}\tElr: \tLastKnownElr: "
        )
    assert console.text("kafka-topics.sh $B --describe --topic orders") == "\n".join(lines) + "\n"


def test_report_flags_print_only_matching_partition_lines_without_a_topic_line(
    console: Console,
) -> None:
    console.run(
        "kafka-topics.sh $B --create --topic orders --partitions 3 --replication-factor 3 "
        "--config min.insync.replicas=2"
    )
    assert console.text("kafka-topics.sh $B --describe --under-replicated-partitions") == ""
    console.cluster.stop_broker(3)
    console.cluster.advance(20000)
    under = console.text("kafka-topics.sh $B --describe --under-replicated-partitions")
    lines = under.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("\tTopic: orders\tPartition: ") for line in lines)
    assert all("Replicas: " in line and "Isr: " in line for line in lines)
    assert not any(line.startswith("Topic:") for line in lines)
    at_min = console.text("kafka-topics.sh $B --describe --at-min-isr-partitions")
    assert at_min == under  # two of three in sync, min.insync.replicas=2
    assert console.text("kafka-topics.sh $B --describe --under-min-isr-partitions") == ""
    assert console.text("kafka-topics.sh $B --describe --unavailable-partitions") == ""


def test_report_flag_without_describe_is_refused_as_the_real_tool_refuses_it(
    console: Console,
) -> None:
    out = console.run("kafka-topics.sh $B --under-replicated-partitions")
    assert out.exit_code == 1
    assert out.stderr.startswith(
        "Command must include exactly one action: --list, --describe, --create, --alter or "
        "--delete\nOption                                   Description"
    )
    assert "--under-replicated-partitions" in out.stderr
    assert out.stdout == ""


def test_list_is_sorted_and_exclude_internal_hides_consumer_offsets(orders: Console) -> None:
    orders.run(
        "kafka-console-consumer.sh $B --topic orders --group g --max-messages 1 --timeout-ms 3000"
    )
    assert orders.text("kafka-topics.sh $B --list") == "__consumer_offsets\norders\n"
    assert orders.text("kafka-topics.sh $B --list --exclude-internal") == "orders\n"
    assert orders.text("kafka-topics.sh $B --list --topic 'ord.*'") == "orders\n"


def test_usage_errors(console: Console) -> None:
    cases = {
        "kafka-topics.sh $B --create": 'Missing required argument "[topic]"',
        "kafka-topics.sh $B --describe --partitions 3": (
            'Option "[partitions]" can\'t be used with option "[describe]"'
        ),
        "kafka-topics.sh $B --list --describe": (
            "Command must include exactly one action: --list, --describe, --create, --alter or "
            "--delete"
        ),
        "kafka-topics.sh $B --alter --topic orders": 'Missing required argument "[partitions]"',
        "kafka-topics.sh $B --alter --topic orders --partitions 4 --config a=b": (
            'Option combination "[[bootstrap-server], [config]]" can\'t be used with option '
            '"[alter]" (To alter topic configurations, the kafka-configs tool can be used.)'
        ),
        "kafka-topics.sh": "Create, delete, describe, or change a topic.",
    }
    for line, message in cases.items():
        out = console.run(line)
        assert out.exit_code == 1, line
        assert out.stderr.split("\n", 1)[0] == message, line
        assert "Option                                   Description" in out.stderr


def test_bootstrap_server_is_required_and_zookeeper_is_not_an_option_in_4_0(
    console: Console,
) -> None:
    out = console.run("kafka-topics.sh --list")
    assert (out.exit_code, out.stderr.splitlines()[0]) == (
        1,
        "--bootstrap-server must be specified",
    )
    out = console.run("kafka-topics.sh --zookeeper localhost:2181 --list")
    assert out.exit_code == 1
    assert out.stderr.splitlines()[0] == "zookeeper is not a recognized option"


def test_errors_print_error_while_executing_topic_command(console: Console) -> None:
    console.run("kafka-topics.sh $B --create --topic orders --partitions 3")
    console.wait()
    cases = {
        "kafka-topics.sh $B --create --topic orders": "Topic 'orders' already exists.",
        "kafka-topics.sh $B --alter --topic orders --partitions 3": (
            "Topic already has 3 partition(s)."
        ),
        "kafka-topics.sh $B --alter --topic orders --partitions 2": (
            "The topic orders currently has 3 partition(s); 2 would not be an increase."
        ),
        "kafka-topics.sh $B --create --topic big --replication-factor 4": (
            "Unable to replicate the partition 4 time(s): The target replication factor of 4 "
            "cannot be reached because only 3 broker(s) are registered."
        ),
        "kafka-topics.sh $B --describe --topic nope": (
            "Topic 'Optional[nope]' does not exist as expected"
        ),
        "kafka-topics.sh $B --create --topic x --config retention.ms=soon": (
            "Invalid value soon for configuration retention.ms: Not a number of type LONG"
        ),
        "kafka-topics.sh $B --create --topic x --config colour=red": (
            "Unknown topic config name: colour"
        ),
        "kafka-topics.sh $B --create --topic 'bad name'": (
            'Topic name "bad name" is illegal, it contains a character other than ASCII '
            "alphanumerics, '.', '_' and '-'"
        ),
    }
    for line, message in cases.items():
        out = console.run(line)
        assert (out.exit_code, out.text) == (
            1,
            f"Error while executing topic command : {message}\n",
        ), line
    assert console.cluster.list_topics() == ["orders"]
    assert len(console.cluster.describe_topic("orders").partitions) == 3


def test_if_not_exists_and_if_exists_make_the_action_quiet(console: Console) -> None:
    console.run("kafka-topics.sh $B --create --topic orders")
    assert console.run("kafka-topics.sh $B --create --topic orders --if-not-exists").text == ""
    assert console.run("kafka-topics.sh $B --delete --topic nope --if-exists").exit_code == 0


def test_alter_adds_partitions_and_delete_removes_the_topic(console: Console) -> None:
    console.run("kafka-topics.sh $B --create --topic orders --partitions 1")
    console.wait()
    assert console.text("kafka-topics.sh $B --alter --topic orders --partitions 4") == ""
    assert len(console.cluster.describe_topic("orders").partitions) == 4
    assert console.text("kafka-topics.sh $B --delete --topic orders") == ""
    assert console.cluster.list_topics() == []


def test_help_table_is_joptsimple_s_two_column_layout(console: Console) -> None:
    out = console.run("kafka-topics.sh --help")
    lines = out.stderr.splitlines()
    assert lines[0] == "This tool helps to create, delete, describe, or change a topic."
    assert lines[1] == "Option                                   Description" + " " * 28
    assert lines[2] == "------                                   -----------" + " " * 28
    assert all(len(line) == 80 for line in lines[1:])
    names = [line.split()[0] for line in lines[3:] if line.startswith("--")]
    assert names == sorted(names)
    assert "--bootstrap-server <String: server to" in out.stderr


def test_without_a_controller_quorum_create_hangs_60_s_then_times_out(console: Console) -> None:
    for controller in (101, 102):
        console.cluster.stop_controller(controller)
    console.cluster.advance(5000)
    before = console.cluster.now_ms
    out = console.run("kafka-topics.sh $B --create --topic orders")
    assert out.text == "Error while executing topic command : The request timed out.\n"
    assert console.cluster.now_ms - before >= 60_000
    assert console.cluster.list_topics() == []


def test_the_tools_read_a_broker_s_metadata_one_hop_behind_the_controller(
    console: Console,
) -> None:
    """describeTopics answers from a broker's metadata cache: a line typed in the same instant
    as the create does not see the topic yet; once the metadata has reached the brokers it does."""
    console.run("kafka-topics.sh $B --create --topic orders --partitions 1")
    early = console.run("kafka-topics.sh $B --describe --topic orders")
    assert (early.exit_code, early.text) == (
        1,
        "Error while executing topic command : Topic 'Optional[orders]' does not exist as "
        "expected\n",
    )
    console.wait()
    assert console.text("kafka-topics.sh $B --list") == "orders\n"
    assert "\tPartition: 0\t" in console.text("kafka-topics.sh $B --describe --topic orders")
