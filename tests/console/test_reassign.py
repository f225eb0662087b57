"""kafka-reassign-partitions.sh on the engine's real reassignment, with the session's files:
the layouts of ReassignPartitionsCommand's output, its option rules and its error lines."""

from __future__ import annotations

import json

from engine import Cluster
from lessons.console import ConsoleSession
from tests.console.conftest import Console

B = "--bootstrap-server localhost:9092"
MOVE = {
    "version": 1,
    "partitions": [
        {"topic": "orders", "partition": 0, "replicas": [3, 4]},
        {"topic": "orders", "partition": 1, "replicas": [4, 3]},
    ],
}


def four_brokers() -> Console:
    """`orders`: partition 0 on brokers 2,4 and partition 1 on 3,1 (seed 3), three records."""
    console = Console(Cluster(brokers=4, seed=3))
    console.run("kafka-topics.sh $B --create --topic orders --partitions 2 --replication-factor 2")
    console.run("printf 'a\\nb\\nc\\n' | kafka-console-producer.sh $B --topic orders")
    return console


def current_json(replicas: list[list[int]]) -> str:
    return json.dumps(
        {
            "version": 1,
            "partitions": [
                {"topic": "orders", "partition": p, "replicas": r, "log_dirs": ["any"] * len(r)}
                for p, r in enumerate(replicas)
            ],
        },
        separators=(",", ":"),
    )


def test_execute_list_and_verify_follow_the_reassignment_to_its_end() -> None:
    console = four_brokers()
    assert console.text(f"echo '{json.dumps(MOVE)}' > move.json") == ""
    out = console.run(
        "kafka-reassign-partitions.sh $B --execute --reassignment-json-file move.json"
    )
    assert (out.exit_code, out.text) == (
        0,
        "Current partition replica assignment\n\n"
        + current_json([[2, 4], [3, 1]])
        + "\n\nSave this to use as the --reassignment-json-file option during rollback\n"
        "Successfully started partition reassignments for orders-0,orders-1\n",
    )
    assert console.text("kafka-reassign-partitions.sh $B --list") == (
        "Current partition reassignments:\n"
        "orders-0: replicas: 3,4,2. adding: 3. removing: 2.\n"
        "orders-1: replicas: 4,3,1. adding: 4. removing: 1.\n"
    )
    assert console.text(
        "kafka-reassign-partitions.sh $B --verify --reassignment-json-file move.json"
    ) == (
        "Status of partition reassignment:\n"
        "Reassignment of partition orders-0 is still in progress.\n"
        "Reassignment of partition orders-1 is still in progress.\n\n"
    )
    again = console.run(
        "kafka-reassign-partitions.sh $B --execute --reassignment-json-file move.json"
    )
    assert again.exit_code == 1
    assert again.text.startswith("Cannot execute because there is an existing partition")
    console.cluster.advance(3000)
    assert console.text(
        "kafka-reassign-partitions.sh $B --verify --reassignment-json-file move.json"
    ) == (
        "Status of partition reassignment:\n"
        "Reassignment of partition orders-0 is completed.\n"
        "Reassignment of partition orders-1 is completed.\n\n"
        "Clearing broker-level throttles on brokers 1,2,3,4\n"
        "Clearing topic-level throttles on topic orders\n"
    )
    assert console.text("kafka-reassign-partitions.sh $B --list") == (
        "No partition reassignments found.\n"
    )
    described = console.text("kafka-topics.sh $B --describe --topic orders")
    assert "Partition: 0\tLeader: 3\tReplicas: 3,4\tIsr: 3,4" in described
    assert "Partition: 1\tLeader: 3\tReplicas: 4,3\tIsr: 3,4" in described
    consumed = console.text(
        "kafka-console-consumer.sh $B --topic orders --from-beginning --max-messages 3 "
        "--timeout-ms 5000"
    )
    assert sorted(consumed.splitlines()[:3]) == ["a", "b", "c"]


