"""FindCoordinator and the group APIs: the classic group protocol (JoinGroup, SyncGroup,
Heartbeat, LeaveGroup), offsets (OffsetCommit, OffsetFetch, OffsetDelete) and the admin's
DescribeGroups, ListGroups and DeleteGroups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.common.records import TopicPartition
from engine.common.requests import ApiKey, Request, Response

# FindCoordinator's key_type (Kafka's CoordinatorType).
GROUP = 0
TRANSACTION = 1


@dataclass(frozen=True, slots=True)
class FindCoordinatorRequest(Request):
    api_key = ApiKey.FIND_COORDINATOR
    key: str
    key_type: int = GROUP


@dataclass(frozen=True, slots=True)
class FindCoordinatorResponse(Response):
    error: str
    node_id: int


@dataclass(frozen=True, slots=True)
class JoinGroupRequest(Request):
    api_key = ApiKey.JOIN_GROUP
    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    # The assignors the member supports, by preference (Kafka's protocols[].name) ...
    protocols: tuple[str, ...]
    # ... and its subscription (what Kafka encodes in protocols[].metadata).
    metadata: dict[str, Any]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class JoinGroupResponse(Response):
    error: str
    generation: int = -1
    protocol: str | None = None
    leader: str = ""
    member_id: str = ""
    # Only the leader gets the members: (member id, group.instance.id, subscription metadata).
    members: tuple[tuple[str, str | None, dict[str, Any]], ...] = ()
    skip_assignment: bool = False


@dataclass(frozen=True, slots=True)
class SyncGroupRequest(Request):
    api_key = ApiKey.SYNC_GROUP
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None
    # The leader's assignment by member id; None from the other members.
    assignments: dict[str, list[TopicPartition]] | None


@dataclass(frozen=True, slots=True)
class SyncGroupResponse(Response):
    error: str
    assignment: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True, slots=True)
class HeartbeatRequest(Request):
    api_key = ApiKey.HEARTBEAT
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None


@dataclass(frozen=True, slots=True)
class HeartbeatResponse(Response):
    error: str


@dataclass(frozen=True, slots=True)
class LeaveGroupRequest(Request):
    api_key = ApiKey.LEAVE_GROUP
    group_id: str
    member_id: str
    group_instance_id: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LeaveGroupResponse(Response):
    error: str


@dataclass(frozen=True, slots=True)
class OffsetCommitRequest(Request):
    """A member's commit; an admin's (generation -1, no member) commits for an empty group."""

    api_key = ApiKey.OFFSET_COMMIT
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None
    offsets: dict[TopicPartition, int]


@dataclass(frozen=True, slots=True)
class OffsetCommitResponse(Response):
    error: str


@dataclass(frozen=True, slots=True)
class OffsetFetchRequest(Request):
    """The committed offsets of the given partitions (None: every partition)."""

    api_key = ApiKey.OFFSET_FETCH
    group_id: str
    partitions: tuple[TopicPartition, ...] | None
    require_stable: bool = False


@dataclass(frozen=True, slots=True)
class OffsetFetchResponse(Response):
    error: str
    # -1 for a partition without a committed offset.
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OffsetDeleteRequest(Request):
    api_key = ApiKey.OFFSET_DELETE
    group_id: str
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class OffsetDeleteResponse(Response):
    error: str
    partition_errors: dict[TopicPartition, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DescribeGroupsRequest(Request):
    api_key = ApiKey.DESCRIBE_GROUPS
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DescribedGroupMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    assignment: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class DescribedGroup(Response):
    group_id: str
    error: str
    group_state: str
    protocol_type: str
    protocol_data: str | None
    generation_id: int
    leader: str | None
    members: tuple[DescribedGroupMember, ...]


@dataclass(frozen=True, slots=True)
class DescribeGroupsResponse(Response):
    groups: tuple[DescribedGroup, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class ListGroupsRequest(Request):
    api_key = ApiKey.LIST_GROUPS
    states_filter: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    group_state: str


@dataclass(frozen=True, slots=True)
class ListGroupsResponse(Response):
    groups: tuple[ListedGroup, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class DeleteGroupsRequest(Request):
    api_key = ApiKey.DELETE_GROUPS
    groups_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeleteGroupsResponse(Response):
    # The error for each group, by group id.
    results: dict[str, str]
    error: str = ""
