"""The classic group protocol's state machine on the coordinator: rebalances moving a group
through Empty, PreparingRebalance, CompletingRebalance and Stable (G1-G8) with their join, sync
and session timeouts, and SyncGroup, Heartbeat and LeaveGroup, as Kafka's `GroupMetadataManager`
does for classic groups (JoinGroup itself is `ClassicGroupJoin`).

`GroupCoordinator` supplies the runtime it needs: which groups this broker leads, timers that
die with the leadership, and writes to `__consumer_offsets`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.common.records import TopicPartition
from engine.coordinator.group.classic_group import (
    COMPLETING_REBALANCE,
    EMPTY,
    PREPARING_REBALANCE,
    STABLE,
    ClassicGroup,
    JoinGroupResponse,
    MemberMetadata,
    Respond,
    SyncGroupResponse,
)
from engine.coordinator.group.group_records import group_metadata_key, group_metadata_value
from engine.sim.clock import Timer

if TYPE_CHECKING:
    from engine.server.broker import Broker
    from engine.sim.context import SimContext


class ClassicGroupProtocol(ABC):
    """JoinGroup, SyncGroup, Heartbeat and LeaveGroup for the groups of one coordinator."""

    ctx: SimContext
    broker: Broker
    groups: dict[str, ClassicGroup]

    @property
    @abstractmethod
    def now_ms(self) -> int: ...

    @abstractmethod
    def _emit(self, kind: str, group: ClassicGroup, **data: Any) -> None: ...

    @abstractmethod
    def _group(self, group_id: str, create: bool) -> tuple[str, ClassicGroup | None]:
        """The group if this broker is its coordinator, else NOT_COORDINATOR."""

    @abstractmethod
    def _timer(self, delay_ms: int, group: ClassicGroup, action: Callable[[], None]) -> Timer:
        """A timer that fires only while this coordinator still holds the group."""

    @abstractmethod
    def _append(
        self,
        group: ClassicGroup,
        entries: list[tuple[bytes, bytes | None]],
        done: Callable[[str], None],
    ) -> None:
        """Write records to the group's `__consumer_offsets` partition."""

    def _join_response(
        self, group: ClassicGroup, member: MemberMetadata, skip_assignment: bool = False
    ) -> JoinGroupResponse:
        members: tuple[tuple[str, str | None, dict[str, Any]], ...] = ()
        if member.member_id == group.leader:
            members = tuple(
                (m.member_id, m.group_instance_id, m.metadata) for m in group.members.values()
            )
        return JoinGroupResponse(
            "",
            group.generation,
            group.protocol,
            group.leader or "",
            member.member_id,
            members,
            skip_assignment,
        )

    # --- JoinGroup responses and rebalancing ------------------------------------------------------

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.state == COMPLETING_REBALANCE:
            for member in group.members.values():
                if member.awaiting_sync is not None:
                    member.awaiting_sync(SyncGroupResponse("REBALANCE_IN_PROGRESS"))
                    member.awaiting_sync = None
        was_empty = group.state == EMPTY
        group.state = PREPARING_REBALANCE
        group.pending_sync = set()
        if group.sync_timer:
            group.sync_timer.cancel()
            group.sync_timer = None
        if group.join_timer:
            group.join_timer.cancel()
        self._emit("rebalance_started", group, reason=reason, generation=group.generation)
        delay = int(self.broker.config["group.initial.rebalance.delay.ms"])
        if was_empty and delay > 0:
            # G5: the first rebalance of an empty group waits for more members to arrive.
            group.in_initial_delay = True
            group.new_member_added = False
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            group.join_timer = self._timer(
                delay, group, lambda: self._initial_delay_over(group, delay, remaining)
            )
        else:
            group.join_timer = self._timer(
                group.rebalance_timeout_ms(), group, lambda: self._complete_join(group)
            )

    def _initial_delay_over(self, group: ClassicGroup, delay: int, remaining: int) -> None:
        if group.new_member_added and remaining > 0:
            group.new_member_added = False
            group.join_timer = self._timer(
                min(delay, remaining),
                group,
                lambda: self._initial_delay_over(group, delay, max(remaining - delay, 0)),
            )
            return
        group.in_initial_delay = False
        self._complete_join(group)

    def _maybe_complete_join(self, group: ClassicGroup) -> None:
        if (
            group.state == PREPARING_REBALANCE
            and not group.in_initial_delay
            and group.all_members_joined()
        ):
            self._complete_join(group)

    def _complete_join(self, group: ClassicGroup) -> None:
        if group.state != PREPARING_REBALANCE:
            return
        if group.join_timer:
            group.join_timer.cancel()
            group.join_timer = None
        group.in_initial_delay = False
        for member_id in [m.member_id for m in group.members.values() if m.awaiting_join is None]:
            self._remove_member(
                group,
                member_id,
                "member_removed",
                "did not rejoin within the rebalance timeout",
                rebalance=False,
            )
        for timer in group.pending_members.values():
            timer.cancel()
        group.pending_members = {}
        group.generation += 1
        group.current_state_timestamp = self.now_ms
        if not group.members:
            group.state = EMPTY
            group.protocol = None
            group.leader = None
            self._append(
                group,
                [(group_metadata_key(group.group_id), group_metadata_value(group))],
                lambda error: None,
            )
            self._emit("rebalance_completed", group, generation=group.generation, assignment={})
            return
        group.protocol = group.select_protocol()
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        group.state = COMPLETING_REBALANCE
        group.isolation_level = group.member_isolation_level()
        group.pending_sync = set(group.members)
        generation = group.generation
        group.sync_timer = self._timer(
            group.rebalance_timeout_ms(),
            group,
            lambda: self._expire_pending_sync(group, generation),
        )
        for member in group.members.values():
            member.assignment = ()
            waiting, member.awaiting_join = member.awaiting_join, None
            self._schedule_session_expiry(group, member)
            if waiting is not None:
                waiting(self._join_response(group, member))

    def _synced(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync and group.sync_timer:
            group.sync_timer.cancel()
            group.sync_timer = None

    def _expire_pending_sync(self, group: ClassicGroup, generation: int) -> None:
        """Kafka's sync timeout: members that have not sent SyncGroup within the rebalance timeout
        of the join (a leader that never sends the assignment among them) are removed, and the
        group rebalances without them."""
        group.sync_timer = None
        if group.generation != generation or group.state not in (COMPLETING_REBALANCE, STABLE):
            return
        missing = [m for m in group.members if m in group.pending_sync]
        if not missing:
            return
        for member_id in missing:
            self._remove_member(
                group,
                member_id,
                "member_removed",
                "did not send SyncGroup within the rebalance timeout",
                rebalance=False,
            )
        group.pending_sync = set()
        self._prepare_rebalance(
            group, f"removing {', '.join(missing)} on pending sync request expiration"
        )

    def _schedule_session_expiry(self, group: ClassicGroup, member: MemberMetadata) -> None:
        if member.heartbeat_timer:
            member.heartbeat_timer.cancel()

        def expire() -> None:
            if group.members.get(member.member_id) is not member:
                return
            if member.awaiting_join is not None or member.awaiting_sync is not None:
                self._schedule_session_expiry(group, member)
                return
            self._remove_member(group, member.member_id, "member_removed", "session timeout")

        member.heartbeat_timer = self._timer(member.session_timeout_ms, group, expire)

    def _remove_member(
        self, group: ClassicGroup, member_id: str, kind: str, reason: str, rebalance: bool = True
    ) -> None:
        member = group.members.pop(member_id)
        self._synced(group, member_id)
        if member.heartbeat_timer:
            member.heartbeat_timer.cancel()
        if (
            member.group_instance_id is not None
            and group.static_members.get(member.group_instance_id) == member_id
        ):
            del group.static_members[member.group_instance_id]
        if member.awaiting_join is not None:
            member.awaiting_join(JoinGroupResponse("UNKNOWN_MEMBER_ID", member_id=member_id))
        if member.awaiting_sync is not None:
            member.awaiting_sync(SyncGroupResponse("UNKNOWN_MEMBER_ID"))
        if group.leader == member_id:
            group.leader = next(iter(group.members), None)
        self._emit(
            kind,
            group,
            member=member_id,
            client_id=member.client_id,
            group_instance_id=member.group_instance_id,
            reason=reason,
        )
        if not rebalance:
            return
        if group.state in (STABLE, COMPLETING_REBALANCE):
            self._prepare_rebalance(group, f"member {member_id} left: {reason}")
        self._maybe_complete_join(group)

    # --- SyncGroup, Heartbeat, LeaveGroup ------------------------------------------------------

    def _check_member(
        self, group: ClassicGroup | None, member_id: str, instance_id: str | None, generation: int
    ) -> str:
        if group is None or member_id not in group.members:
            if (
                group is not None
                and instance_id is not None
                and instance_id in group.static_members
            ):
                return "FENCED_INSTANCE_ID"
            return "UNKNOWN_MEMBER_ID"
        if instance_id is not None and group.static_members.get(instance_id) != member_id:
            return "FENCED_INSTANCE_ID"
        if generation != group.generation:
            return "ILLEGAL_GENERATION"
        return ""

    def handle_sync(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        assignments: dict[str, list[TopicPartition]] | None,
        respond: Respond,
    ) -> None:
        error, group = self._group(group_id, create=False)
        error = error or self._check_member(group, member_id, instance_id, generation)
        if error or group is None:
            respond(SyncGroupResponse(error))
            return
        member = group.members[member_id]
        if group.state == PREPARING_REBALANCE:
            respond(SyncGroupResponse("REBALANCE_IN_PROGRESS"))
        elif group.state == STABLE:
            self._synced(group, member_id)
            self._schedule_session_expiry(group, member)
            respond(SyncGroupResponse("", member.assignment))
        elif group.state == COMPLETING_REBALANCE:
            self._synced(group, member_id)
            member.awaiting_sync = respond
            self._schedule_session_expiry(group, member)
            if member_id == group.leader and assignments is not None:
                self._complete_sync(group, assignments)
        else:
            respond(SyncGroupResponse("UNKNOWN_MEMBER_ID"))

    def _complete_sync(
        self, group: ClassicGroup, assignments: dict[str, list[TopicPartition]]
    ) -> None:
        generation = group.generation
        for member in group.members.values():
            member.assignment = tuple(
                sorted(TopicPartition(*tp) for tp in assignments.get(member.member_id, []))
            )

        def persisted(error: str) -> None:
            if group.state != COMPLETING_REBALANCE or group.generation != generation:
                return
            if error:
                for member in group.members.values():
                    member.assignment = ()
                self._prepare_rebalance(group, "storing the assignment failed")
                return
            group.state = STABLE
            self._emit(
                "rebalance_completed",
                group,
                generation=generation,
                protocol=group.protocol,
                leader=group.leader,
                assignment={
                    m.member_id: [[tp.topic, tp.partition] for tp in m.assignment]
                    for m in group.members.values()
                },
            )
            for member in group.members.values():
                waiting, member.awaiting_sync = member.awaiting_sync, None
                if waiting is not None:
                    waiting(SyncGroupResponse("", member.assignment))

        self._append(
            group, [(group_metadata_key(group.group_id), group_metadata_value(group))], persisted
        )

    def handle_heartbeat(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        respond: Respond,
    ) -> None:
        error, group = self._group(group_id, create=False)
        error = error or self._check_member(group, member_id, instance_id, generation)
        if error or group is None:
            respond(error)
            return
        self._schedule_session_expiry(group, group.members[member_id])
        respond("REBALANCE_IN_PROGRESS" if group.state == PREPARING_REBALANCE else "")

    def handle_leave(
        self, group_id: str, member_id: str, instance_id: str | None, reason: str, respond: Respond
    ) -> None:
        error, group = self._group(group_id, create=False)
        if error or group is None:
            respond(error or "UNKNOWN_MEMBER_ID")
            return
        if instance_id is not None:
            holder = group.static_members.get(instance_id)
            if holder is None:
                respond("UNKNOWN_MEMBER_ID")
            elif member_id and holder != member_id:
                respond("FENCED_INSTANCE_ID")
            else:
                self._remove_member(group, holder, "member_left", reason or "left the group")
                respond("")
            return
        if member_id in group.pending_members:
            group.pending_members.pop(member_id).cancel()
            self._maybe_complete_join(group)
            respond("")
        elif member_id in group.members:
            self._remove_member(group, member_id, "member_left", reason or "left the group")
            respond("")
        else:
            respond("UNKNOWN_MEMBER_ID")