def test_generate_proposes_an_assignment_over_the_given_brokers() -> None:
    console = four_brokers()
    console.run('echo \'{"topics":[{"topic":"orders"}],"version":1}\' > topics.json')
    out = console.text(
        "kafka-reassign-partitions.sh $B --generate --topics-to-move-json-file topics.json "
        "--broker-list 3,4"
    )
    current, proposed = out.split("\n\n")
    assert current == "Current partition replica assignment\n" + current_json([[2, 4], [3, 1]])
    title, body = proposed.rstrip("\n").split("\n")
    assert title == "Proposed partition reassignment configuration"
    replicas = [p["replicas"] for p in json.loads(body)["partitions"]]
    assert sorted(map(sorted, replicas)) == [[3, 4], [3, 4]]
    assert replicas[0] != replicas[1]  # leaders spread over both brokers (AdminUtils)
    too_few = console.text(
        "kafka-reassign-partitions.sh $B --generate --topics-to-move-json-file topics.json "
        "--broker-list 4"
    )
    assert too_few == (
        "Error: Replication factor: 2 larger than available brokers: 1.\n"
        "org.apache.kafka.common.errors.InvalidReplicationFactorException: Replication factor: 2 "
        "larger than available brokers: 1.\n"
    )


def test_cancel_reverts_an_ongoing_reassignment() -> None:
    console = four_brokers()
    console.run(
        "cat > move.json\n"
        '{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[3,4]}]}'
    )
    console.run("kafka-reassign-partitions.sh $B --execute --reassignment-json-file move.json")
    console.cluster.stop_broker(3)  # the adding replica stops before it caught up
    console.cluster.advance(2000)
    # Fenced by now, broker 3 is left out of DescribeCluster: execute would refuse it.
    console.cluster.advance(10000)
    refused = console.run(
        "kafka-reassign-partitions.sh $B --execute --additional --reassignment-json-file move.json"
    )
    assert refused.stdout.startswith("Error: Unknown broker id 3\n")
    assert console.text(
        "kafka-reassign-partitions.sh $B --cancel --reassignment-json-file move.json"
    ) == (
        "Successfully cancelled partition reassignment for: orders-0\n"
        "None of the specified partition moves are active.Clearing broker-level throttles on "
        "brokers 1,2,3,4\n"
        "Clearing topic-level throttles on topic orders\n"
    )
    registration = console.cluster.controller.topics["orders"].partitions[0]
    # PartitionReassignmentRevert keeps the ongoing order (target, then removing) minus the
    # adding replicas: 3,4,2 becomes 4,2, not the original 2,4.
    assert (registration.replicas, registration.reassigning) == ((4, 2), False)
    assert console.text(
        "kafka-reassign-partitions.sh $B --cancel --reassignment-json-file move.json"
    ).startswith("None of the specified partition reassignments are active.\n")


def test_option_rules_and_error_lines_are_the_tools() -> None:
    console = four_brokers()
    both = console.run("kafka-reassign-partitions.sh $B --execute --verify")
    assert both.exit_code == 1
    assert both.stderr.startswith(
        "Command must include exactly one action: --generate, --execute, --verify, --cancel, "
        "--list\nOption  "
    )
    assert console.run("kafka-reassign-partitions.sh --list").stderr.startswith(
        "Please specify either --bootstrap-server or --bootstrap-controller\n"
    )
    assert console.run("kafka-reassign-partitions.sh $B --verify").stderr.startswith(
        'Missing required argument "[reassignment-json-file]"\n'
    )
    assert console.run(
        "kafka-reassign-partitions.sh $B --verify --reassignment-json-file m.json --additional"
    ).stderr.startswith('Option "[additional]" can\'t be used with action "[verify]"\n')
    missing = console.run("kafka-reassign-partitions.sh $B --execute --reassignment-json-file x")
    assert (missing.exit_code, missing.stdout) == (
        1,
        "Error: x\njava.nio.file.NoSuchFileException: x\n",
    )
    console.run(
        'echo \'{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1,9]}]}\''
        " > bad.json"
    )
    assert console.text(
        "kafka-reassign-partitions.sh $B --execute --reassignment-json-file bad.json"
    ) == (
        "Error: Unknown broker id 9\n"
        "org.apache.kafka.server.common.AdminCommandFailedException: Unknown broker id 9\n"
    )
    console.run(
        'echo \'{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1,1]}]}\''
        " > bad.json"
    )
    assert console.text(
        "kafka-reassign-partitions.sh $B --execute --reassignment-json-file bad.json"
    ).startswith(
        "Error: Partition replica lists may not contain duplicate entries: orders-0 contains "
        "multiple entries for 1\n"
    )
    throttled = console.run(
        "kafka-reassign-partitions.sh $B --execute --throttle 1000 --reassignment-json-file "
        "bad.json"
    )
    assert throttled.exit_code == 1 and "does not model replication quotas" in throttled.text
    assert console.cluster.controller.topics["orders"].partitions[0].replicas == (2, 4)


