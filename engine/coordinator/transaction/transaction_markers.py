"""Writing to logs on behalf of coordinators, and transaction markers.

Kafka's `ReplicaManager.appendRecords` with `requiredAcks = -1` as coordinators use it (the
answer waits until the high watermark covers the write), the broker side of WriteTxnMarkers
(`KafkaApis.handleWriteTxnMarkersRequest`), and the coordinator side that sends markers and
retries them until every partition of the transaction has one
(`TransactionMarkerChannelManager`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.common.metadata import NO_LEADER
from engine.common.record_size import RECORD_BATCH_OVERHEAD, record_size_in_bytes
from engine.common.records import Record, RecordBatch, TopicPartition, marker_value
from engine.errors import KafkaError, protocol_name
from engine.sim.network import request

if TYPE_CHECKING:
    from engine.coordinator.transaction.transaction_coordinator import TransactionCoordinator
    from engine.coordinator.transaction.transaction_state import TransactionMetadata
    from engine.server.broker import Broker
    from engine.server.partition import Partition

OFFSETS_TOPIC = "__consumer_offsets"
MARKER_RETRY_BACKOFF_MS = 100
# The broker's request.timeout.ms: how long a coordinator's write may wait for replication.
COORDINATOR_WRITE_TIMEOUT_MS = 30000

Done = Callable[[str], None]


def build_batch(
    partition: Partition,
    entries: list[tuple[bytes | None, bytes | None]],
    now_ms: int,
    producer_id: int = -1,
    producer_epoch: int = -1,
    is_transactional: bool = False,
    control_type: str | None = None,
) -> RecordBatch:
    base = partition.log.log_end_offset
    records = [
        Record(base + i, now_ms, key, value, (), record_size_in_bytes(i, 0, key, value, ()))
        for i, (key, value) in enumerate(entries)
    ]
    return RecordBatch(
        base_offset=base,
        records=records,
        leader_epoch=partition.leader_epoch,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        is_transactional=is_transactional or control_type is not None,
        is_control=control_type is not None,
        control_type=control_type,
        size=RECORD_BATCH_OVERHEAD + sum(r.size for r in records),
        max_timestamp=now_ms,
    )


def append_and_replicate(
    broker: Broker, partition: Partition, batch: RecordBatch, timeout_ms: int, done: Done
) -> None:
    """Append as leader with acks=all: `done("")` once the high watermark covers the batch,
    or `done(error)` with the produce error Kafka would give (NOT_ENOUGH_REPLICAS, ...)."""
    if not partition.is_leader:
        done("NOT_LEADER_OR_FOLLOWER")
        return
    if len(partition.isr) < partition.effective_min_isr():
        done("NOT_ENOUGH_REPLICAS")
        return
    try:
        broker.append_as_leader(partition, batch)
    except KafkaError as exc:
        done(protocol_name(exc))
        return
    broker._complete_after_replication(
        partition,
        -1,
        batch.last_offset + 1,
        batch.base_offset,
        timeout_ms,
        lambda error, _base, _log_start: done(error),
    )


# --- the partition leader's side of WriteTxnMarkers ------------------------------------------


def write_txn_marker(
    broker: Broker,
    tp: TopicPartition,
    producer_id: int,
    producer_epoch: int,
    control_type: str,
    done: Done,
    coordinator_epoch: int = -1,
) -> None:
    """Append a one-record COMMIT or ABORT control batch and answer once it is replicated.

    The marker carries the epoch of the coordinator that wrote it (the leader epoch of its
    `__transaction_state` partition); a marker from an older coordinator than the last one
    seen for the producer is refused with TRANSACTION_COORDINATOR_FENCED (Kafka's
    `ProducerAppendInfo.checkCoordinatorEpoch`), so a zombie coordinator cannot end a
    transaction again after its successor did."""
    partition = broker.partitions.get(tp)
    if partition is None or not partition.is_leader:
        done("NOT_LEADER_OR_FOLLOWER")
        return
    entry = partition.producer_state.producers.get(producer_id)
    if entry is not None and producer_epoch < entry.producer_epoch:
        done("INVALID_PRODUCER_EPOCH")  # Kafka's appendEndTxnMarker: checkProducerEpoch
        return
    if entry is not None and entry.coordinator_epoch > coordinator_epoch:
        done("TRANSACTION_COORDINATOR_FENCED")
        return
    # A control record's key holds its version and type (ABORT 0, COMMIT 1).
    key = bytes([0, 0, 0, 1 if control_type == "COMMIT" else 0])
    batch = build_batch(
        partition,
        [(key, marker_value(coordinator_epoch))],
        broker.now_ms,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        control_type=control_type,
    )

    def replicated(error: str) -> None:
        if not error and tp.topic == OFFSETS_TOPIC:
            # The group coordinator materialises (or drops) the transaction's offsets as soon
            # as the marker is written (Kafka's `onTransactionCompleted`).
            store = broker.txn_offsets
            if store is not None:
                store.complete_transactional_offsets(
                    partition, producer_id, control_type == "COMMIT"
                )
        done(error)

    append_and_replicate(broker, partition, batch, COORDINATOR_WRITE_TIMEOUT_MS, replicated)


# --- the coordinator's side: TransactionMarkerChannelManager --------------------------------


class TransactionMarkerChannel:
    """Sends the markers of a transaction in PrepareCommit/PrepareAbort and, once every
    partition answered, has the coordinator write CompleteCommit/CompleteAbort."""

    def __init__(self, coordinator: TransactionCoordinator) -> None:
        self.coordinator = coordinator
        self.ctx = coordinator.ctx
        self.controller = coordinator.controller
        self.broker = coordinator.broker

    def send_markers(self, meta: TransactionMetadata) -> None:
        meta.pending_markers = set(meta.partitions)
        if not meta.pending_markers:
            self.coordinator.complete_transaction(meta)
            return
        round_key = (meta.state, meta.producer_epoch)
        for tp in sorted(meta.pending_markers):
            self._send(meta, tp, round_key)

    def _current(self, meta: TransactionMetadata, tp: TopicPartition, round_key: object) -> bool:
        return (
            self.coordinator.owns(meta)
            and (meta.state, meta.producer_epoch) == round_key
            and tp in meta.pending_markers
        )

    def _send(self, meta: TransactionMetadata, tp: TopicPartition, round_key: object) -> None:
        if not self._current(meta, tp, round_key):
            return
        view = self.broker.topics.get(tp.topic)
        if view is None or tp.partition not in view.partitions:
            if tp.topic not in self.controller.topics:
                self._written(meta, tp, round_key)  # the topic is gone: nothing to mark
            else:
                self._retry(meta, tp, round_key)
            return
        leader_id = view.partitions[tp.partition].leader
        if leader_id == NO_LEADER:
            self._retry(meta, tp, round_key)
            return
        leader = self.ctx.nodes.broker_by_id(leader_id)
        producer_id, producer_epoch = meta.producer_id, meta.producer_epoch
        control_type = "COMMIT" if meta.state == "PrepareCommit" else "ABORT"
        coordinator_epoch = self.coordinator.coordinator_epoch(meta)
        finished = [False]

        def handle(reply: Callable[[object], None]) -> None:
            write_txn_marker(
                leader, tp, producer_id, producer_epoch, control_type, reply, coordinator_epoch
            )

        def on_reply(response: object) -> None:
            if finished[0]:
                return
            finished[0] = True
            if response == "":
                self._written(meta, tp, round_key)
            elif response in ("INVALID_PRODUCER_EPOCH", "TRANSACTION_COORDINATOR_FENCED"):
                # A newer producer epoch or a newer coordinator owns the transaction: this
                # round is over (Kafka's TransactionMarkerRequestCompletionHandler drops it).
                return
            else:
                self._retry(meta, tp, round_key)

        def expire() -> None:
            if not finished[0]:
                finished[0] = True
                self._retry(meta, tp, round_key)

        request(
            self.ctx.network,
            self.broker.id,
            leader_id,
            "write_txn_markers",
            lambda: leader.alive,
            handle,
            on_reply,
        )
        self.ctx.scheduler.call_later(COORDINATOR_WRITE_TIMEOUT_MS, expire)

    def _retry(self, meta: TransactionMetadata, tp: TopicPartition, round_key: object) -> None:
        self.ctx.scheduler.call_later(
            MARKER_RETRY_BACKOFF_MS, lambda: self._send(meta, tp, round_key)
        )

    def _written(self, meta: TransactionMetadata, tp: TopicPartition, round_key: object) -> None:
        if not self._current(meta, tp, round_key):
            return
        meta.pending_markers.discard(tp)
        if not meta.pending_markers:
            self.coordinator.complete_transaction(meta)
