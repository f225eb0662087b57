"""A classic consumer group's in-memory state: Kafka's `ClassicGroup` and `ClassicGroupMember`;
the JoinGroup/SyncGroup messages it exchanges with its members are in
`engine.common.group_messages`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The messages live with the other shared types; they are re-exported here for older callers.
from engine.common.group_messages import JoinGroupRequest as JoinGroupRequest
from engine.common.group_messages import JoinGroupResponse as JoinGroupResponse
from engine.common.group_messages import SyncGroupResponse as SyncGroupResponse
from engine.common.records import TopicPartition
from engine.sim.clock import Timer

EMPTY = "Empty"
PREPARING_REBALANCE = "PreparingRebalance"
COMPLETING_REBALANCE = "CompletingRebalance"
STABLE = "Stable"
DEAD = "Dead"

READ_UNCOMMITTED = "read_uncommitted"
READ_COMMITTED = "read_committed"

Respond = Callable[[Any], None]


@dataclass(slots=True)
class MemberMetadata:
    member_id: str
    group_instance_id: str | None
    client_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[str, ...]
    metadata: dict[str, Any]
    assignment: tuple[TopicPartition, ...] = ()
    awaiting_join: Respond | None = None
    awaiting_sync: Respond | None = None
    heartbeat_timer: Timer | None = None


@dataclass(slots=True)
class ClassicGroup:
    group_id: str
    state: str = EMPTY
    generation: int = 0
    protocol: str | None = None
    leader: str | None = None
    members: dict[str, MemberMetadata] = field(default_factory=dict)
    pending_members: dict[str, Timer] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    commit_timestamps: dict[TopicPartition, int] = field(default_factory=dict)
    # When the group last changed generation or became empty (Kafka's currentStateTimestamp);
    # None for a group that never had members. Offset retention counts from it (KIP-211).
    current_state_timestamp: int | None = None
    # O4: the isolation level lag is measured with once no member owns a partition.
    isolation_level: str = READ_UNCOMMITTED
    join_timer: Timer | None = None
    in_initial_delay: bool = False
    new_member_added: bool = False
    # Members of this generation that have not sent SyncGroup yet, and the timer that removes
    # them after the rebalance timeout (Kafka's pending sync members).
    pending_sync: set[str] = field(default_factory=set)
    sync_timer: Timer | None = None

    def supported_protocols(self) -> set[str]:
        supported: set[str] | None = None
        for member in self.members.values():
            supported = (
                set(member.protocols) if supported is None else supported & set(member.protocols)
            )
        return supported or set()

    def select_protocol(self) -> str:
        """G4: every member votes for its first choice among the protocols all support."""
        candidates = self.supported_protocols()
        votes: dict[str, int] = {}
        for member in self.members.values():
            choice = next(p for p in member.protocols if p in candidates)
            votes[choice] = votes.get(choice, 0) + 1
        leader = self.members.get(self.leader or "") or next(iter(self.members.values()))
        order = [p for p in leader.protocols if p in votes]
        return max(order, key=lambda p: (votes[p], -order.index(p)))

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def member_isolation_level(self) -> str:
        """read_committed when every member reads committed data only, as lag then uses the LSO."""
        levels = {
            m.metadata.get("isolation_level", READ_UNCOMMITTED) for m in self.members.values()
        }
        return READ_COMMITTED if levels == {READ_COMMITTED} else READ_UNCOMMITTED

    def all_members_joined(self) -> bool:
        return not self.pending_members and all(
            m.awaiting_join is not None for m in self.members.values()
        )
