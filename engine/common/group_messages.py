"""The JoinGroup and SyncGroup messages (now in `engine.common.requests.group`, re-exported
here for older imports)."""

from __future__ import annotations

from engine.common.requests.group import JoinGroupRequest, JoinGroupResponse, SyncGroupResponse

__all__ = ["JoinGroupRequest", "JoinGroupResponse", "SyncGroupResponse"]
