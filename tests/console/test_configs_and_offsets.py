"""kafka-configs.sh (ConfigCommand.scala), kafka-get-offsets.sh (GetOffsetShell.java),
kafka-leader-election.sh (LeaderElectionCommand.java)."""

from __future__ import annotations

from tests.console.conftest import Console


def test_configs_alter_then_describe_shows_dynamic_configs_with_synonyms(orders: Console) -> None:
    out = orders.run(
        "kafka-configs.sh $B --alter --entity-type topics --entity-name orders "
        "--add-config retention.ms=1000,cleanup.policy=[compact,delete]"
    )
    assert out.text == "Completed updating config for topic orders.\n"
    assert orders.cluster.describe_topic("orders").config["retention.ms"] == 1000
    assert orders.text("kafka-configs.sh $B --describe --topic orders") == (
        "Dynamic configs for topic orders are:\n"
        "  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:"
        "cleanup.policy=compact,delete, DEFAULT_CONFIG:log.cleanup.policy=delete}\n"
        "  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000, "
        "DEFAULT_CONFIG:log.retention.ms=604800000}\n"
    )
    assert (
        orders.text("kafka-configs.sh $B --alter --topic orders --delete-config retention.ms")
        == "Completed updating config for topic orders.\n"
    )
    assert orders.cluster.describe_topic("orders").config["retention.ms"] == 604800000
    assert "retention.ms" not in orders.text("kafka-configs.sh $B --describe --topic orders")


def test_configs_errors(orders: Console) -> None:
    cases = {
        "kafka-configs.sh $B --alter --topic orders --delete-config retention.ms": (
            "Invalid config(s): retention.ms"
        ),
        "kafka-configs.sh --describe --topic orders": (
            "One of the required --bootstrap-server or --bootstrap-controller arguments must be "
            "specified"
        ),
        "kafka-configs.sh $B --alter --topic orders": (
            "At least one of --add-config, --add-config-file, or --delete-config must be "
            "specified with --alter"
        ),
        "kafka-configs.sh $B --describe --entity-type things": (
            "Invalid entity type things, the entity type must be one of topics, clients, users, "
            "brokers, ips, broker-loggers, client-metrics, groups with a --bootstrap-server or "
            "--bootstrap-controller argument"
        ),
        "kafka-configs.sh --zookeeper localhost:2181 --describe --topic orders": (
            "zookeeper is not a recognized option"
        ),
        "kafka-configs.sh $B --alter --topic orders --add-config retention.ms": (
            "requirement failed: Invalid entity config: all configs to be added must be in the "
            'format "key=val".'
        ),
    }
    for line, message in cases.items():
        out = orders.run(line)
        assert (out.exit_code, out.stderr) == (1, message + "\n"), line
    out = orders.run("kafka-configs.sh $B --describe --alter --topic orders")
    assert (
        out.stderr.splitlines()[0] == "Command must include exactly one action: --describe, --alter"
    )


def test_broker_configs_describe(orders: Console) -> None:
    assert orders.text("kafka-configs.sh $B --describe --entity-type brokers --entity-name 1") == (
        "Dynamic configs for broker 1 are:\n"
    )
    every = orders.text("kafka-configs.sh $B --describe --broker 1 --all").splitlines()
    assert every[0] == "All configs for broker 1 are:"
    assert (
        "  min.insync.replicas=1 sensitive=false synonyms={DEFAULT_CONFIG:min.insync.replicas=1}"
        in every
    )


def test_get_offsets_prints_topic_partition_offset(orders: Console) -> None:
    ends = {
        p.partition: p.high_watermark for p in orders.cluster.describe_topic("orders").partitions
    }
    assert orders.text("kafka-get-offsets.sh $B --topic orders") == "".join(
        f"orders:{p}:{ends[p]}\n" for p in range(3)
    )
    assert orders.text("kafka-get-offsets.sh $B --topic orders --time earliest") == (
        "orders:0:0\norders:1:0\norders:2:0\n"
    )
    assert orders.text("kafka-get-offsets.sh $B --topic-partitions orders:1-3 --time -2") == (
        "orders:1:0\norders:2:0\n"
    )
    out = orders.run("kafka-get-offsets.sh $B --topic nothing")
    assert (out.exit_code, out.stderr) == (
        1,
        "Error occurred: Could not match any topic-partitions with the specified filters\n",
    )
    out = orders.run("kafka-get-offsets.sh $B --topic orders --time soon")
    assert out.stderr.startswith(
        "Error occurred: Malformed time argument soon. Please use -1 or latest"
    )


def test_leader_election_preferred_after_a_broker_returns(orders: Console) -> None:
    assert (
        orders.text(
            "kafka-leader-election.sh $B --election-type preferred --topic orders --partition 0"
        )
        == "Valid replica already elected for partitions orders-0\n"
    )
    first = orders.cluster.describe_topic("orders").partitions[0]
    preferred = first.replicas[0]
    orders.cluster.shutdown_broker(preferred)
    orders.cluster.advance(1000)
    orders.cluster.start_broker(preferred)
    orders.cluster.advance(15000)
    moved = [
        p.partition
        for p in orders.cluster.describe_topic("orders").partitions
        if p.leader != p.replicas[0]
    ]
    assert moved
    out = orders.run("kafka-leader-election.sh $B --election-type PREFERRED --all-topic-partitions")
    assert out.text == (
        "Successfully completed leader election (PREFERRED) for partitions "
        + ", ".join(f"orders-{p}" for p in moved)
        + "\n"
    )
    assert all(
        p.leader == p.replicas[0] for p in orders.cluster.describe_topic("orders").partitions
    )


def test_leader_election_usage_errors(orders: Console) -> None:
    out = orders.run("kafka-leader-election.sh $B --topic orders --partition 0")
    assert out.stderr.splitlines()[0] == "Missing required option(s): election-type"
    out = orders.run("kafka-leader-election.sh $B --election-type preferred")
    assert out.stderr.splitlines()[0] == (
        "One and only one of the following options is required: topic, all-topic-partitions, "
        "path-to-json-file"
    )
    out = orders.run("kafka-leader-election.sh $B --election-type preferred --topic orders")
    assert out.stderr.splitlines()[0] == "Missing required option(s): partition"


def test_a_config_set_to_its_default_value_is_still_the_topic_s_own(console: Console) -> None:
    console.run("kafka-topics.sh $B --create --topic t --config min.insync.replicas=1")
    console.wait()
    assert "\tConfigs: min.insync.replicas=1\n" in console.text(
        "kafka-topics.sh $B --describe --topic t"
    )
    assert console.text("kafka-configs.sh $B --describe --topic t") == (
        "Dynamic configs for topic t are:\n"
        "  min.insync.replicas=1 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:"
        "min.insync.replicas=1, DEFAULT_CONFIG:min.insync.replicas=1}\n"
    )
    console.run("kafka-configs.sh $B --alter --topic t --delete-config min.insync.replicas")
    assert console.text("kafka-configs.sh $B --describe --topic t") == (
        "Dynamic configs for topic t are:\n"
    )
    assert "\tConfigs: \n" in console.text("kafka-topics.sh $B --describe --topic t")
