"""A live cluster's memory, estimated from what it holds, and the bound a host keeps it under.

Hosts share one process, so the memory one cluster takes is memory every other visitor's
cluster lacks. Nearly all of a cluster's growth is the records its replicas keep (apps at
their max rates append hundreds a second, three replicas each, until retention deletes
them); everything else in the engine is bounded by the cluster's shape. So the estimate is
per stored record: its Kafka bytes plus the Python objects that hold it
(`PYTHON_BYTES_PER_RECORD`, measured by scripts/measure_host_memory.py as resident-memory
growth over stored records; see the number there).
"""

from __future__ import annotations

from typing import Any

# Resident memory per record a replica stores beyond its Kafka bytes (Record, its key and
# value bytes objects, the batch's share, index lists, the engine's other per-record state),
# from scripts/measure_host_memory.py (2 producer apps at 200/s, a group consumer, 3 brokers):
# between 60 s and 180 s of cluster time resident memory grew 77.2 MiB for 149,403 more stored
# records, 542 bytes each, of which ~81 are Kafka bytes; rounded up. Since followers share the
# leader's batch objects (2026-12-03) the same run measures ~310 bytes beyond the Kafka bytes:
# the bound is kept at 500, an overestimate, so a host stops a cluster early rather than late.
PYTHON_BYTES_PER_RECORD = 500


def _logs(runtime: Any) -> list[Any]:
    cluster = runtime.cluster
    logs = []
    for broker_id in cluster.broker_ids():
        for partition in cluster.broker_by_id(broker_id).partitions.values():
            logs.append(partition.log)
    return logs


def stored_record_bytes(runtime: Any) -> int:
    """The Kafka bytes of every record batch every replica stores."""
    return sum(int(log.size) for log in _logs(runtime))


def stored_records(runtime: Any) -> int:
    return sum(int(log.record_count) for log in _logs(runtime))


def cluster_memory_bytes(runtime: Any) -> int:
    """The estimated memory the cluster's stored records take (see the module's note)."""
    total = 0
    for log in _logs(runtime):
        total += int(log.size) + PYTHON_BYTES_PER_RECORD * int(log.record_count)
    return total


def over_bound_message(used: int, bound: int) -> str:
    """What the stage and a refused command say when a cluster holds too much."""
    return (
        f"Cluster stopped: its replicas hold about {used / 2**20:.0f} MiB of records, over the "
        f"{bound / 2**20:.0f} MiB one cluster may keep on this server. Its clock stays stopped "
        "and produces are refused until it holds less: stop the producer apps and delete a "
        "topic (kafka-topics.sh --delete in the console), or start a new sandbox."
    )
