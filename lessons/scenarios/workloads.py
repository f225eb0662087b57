"""The lesson workload as runtime commands (one definition for the benchmarks and the tests).

A 3-partition RF 3 `orders` topic with a standalone reader, a producer app at 20 records/s with
acks=all, and the `billing` group consumer: what `scripts.bench.lesson` times and the checkpoint
tests replay.
"""

from __future__ import annotations

from typing import Any

ORDERS_TOPIC: dict[str, Any] = {
    "type": "create_topic",
    "name": "orders",
    "partitions": 3,
    "replication_factor": 3,
}
READER: dict[str, Any] = {
    "type": "add_consumer",
    "name": "reader",
    "topic": "orders",
    "poll_interval_ms": 500,
    "max_records": 1,
}
PRODUCER_APP: dict[str, Any] = {
    "type": "start_producer",
    "topic": "orders",
    "rate": 20.0,
    "keys": 10,
    "acks": "all",
}
GROUP_APP: dict[str, Any] = {
    "type": "add_group_consumer",
    "group": "billing",
    "topic": "orders",
    "commit": "auto",
    "strategy": "range",
    "isolation": "read_uncommitted",
}
SETUP: list[dict[str, Any]] = [ORDERS_TOPIC, READER]
