"""kafka-consumer-groups.sh against ConsumerGroupCommand.java's layouts and messages."""

from __future__ import annotations

from engine import TopicPartition
from tests.console.conftest import Console

HEADER = (
    "GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             "
    "CONSUMER-ID     HOST            CLIENT-ID"
)


def _committed(console: Console, group: str) -> dict[TopicPartition, int]:
    return dict(console.cluster.describe_group(group).offsets)


def _consume_all(console: Console, group: str) -> None:
    out = console.run(
        f"kafka-console-consumer.sh $B --topic orders --group {group} --from-beginning "
        "--timeout-ms 2000"
    )
    assert out.stderr.endswith("Processed a total of 3 messages\n")


def test_describe_of_an_empty_group_lists_committed_offsets_without_members(
    orders: Console,
) -> None:
    _consume_all(orders, "billing")
    ends = {
        p.partition: p.high_watermark for p in orders.cluster.describe_topic("orders").partitions
    }
    committed = _committed(orders, "billing")
    out = orders.run("kafka-consumer-groups.sh $B --describe --group billing")
    rows = "".join(
        f"\nbilling         orders          {p:<10} {committed[TopicPartition('orders', p)]:<15} "
        f"{ends[p]:<15} {ends[p] - committed[TopicPartition('orders', p)]:<15} -               "
        "-               -"
        for p in range(3)
    )
    assert out.stdout == "\n" + HEADER + rows + "\n"
    assert out.stderr == "\nConsumer group 'billing' has no active members.\n"


