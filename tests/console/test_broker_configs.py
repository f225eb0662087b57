"""kafka-configs.sh on broker dynamic configs (ConfigCommand on IncrementalAlterConfigs and
DescribeConfigs with synonyms), and the value really applied by the brokers."""

from __future__ import annotations

from engine import Cluster, TopicPartition
from tests.console.conftest import Console

ARGS = "--entity-type brokers"


def a_console() -> Console:
    console = Console(Cluster(brokers=3, seed=3, config={"log.retention.ms": 3_600_000}))
    console.run("kafka-topics.sh $B --create --topic orders --partitions 3 --replication-factor 3")
    return console


def test_alter_and_describe_per_broker_and_cluster_default() -> None:
    console = a_console()
    assert console.text(
        f"kafka-configs.sh $B {ARGS} --entity-name 1 --alter "
        "--add-config log.retention.ms=1000,log.retention.bytes=5000"
    ) == ("Completed updating config for broker 1.\n")
    assert console.text(
        f"kafka-configs.sh $B {ARGS} --entity-default --alter --add-config log.retention.ms=2000"
    ) == ("Completed updating default config for brokers in the cluster.\n")
    assert console.text(f"kafka-configs.sh $B {ARGS} --entity-name 1 --describe") == (
        "Dynamic configs for broker 1 are:\n"
        "  log.retention.bytes=5000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:"
        "log.retention.bytes=5000, DEFAULT_CONFIG:log.retention.bytes=-1}\n"
        "  log.retention.ms=1000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:"
        "log.retention.ms=1000, DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=2000, "
        "STATIC_BROKER_CONFIG:log.retention.ms=3600000, "
        "DEFAULT_CONFIG:log.retention.ms=604800000}\n"
    )
    default_line = (
        "  log.retention.ms=2000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:"
        "log.retention.ms=2000, STATIC_BROKER_CONFIG:log.retention.ms=3600000, "
        "DEFAULT_CONFIG:log.retention.ms=604800000}\n"
    )
    assert console.text(f"kafka-configs.sh $B {ARGS} --entity-default --describe") == (
        "Default configs for brokers in the cluster are:\n" + default_line
    )
    every = console.text(f"kafka-configs.sh $B {ARGS} --describe")
    assert every.endswith(
        "Dynamic configs for broker 2 are:\nDynamic configs for broker 3 are:\n"
        "Default configs for brokers in the cluster are:\n" + default_line
    )
    # The brokers apply it: broker 1's replicas keep 1000 ms, the others follow the default.
    cluster = console.cluster
    cluster.advance(100)
    tp = TopicPartition("orders", 0)
    assert {b.id: b.partitions[tp].config["retention.ms"] for b in cluster._brokers.values()} == {
        1: 1000,
        2: 2000,
        3: 2000,
    }
    assert console.text(
        f"kafka-configs.sh $B {ARGS} --entity-name 1 --alter --delete-config log.retention.ms"
    ) == ("Completed updating config for broker 1.\n")
    cluster.advance(100)
    assert cluster.broker_by_id(1).partitions[tp].config["retention.ms"] == 2000


def test_refusals_print_the_tools_error_lines_and_change_nothing() -> None:
    console = a_console()
    args = f"{ARGS} --entity-name 1 --alter --add-config num.partitions=3"
    out = console.run(f"kafka-configs.sh $B {args}")
    assert (out.exit_code, out.stderr) == (
        1,
        "Error while executing config command with args '--bootstrap-server localhost:9092 "
        f"{args}'\n"
        "java.util.concurrent.ExecutionException: org.apache.kafka.common.errors."
        "InvalidRequestException: Cannot update these configs dynamically: Set(num.partitions)\n",
    )
    missing = console.run(
        f"kafka-configs.sh $B {ARGS} --entity-name 1 --alter --delete-config log.retention.ms"
    )
    assert (missing.exit_code, missing.stderr) == (1, "Invalid config(s): log.retention.ms\n")
    bad = console.run(
        f"kafka-configs.sh $B {ARGS} --entity-default --alter --add-config log.retention.ms=soon"
    )
    assert bad.stderr.endswith(
        "InvalidRequestException: Invalid value soon for configuration log.retention.ms: Not a "
        "number of type LONG\n"
    )
    assert console.cluster.controller.broker_configs == {}
