"""Tab completion data: tools, their options, and the cluster's topics and groups."""

from __future__ import annotations

from lessons.console.completion import complete, completion_data, tool_options
from tests.console.conftest import Console


def test_completes_tool_names_options_topics_and_groups(orders: Console) -> None:
    orders.run(
        "kafka-console-consumer.sh $B --topic orders --group billing --max-messages 1 "
        "--timeout-ms 5000"
    )
    data = completion_data(orders.session)
    assert complete("kafka-con", data) == [
        "kafka-configs.sh",
        "kafka-console-consumer.sh",
        "kafka-console-producer.sh",
        "kafka-consumer-groups.sh",
        "kafka-consumer-perf-test.sh",
    ]
    assert complete("kafka-topics.sh --bootstrap-server localhost:9092 --desc", data) == [
        "--describe"
    ]
    assert complete("kafka-topics.sh --describe --topic or", data) == ["orders"]
    assert complete("kafka-topics.sh --bootstrap-server ", data) == [
        "localhost:9092",
        "localhost:9093",
        "localhost:9094",
    ]
    assert complete("kafka-consumer-groups.sh --describe --group ", data) == ["billing"]
    assert "--under-replicated-partitions" in complete("bin/kafka-topics.sh --", data)
    assert "--describe" not in complete("kafka-topics.sh --describe --", data)  # flags once


def test_every_tool_offers_its_bootstrap_option() -> None:
    for tool, options in tool_options().items():
        names = {o["name"] for o in options}
        assert names & {"--bootstrap-server", "--producer-props", "--command-property"}, tool
