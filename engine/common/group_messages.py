"""The JoinGroup and SyncGroup messages a group member and its group coordinator exchange."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.common.records import TopicPartition


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
