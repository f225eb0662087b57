"""The idempotent half of Kafka's producer `TransactionManager`: the producer id and epoch,
each partition's next sequence number, last acknowledged sequence and the epoch they belong to
(`TxnPartitionEntry`), the KIP-360 epoch bump after a sequenced batch fails, and the unresolved
sequences a batch leaves when it expires after being sent (`markSequenceUnresolved`,
`maybeResolveSequences`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.common.records import TopicPartition

if TYPE_CHECKING:
    from engine.clients.producer.kafka_producer import KafkaProducer
    from engine.clients.producer.record_accumulator import ProducerBatch


class ProducerSequences:
    """Sequence numbers the broker uses to deduplicate an idempotent producer's retries."""

    def __init__(self, producer: KafkaProducer) -> None:
        self._producer = producer
        self.producer_id = -1
        self.producer_epoch = -1
        self.next_sequence: dict[TopicPartition, int] = {}
        # The producer epoch each partition's sequence numbers belong to: after an epoch bump a
        # partition keeps its old epoch until nothing sequenced under it is still pending, so a
        # retried batch is still recognised by the broker (Kafka's per-partition TxnPartitionEntry).
        self.sequence_epoch: dict[TopicPartition, int] = {}
        self.rewrite_sequences: set[TopicPartition] = set()
        self.epoch_bump_needed = False
        # The highest sequence the broker acknowledged, per partition, under its sequence epoch.
        self.last_acked: dict[TopicPartition, int] = {}
        # Partitions where a batch that had been sent expired (delivery.timeout.ms) while being
        # retried: whether the broker wrote it is unknown until what follows it is answered.
        # The value is the sequence after the expired batch (Kafka's
        # partitionsWithUnresolvedSequences).
        self.unresolved: dict[TopicPartition, int] = {}

    def assign_sequence(self, batch: ProducerBatch) -> None:
        tp = batch.tp
        epoch = self.sequence_epoch.get(tp)
        if epoch != self.producer_epoch and not self.sequenced_pending(tp, batch):
            epoch = self.sequence_epoch[tp] = self.producer_epoch
            self.next_sequence[tp] = 0
            self.last_acked[tp] = -1
        batch.base_sequence = self.next_sequence.get(tp, 0)
        self.next_sequence[tp] = (batch.base_sequence + len(batch.records)) % (2**31)
        batch.producer_id = self.producer_id
        batch.producer_epoch = self.producer_epoch if epoch is None else epoch
        batch.is_transactional = self._producer.transaction is not None

    def may_drain(self, batch: ProducerBatch) -> bool:
        """A fresh batch of a partition whose sequences are being rewritten waits for the bump,
        and one of a partition with an unresolved sequence waits until it is resolved (Kafka's
        `shouldStopDrainBatchesForPartition`)."""
        if batch.base_sequence >= 0:
            return True
        tp = batch.tp
        return not (
            (self.epoch_bump_needed and tp in self.rewrite_sequences) or tp in self.unresolved
        )

    def on_acknowledged(self, batch: ProducerBatch) -> None:
        """Kafka's `maybeUpdateLastAckedSequence` for a batch the broker acknowledged."""
        tp = batch.tp
        if batch.producer_epoch != self.sequence_epoch.get(tp):
            return  # sequenced under an epoch this partition has left
        last = batch.base_sequence + len(batch.records) - 1
        if last > self.last_acked.get(tp, -1):
            self.last_acked[tp] = last

    def mark_unresolved(self, batch: ProducerBatch) -> None:
        """A batch expired after it had been retried: the broker may or may not hold it."""
        after = batch.base_sequence + len(batch.records)
        tp = batch.tp
        self.unresolved[tp] = max(self.unresolved.get(tp, after), after)

    def maybe_resolve(self) -> None:
        """Kafka's `maybeResolveSequences`: once nothing sequenced is pending for a partition
        with an unresolved sequence, it is resolved if the broker acknowledged everything up to
        the next sequence (the expired batch was written, later batches followed it); otherwise
        the idempotent producer bumps its epoch for that partition (KIP-360)."""
        for tp in sorted(self.unresolved):
            if self.sequenced_pending(tp):
                continue
            del self.unresolved[tp]
            if self.next_sequence.get(tp, 0) - self.last_acked.get(tp, -1) != 1:
                self.on_sequenced_batch_failed(tp)

    def sequenced_pending(self, tp: TopicPartition, besides: ProducerBatch | None = None) -> bool:
        producer = self._producer
        if any(b is not besides and not b.done for b in producer.in_flight_batches.get(tp, [])):
            return True
        return any(
            b is not besides and not b.done and b.base_sequence >= 0
            for b in producer.batches.get(tp, ())
        )

    def on_sequenced_batch_failed(self, tp: TopicPartition) -> None:
        # KIP-360: a sequenced batch that failed leaves a gap the broker would refuse, so the
        # idempotent producer bumps its epoch and starts that partition's sequences at 0.
        self.epoch_bump_needed = True
        self.rewrite_sequences.add(tp)

    def maybe_bump_epoch(self) -> None:
        if self.epoch_bump_needed and not any(
            self.sequenced_pending(tp) for tp in self.rewrite_sequences
        ):
            # Kafka bumps only once the broken partitions have nothing sequenced in flight or
            # waiting for a retry: those retries go out under the old epoch, to be deduplicated.
            self.bump_epoch()

    def bump_epoch(self) -> None:
        """KIP-360: a new epoch for the partitions whose sequences broke; every other partition
        keeps sequencing its pending batches under the old epoch, so their retries stay
        deduplicated, and moves to the new epoch once it has nothing pending."""
        self.epoch_bump_needed = False
        self.producer_epoch += 1
        batches = self._producer.batches
        for tp in sorted(self.rewrite_sequences):
            self.sequence_epoch[tp] = self.producer_epoch
            self.next_sequence[tp] = 0
            self.last_acked[tp] = -1
            self.unresolved.pop(tp, None)
            for batch in batches.get(tp, ()):
                batch.base_sequence = -1
        self.rewrite_sequences.clear()
        self._producer.ctx.emit(
            "producer_epoch_bumped",
            {
                "producer": self._producer.client_id,
                "producer_id": self.producer_id,
                "producer_epoch": self.producer_epoch,
            },
        )
