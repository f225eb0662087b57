"""How long console lines take on a 3-broker cluster (wall-clock milliseconds per line).

    python -m lessons.console.bench [--repeat N]

Read-only lines are repeated on one cluster; lines that change the cluster run once each on a
fresh one. Cluster time is what the simulation charges; wall time is what the host spends.
"""

from __future__ import annotations

import argparse
import time

from engine import Cluster
from lessons.console import ConsoleSession

B = "--bootstrap-server localhost:9092"
SETUP = [
    f"kafka-topics.sh {B} --create --topic orders --partitions 6 --replication-factor 3",
    f"printf 'a:1\\nb:2\\nc:3\\nd:4\\ne:5\\nf:6\\n' | kafka-console-producer.sh {B} --topic orders "
    "--reader-property parse.key=true --reader-property key.separator=:",
    f"kafka-console-consumer.sh {B} --topic orders --group billing --from-beginning "
    "--max-messages 6 --timeout-ms 6000",
]
READS = [
    f"kafka-topics.sh {B} --describe --topic orders",
    f"kafka-topics.sh {B} --list",
    f"kafka-consumer-groups.sh {B} --describe --group billing",
    f"kafka-consumer-groups.sh {B} --reset-offsets --group billing --all-topics --to-earliest "
    "--dry-run",
    f"kafka-configs.sh {B} --describe --topic orders",
    f"kafka-get-offsets.sh {B} --topic orders",
    f"kafka-metadata-quorum.sh {B} describe --status",
    f"kafka-topics.sh {B} --under-replicated-partitions",
]
WRITES = [
    f"kafka-topics.sh {B} --create --topic more --partitions 3",
    f"kafka-configs.sh {B} --alter --topic orders --add-config retention.ms=60000",
    f"kafka-consumer-groups.sh {B} --reset-offsets --group billing --all-topics --to-earliest "
    "--execute",
    f"kafka-console-consumer.sh {B} --topic orders --from-beginning --max-messages 6 "
    "--timeout-ms 6000",
    "kafka-producer-perf-test.sh --topic orders --num-records 5000 --record-size 100 "
    "--throughput 500 --producer-props bootstrap.servers=localhost:9092",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    session = ConsoleSession(Cluster(brokers=3, seed=1))
    for line in SETUP:
        session.run(line)
    print(f"{'wall ms':>9} {'cluster ms':>10}  line")
    for line in READS:
        start = time.perf_counter()
        for _ in range(args.repeat):
            session.run(line)
        wall = (time.perf_counter() - start) * 1000 / args.repeat
        print(f"{wall:9.2f} {0:10d}  {line.replace(B + ' ', '')[:90]}")
    for line in WRITES:
        fresh = ConsoleSession(Cluster(brokers=3, seed=1))
        for setup in SETUP:
            fresh.run(setup)
        before = fresh.cluster.now_ms
        start = time.perf_counter()
        fresh.run(line)
        wall = (time.perf_counter() - start) * 1000
        spent = fresh.cluster.now_ms - before
        print(f"{wall:9.2f} {spent:10d}  {line.replace(B + ' ', '')[:90]}")


if __name__ == "__main__":
    main()
