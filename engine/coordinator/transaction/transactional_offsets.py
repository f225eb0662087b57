"""Offsets committed inside a transaction, on the group coordinator (T6, KIP-98, KIP-447).

TxnOffsetCommit goes to the group's coordinator, which checks the member and generation when
the producer sends them (KIP-447: `send_offsets_to_transaction(offsets, group_metadata)`) and
writes the offsets to `__consumer_offsets` as a transactional batch of the producer. They stay
pending until the transaction's marker reaches that partition: a COMMIT marker makes them the
group's committed offsets, an ABORT marker drops them (Kafka's `GroupMetadataManager.storeOffsets`
with a producer id, and `handleTxnCompletion`). The log is the source of truth: a new leader of
the partition finds the pending ones by reading it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from engine.common.records import TopicPartition
from engine.coordinator.transaction.transaction_markers import (
    OFFSETS_TOPIC,
    append_and_replicate,
    build_batch,
)

if TYPE_CHECKING:
    from engine.server.broker import Broker
    from engine.server.partition import Partition
    from engine.sim.context import SimContext

# producer id -> group -> partition -> offset
PendingOffsets = dict[int, dict[str, dict[TopicPartition, int]]]

_STORE_ERRORS = {
    "NOT_ENOUGH_REPLICAS": "COORDINATOR_NOT_AVAILABLE",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND": "COORDINATOR_NOT_AVAILABLE",
    "REQUEST_TIMED_OUT": "COORDINATOR_NOT_AVAILABLE",
    "UNKNOWN_TOPIC_OR_PARTITION": "COORDINATOR_NOT_AVAILABLE",
    "NOT_LEADER_OR_FOLLOWER": "NOT_COORDINATOR",
}


def read_pending(partition: Partition, end: int | None = None) -> PendingOffsets:
    """Transactional offset commits in this replica's log (below `end`) with no marker yet."""
    pending: PendingOffsets = {}
    log = partition.log
    for batch in log.iter_batches(log.log_start_offset, end):
        if batch.is_control:
            pending.pop(batch.producer_id, None)
        elif not batch.is_transactional:
            # A plain tombstone (a deleted topic's offsets) also drops pending ones (Kafka's
            # OffsetMetadataManager.replay of an offset commit tombstone).
            for record in batch.records:
                if record.value is None and record.key is not None:
                    key = json.loads(record.key)
                    if key.get("type") == "offset_commit":
                        tp = TopicPartition(key["topic"], key["partition"])
                        for groups in pending.values():
                            groups.get(key["group"], {}).pop(tp, None)
        else:
            groups = pending.setdefault(batch.producer_id, {})
            for record in batch.records:
                if record.key is None or record.value is None:
                    continue
                key = json.loads(record.key)
                if key.get("type") != "offset_commit":
                    continue
                tp = TopicPartition(key["topic"], key["partition"])
                groups.setdefault(key["group"], {})[tp] = int(json.loads(record.value)["offset"])
    return pending


class TransactionalOffsets:
    """The pending transactional offsets of the `__consumer_offsets` partitions a broker leads."""

    def __init__(self, ctx: SimContext, broker: Broker) -> None:
        self.ctx = ctx
        self.broker = broker
        self.pending: dict[int, PendingOffsets] = {}
        self.loaded: dict[int, int] = {}

    def pending_for(self, partition: Partition, end: int | None = None) -> PendingOffsets:
        number = partition.tp.partition
        if self.loaded.get(number) != partition.leader_epoch:
            self.pending[number] = read_pending(partition, end)
            self.loaded[number] = partition.leader_epoch
        return self.pending[number]

    def on_broker_stopped(self) -> None:
        self.pending = {}
        self.loaded = {}

    def forget_topic(self, topic: str) -> dict[str, set[TopicPartition]]:
        """Drop a deleted topic's pending offsets from the partitions this broker leads; returns
        them by group, for the coordinator's tombstones."""
        forgotten: dict[str, set[TopicPartition]] = {}
        for tp, partition in sorted(self.broker.partitions.items()):
            if tp.topic != OFFSETS_TOPIC or not partition.is_leader:
                continue
            for groups in self.pending_for(partition).values():
                for group_id, offsets in groups.items():
                    for gone in [t for t in offsets if t.topic == topic]:
                        del offsets[gone]
                        forgotten.setdefault(group_id, set()).add(gone)
        return forgotten

    def handle_txn_offset_commit(
        self,
        producer_id: int,
        producer_epoch: int,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        offsets: dict[TopicPartition, int],
        respond: Any,
    ) -> None:
        coordinator = self.broker.group_coordinator
        if coordinator is None:
            respond("COORDINATOR_NOT_AVAILABLE")
            return
        error, group = coordinator._group(group_id, create=True)
        if error or group is None:
            respond(error or "COORDINATOR_NOT_AVAILABLE")
            return
        # Kafka's validateOffsetCommit for a transactional commit: members are checked only
        # when the producer sent the consumer's group metadata (KIP-447).
        if generation >= 0 or member_id or instance_id is not None:
            error = coordinator._check_member(group, member_id, instance_id, generation)
            if error:
                respond(error)
                return
        _, partition = coordinator._offsets_partition(group_id)
        if partition is None or not partition.is_leader:
            respond("NOT_COORDINATOR")
            return
        from engine.coordinator.group.group_records import _encode, offset_commit_key

        now = self.ctx.now_ms
        items = sorted(offsets.items())
        entries: list[tuple[bytes | None, bytes | None]] = [
            (offset_commit_key(group_id, tp), _encode({"offset": o, "commit_timestamp": now}))
            for tp, o in items
        ]
        batch = build_batch(
            partition, entries, now, producer_id, producer_epoch, is_transactional=True
        )
        problem = partition.producer_state.validate(batch, batch.base_offset)
        if problem is not None:
            respond("INVALID_PRODUCER_EPOCH")
            return

        def stored(error: str) -> None:
            if error:
                respond(_STORE_ERRORS.get(error, error))
                return
            if partition.is_leader:
                pending = self.pending_for(partition)
                pending.setdefault(producer_id, {}).setdefault(group_id, {}).update(items)
            respond("")

        timeout = int(self.broker.config["offsets.commit.timeout.ms"])
        append_and_replicate(self.broker, partition, batch, timeout, stored)

    def complete_transactional_offsets(
        self, partition: Partition, producer_id: int, commit: bool
    ) -> None:
        """A marker reached a `__consumer_offsets` partition: apply or drop the producer's offsets
        (Kafka's `onTransactionCompleted`)."""
        if partition.tp.topic != OFFSETS_TOPIC:
            return
        broker = self.broker
        marker_offset = partition.log.log_end_offset - 1
        groups = self.pending_for(partition, end=marker_offset).pop(producer_id, {})
        if not commit or not groups:
            return
        coordinator = broker.group_coordinator
        number = partition.tp.partition
        for group_id, offsets in sorted(groups.items()):
            if not offsets:
                continue  # all of them were for a topic deleted meanwhile
            # A loaded group is updated in memory; one not loaded yet reads the marker from the log.
            if coordinator is not None and coordinator.loaded.get(number) == partition.leader_epoch:
                group = coordinator.groups.get(group_id)
                if group is not None:
                    group.offsets.update(offsets)
            broker.ctx.emit(
                "offsets_committed",
                {
                    "group": group_id,
                    "coordinator": broker.id,
                    "producer_id": producer_id,
                    "transactional": True,
                    "offsets": [[tp.topic, tp.partition, o] for tp, o in sorted(offsets.items())],
                },
            )
