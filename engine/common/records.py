"""Value types shared by every part of the engine: topic-partitions, records, metadata.

Mirrors Kafka's `org.apache.kafka.common.TopicPartition`, `ProducerRecord`, `ConsumerRecord`
and `RecordMetadata`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

Headers = tuple[tuple[str, bytes | None], ...]


class TopicPartition(NamedTuple):
    """A topic and a partition number: hashable, ordered by topic then partition."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


class RecordMetadata(NamedTuple):
    """What an acknowledged send returns (`offset` is -1 with acks=0, as in Kafka)."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class ConsumerRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(slots=True)
class Record:
    """One record as stored in a replica's log."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    size: int = 0


@dataclass(slots=True)
class RecordBatch:
    """A batch of records as appended to a log (Kafka's `RecordBatch`, magic v2).

    `producer_id`/`producer_epoch`/`base_sequence` are -1 for non-idempotent producers.
    `is_control` batches hold one transaction marker (`control_type` "COMMIT" or "ABORT").
    """

    base_offset: int
    records: list[Record]
    leader_epoch: int
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1
    is_transactional: bool = False
    is_control: bool = False
    control_type: str | None = None
    size: int = 0
    max_timestamp: int = field(default=-1)

    @property
    def last_offset(self) -> int:
        return self.records[-1].offset if self.records else self.base_offset


def marker_value(coordinator_epoch: int) -> bytes:
    """Kafka's EndTransactionMarker value: version (int16, 0) and coordinator epoch (int32)."""
    return (0).to_bytes(2, "big") + coordinator_epoch.to_bytes(4, "big", signed=True)


def marker_coordinator_epoch(value: bytes | None) -> int:
    if value is None or len(value) < 6:
        return -1
    return int.from_bytes(value[2:6], "big", signed=True)