def test_describe_with_members_shows_consumer_id_host_and_client(orders: Console) -> None:
    consumer = orders.cluster.consumer({"group.id": "live", "client.id": "app-1"})
    consumer.subscribe(["orders"])
    for _ in range(50):
        consumer.poll(timeout_ms=100)
        if consumer.assignment():
            break
    consumer.commit()
    member = orders.cluster.describe_group("live").members[0].member_id
    out = orders.run("kafka-consumer-groups.sh $B --describe --group live")
    lines = out.stdout.split("\n")
    assert lines[0] == ""
    assert lines[1].split() == [
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
    width = max(15, len(member))
    assert lines[1][lines[1].index("CONSUMER-ID") :].startswith(
        "CONSUMER-ID".ljust(width) + " HOST"
    )
    assert [line.split()[2] for line in lines[2:5]] == ["0", "1", "2"]
    assert all(line.split()[6:] == [member, "/127.0.0.1", "app-1"] for line in lines[2:5])
    assert out.stderr == ""

    members = orders.run("kafka-consumer-groups.sh $B --describe --group live --members --verbose")
    header = (
        f"{'GROUP':<15} {'CONSUMER-ID':<{width}} {'HOST':<15} {'CLIENT-ID':<15} "
        f"{'#PARTITIONS':<15} ASSIGNMENT"
    )
    row = f"{'live':<15} {member:<{width}} {'/127.0.0.1':<15} {'app-1':<15} {'3':<15} orders:0,1,2"
    assert members.stdout == f"\n{header}\n{row}\n"

    state = orders.run("kafka-consumer-groups.sh $B --describe --group live --state")
    coordinator = orders.cluster.describe_group("live").coordinator
    host = f"localhost:{9091 + coordinator}  ({coordinator})"
    assert state.stdout == (
        f"\n{'GROUP':<25} {'COORDINATOR (ID)':<25} {'ASSIGNMENT-STRATEGY':<20} "
        f"{'STATE':<15} #MEMBERS"
        f"\n{'live':<25} {host:<25} {'range':<20} {'Stable':<15} 1\n"
    )


def test_describe_of_an_unknown_group_says_it_does_not_exist(orders: Console) -> None:
    out = orders.run("kafka-consumer-groups.sh $B --describe --group ghost")
    assert out.stdout == "\nError: Consumer group 'ghost' does not exist.\n"


def test_reset_offsets_dry_run_plans_without_changing_and_execute_changes(orders: Console) -> None:
    _consume_all(orders, "billing")
    before = _committed(orders, "billing")
    dry = orders.run(
        "kafka-consumer-groups.sh $B --reset-offsets --group billing --topic orders --to-earliest"
    )
    assert dry.stderr.startswith(
        "WARN: No action will be performed as the --execute option is missing."
    )
    table = (
        "\nGROUP                          TOPIC                          PARTITION  NEW-OFFSET     "
        "\nbilling                        orders                         0          0              "
        "\nbilling                        orders                         1          0              "
        "\nbilling                        orders                         2          0"
        "              \n"
    )
    assert dry.stdout == table
    assert _committed(orders, "billing") == before
    done = orders.run(
        "kafka-consumer-groups.sh $B --reset-offsets --group billing --topic orders --to-earliest "
        "--execute"
    )
    assert (done.stdout, done.stderr) == (table, "")
    assert set(_committed(orders, "billing").values()) == {0}


def test_reset_scenarios_compute_offsets_as_the_tool_does(orders: Console) -> None:
    _consume_all(orders, "billing")
    ends = {
        TopicPartition("orders", p.partition): p.high_watermark
        for p in orders.cluster.describe_topic("orders").partitions
    }

    def plan(args: str) -> dict[int, int]:
        out = orders.run(
            f"kafka-consumer-groups.sh $B --reset-offsets --group billing {args} --dry-run"
        )
        rows = [line.split() for line in out.stdout.splitlines() if line.startswith("billing ")]
        return {int(r[2]): int(r[3]) for r in rows}

    assert plan("--topic orders --to-latest") == {tp.partition: e for tp, e in ends.items()}
    assert plan("--topic orders:1 --to-offset 0") == {1: 0}
    assert plan("--all-topics --to-current") == {
        tp.partition: o for tp, o in _committed(orders, "billing").items()
    }
    shifted = plan("--all-topics --shift-by -1")
    assert shifted == {
        tp.partition: max(o - 1, 0) for tp, o in _committed(orders, "billing").items()
    }
    assert plan("--topic orders --to-datetime 1970-01-01T00:00:00.000") == {0: 0, 1: 0, 2: 0}
    empty = [tp.partition for tp, end in ends.items() if end == 0]
    warned = orders.run(
        "kafka-consumer-groups.sh $B --reset-offsets --group billing --topic orders "
        "--to-datetime 1970-01-01T00:00:00.000 --dry-run"
    ).stdout
    for partition in empty:
        assert (
            f"\nWarn: Partition {partition} from topic orders is empty. Falling back to latest "
            "known offset.\n"
        ) in warned
    assert plan("--topic orders --by-duration PT0S") == {tp.partition: e for tp, e in ends.items()}


def test_reset_warns_when_an_offset_is_past_the_log_end_and_clamps_it(orders: Console) -> None:
    _consume_all(orders, "billing")
    out = orders.run(
        "kafka-consumer-groups.sh $B --reset-offsets --group billing --topic orders:0 "
        "--to-offset 99 --dry-run"
    )
    end = orders.cluster.describe_topic("orders").partitions[0].high_watermark
    assert (
        f"WARN New offset (99) is higher than latest offset for topic partition orders-0. Value "
        f"will be set to {end} (org.apache.kafka.tools.consumer.group.ConsumerGroupCommand)"
    ) in out.stderr
    assert out.stdout.splitlines()[-1].split() == ["billing", "orders", "0", str(end)]


def test_reset_of_an_active_group_is_refused_with_its_state(orders: Console) -> None:
    consumer = orders.cluster.consumer({"group.id": "live"})
    consumer.subscribe(["orders"])
    for _ in range(50):
        consumer.poll(timeout_ms=100)
        if consumer.assignment():
            break
    out = orders.run(
        "kafka-consumer-groups.sh $B --reset-offsets --group live --topic orders --to-earliest "
        "--execute"
    )
    assert out.stdout == (
        "\nError: Assignments can only be reset if the group 'live' is inactive, but the current "
        "state is Stable.\n\nGROUP                          TOPIC                          "
        "PARTITION  NEW-OFFSET     \n"
    )


def test_usage_errors(orders: Console) -> None:
    cases = {
        "kafka-consumer-groups.sh $B --describe": (
            "Option [describe] takes one of these options: [group], [all-groups]"
        ),
        "kafka-consumer-groups.sh $B --reset-offsets --group g --topic orders --to-earliest "
        "--to-latest": 'Option "[to-earliest]" can\'t be used with option "[to-latest]"',
        "kafka-consumer-groups.sh $B --reset-offsets --group g --topic orders --dry-run "
        "--execute": "Option [reset-offsets] only accepts one of [execute] and [dry-run]",
        "kafka-consumer-groups.sh $B --reset-offsets --group g --to-earliest --dry-run": (
            "One of the reset scopes should be defined: --all-topics, --topic."
        ),
        "kafka-consumer-groups.sh --list": 'Missing required argument "[bootstrap-server]"',
        "kafka-consumer-groups.sh $B --describe --group g --members --state": (
            "Option [describe] takes at most one of these options: [members], [offsets], [state]"
        ),
        "kafka-consumer-groups.sh $B --group g": (
            "Command must include exactly one action: --list, --describe, --delete, "
            "--reset-offsets, --delete-offsets"
        ),
    }
    for line, message in cases.items():
        out = orders.run(line)
        assert out.exit_code == 1, line
        first = [x for x in out.stderr.splitlines() if not x.startswith("WARN: No action")][0]
        assert first == message, line
    out = orders.run("kafka-consumer-groups.sh $B --list --members")
    assert out.stderr == (
        'Exception in thread "main" joptsimple.UnavailableOptionException: Option(s) [members] '
        "are unavailable given other options on the command line\n"
    )


def test_list_and_list_with_state(orders: Console) -> None:
    _consume_all(orders, "billing")
    _consume_all(orders, "audit")
    assert orders.text("kafka-consumer-groups.sh $B --list") == "audit\nbilling\n"
    assert orders.text("kafka-consumer-groups.sh $B --list --state") == (
        f"{'GROUP':<25} {'STATE':<20}\n{'audit':<25} {'Empty':<20}\n{'billing':<25} {'Empty':<20}\n"
    )
    assert (
        orders.text("kafka-consumer-groups.sh $B --list --state stable")
        == f"{'GROUP':<25} {'STATE':<20}\n"
    )


def test_delete_removes_an_inactive_group_and_refuses_an_active_one(orders: Console) -> None:
    _consume_all(orders, "billing")
    assert orders.text("kafka-consumer-groups.sh $B --delete --group billing") == (
        "Deletion of requested consumer groups ('billing') was successful.\n"
    )
    assert orders.cluster.list_groups() == []
    assert orders.text("kafka-consumer-groups.sh $B --delete --group billing") == (
        "\nError: Deletion of some consumer groups failed:\n* Group 'billing' could not be deleted "
        "due to: java.util.concurrent.ExecutionException: "
        "org.apache.kafka.common.errors.GroupIdNotFoundException: The group id does not exist.\n"
    )
    consumer = orders.cluster.consumer({"group.id": "live"})
    consumer.subscribe(["orders"])
    for _ in range(50):
        consumer.poll(timeout_ms=100)
        if consumer.assignment():
            break
    assert "GroupNotEmptyException: The group is not empty." in orders.text(
        "kafka-consumer-groups.sh $B --delete --group live"
    )


def test_delete_offsets_of_an_inactive_group_and_of_a_subscribed_topic(orders: Console) -> None:
    _consume_all(orders, "billing")
    out = orders.run(
        "kafka-consumer-groups.sh $B --delete-offsets --group billing --topic orders:0"
    )
    assert out.stdout == (
        "Request succeed for deleting offsets with topic orders:0 group billing\n"
        f"\n{'TOPIC':<30} {'PARTITION':<15} {'STATUS':<15}"
        f"\n{'orders':<30} {'0':<15} {'Successful':<15}\n"
    )
    assert TopicPartition("orders", 0) not in _committed(orders, "billing")
    assert TopicPartition("orders", 1) in _committed(orders, "billing")

    consumer = orders.cluster.consumer({"group.id": "live"})
    consumer.subscribe(["orders"])
    for _ in range(50):
        consumer.poll(timeout_ms=100)
        if consumer.assignment():
            break
    refused = orders.run("kafka-consumer-groups.sh $B --delete-offsets --group live --topic orders")
    lines = refused.stdout.split("\n")
    assert lines[1] == "Error: Encounter some partition level error, see the follow-up details:"
    assert lines[3].split() == ["TOPIC", "PARTITION", "STATUS"]
    assert [line.split()[1] for line in lines[4:7]] == ["0", "1", "2"]
    assert all(
        line.endswith(
            "Error: :java.util.concurrent.ExecutionException: org.apache.kafka.common.errors."
            "GroupSubscribedToTopicException: Deleting offsets of a topic is forbidden while the "
            "consumer group is actively subscribed to it."
        )
        for line in lines[4:7]
    )
    missing = orders.run(
        "kafka-consumer-groups.sh $B --delete-offsets --group ghost --topic orders"
    )
    assert missing.stdout.startswith("\nError: 'ghost' does not exist.\n")
