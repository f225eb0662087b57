"""The group coordinator: Kafka's classic consumer-group protocol on the broker side.

Kafka's `GroupCoordinator`/`GroupMetadataManager` and `ClassicGroup`: every broker runs one, and
it answers for the groups whose `__consumer_offsets` partition it leads (P4). Membership lives
in memory; committed offsets and each generation's assignment are records in that partition,
so a new leader of the partition rebuilds its groups from the log (coordinator failover).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.clock import Timer
from engine.errors import (
    GroupNotEmptyError,
    KafkaError,
    KafkaTimeoutError,
    UnknownTopicOrPartitionError,
)
from engine.metadata import NO_LEADER
from engine.record_size import batch_size_in_bytes, record_size_in_bytes
from engine.records import Record, RecordBatch, TopicPartition

if TYPE_CHECKING:
    from engine.broker import Broker
    from engine.cluster import Cluster
    from engine.partition import Partition

OFFSETS_TOPIC = "__consumer_offsets"

EMPTY = "Empty"
PREPARING_REBALANCE = "PreparingRebalance"
COMPLETING_REBALANCE = "CompletingRebalance"
STABLE = "Stable"
DEAD = "Dead"

Respond = Callable[[Any], None]


def java_string_hashcode(text: str) -> int:
    """Java's `String.hashCode()`: a signed 32-bit int over the UTF-16 code units."""
    units = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def kafka_abs(n: int) -> int:
    """Kafka's `Utils.abs`: `Integer.MIN_VALUE` maps to 0 instead of staying negative."""
    return 0 if n == -(1 << 31) else abs(n)


def offsets_partition_for(group_id: str, partitions: int) -> int:
    return kafka_abs(java_string_hashcode(group_id)) % partitions


# --- requests and responses ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinGroupRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[str, ...]
    metadata: dict[str, Any]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class JoinGroupResponse:
    error: str
    generation: int = -1
    protocol: str | None = None
    leader: str = ""
    member_id: str = ""
    # Only the leader gets the members: (member id, group.instance.id, subscription metadata).
    members: tuple[tuple[str, str | None, dict[str, Any]], ...] = ()
    skip_assignment: bool = False


@dataclass(frozen=True, slots=True)
class SyncGroupResponse:
    error: str
    assignment: tuple[TopicPartition, ...] = ()


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
    join_timer: Timer | None = None
    in_initial_delay: bool = False
    new_member_added: bool = False

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

    def all_members_joined(self) -> bool:
        return not self.pending_members and all(
            m.awaiting_join is not None for m in self.members.values()
        )


# --- records in __consumer_offsets ---------------------------------------------------------


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def offset_commit_key(group_id: str, tp: TopicPartition) -> bytes:
    return _encode(
        {"type": "offset_commit", "group": group_id, "topic": tp.topic, "partition": tp.partition}
    )


def group_metadata_key(group_id: str) -> bytes:
    return _encode({"type": "group_metadata", "group": group_id})


def _group_metadata_value(group: ClassicGroup) -> bytes:
    return _encode(
        {
            "generation": group.generation,
            "protocol": group.protocol,
            "leader": group.leader,
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "client_id": m.client_id,
                    "session_timeout_ms": m.session_timeout_ms,
                    "rebalance_timeout_ms": m.rebalance_timeout_ms,
                    "protocols": list(m.protocols),
                    "metadata": m.metadata,
                    "assignment": [list(tp) for tp in m.assignment],
                }
                for m in group.members.values()
            ],
        }
    )


