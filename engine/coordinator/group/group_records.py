"""Where a group's state lives: its `__consumer_offsets` partition (Kafka's
`GroupCoordinatorRecordHelpers` and the loading half of `GroupMetadataManager`).

Offset commits and each generation's group metadata are JSON records keyed by group (and
topic-partition); a new leader of the partition rebuilds its groups by reading them back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from engine.common.records import Record, TopicPartition
from engine.coordinator.group.classic_group import (
    EMPTY,
    READ_UNCOMMITTED,
    STABLE,
    ClassicGroup,
    MemberMetadata,
)

if TYPE_CHECKING:
    from engine.server.partition import Partition

OFFSETS_TOPIC = "__consumer_offsets"


def java_string_hashcode(text: str) -> int:
    """Java's `String.hashCode()`: a signed 32-bit int over the UTF-16 code units."""
    units = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def kafka_abs(n: int) -> int:
    """Kafka's `Utils.abs`: `Integer.MIN_VALUE` maps to 0 instead of staying negative."""
    return 0 if n == -(1 << 31) else abs(n)


def offsets_partition_for(group_id: str, partitions: int) -> int:
    return kafka_abs(java_string_hashcode(group_id)) % partitions


# --- records in __consumer_offsets ---------------------------------------------------------


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def offset_commit_key(group_id: str, tp: TopicPartition) -> bytes:
    return _encode(
        {"type": "offset_commit", "group": group_id, "topic": tp.topic, "partition": tp.partition}
    )


def group_metadata_key(group_id: str) -> bytes:
    return _encode({"type": "group_metadata", "group": group_id})


def group_metadata_value(group: ClassicGroup) -> bytes:
    return _encode(
        {
            "generation": group.generation,
            "protocol": group.protocol,
            "leader": group.leader,
            "current_state_timestamp": group.current_state_timestamp,
            "isolation_level": group.isolation_level,
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "client_id": m.client_id,
                    "session_timeout_ms": m.session_timeout_ms,
                    "rebalance_timeout_ms": m.rebalance_timeout_ms,
                    "protocols": list(m.protocols),
                    "metadata": m.metadata,
                    "assignment": [list(tp) for tp in m.assignment],
                }
                for m in group.members.values()
            ],
        }
    )


def read_groups(partition: Partition) -> dict[str, ClassicGroup]:
    """Rebuild the groups of one `__consumer_offsets` partition from its log (no timers)."""
    groups: dict[str, ClassicGroup] = {}
    log = partition.log
    # Transactional offset commits count once their producer's COMMIT marker follows (T6).
    pending: dict[int, list[Record]] = {}
    for batch in log.iter_batches(log.log_start_offset):
        if batch.is_control:
            committed = pending.pop(batch.producer_id, [])
            records = committed if batch.control_type == "COMMIT" else []
        elif batch.is_transactional:
            pending.setdefault(batch.producer_id, []).extend(batch.records)
            continue
        else:
            records = batch.records
            # An offset tombstone also drops the same offset pending in an open transaction
            # (a deleted topic's offsets; Kafka's OffsetMetadataManager.replay).
            tombstoned = {r.key for r in records if r.value is None and r.key is not None}
            if tombstoned and pending:
                for waiting in pending.values():
                    waiting[:] = [r for r in waiting if r.key not in tombstoned]
        for record in records:
            if record.key is None:
                continue
            key = json.loads(record.key)
            group = groups.setdefault(key["group"], ClassicGroup(key["group"]))
            value = json.loads(record.value) if record.value is not None else None
            if key["type"] == "offset_commit":
                tp = TopicPartition(key["topic"], key["partition"])
                if value is None:
                    group.offsets.pop(tp, None)
                    group.commit_timestamps.pop(tp, None)
                else:
                    group.offsets[tp] = int(value["offset"])
                    group.commit_timestamps[tp] = int(value.get("commit_timestamp", 0))
            elif key["type"] == "group_metadata" and value is None:
                # The group was deleted (its offsets expired): only later commits bring it back.
                del groups[key["group"]]
            elif key["type"] == "group_metadata" and value is not None:
                group.generation = value["generation"]
                group.protocol = value["protocol"]
                group.leader = value["leader"]
                group.current_state_timestamp = value.get("current_state_timestamp")
                group.isolation_level = value.get("isolation_level", READ_UNCOMMITTED)
                group.members = {}
                group.static_members = {}
                for m in value["members"]:
                    member = MemberMetadata(
                        m["member_id"],
                        m["group_instance_id"],
                        m["client_id"],
                        m["session_timeout_ms"],
                        m["rebalance_timeout_ms"],
                        tuple(m["protocols"]),
                        m["metadata"],
                        tuple(TopicPartition(t, p) for t, p in m["assignment"]),
                    )
                    group.members[member.member_id] = member
                    if member.group_instance_id is not None:
                        group.static_members[member.group_instance_id] = member.member_id
                group.state = STABLE if group.members else EMPTY
    return groups
