"""Committed offsets of the groups one coordinator leads: Kafka's `OffsetMetadataManager`.

Commits are validated against the group's generation (G7) and stored as records in the group's
`__consumer_offsets` partition (O6). Offsets expire (KIP-211) `offsets.retention.minutes` after
their group became empty, or after their commit when the group never had members or no longer
subscribes to the topic; tombstones in the compacted log let the log cleaner remove them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.common.records import TopicPartition
from engine.coordinator.group.classic_group import (
    COMPLETING_REBALANCE,
    DEAD,
    EMPTY,
    ClassicGroup,
    Respond,
)
from engine.coordinator.group.group_records import _encode, group_metadata_key, offset_commit_key

if TYPE_CHECKING:
    from engine.coordinator.group.group_coordinator import GroupCoordinator


class OffsetMetadataManager:
    """The offsets half of one broker's group coordinator (`coordinator.offsets`)."""

    def __init__(self, coordinator: GroupCoordinator) -> None:
        self.coordinator = coordinator

    # --- OffsetCommit and OffsetFetch ----------------------------------------------------------

    def handle_offset_commit(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        offsets: dict[TopicPartition, int],
        respond: Respond,
    ) -> None:
        error, group = self.coordinator._group(group_id, create=generation < 0)
        if error:
            respond(error)
            return
        if group is None:
            respond("ILLEGAL_GENERATION")
            return
        error = self.validate_commit(group, generation, member_id, instance_id)
        if error:
            respond(error)
            return
        self.commit_offsets(group, offsets, respond, member_id)

    def validate_commit(
        self, group: ClassicGroup, generation: int, member_id: str, instance_id: str | None
    ) -> str:
        """G7, as Kafka's `ClassicGroup.validateOffsetCommit`."""
        if generation < 0 and group.state == EMPTY:
            return ""  # a group without members (or a standalone consumer) may commit
        if generation >= 0 or member_id or instance_id is not None:
            error = self.coordinator._check_member(group, member_id, instance_id, generation)
            if error:
                return error
        elif group.state != EMPTY:
            return "UNKNOWN_MEMBER_ID"
        if group.state == COMPLETING_REBALANCE:
            return "REBALANCE_IN_PROGRESS"
        return ""

    def commit_offsets(
        self,
        group: ClassicGroup,
        offsets: dict[TopicPartition, int],
        respond: Respond,
        member_id: str = "",
    ) -> None:
        if not offsets:
            respond("")
            return
        coordinator = self.coordinator
        now = coordinator.now_ms
        items = sorted(offsets.items())
        entries: list[tuple[bytes, bytes | None]] = [
            (
                offset_commit_key(group.group_id, tp),
                _encode({"offset": offset, "commit_timestamp": now}),
            )
            for tp, offset in items
        ]

        def stored(error: str) -> None:
            if not error:
                if coordinator.groups.get(group.group_id) is group:
                    group.offsets.update(items)
                    group.commit_timestamps.update((tp, now) for tp, _ in items)
                coordinator._emit(
                    "offsets_committed",
                    group,
                    member=member_id,
                    offsets=[[tp.topic, tp.partition, offset] for tp, offset in items],
                )
            respond(error)

        coordinator._append(group, entries, stored)

    def handle_offset_fetch(
        self, group_id: str, tps: list[TopicPartition] | None, respond: Respond
    ) -> None:
        error, group = self.coordinator._group(group_id, create=False)
        if error:
            respond((error, {}))
            return
        known = group.offsets if group is not None else {}
        wanted = sorted(known) if tps is None else tps
        respond(("", {tp: known.get(tp, -1) for tp in wanted}))

    def admin_commit(
        self, group_id: str, offsets: dict[TopicPartition, int], respond: Respond
    ) -> None:
        error, group = self.coordinator._group(group_id, create=True)
        if error or group is None:
            respond(error or "COORDINATOR_NOT_AVAILABLE")
            return
        if group.members:
            respond("NON_EMPTY_GROUP")
            return
        self.commit_offsets(group, offsets, respond)

    def admin_delete_group(self, group_id: str, respond: Respond) -> None:
        """Kafka's DeleteGroups: only an Empty (or Dead) group; its offsets and metadata get
        tombstones and the group is gone (Dead)."""
        coordinator = self.coordinator
        error, group = coordinator._group(group_id, create=False)
        if error:
            respond(error)
            return
        if group is None or group.state == DEAD:
            respond("GROUP_ID_NOT_FOUND")
            return
        if group.members or group.pending_members:
            respond("NON_EMPTY_GROUP")
            return
        entries: list[tuple[bytes, bytes | None]] = [
            (offset_commit_key(group_id, tp), None) for tp in sorted(group.offsets)
        ]
        entries.append((group_metadata_key(group_id), None))
        group.offsets.clear()
        group.commit_timestamps.clear()
        group.state = DEAD
        del coordinator.groups[group_id]
        coordinator._emit("group_deleted", group, reason="deleted by an admin")
        coordinator._append(group, entries, respond)

    def admin_delete_offsets(
        self, group_id: str, partitions: list[TopicPartition], respond: Respond
    ) -> None:
        """Kafka's OffsetDelete: offsets of topics the group's members do not subscribe to get
        tombstones; subscribed topics answer GROUP_SUBSCRIBED_TO_TOPIC. Responds with
        (group error, {partition: error}) once the tombstones are replicated."""
        coordinator = self.coordinator
        error, group = coordinator._group(group_id, create=False)
        if error:
            respond((error, {}))
            return
        if group is None or group.state == DEAD:
            respond(("GROUP_ID_NOT_FOUND", {}))
            return
        subscribed = {t for m in group.members.values() for t in m.metadata.get("topics", ())}
        results: dict[TopicPartition, str] = {}
        deleted: list[TopicPartition] = []
        for tp in partitions:
            if tp.topic in subscribed:
                results[tp] = "GROUP_SUBSCRIBED_TO_TOPIC"
                continue
            results[tp] = ""
            if tp in group.offsets:
                deleted.append(tp)
        for tp in deleted:
            del group.offsets[tp]
            group.commit_timestamps.pop(tp, None)
        if not deleted:
            respond(("", results))
            return
        coordinator._emit(
            "offsets_deleted",
            group,
            reason="deleted by an admin",
            offsets=[[tp.topic, tp.partition] for tp in deleted],
        )
        entries: list[tuple[bytes, bytes | None]] = [
            (offset_commit_key(group_id, tp), None) for tp in deleted
        ]
        coordinator._append(group, entries, lambda stored: respond((stored, results)))

    # --- deleted topics ------------------------------------------------------------------------

    def on_partitions_deleted(self, topic: str, pending: dict[str, set[TopicPartition]]) -> None:
        """Kafka's `OffsetMetadataManager.onPartitionsDeleted`: a deleted topic's committed
        offsets, and pending transactional ones (`pending`, by group), get tombstones in every
        group this coordinator leads. A group left Empty without offsets is then deleted by the
        next retention check, as in Kafka."""
        coordinator = self.coordinator
        for group_id in sorted(set(coordinator.groups) | set(pending)):
            group = coordinator.groups.get(group_id)
            error, _ = coordinator._group(group_id, create=False)
            if error or group is None:
                continue
            removed = {tp for tp in group.offsets if tp.topic == topic}
            removed |= pending.get(group_id, set())
            if not removed:
                continue
            for tp in removed:
                group.offsets.pop(tp, None)
                group.commit_timestamps.pop(tp, None)
            coordinator._emit(
                "offsets_deleted",
                group,
                reason="topic deleted",
                offsets=[[tp.topic, tp.partition] for tp in sorted(removed)],
            )
            coordinator._append(
                group, [(offset_commit_key(group_id, tp), None) for tp in sorted(removed)], _ignore
            )

    # --- retention (KIP-211) -------------------------------------------------------------------

    def expired_offsets(self, group: ClassicGroup, now_ms: int) -> list[TopicPartition]:
        """Kafka's `OffsetExpirationCondition`: an Empty group that had members counts from when
        it became empty; otherwise each offset counts from its commit, and only offsets of topics
        no member subscribes to can expire while the group has members."""
        retention_ms = int(self.coordinator.broker.config["offsets.retention.minutes"]) * 60000
        if group.members or group.pending_members:
            subscribed = {t for m in group.members.values() for t in m.metadata.get("topics", ())}
            candidates = [tp for tp in group.offsets if tp.topic not in subscribed]
        elif group.state == EMPTY:
            candidates = list(group.offsets)
        else:
            return []
        expired = []
        for tp in sorted(candidates):
            if group.state == EMPTY and group.current_state_timestamp is not None:
                base = group.current_state_timestamp
            else:
                base = group.commit_timestamps.get(tp, group.current_state_timestamp or 0)
            if now_ms - base >= retention_ms:
                expired.append(tp)
        return expired

    def cleanup_expired(self) -> None:
        """Kafka's `cleanupGroupMetadata`, every `offsets.retention.check.interval.ms`: expired
        offsets get tombstones, and an Empty group left without offsets is deleted (Dead)."""
        coordinator = self.coordinator
        now = coordinator.now_ms
        for group_id in sorted(coordinator.groups):
            group = coordinator.groups[group_id]
            error, _ = coordinator._group(group_id, create=False)
            if error:
                continue
            expired = self.expired_offsets(group, now)
            entries: list[tuple[bytes, bytes | None]] = [
                (offset_commit_key(group_id, tp), None) for tp in expired
            ]
            for tp in expired:
                del group.offsets[tp]
                group.commit_timestamps.pop(tp, None)
            if expired:
                coordinator._emit(
                    "offsets_expired",
                    group,
                    offsets=[[tp.topic, tp.partition] for tp in expired],
                )
            deleted = (
                group.state == EMPTY
                and not group.members
                and not group.pending_members
                and not group.offsets
            )
            if deleted:
                entries.append((group_metadata_key(group_id), None))
                group.state = DEAD
                del coordinator.groups[group_id]
                coordinator._emit("group_deleted", group, reason="offsets expired")
            if entries:
                coordinator._append(group, entries, lambda error: None)


def _ignore(error: str) -> None:
    """Tombstones for offsets of a deleted topic: Kafka does not retry a failed write either."""
