"""Fetch (a consumer's and a follower's), ListOffsets and OffsetForLeaderEpoch."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.common.records import RecordBatch, TopicPartition
from engine.common.requests import ApiKey, Request, Response

READ_UNCOMMITTED = "read_uncommitted"
READ_COMMITTED = "read_committed"

# Fetch sessions (KIP-227), shared by the brokers (`engine.server.fetch_session`) and the
# consumer (`engine.clients.consumer.fetch_sessions`).
INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
FETCH_SESSION_ID_NOT_FOUND = "FETCH_SESSION_ID_NOT_FOUND"
INVALID_FETCH_SESSION_EPOCH = "INVALID_FETCH_SESSION_EPOCH"


def next_epoch(epoch: int) -> int:
    """Kafka's `FetchMetadata.nextEpoch`: 1 after the initial epoch, wrapping past 2^31 - 1."""
    if epoch < 0:
        return FINAL_EPOCH
    if epoch == 2**31 - 1:
        return 1
    return epoch + 1


@dataclass(slots=True)
class FetchPartitionData:
    """One partition of a Fetch response (Kafka's `FetchResponseData.PartitionData`)."""

    error: str = ""
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    batches: list[RecordBatch] = field(default_factory=list)
    # (epoch, end offset) when a follower's log diverges from the leader's.
    diverging_epoch: tuple[int, int] | None = None
    # (producer id, first offset) of the aborted transactions in range (read_committed).
    aborted: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FetchRequest(Request):
    """A consumer's fetch: each partition from the given offset.

    In a fetch session (KIP-227): `session_epoch` 0 opens a session holding every partition
    listed (closing `session_id` if one is given); a known `session_id` with its next epoch is an
    incremental fetch that lists only the partitions added or whose offset moved, and
    `forgotten` the ones the session drops. Epoch -1 (the default) is a sessionless fetch."""

    api_key = ApiKey.FETCH
    fetch_offsets: dict[TopicPartition, int]
    isolation_level: str
    max_wait_ms: int
    partition_max_bytes: int
    replica_id: int = -1
    session_id: int = INVALID_SESSION_ID
    session_epoch: int = FINAL_EPOCH
    forgotten: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True, slots=True)
class FetchResponse(Response):
    responses: dict[TopicPartition, FetchPartitionData]
    error: str = ""
    # The fetch session the answer belongs to (KIP-227); 0 for a sessionless fetch.
    session_id: int = 0


@dataclass(slots=True)
class FollowerFetchPartition:
    tp: TopicPartition
    fetch_offset: int
    last_fetched_epoch: int
    current_leader_epoch: int
    high_watermark: int = -1


@dataclass(frozen=True, slots=True)
class FollowerFetchRequest(Request):
    """Kafka's Fetch with a replica id: a follower replicating from its leader.

    With a fetch session (KIP-227, `engine.server.fetch_session`): `session_id` 0 and
    `session_epoch` 0 open a new session with every partition listed; a known session id and
    its next epoch make an incremental fetch that lists only the partitions whose fetch state
    moved and `forgotten` the ones left out; epoch -1 is a sessionless full fetch."""

    api_key = ApiKey.FETCH
    network_kind = "replica_fetch"
    replica_id: int
    partitions: tuple[FollowerFetchPartition, ...]
    session_id: int = 0
    session_epoch: int = -1
    forgotten: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True, slots=True)
class ListOffsetsRequest(Request):
    """ListOffsets for one partition: `timestamp` is "earliest", "latest" or a time in ms
    (Kafka's -2, -1 or a timestamp)."""

    api_key = ApiKey.LIST_OFFSETS
    tp: TopicPartition
    timestamp: str | int
    isolation_level: str = READ_UNCOMMITTED


@dataclass(frozen=True, slots=True)
class ListOffsetsResponse(Response):
    tp: TopicPartition
    error: str
    offset: int


@dataclass(frozen=True, slots=True)
class OffsetForLeaderEpochRequest(Request):
    """The end offset of `leader_epoch` in the leader's log (KIP-101, KIP-320)."""

    api_key = ApiKey.OFFSET_FOR_LEADER_EPOCH
    tp: TopicPartition
    current_leader_epoch: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class OffsetForLeaderEpochResponse(Response):
    tp: TopicPartition
    error: str
    leader_epoch: int = -1
    end_offset: int = -1
