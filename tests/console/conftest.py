from __future__ import annotations

import pytest

from engine import Cluster
from lessons.console import ConsoleSession

BOOT = "--bootstrap-server localhost:9092"


class Console:
    """A console on a fresh three-broker cluster; `run` fills in $B as the bootstrap option."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.session = ConsoleSession(cluster)
        self.lines: list[str] = []

    def run(self, line: str):  # type: ignore[no-untyped-def]
        line = line.replace("$B", BOOT)
        self.lines.append(line)
        return self.session.run(line)

    def text(self, line: str) -> str:
        return self.run(line).text

    def wait(self, ms: int = 100) -> None:
        """Let cluster time pass before the next line, as a user typing it would: the tools read
        a broker's metadata cache (Kafka's Admin client), which learns of a change one network
        hop after the controller commits it."""
        self.cluster.advance(ms)


@pytest.fixture
def console() -> Console:
    return Console(Cluster(brokers=3, seed=7))


@pytest.fixture
def orders(console: Console) -> Console:
    """A topic `orders` (3 partitions, RF 3) holding three keyed records."""
    assert (
        console.text(
            "kafka-topics.sh $B --create --topic orders --partitions 3 --replication-factor 3"
        )
        == "Created topic orders.\n"
    )
    console.run(
        "echo -e 'k1:one\\nk2:two\\nk1:three' | kafka-console-producer.sh $B --topic orders "
        "--reader-property parse.key=true --reader-property key.separator=:"
    )
    return console
