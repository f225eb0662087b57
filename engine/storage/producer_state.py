"""Per-partition producer state on a broker: Kafka's `ProducerStateManager`.

The broker remembers, per producer id, its epoch and the last five batches it wrote, so a
retried batch is recognised and answered with its original offsets (I2), a gap in sequence
numbers is refused (I3), and an older epoch is refused as a zombie's (I3).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from engine.common.records import RecordBatch, marker_coordinator_epoch
from engine.errors import InvalidProducerEpochError, KafkaError, OutOfOrderSequenceError
from engine.storage.transaction_index import TransactionIndex

NUM_BATCHES_TO_RETAIN = 5
INT_MAX = 2**31 - 1


@dataclass(slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerStateEntry:
    producer_id: int
    producer_epoch: int = -1
    batches: deque[BatchMetadata] = field(
        default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN)
    )
    current_txn_first_offset: int | None = None
    last_timestamp: int = -1
    coordinator_epoch: int = -1  # of the last transaction marker (Kafka's ProducerStateEntry)

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        if epoch != self.producer_epoch:
            return None
        for batch in self.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return batch
        return None


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT_MAX)


class ProducerStateManager:
    def __init__(self) -> None:
        self.producers: dict[int, ProducerStateEntry] = {}
        # Kafka's `.txnindex`: aborted transactions, indexed as their ABORT marker is appended.
        self.aborted_index = TransactionIndex()

    def find_duplicate(self, batch: RecordBatch) -> BatchMetadata | None:
        entry = self.producers.get(batch.producer_id)
        if entry is None or batch.base_sequence < 0:
            return None
        last_seq = batch.base_sequence + len(batch.records) - 1
        return entry.find_duplicate(batch.producer_epoch, batch.base_sequence, last_seq)

    def validate(self, batch: RecordBatch, offset: int) -> KafkaError | None:
        """What the leader checks before appending an idempotent batch (I3)."""
        entry = self.producers.get(batch.producer_id)
        if entry is None or batch.producer_id < 0:
            return None
        if batch.producer_epoch < entry.producer_epoch:
            return InvalidProducerEpochError(
                f"Producer {batch.producer_id} sent epoch {batch.producer_epoch}, but epoch "
                f"{entry.producer_epoch} is current: an older instance of this producer was fenced."
            )
        if batch.base_sequence < 0 or batch.is_control:
            return None
        if batch.producer_epoch != entry.producer_epoch:
            if batch.base_sequence != 0 and entry.producer_epoch != -1:
                return OutOfOrderSequenceError(
                    f"A new epoch of producer {batch.producer_id} must start at sequence 0, "
                    f"not {batch.base_sequence}."
                )
            return None
        if entry.batches and not in_sequence(entry.last_seq, batch.base_sequence):
            return OutOfOrderSequenceError(
                f"Expected sequence {entry.last_seq + 1} from producer {batch.producer_id} at "
                f"offset {offset}, got {batch.base_sequence}: an earlier batch never arrived."
            )
        return None

    def update(self, batch: RecordBatch) -> None:
        """Record an appended batch (on leaders and followers alike)."""
        if batch.producer_id < 0:
            return
        entry = self.producers.get(batch.producer_id)
        if entry is None:
            entry = ProducerStateEntry(batch.producer_id)
            self.producers[batch.producer_id] = entry
        if batch.producer_epoch > entry.producer_epoch:
            entry.producer_epoch = batch.producer_epoch
            entry.batches.clear()
        entry.last_timestamp = batch.max_timestamp
        if batch.is_control:
            if batch.records:
                # Kafka's ProducerStateEntry.update: the marker's coordinator epoch (a follower
                # takes what its leader accepted, even from an older coordinator).
                entry.coordinator_epoch = marker_coordinator_epoch(batch.records[0].value)
            if batch.control_type == "ABORT" and entry.current_txn_first_offset is not None:
                self.aborted_index.append(
                    batch.producer_id, entry.current_txn_first_offset, batch.last_offset
                )
            entry.current_txn_first_offset = None
            return
        base_offset = batch.base_offset
        if batch.is_transactional and entry.current_txn_first_offset is None:
            entry.current_txn_first_offset = base_offset
        base_sequence = batch.base_sequence
        if base_sequence >= 0:
            records = batch.records
            last_offset = records[-1].offset if records else base_offset
            if last_offset >= base_offset:
                # The span of offsets, not the record count: a batch rewritten by the log
                # cleaner keeps its last offset (and so its last sequence), even emptied.
                entry.batches.append(
                    BatchMetadata(
                        base_sequence,
                        base_sequence + last_offset - base_offset,
                        base_offset,
                        last_offset,
                        batch.max_timestamp,
                    )
                )

    def first_unstable_offset(self) -> int | None:
        first: int | None = None
        for entry in self.producers.values():
            offset = entry.current_txn_first_offset
            if offset is not None and (first is None or offset < first):
                first = offset
        return first

    def rebuild(self, batches: list[RecordBatch]) -> None:
        self.producers.clear()
        self.aborted_index.clear()
        for batch in batches:
            self.update(batch)
