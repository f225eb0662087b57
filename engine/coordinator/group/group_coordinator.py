"""The group coordinator of one broker: Kafka's `GroupCoordinator` and its runtime.

Every broker runs one, and it answers for the groups whose `__consumer_offsets` partition it
leads (P4). It loads a partition's groups from the log when it becomes the partition's leader
and forgets them when it stops leading (Kafka's `onElection`/`onResignation`), writes the
groups' records, and runs for them the classic protocol (`ClassicGroupJoin` on top of
`ClassicGroupProtocol`) and the offsets (`OffsetMetadataManager`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.common.record_size import batch_size_in_bytes, record_size_in_bytes
from engine.common.records import Record, RecordBatch, TopicPartition
from engine.coordinator.group.classic_group import (
    ClassicGroup,
    JoinGroupResponse,
    SyncGroupResponse,
)
from engine.coordinator.group.classic_group_join import ClassicGroupJoin
from engine.coordinator.group.group_records import (
    OFFSETS_TOPIC,
    offsets_partition_for,
    read_groups,
)
from engine.coordinator.group.offset_metadata_manager import OffsetMetadataManager
from engine.errors import KafkaError
from engine.sim.clock import Timer

if TYPE_CHECKING:
    from engine.coordinator.group.group_service import GroupService
    from engine.server.broker import Broker
    from engine.server.partition import Partition


class GroupCoordinator(ClassicGroupJoin):
    """The group coordinator of one broker (it lives in `broker.group_coordinator`)."""

    def __init__(self, service: GroupService, broker: Broker) -> None:
        self.service = service
        self.ctx = service.ctx
        self.broker = broker
        self.groups: dict[str, ClassicGroup] = {}
        # Which __consumer_offsets partitions are loaded, at which leader epoch.
        self.loaded: dict[int, int] = {}
        self.offsets = OffsetMetadataManager(self)
        # The broker incarnation whose offset-retention check is running.
        self._cleanup_incarnation = -1

    @property
    def now_ms(self) -> int:
        return self.ctx.scheduler.now_ms

    def _emit(self, kind: str, group: ClassicGroup, **data: Any) -> None:
        self.ctx.emit(kind, {"group": group.group_id, "coordinator": self.broker.id, **data})

    # --- ownership and loading -------------------------------------------------------------

    def _offsets_partition(self, group_id: str) -> tuple[int, Partition | None]:
        number = offsets_partition_for(group_id, self.service.num_partitions())
        return number, self.broker.partitions.get(TopicPartition(OFFSETS_TOPIC, number))

    def leads(self, group_id: str) -> bool:
        _, partition = self._offsets_partition(group_id)
        return self.broker.alive and partition is not None and partition.is_leader

    def _group(self, group_id: str, create: bool) -> tuple[str, ClassicGroup | None]:
        """NOT_COORDINATOR unless this broker leads the group's partition; loads it if new."""
        number, partition = self._offsets_partition(group_id)
        if not self.broker.alive or partition is None or not partition.is_leader:
            self._unload(number)
            return "NOT_COORDINATOR", None
        if self.loaded.get(number) != partition.leader_epoch:
            self._load(number, partition)
        group = self.groups.get(group_id)
        if group is None and create:
            group = ClassicGroup(group_id)
            self.groups[group_id] = group
        return "", group

    def on_topic_deleted(self, topic: str) -> None:
        """The broker applied a topic deletion (Kafka's BrokerMetadataPublisher calls
        `GroupCoordinator.onPartitionsDeleted`)."""
        store = self.broker.txn_offsets
        pending = store.forget_topic(topic) if store is not None else {}
        self.offsets.on_partitions_deleted(topic, pending)

    def _load(self, number: int, partition: Partition) -> None:
        """Kafka's `onElection`: rebuild the partition's groups from its log. Loaded members get
        a fresh session timeout, so members whose clients died meanwhile still expire."""
        self._unload(number)
        loaded = read_groups(partition)
        for group_id, group in loaded.items():
            self.groups[group_id] = group
            for member in group.members.values():
                self._schedule_session_expiry(group, member)
        self.loaded[number] = partition.leader_epoch
        max_size = int(self.broker.config["group.max.size"])
        for group_id, group in sorted(loaded.items()):
            if len(group.members) > max_size:
                # Kafka's onLoaded: a group over capacity (the setting was lowered) rebalances;
                # only group.max.size of its members are let back in.
                self._prepare_rebalance(
                    group,
                    f"Freshly-loaded group {group_id} (size {len(group.members)}) is over "
                    f"capacity {max_size}. Rebalancing in order to give a chance for consumers "
                    "to commit offsets",
                )
        self._start_offsets_cleanup()
        if loaded:
            self.ctx.emit(
                "group_coordinator_loaded",
                {"broker": self.broker.id, "partition": number, "groups": sorted(loaded)},
            )

    def _unload(self, number: int) -> None:
        """Kafka's `onResignation`: forget the partition's groups; their requests now get
        NOT_COORDINATOR and the clients look for the new coordinator."""
        if self.loaded.pop(number, None) is None:
            return
        partitions = self.service.num_partitions()
        dropped = sorted(g for g in self.groups if offsets_partition_for(g, partitions) == number)
        for group_id in dropped:
            self._drop(self.groups.pop(group_id))
        if dropped:
            self.ctx.emit(
                "group_coordinator_unloaded",
                {"broker": self.broker.id, "partition": number, "groups": dropped},
            )

    def on_become_leader(self, partition: Partition) -> None:
        if partition.tp.topic == OFFSETS_TOPIC and self.broker.alive:
            self._load(partition.tp.partition, partition)

    def on_become_follower(self, partition: Partition) -> None:
        if partition.tp.topic == OFFSETS_TOPIC:
            self._unload(partition.tp.partition)

    def _start_offsets_cleanup(self) -> None:
        """One offset-retention check per broker run (`offsets.retention.check.interval.ms`)."""
        if self._cleanup_incarnation == self.broker.incarnation:
            return
        self._cleanup_incarnation = self.broker.incarnation
        self.broker._every(
            int(self.broker.config["offsets.retention.check.interval.ms"]),
            self.offsets.cleanup_expired,
            self.broker.incarnation,
        )

    def _drop(self, group: ClassicGroup) -> None:
        """Forget a group (leadership lost): waiting members hear NOT_COORDINATOR."""
        for timer in (group.join_timer, group.sync_timer):
            if timer:
                timer.cancel()
        for timer in group.pending_members.values():
            timer.cancel()
        for member in group.members.values():
            if member.heartbeat_timer:
                member.heartbeat_timer.cancel()
            if member.awaiting_join:
                member.awaiting_join(JoinGroupResponse("NOT_COORDINATOR"))
                member.awaiting_join = None
            if member.awaiting_sync:
                member.awaiting_sync(SyncGroupResponse("NOT_COORDINATOR"))
                member.awaiting_sync = None

    def on_broker_stopped(self) -> None:
        for number in list(self.loaded):
            self._unload(number)
        self.groups = {}

    def _timer(self, delay_ms: int, group: ClassicGroup, action: Callable[[], None]) -> Timer:
        def fire() -> None:
            if self.groups.get(group.group_id) is not group:
                return
            error, _ = self._group(group.group_id, create=False)
            if not error:
                action()

        return self.ctx.scheduler.call_later(delay_ms, fire)

    def view(self, group_id: str) -> ClassicGroup | None:
        """Read-only: the group as this coordinator knows it, or as its log has it if not loaded."""
        number, partition = self._offsets_partition(group_id)
        if partition is None:
            return None
        if self.broker.alive and self.loaded.get(number) == partition.leader_epoch:
            return self.groups.get(group_id)
        return read_groups(partition).get(group_id)

    def views(self, number: int) -> dict[str, ClassicGroup]:
        partition = self.broker.partitions.get(TopicPartition(OFFSETS_TOPIC, number))
        if partition is None:
            return {}
        if self.broker.alive and self.loaded.get(number) == partition.leader_epoch:
            partitions = self.service.num_partitions()
            return {
                g: v
                for g, v in self.groups.items()
                if offsets_partition_for(g, partitions) == number
            }
        return read_groups(partition)

    def _append(
        self,
        group: ClassicGroup,
        entries: list[tuple[bytes, bytes | None]],
        done: Callable[[str], None],
    ) -> None:
        """Append to the group's partition as its leader; `done` once the high watermark covers
        it (Kafka's `offsets.commit.required.acks=-1`), with the error a client should see."""
        _, partition = self._offsets_partition(group.group_id)
        if partition is None or not partition.is_leader:
            done("NOT_COORDINATOR")
            return
        log = partition.log
        base = log.log_end_offset
        now = self.now_ms
        records = [
            Record(base + i, now, key, value, (), record_size_in_bytes(i, 0, key, value))
            for i, (key, value) in enumerate(entries)
        ]
        batch = RecordBatch(
            base_offset=base,
            records=records,
            leader_epoch=partition.leader_epoch,
            size=batch_size_in_bytes(records),
            max_timestamp=now,
        )
        try:
            self.broker.append_as_leader(partition, batch)
        except KafkaError:
            done("COORDINATOR_NOT_AVAILABLE")
            return

        def complete(error: str, _base: int, _log_start: int) -> None:
            if error in ("NOT_LEADER_OR_FOLLOWER", "UNKNOWN_TOPIC_OR_PARTITION"):
                done("NOT_COORDINATOR")
            elif error:
                done("COORDINATOR_NOT_AVAILABLE")
            else:
                done("")

        self.broker._complete_after_replication(
            partition,
            -1,
            batch.last_offset + 1,
            base,
            int(self.broker.config["offsets.commit.timeout.ms"]),
            complete,
        )
