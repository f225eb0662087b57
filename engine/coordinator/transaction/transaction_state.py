"""The transaction state log: what the coordinator writes to `__transaction_state` and reads
back when it becomes leader of a partition of it (Kafka's `TransactionLog`,
`TransactionMetadata` and `TransactionStateManager.loadTransactionsForTxnTopicPartition`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.common.records import TopicPartition

if TYPE_CHECKING:
    from engine.server.partition import Partition

TRANSACTION_STATE_TOPIC = "__transaction_state"
MAX_EPOCH = 32767
NO_PRODUCER_EPOCH = -1

EMPTY = "Empty"
ONGOING = "Ongoing"
PREPARE_COMMIT = "PrepareCommit"
PREPARE_ABORT = "PrepareAbort"
COMPLETE_COMMIT = "CompleteCommit"
COMPLETE_ABORT = "CompleteAbort"


def java_string_hash(text: str) -> int:
    """Java's `String.hashCode` (over UTF-16 code units), a signed 32-bit int."""
    value = 0
    data = text.encode("utf-16-be")
    for index in range(0, len(data), 2):
        value = (31 * value + ((data[index] << 8) | data[index + 1])) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def java_abs(value: int) -> int:
    """Kafka's `Utils.abs`: Integer.MIN_VALUE maps to 0."""
    return 0 if value == -(1 << 31) else abs(value)


@dataclass(slots=True)
class TransactionMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: str = EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    txn_start_ms: int = -1
    last_update_ms: int = 0
    # In memory only: a transition written but not yet replicated, the markers still owed.
    pending_state: str | None = None
    pending_markers: set[TopicPartition] = field(default_factory=set)
    end_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "transactional_id": self.transactional_id,
            "producer_id": self.producer_id,
            "producer_epoch": self.producer_epoch,
            "timeout_ms": self.timeout_ms,
            "state": self.state,
            "partitions": [[tp.topic, tp.partition] for tp in sorted(self.partitions)],
            "txn_start_ms": self.txn_start_ms,
            "pending_markers": [[tp.topic, tp.partition] for tp in sorted(self.pending_markers)],
        }

    def log_value(self) -> bytes:
        """The record written to `__transaction_state` (Kafka's TransactionLog value)."""
        value = {
            "producer_id": self.producer_id,
            "producer_epoch": self.producer_epoch,
            "timeout_ms": self.timeout_ms,
            "state": self.state,
            "partitions": [[tp.topic, tp.partition] for tp in sorted(self.partitions)],
            "txn_start_ms": self.txn_start_ms,
            "last_update_ms": self.last_update_ms,
        }
        return json.dumps(value, sort_keys=True).encode()

    def transit(self, **changes: Any) -> TransactionMetadata:
        """The metadata a transition would write (Kafka's TxnTransitMetadata)."""
        target = dataclasses.replace(self, partitions=set(self.partitions), pending_markers=set())
        for name, value in changes.items():
            setattr(target, name, value)
        return target

    def complete_transit(self, target: TransactionMetadata) -> None:
        self.producer_id = target.producer_id
        self.producer_epoch = target.producer_epoch
        self.timeout_ms = target.timeout_ms
        self.state = target.state
        self.partitions = set(target.partitions)
        self.txn_start_ms = target.txn_start_ms
        self.last_update_ms = target.last_update_ms


def read_transaction_state(partition: Partition) -> dict[str, TransactionMetadata]:
    """Kafka's `loadTransactionsForTxnTopicPartition`: the latest record of every transactional
    id in this replica's log, up to its end."""
    found: dict[str, TransactionMetadata] = {}
    log = partition.log
    for batch in log.iter_batches(log.log_start_offset):
        if batch.is_control:
            continue
        for record in batch.records:
            if record.key is None:
                continue
            transactional_id = record.key.decode()
            if record.value is None:
                found.pop(transactional_id, None)
                continue
            value = json.loads(record.value)
            found[transactional_id] = TransactionMetadata(
                transactional_id,
                int(value["producer_id"]),
                int(value["producer_epoch"]),
                int(value["timeout_ms"]),
                value["state"],
                {TopicPartition(t, p) for t, p in value["partitions"]},
                int(value["txn_start_ms"]),
                int(value.get("last_update_ms", record.timestamp)),
            )
    return found
