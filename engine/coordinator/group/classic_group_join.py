"""JoinGroup on the coordinator: new members get an id first (KIP-394), `group.max.size` is
enforced, a static member (KIP-345) takes its old place under a new member id, and every join
either waits in the current rebalance or starts one (Kafka's `GroupMetadataManager`
`classicGroupJoin`)."""

from __future__ import annotations

import uuid

from engine.coordinator.group.classic_group import (
    COMPLETING_REBALANCE,
    DEAD,
    EMPTY,
    PREPARING_REBALANCE,
    STABLE,
    ClassicGroup,
    JoinGroupRequest,
    JoinGroupResponse,
    MemberMetadata,
    Respond,
    SyncGroupResponse,
)
from engine.coordinator.group.classic_group_protocol import ClassicGroupProtocol
from engine.coordinator.group.group_records import group_metadata_key, group_metadata_value


class ClassicGroupJoin(ClassicGroupProtocol):
    """JoinGroup handling; the rebalance it starts is `ClassicGroupProtocol`'s."""

    def handle_join(self, request: JoinGroupRequest, respond: Respond) -> None:
        error, group = self._group(request.group_id, create=True)
        if error or group is None:
            respond(JoinGroupResponse(error or "COORDINATOR_NOT_AVAILABLE"))
            return
        config = self.broker.config
        if not (
            int(config["group.min.session.timeout.ms"])
            <= request.session_timeout_ms
            <= int(config["group.max.session.timeout.ms"])
        ):
            respond(JoinGroupResponse("INVALID_SESSION_TIMEOUT"))
            return
        if group.members and not set(request.protocols) & group.supported_protocols():
            respond(JoinGroupResponse("INCONSISTENT_GROUP_PROTOCOL"))
            return
        if not request.member_id:
            new_id = (
                f"{request.client_id}-{uuid.UUID(int=self.ctx.rng.getrandbits(128), version=4)}"
            )
            # group.max.size counts static members too; a known instance only takes its own place.
            known_instance = request.group_instance_id in group.static_members
            if not known_instance and len(group.members) + len(group.pending_members) >= int(
                config["group.max.size"]
            ):
                respond(JoinGroupResponse("GROUP_MAX_SIZE_REACHED"))
                return
            if request.group_instance_id is not None:
                self._join_static(group, request, new_id, respond)
                return
            # KIP-394: a new dynamic member first gets its id, then joins again with it.
            group.pending_members[new_id] = self._timer(
                request.session_timeout_ms, group, lambda: self._expire_pending(group, new_id)
            )
            respond(JoinGroupResponse("MEMBER_ID_REQUIRED", member_id=new_id))
            return
        if request.group_instance_id is not None:
            holder = group.static_members.get(request.group_instance_id)
            if holder is not None and holder != request.member_id:
                respond(JoinGroupResponse("FENCED_INSTANCE_ID", member_id=request.member_id))
                return
        if request.member_id in group.pending_members:
            group.pending_members.pop(request.member_id).cancel()
            self._add_member(group, request, request.member_id, respond)
            return
        member = group.members.get(request.member_id)
        if member is None or group.state in (EMPTY, DEAD):
            respond(JoinGroupResponse("UNKNOWN_MEMBER_ID", member_id=request.member_id))
            return
        if (
            group.state == PREPARING_REBALANCE
            and member.awaiting_join is None
            and sum(1 for m in group.members.values() if m.awaiting_join is not None)
            >= int(config["group.max.size"])
        ):
            # Kafka's acceptJoiningMember: while rebalancing, members are taken back in the
            # order they rejoin up to group.max.size; the rest leave the group. This is how a
            # group loaded over capacity (group.max.size lowered) shrinks.
            self._remove_member(
                group, member.member_id, "member_removed", "group.max.size reached on rejoin"
            )
            respond(JoinGroupResponse("GROUP_MAX_SIZE_REACHED"))
            return
        unchanged = member.protocols == request.protocols and member.metadata == request.metadata
        if group.state == PREPARING_REBALANCE:
            self._update_member(member, request, respond)
            self._maybe_complete_join(group)
        elif group.state == COMPLETING_REBALANCE and unchanged:
            # It missed our answer: send it again.
            respond(self._join_response(group, member))
        elif group.state == STABLE and unchanged and member.member_id != group.leader:
            respond(self._join_response(group, member))
        else:
            self._update_member(member, request, respond)
            self._prepare_rebalance(group, request.reason or f"member {member.member_id} rejoined")
            self._maybe_complete_join(group)

    def _update_member(
        self, member: MemberMetadata, request: JoinGroupRequest, respond: Respond
    ) -> None:
        member.protocols = request.protocols
        member.metadata = request.metadata
        member.session_timeout_ms = request.session_timeout_ms
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        if member.awaiting_join is not None:
            member.awaiting_join(JoinGroupResponse("UNKNOWN_MEMBER_ID", member_id=member.member_id))
        member.awaiting_join = respond

    def _add_member(
        self, group: ClassicGroup, request: JoinGroupRequest, member_id: str, respond: Respond
    ) -> None:
        member = MemberMetadata(
            member_id,
            request.group_instance_id,
            request.client_id,
            request.session_timeout_ms,
            request.rebalance_timeout_ms,
            request.protocols,
            request.metadata,
            awaiting_join=respond,
        )
        group.members[member_id] = member
        if group.leader is None:
            group.leader = member_id  # G3: the first member to join leads
        if request.group_instance_id is not None:
            group.static_members[request.group_instance_id] = member_id
        self._emit(
            "member_joined",
            group,
            member=member_id,
            client_id=request.client_id,
            group_instance_id=request.group_instance_id,
        )
        if group.state == PREPARING_REBALANCE:
            group.new_member_added = True
        else:
            self._prepare_rebalance(group, f"member {member_id} joined")
        self._maybe_complete_join(group)

    def _join_static(
        self, group: ClassicGroup, request: JoinGroupRequest, new_id: str, respond: Respond
    ) -> None:
        """KIP-345: a known group.instance.id takes its old place under a new member id."""
        old_id = group.static_members.get(request.group_instance_id or "")
        if old_id is None or old_id not in group.members:
            self._add_member(group, request, new_id, respond)
            return
        old = group.members[old_id]
        if old.awaiting_join is not None:
            old.awaiting_join(JoinGroupResponse("FENCED_INSTANCE_ID", member_id=old_id))
        if old.awaiting_sync is not None:
            old.awaiting_sync(SyncGroupResponse("FENCED_INSTANCE_ID"))
        old.awaiting_join = old.awaiting_sync = None
        if old.heartbeat_timer:
            old.heartbeat_timer.cancel()
        member = MemberMetadata(
            new_id,
            request.group_instance_id,
            request.client_id,
            request.session_timeout_ms,
            request.rebalance_timeout_ms,
            old.protocols,
            old.metadata,
            old.assignment,
        )
        group.members = {
            (new_id if k == old_id else k): (member if k == old_id else v)
            for k, v in group.members.items()
        }
        group.static_members[request.group_instance_id or ""] = new_id
        if old_id in group.pending_sync:
            group.pending_sync = (group.pending_sync - {old_id}) | {new_id}
        was_leader = group.leader == old_id
        if was_leader:
            group.leader = new_id
        self._emit(
            "member_joined",
            group,
            member=new_id,
            client_id=request.client_id,
            group_instance_id=request.group_instance_id,
            replaced=old_id,
        )
        unchanged = old.protocols == request.protocols and old.metadata == request.metadata
        if group.state == STABLE and unchanged:
            # G8: no rebalance; the member syncs and gets its old assignment back.
            self._schedule_session_expiry(group, member)
            self._append(
                group,
                [(group_metadata_key(group.group_id), group_metadata_value(group))],
                lambda error: None,
            )
            respond(self._join_response(group, member, skip_assignment=was_leader))
            return
        self._update_member(member, request, respond)
        if group.state != PREPARING_REBALANCE:
            self._prepare_rebalance(group, f"static member {request.group_instance_id} rejoined")
        self._maybe_complete_join(group)

    def _expire_pending(self, group: ClassicGroup, member_id: str) -> None:
        if group.pending_members.pop(member_id, None) is not None:
            self._maybe_complete_join(group)