def test_the_session_files_are_written_listed_printed_and_removed() -> None:
    console = four_brokers()
    assert console.text("echo hello > a.txt") == ""
    assert console.text("printf 'x\\ny\\n' >b.txt") == ""
    assert console.text("cat > c.txt\nline one\nline two") == ""
    assert console.text("ls") == "a.txt\nb.txt\nc.txt\n"
    assert console.text("cat a.txt b.txt c.txt") == "hello\nx\ny\nline one\nline two\n"
    assert console.text("rm b.txt") == ""
    gone = console.run("cat b.txt")
    assert (gone.exit_code, gone.stderr) == (1, "cat: b.txt: No such file or directory\n")
    assert console.text("echo plain") == "plain\n"


def test_a_console_reassignment_round_trips_through_replay() -> None:
    live = Cluster(brokers=4, seed=3)
    session = ConsoleSession(live)
    session.run(
        f"kafka-topics.sh {B} --create --topic orders --partitions 2 --replication-factor 2"
    )
    session.run(f"echo '{json.dumps(MOVE)}' > move.json")
    session.run(f"kafka-reassign-partitions.sh {B} --execute --reassignment-json-file move.json")
    live.advance(200)
    live.stop_broker(4)
    live.advance(5000)
    rebuilt = Cluster.from_log(live.export_log())
    assert rebuilt.snapshot() == live.snapshot()
    assert rebuilt.controller.topics == live.controller.topics


def test_describe_shows_an_ongoing_reassignment_as_topic_command_does() -> None:
    """TopicCommand asks listPartitionReassignments: a moving partition prints its adding and
    removing replicas after Isr, and its replication factor leaves the removing ones out (so a
    partition whose ISR holds that many is not under-replicated)."""
    console = four_brokers()
    console.run(
        "cat > move.json\n"
        '{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[3,4]}]}'
    )
    console.run("kafka-reassign-partitions.sh $B --execute --reassignment-json-file move.json")
    console.cluster.stop_broker(3)  # the adding replica never catches up
    console.cluster.advance(2000)
    topic_id = console.session.admin.topic_id("orders")
    assert console.text("kafka-topics.sh $B --describe --topic orders") == (
        f"Topic: orders\tTopicId: {topic_id}\tPartitionCount: 2\tReplicationFactor: 2\t"
        "Configs: \n"
        "\tTopic: orders\tPartition: 0\tLeader: 2\tReplicas: 3,4,2\tIsr: 2,4\t"
        "Adding Replicas: 3\tRemoving Replicas: 2\tElr: \tLastKnownElr: \n"
        "\tTopic: orders\tPartition: 1\tLeader: 3\tReplicas: 3,1\tIsr: 3,1\tElr: \t"
        "LastKnownElr: \n"
    )
    assert console.text("kafka-topics.sh $B --describe --under-replicated-partitions") == ""