def read_groups(partition: Partition) -> dict[str, ClassicGroup]:
    """Rebuild the groups of one `__consumer_offsets` partition from its log (no timers)."""
    groups: dict[str, ClassicGroup] = {}
    log = partition.log
    # Transactional offset commits count once their producer's COMMIT marker follows (T6).
    pending: dict[int, list[Record]] = {}
    for batch in log.iter_batches(log.log_start_offset):
        if batch.is_control:
            committed = pending.pop(batch.producer_id, [])
            records = committed if batch.control_type == "COMMIT" else []
        elif batch.is_transactional:
            pending.setdefault(batch.producer_id, []).extend(batch.records)
            continue
        else:
            records = batch.records
        for record in records:
            if record.key is None:
                continue
            key = json.loads(record.key)
            group = groups.setdefault(key["group"], ClassicGroup(key["group"]))
            value = json.loads(record.value) if record.value is not None else None
            if key["type"] == "offset_commit":
                tp = TopicPartition(key["topic"], key["partition"])
                if value is None:
                    group.offsets.pop(tp, None)
                else:
                    group.offsets[tp] = int(value["offset"])
            elif key["type"] == "group_metadata" and value is not None:
                group.generation = value["generation"]
                group.protocol = value["protocol"]
                group.leader = value["leader"]
                group.members = {}
                group.static_members = {}
                for m in value["members"]:
                    member = MemberMetadata(
                        m["member_id"],
                        m["group_instance_id"],
                        m["client_id"],
                        m["session_timeout_ms"],
                        m["rebalance_timeout_ms"],
                        tuple(m["protocols"]),
                        m["metadata"],
                        tuple(TopicPartition(t, p) for t, p in m["assignment"]),
                    )
                    group.members[member.member_id] = member
                    if member.group_instance_id is not None:
                        group.static_members[member.group_instance_id] = member.member_id
                group.state = STABLE if group.members else EMPTY
    return groups


# --- the coordinator on one broker ---------------------------------------------------------


class GroupCoordinator:
    """The group coordinator of one broker (it lives in `broker.services["groups"]`)."""

    def __init__(self, service: GroupService, broker: Broker) -> None:
        self.service = service
        self.cluster = service.cluster
        self.broker = broker
        self.groups: dict[str, ClassicGroup] = {}
        # Which __consumer_offsets partitions are loaded, at which leader epoch.
        self.loaded: dict[int, int] = {}

    @property
    def now_ms(self) -> int:
        return self.cluster.scheduler.now_ms

    def _emit(self, kind: str, group: ClassicGroup, **data: Any) -> None:
        self.cluster.emit(kind, {"group": group.group_id, "coordinator": self.broker.id, **data})

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

    def _load(self, number: int, partition: Partition) -> None:
        self._unload(number)
        for group_id, group in read_groups(partition).items():
            self.groups[group_id] = group
            for member in group.members.values():
                self._schedule_session_expiry(group, member)
        self.loaded[number] = partition.leader_epoch
        self.cluster.emit(
            "group_coordinator_loaded", {"broker": self.broker.id, "partition": number}
        )

    def _unload(self, number: int) -> None:
        if self.loaded.pop(number, None) is None:
            return
        partitions = self.service.num_partitions()
        for group_id in [g for g in self.groups if offsets_partition_for(g, partitions) == number]:
            self._drop(self.groups.pop(group_id))

    def _drop(self, group: ClassicGroup) -> None:
        """Forget a group (leadership lost): waiting members hear NOT_COORDINATOR."""
        if group.join_timer:
            group.join_timer.cancel()
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

        return self.cluster.scheduler.call_later(delay_ms, fire)

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

    # --- JoinGroup -------------------------------------------------------------------------

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
                f"{request.client_id}-{uuid.UUID(int=self.cluster.rng.getrandbits(128), version=4)}"
            )
            if request.group_instance_id is not None:
                self._join_static(group, request, new_id, respond)
                return
            if len(group.members) + len(group.pending_members) >= int(config["group.max.size"]):
                respond(JoinGroupResponse("GROUP_MAX_SIZE_REACHED"))
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
                [(group_metadata_key(group.group_id), _group_metadata_value(group))],
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

    # --- rebalancing -------------------------------------------------------------------------

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.state == COMPLETING_REBALANCE:
            for member in group.members.values():
                if member.awaiting_sync is not None:
                    member.awaiting_sync(SyncGroupResponse("REBALANCE_IN_PROGRESS"))
                    member.awaiting_sync = None
        was_empty = group.state == EMPTY
        group.state = PREPARING_REBALANCE
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
        if not group.members:
            group.state = EMPTY
            group.protocol = None
            group.leader = None
            self._append(
                group,
                [(group_metadata_key(group.group_id), _group_metadata_value(group))],
                lambda error: None,
            )
            self._emit("rebalance_completed", group, generation=group.generation, assignment={})
            return
        group.protocol = group.select_protocol()
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        group.state = COMPLETING_REBALANCE
        for member in group.members.values():
            member.assignment = ()
            waiting, member.awaiting_join = member.awaiting_join, None
            self._schedule_session_expiry(group, member)
            if waiting is not None:
                waiting(self._join_response(group, member))

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
            self._schedule_session_expiry(group, member)
            respond(SyncGroupResponse("", member.assignment))
        elif group.state == COMPLETING_REBALANCE:
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
            group, [(group_metadata_key(group.group_id), _group_metadata_value(group))], persisted
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

    # --- offsets -----------------------------------------------------------------------------

    def handle_offset_commit(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        offsets: dict[TopicPartition, int],
        respond: Respond,
    ) -> None:
        error, group = self._group(group_id, create=generation < 0)
        if error:
            respond(error)
            return
        if group is None:
            respond("ILLEGAL_GENERATION")
            return
        error = self._validate_commit(group, generation, member_id, instance_id)
        if error:
            respond(error)
            return
        self.commit_offsets(group, offsets, respond, member_id)

    def _validate_commit(
        self, group: ClassicGroup, generation: int, member_id: str, instance_id: str | None
    ) -> str:
        """G7, as Kafka's `ClassicGroup.validateOffsetCommit`."""
        if generation < 0 and group.state == EMPTY:
            return ""  # a group without members (or a standalone consumer) may commit
        if generation >= 0 or member_id or instance_id is not None:
            error = self._check_member(group, member_id, instance_id, generation)
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
        items = sorted(offsets.items())
        entries = [
            (
                offset_commit_key(group.group_id, tp),
                _encode({"offset": offset, "commit_timestamp": self.now_ms}),
            )
            for tp, offset in items
        ]

        def stored(error: str) -> None:
            if not error:
                if self.groups.get(group.group_id) is group:
                    group.offsets.update(items)
                self._emit(
                    "offsets_committed",
                    group,
                    member=member_id,
                    offsets=[[tp.topic, tp.partition, offset] for tp, offset in items],
                )
            respond(error)

        self._append(group, entries, stored)

    def handle_offset_fetch(
        self, group_id: str, tps: list[TopicPartition] | None, respond: Respond
    ) -> None:
        error, group = self._group(group_id, create=False)
        if error:
            respond((error, {}))
            return
        known = group.offsets if group is not None else {}
        wanted = sorted(known) if tps is None else tps
        respond(("", {tp: known.get(tp, -1) for tp in wanted}))

    def _append(
        self, group: ClassicGroup, entries: list[tuple[bytes, bytes]], done: Callable[[str], None]
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

    # --- admin -------------------------------------------------------------------------------

    def admin_commit(
        self, group_id: str, offsets: dict[TopicPartition, int], respond: Respond
    ) -> None:
        error, group = self._group(group_id, create=True)
        if error or group is None:
            respond(error or "COORDINATOR_NOT_AVAILABLE")
            return
        if group.members:
            respond("NON_EMPTY_GROUP")
            return
        self.commit_offsets(group, offsets, respond)


# --- the cluster-wide service ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    assignment: set[TopicPartition]


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    state: str
    generation: int
    protocol: str | None
    leader: str | None
    members: list[MemberDescription]
    offsets: dict[TopicPartition, int]
    lag: dict[TopicPartition, int]
    coordinator: int = NO_LEADER


class GroupService:
    """`cluster.services["groups"]`: finds coordinators, describes groups, resets offsets."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.coordinators: dict[int, GroupCoordinator] = {}
        for broker_id in cluster.broker_ids():
            broker = cluster.broker_by_id(broker_id)
            coordinator = GroupCoordinator(self, broker)
            self.coordinators[broker_id] = coordinator
            broker.services["groups"] = coordinator

    def num_partitions(self) -> int:
        topic = self.cluster.controller.topics.get(OFFSETS_TOPIC)
        if topic is not None and topic.partitions:
            return len(topic.partitions)
        return int(self.cluster.broker_config["offsets.topic.num.partitions"])

    def partition_for(self, group_id: str) -> int:
        return offsets_partition_for(group_id, self.num_partitions())

    def ensure_offsets_topic(self) -> None:
        """Kafka creates `__consumer_offsets` on the first FindCoordinator for a group."""
        if OFFSETS_TOPIC in self.cluster.controller.topics:
            return
        config = self.cluster.broker_config
        try:
            self.cluster._create_topic(
                OFFSETS_TOPIC,
                int(config["offsets.topic.num.partitions"]),
                int(config["offsets.topic.replication.factor"]),
                {
                    "cleanup.policy": "compact",
                    "segment.bytes": int(config["offsets.topic.segment.bytes"]),
                },
                internal=True,
            )
        except KafkaError as exc:
            self.cluster.emit("offsets_topic_creation_failed", {"error": type(exc).__name__})

    def find_coordinator(self, broker: Broker, group_id: str) -> tuple[str, int]:
        view = broker.topics.get(OFFSETS_TOPIC)
        if view is None or not view.partitions:
            self.ensure_offsets_topic()
            return "COORDINATOR_NOT_AVAILABLE", NO_LEADER
        registration = view.partitions.get(offsets_partition_for(group_id, len(view.partitions)))
        if registration is None or registration.leader == NO_LEADER:
            return "COORDINATOR_NOT_AVAILABLE", NO_LEADER
        return "", registration.leader

    def coordinator_for(self, group_id: str) -> GroupCoordinator | None:
        topic = self.cluster.controller.topics.get(OFFSETS_TOPIC)
        if topic is None:
            return None
        registration = topic.partitions.get(self.partition_for(group_id))
        if registration is None or registration.leader == NO_LEADER:
            return None
        return self.coordinators.get(registration.leader)

    def commit_transactional_offsets(
        self, group_id: str, offsets: dict[TopicPartition, int]
    ) -> None:
        """A committed transaction's offsets (T6) become the group's committed offsets."""
        self.ensure_offsets_topic()
        coordinator = self.coordinator_for(group_id)
        error, group = (
            coordinator._group(group_id, create=True) if coordinator else ("NOT_COORDINATOR", None)
        )
        if coordinator is None or group is None:
            self.cluster.emit("offsets_commit_failed", {"group": group_id, "error": error})
            return
        coordinator.commit_offsets(group, dict(offsets), lambda error: None)

    # --- reads -------------------------------------------------------------------------------

    def _high_watermark(self, tp: TopicPartition) -> int | None:
        topic = self.cluster.controller.topics.get(tp.topic)
        if topic is None or tp.partition not in topic.partitions:
            return None
        replica = self.cluster._leader_log_partition(tp.topic, tp.partition)
        return None if replica is None else int(replica.log.high_watermark)

    def _describe(
        self, group_id: str, group: ClassicGroup | None, coordinator: int
    ) -> GroupDescription:
        if group is None:
            return GroupDescription(group_id, DEAD, 0, None, None, [], {}, {}, coordinator)
        lag: dict[TopicPartition, int] = {}
        for tp, offset in sorted(group.offsets.items()):
            hw = self._high_watermark(tp)
            if hw is not None:
                lag[tp] = hw - offset
        members = [
            MemberDescription(m.member_id, m.group_instance_id, m.client_id, set(m.assignment))
            for m in group.members.values()
        ]
        return GroupDescription(
            group_id,
            group.state,
            group.generation,
            group.protocol,
            group.leader,
            members,
            dict(sorted(group.offsets.items())),
            lag,
            coordinator,
        )

    def describe_group(self, group_id: str) -> GroupDescription:
        coordinator = self.coordinator_for(group_id)
        if coordinator is None:
            return self._describe(group_id, None, NO_LEADER)
        return self._describe(group_id, coordinator.view(group_id), coordinator.broker.id)

    def list_groups(self) -> list[str]:
        return sorted(self._all_views())

    def _all_views(self) -> dict[str, tuple[ClassicGroup, int]]:
        topic = self.cluster.controller.topics.get(OFFSETS_TOPIC)
        found: dict[str, tuple[ClassicGroup, int]] = {}
        if topic is None:
            return found
        for number, registration in sorted(topic.partitions.items()):
            coordinator = self.coordinators.get(registration.leader)
            if coordinator is None:
                continue
            for group_id, group in coordinator.views(number).items():
                found[group_id] = (group, registration.leader)
        return found

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for group_id, (group, coordinator) in sorted(self._all_views().items()):
            description = self._describe(group_id, group, coordinator)
            out[group_id] = {
                "state": description.state,
                "generation": description.generation,
                "protocol": description.protocol,
                "leader": description.leader,
                "coordinator": coordinator,
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "assignment": [[tp.topic, tp.partition] for tp in sorted(m.assignment)],
                    }
                    for m in description.members
                ],
                "offsets": [[tp.topic, tp.partition, o] for tp, o in description.offsets.items()],
                "lag": [[tp.topic, tp.partition, lag] for tp, lag in description.lag.items()],
            }
        return out

    # --- admin: kafka-consumer-groups --reset-offsets ----------------------------------------

    def reset_offsets(self, group_id: str, topic: str, to: str | int) -> dict[TopicPartition, int]:
        registration = self.cluster.controller.topics.get(topic)
        if registration is None:
            raise UnknownTopicOrPartitionError(f"Topic '{topic}' does not exist.")
        if not (to in ("earliest", "latest") or (isinstance(to, int) and not isinstance(to, bool))):
            raise ValueError("reset_offsets takes to='earliest', 'latest' or an offset number")
        if self.describe_group(group_id).members:
            raise GroupNotEmptyError(
                f"Assignments can only be reset if the group '{group_id}' is inactive, "
                "but the current state is not Empty: stop its consumers first."
            )
        targets: dict[TopicPartition, int] = {}
        for number in sorted(registration.partitions):
            tp = TopicPartition(topic, number)
            replica = self.cluster._leader_log_partition(topic, number)
            earliest = replica.log.log_start_offset if replica else 0
            latest = replica.log.high_watermark if replica else 0
            target = earliest if to == "earliest" else latest if to == "latest" else int(to)
            targets[tp] = min(max(target, earliest), latest)  # O5: clamped
        self.ensure_offsets_topic()
        outcome: list[str] = []
        deadline = self.cluster.now_ms + 30000

        def attempt() -> bool:
            coordinator = self.coordinator_for(group_id)
            if coordinator is None or not coordinator.leads(group_id):
                return False
            coordinator.admin_commit(group_id, targets, outcome.append)
            return True

        started = attempt() or self.cluster._run_until(attempt, deadline)
        if started:
            self.cluster._run_until(lambda: bool(outcome), deadline)
        if not outcome:
            raise KafkaTimeoutError(
                "Timed out waiting for the group coordinator to store the offsets."
            )
        if outcome[0] == "NON_EMPTY_GROUP":
            raise GroupNotEmptyError(
                f"The group '{group_id}' has members; stop its consumers first."
            )
        if outcome[0]:
            from engine.errors import error_for_name

            raise error_for_name(outcome[0])(f"Resetting offsets failed: {outcome[0]}.")
        return targets


def install(cluster: Cluster) -> None:
    cluster.services["groups"] = GroupService(cluster)


def _register() -> None:
    from engine.cluster import _EXTENSIONS

    if install not in _EXTENSIONS:
        _EXTENSIONS.append(install)


_register()
