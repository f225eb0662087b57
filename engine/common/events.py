"""What happened in the cluster, in order: the raw material of narration, drills and grading.

`Event.kind` is a plain snake_case string; `EventKind` lists every kind the engine emits, and
`PAYLOADS` gives the payload type (a `TypedDict`) of each, so lessons and narration can check
an event's kind and fields against one catalogue instead of bare strings
(`payload_problems(kind, data)` says what does not fit). `engine/README.md` documents them.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NotRequired, TypedDict, Union, get_args, get_origin, get_type_hints


@dataclass(frozen=True, slots=True)
class Event:
    time_ms: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"time_ms": self.time_ms, "kind": self.kind, "data": self.data}


class EventKind(StrEnum):
    """Every kind of event the engine emits (the value is `Event.kind`)."""

    # the controller and its quorum
    CONTROLLER_STARTED = "controller_started"
    CONTROLLER_STOPPED = "controller_stopped"
    CONTROLLER_ELECTED = "controller_elected"
    CONTROLLER_LOST_QUORUM = "controller_lost_quorum"
    CONTROLLER_REQUEST_TIMED_OUT = "controller_request_timed_out"
    BROKER_FENCED = "broker_fenced"
    BROKER_UNFENCED = "broker_unfenced"
    TOPIC_CREATED = "topic_created"
    TOPIC_DELETED = "topic_deleted"
    PARTITIONS_ADDED = "partitions_added"
    TOPIC_CONFIG_CHANGED = "topic_config_changed"
    BROKER_CONFIG_CHANGED = "broker_config_changed"
    LEADER_ELECTED = "leader_elected"
    ISR_SHRUNK = "isr_shrunk"
    ISR_EXPANDED = "isr_expanded"
    REASSIGNMENT_STARTED = "reassignment_started"
    REASSIGNMENT_COMPLETED = "reassignment_completed"
    REASSIGNMENT_CANCELLED = "reassignment_cancelled"
    # brokers and the network (the facade's fault controls)
    BROKER_STARTED = "broker_started"
    BROKER_STOPPED = "broker_stopped"
    NETWORK_PARTITIONED = "network_partitioned"
    NETWORK_HEALED = "network_healed"
    RESPONSE_LOST = "response_lost"
    DUPLICATE_BATCH = "duplicate_batch"
    RESOURCE_LIMIT_REACHED = "resource_limit_reached"
    # a replica's log
    SEGMENT_ROLLED = "segment_rolled"
    SEGMENT_DELETED = "segment_deleted"
    LOG_TRUNCATED = "log_truncated"
    LOG_COMPACTED = "log_compacted"
    # producers
    PRODUCE_RETRIED = "produce_retried"
    PRODUCE_FAILED = "produce_failed"
    PRODUCER_EPOCH_BUMPED = "producer_epoch_bumped"
    PRODUCER_BUFFER_BLOCKED = "producer_buffer_blocked"
    PRODUCER_BUFFER_UNBLOCKED = "producer_buffer_unblocked"
    PRODUCER_BUFFER_EXHAUSTED = "producer_buffer_exhausted"
    # consumers and their group membership (client side)
    COORDINATOR_FOUND = "coordinator_found"
    COORDINATOR_LOST = "coordinator_lost"
    PARTITIONS_ASSIGNED = "partitions_assigned"
    PARTITIONS_REVOKED = "partitions_revoked"
    PARTITIONS_LOST = "partitions_lost"
    MAX_POLL_INTERVAL_EXCEEDED = "max_poll_interval_exceeded"
    AUTO_COMMIT_FAILED = "auto_commit_failed"
    OFFSET_FETCHED = "offset_fetched"
    OFFSET_RESET = "offset_reset"
    OFFSET_OUT_OF_RANGE = "offset_out_of_range"
    LOG_TRUNCATION_DETECTED = "log_truncation_detected"
    CONSUMER_CRASHED = "consumer_crashed"
    # the group coordinator
    GROUP_COORDINATOR_LOADED = "group_coordinator_loaded"
    GROUP_COORDINATOR_UNLOADED = "group_coordinator_unloaded"
    MEMBER_JOINED = "member_joined"
    MEMBER_LEFT = "member_left"
    MEMBER_REMOVED = "member_removed"
    REBALANCE_STARTED = "rebalance_started"
    REBALANCE_COMPLETED = "rebalance_completed"
    OFFSETS_COMMITTED = "offsets_committed"
    OFFSETS_COMMIT_FAILED = "offsets_commit_failed"
    OFFSETS_EXPIRED = "offsets_expired"
    OFFSETS_DELETED = "offsets_deleted"
    OFFSETS_TOPIC_CREATION_FAILED = "offsets_topic_creation_failed"
    GROUP_DELETED = "group_deleted"
    # the transaction coordinator
    TXN_COORDINATOR_LOADED = "txn_coordinator_loaded"
    TRANSACTION_COMMITTED = "transaction_committed"
    TRANSACTION_ABORTED = "transaction_aborted"
    TRANSACTION_STATE_TOPIC_CREATION_FAILED = "transaction_state_topic_creation_failed"
    # apps on the cluster clock
    APP_STARTED = "app_started"
    APP_STOPPED = "app_stopped"
    APP_CRASHED = "app_crashed"
    APP_PROCESSED = "app_processed"
    APP_ERROR = "app_error"


# Every kind's name, in catalogue order (for callers that want plain strings).
EVENT_KINDS: tuple[str, ...] = tuple(kind.value for kind in EventKind)

# [topic, partition], as events carry partitions (JSON-friendly).
TopicPartitionPair = list[str | int]
# [topic, partition, offset]
TopicPartitionOffset = list[str | int]


# --- the controller and its quorum -------------------------------------------------------------


class ControllerStarted(TypedDict):
    controller: int


class ControllerStopped(TypedDict):
    controller: int


class ControllerElected(TypedDict):
    controller: int
    epoch: int


class ControllerLostQuorum(TypedDict):
    controller: int


class ControllerRequestTimedOut(TypedDict):
    """A forwarded admin request found no active controller for the forwarding timeout."""

    api: str  # CreateTopics, DeleteTopics, CreatePartitions, IncrementalAlterConfigs, ...
    waited_ms: int
    error: str  # TimeoutException


class BrokerFenced(TypedDict):
    broker: int
    reason: str
    partitions: list[str]  # "topic-partition" of the partitions it led


class BrokerUnfenced(TypedDict):
    broker: int


class TopicCreated(TypedDict):
    topic: str
    partitions: int
    replication_factor: int
    assignment: list[list[int]]  # replicas of each partition, by partition


class TopicDeleted(TypedDict):
    topic: str


# `from` is a Python keyword, so this one is spelled the functional way.
PartitionsAdded = TypedDict("PartitionsAdded", {"topic": str, "from": int, "to": int})


class TopicConfigChanged(TypedDict):
    topic: str
    changes: dict[str, Any]


class LeaderElected(TypedDict):
    topic: str
    partition: int
    leader: int
    previous_leader: int
    leader_epoch: int
    reason: str
    unclean: bool


class IsrShrunk(TypedDict):
    topic: str
    partition: int
    isr: list[int]
    removed: list[int]
    reason: str


class IsrExpanded(TypedDict):
    topic: str
    partition: int
    isr: list[int]
    added: list[int]
    reason: str


class BrokerConfigChanged(TypedDict):
    broker: int | None  # None: the cluster-wide default (every broker)
    changes: dict[str, Any]
    deleted: list[str]


class ReassignmentStarted(TypedDict):
    topic: str
    partition: int
    target: list[int]
    adding: list[int]
    removing: list[int]


class ReassignmentCompleted(TypedDict):
    topic: str
    partition: int
    replicas: list[int]
    removed: list[int]
    leader: int


class ReassignmentCancelled(TypedDict):
    topic: str
    partition: int
    replicas: list[int]


# --- brokers and the network -------------------------------------------------------------------


class BrokerStarted(TypedDict):
    broker: int


class BrokerStopped(TypedDict):
    broker: int
    controlled: bool


class NetworkPartitioned(TypedDict):
    groups: list[list[str]]  # the nodes on each side


class NetworkHealed(TypedDict):
    pass


class ResponseLost(TypedDict):
    broker: int


class DuplicateBatch(TypedDict):
    broker: int
    topic: str
    partition: int
    base_offset: int


class ResourceLimitReached(TypedDict):
    broker: int
    topic: str
    partition: int
    message: str


# --- a replica's log ---------------------------------------------------------------------------


class SegmentRolled(TypedDict):
    broker: int
    topic: str
    partition: int
    base_offset: int
    reason: str


class SegmentDeleted(TypedDict):
    broker: int
    topic: str
    partition: int
    base_offset: int
    next_offset: int
    records: int
    bytes: int
    reason: str


class LogTruncated(TypedDict):
    broker: int
    topic: str
    partition: int
    leader: int
    truncated_to: int
    records: int
    offsets: list[int]


class LogCompacted(TypedDict):
    broker: int
    topic: str
    partition: int
    start_offset: int
    end_offset: int
    dirty_ratio: float
    records_removed: int
    tombstones_removed: int
    markers_removed: int
    aborted_records_removed: int
    batch_headers_retained: int
    bytes_before: int
    bytes_after: int
    segments_before: int
    segments_after: int


# --- producers ---------------------------------------------------------------------------------


class ProduceRetried(TypedDict):
    producer: str
    topic: str
    partition: int
    error: str
    attempt: int


class ProduceFailed(TypedDict):
    producer: str
    topic: str
    partition: int
    error: str
    message: str
    records: int


class _ProducerBuffer(TypedDict):
    """A send and the producer's buffer.memory pool (topic and partition are None for a
    simulated application's send, which has no future yet)."""

    producer: str
    topic: str | None
    partition: int | None
    needed_bytes: int
    available_bytes: int
    buffer_memory: int
    app: NotRequired[int]


class ProducerBufferBlocked(_ProducerBuffer):
    max_block_ms: int


class ProducerBufferUnblocked(_ProducerBuffer):
    waited_ms: int


class ProducerBufferExhausted(_ProducerBuffer):
    waited_ms: int


class ProducerEpochBumped(TypedDict):
    producer: str
    producer_id: int
    producer_epoch: int


# --- consumers and their group membership ------------------------------------------------------


class _Member(TypedDict):
    group: str
    client: str
    member: str


class CoordinatorFound(_Member):
    coordinator: int


class CoordinatorLost(_Member):
    coordinator: int


class PartitionsAssigned(_Member):
    generation: int
    partitions: list[TopicPartitionPair]  # newly added to the member
    assignment: list[TopicPartitionPair]  # everything it owns now


class PartitionsRevoked(_Member):
    generation: int
    partitions: list[TopicPartitionPair]


class PartitionsLost(_Member):
    partitions: list[TopicPartitionPair]


class MaxPollIntervalExceeded(_Member):
    last_poll_ms: int


class AutoCommitFailed(_Member):
    error: str


class OffsetFetched(_Member):
    topic: str
    partition: int
    offset: int


class OffsetReset(TypedDict):
    client: str
    topic: str
    partition: int
    offset: int
    to: str


class OffsetOutOfRange(TypedDict):
    client: str
    topic: str
    partition: int
    offset: int


class LogTruncationDetected(TypedDict):
    """KIP-320: the consumer's position is past the end of its epoch on the new leader."""

    client: str
    topic: str
    partition: int
    position: int
    epoch: int
    divergent_offset: int | None  # None: the leader's log has no epoch in common
    reset_to: int | str | None  # the new position, a reset policy, or None (LogTruncation)


class ConsumerCrashed(TypedDict):
    client: str
    group: str


# --- the group coordinator ---------------------------------------------------------------------


class GroupCoordinatorLoaded(TypedDict):
    broker: int
    partition: int
    groups: list[str]


class GroupCoordinatorUnloaded(TypedDict):
    broker: int
    partition: int
    groups: list[str]


class _GroupMember(TypedDict):
    group: str
    coordinator: int
    member: str
    client_id: str
    group_instance_id: str | None


class MemberJoined(_GroupMember):
    replaced: NotRequired[str]  # the member id a static member took over from


class MemberLeft(_GroupMember):
    reason: str


class MemberRemoved(_GroupMember):
    reason: str


class RebalanceStarted(TypedDict):
    group: str
    coordinator: int
    generation: int
    reason: str


class RebalanceCompleted(TypedDict):
    group: str
    coordinator: int
    generation: int
    assignment: dict[str, list[TopicPartitionPair]]  # member id -> partitions
    protocol: NotRequired[str]
    leader: NotRequired[str]


class OffsetsCommitted(TypedDict):
    group: str
    coordinator: int
    offsets: list[TopicPartitionOffset]
    member: NotRequired[str]
    producer_id: NotRequired[int]
    transactional: NotRequired[bool]


class OffsetsCommitFailed(TypedDict):
    group: str
    error: str


class OffsetsExpired(TypedDict):
    group: str
    coordinator: int
    offsets: list[TopicPartitionOffset]


class OffsetsDeleted(TypedDict):
    """A deleted topic's offsets got tombstones (Kafka's onPartitionsDeleted)."""

    group: str
    coordinator: int
    reason: str
    offsets: list[TopicPartitionPair]


class OffsetsTopicCreationFailed(TypedDict):
    error: str
    message: str


class GroupDeleted(TypedDict):
    group: str
    coordinator: int
    reason: str


# --- the transaction coordinator ---------------------------------------------------------------


class TxnCoordinatorLoaded(TypedDict):
    broker: int
    partition: int
    leader_epoch: int
    transactions: list[str]
    completing: list[str]


class _TransactionEnded(TypedDict):
    transactional_id: str
    producer_id: int
    producer_epoch: int
    partitions: list[TopicPartitionPair]
    coordinator: int
    reason: str


class TransactionCommitted(_TransactionEnded):
    pass


class TransactionAborted(_TransactionEnded):
    pass


class TransactionStateTopicCreationFailed(TypedDict):
    error: str


# --- apps --------------------------------------------------------------------------------------


class AppStarted(TypedDict):
    app: int
    kind: str
    client: str


class AppStopped(TypedDict):
    app: int


class AppCrashed(TypedDict):
    app: int


class AppProcessed(TypedDict):
    app: int
    records: int


class AppError(TypedDict):
    app: int
    error: str


_K = EventKind
PAYLOADS: Mapping[EventKind, type] = MappingProxyType(
    {
        _K.CONTROLLER_STARTED: ControllerStarted,
        _K.CONTROLLER_STOPPED: ControllerStopped,
        _K.CONTROLLER_ELECTED: ControllerElected,
        _K.CONTROLLER_LOST_QUORUM: ControllerLostQuorum,
        _K.CONTROLLER_REQUEST_TIMED_OUT: ControllerRequestTimedOut,
        _K.BROKER_FENCED: BrokerFenced,
        _K.BROKER_UNFENCED: BrokerUnfenced,
        _K.TOPIC_CREATED: TopicCreated,
        _K.TOPIC_DELETED: TopicDeleted,
        _K.PARTITIONS_ADDED: PartitionsAdded,
        _K.TOPIC_CONFIG_CHANGED: TopicConfigChanged,
        _K.BROKER_CONFIG_CHANGED: BrokerConfigChanged,
        _K.LEADER_ELECTED: LeaderElected,
        _K.ISR_SHRUNK: IsrShrunk,
        _K.ISR_EXPANDED: IsrExpanded,
        _K.REASSIGNMENT_STARTED: ReassignmentStarted,
        _K.REASSIGNMENT_COMPLETED: ReassignmentCompleted,
        _K.REASSIGNMENT_CANCELLED: ReassignmentCancelled,
        _K.BROKER_STARTED: BrokerStarted,
        _K.BROKER_STOPPED: BrokerStopped,
        _K.NETWORK_PARTITIONED: NetworkPartitioned,
        _K.NETWORK_HEALED: NetworkHealed,
        _K.RESPONSE_LOST: ResponseLost,
        _K.DUPLICATE_BATCH: DuplicateBatch,
        _K.RESOURCE_LIMIT_REACHED: ResourceLimitReached,
        _K.SEGMENT_ROLLED: SegmentRolled,
        _K.SEGMENT_DELETED: SegmentDeleted,
        _K.LOG_TRUNCATED: LogTruncated,
        _K.LOG_COMPACTED: LogCompacted,
        _K.PRODUCE_RETRIED: ProduceRetried,
        _K.PRODUCE_FAILED: ProduceFailed,
        _K.PRODUCER_EPOCH_BUMPED: ProducerEpochBumped,
        _K.PRODUCER_BUFFER_BLOCKED: ProducerBufferBlocked,
        _K.PRODUCER_BUFFER_UNBLOCKED: ProducerBufferUnblocked,
        _K.PRODUCER_BUFFER_EXHAUSTED: ProducerBufferExhausted,
        _K.COORDINATOR_FOUND: CoordinatorFound,
        _K.COORDINATOR_LOST: CoordinatorLost,
        _K.PARTITIONS_ASSIGNED: PartitionsAssigned,
        _K.PARTITIONS_REVOKED: PartitionsRevoked,
        _K.PARTITIONS_LOST: PartitionsLost,
        _K.MAX_POLL_INTERVAL_EXCEEDED: MaxPollIntervalExceeded,
        _K.AUTO_COMMIT_FAILED: AutoCommitFailed,
        _K.OFFSET_FETCHED: OffsetFetched,
        _K.OFFSET_RESET: OffsetReset,
        _K.OFFSET_OUT_OF_RANGE: OffsetOutOfRange,
        _K.LOG_TRUNCATION_DETECTED: LogTruncationDetected,
        _K.CONSUMER_CRASHED: ConsumerCrashed,
        _K.GROUP_COORDINATOR_LOADED: GroupCoordinatorLoaded,
        _K.GROUP_COORDINATOR_UNLOADED: GroupCoordinatorUnloaded,
        _K.MEMBER_JOINED: MemberJoined,
        _K.MEMBER_LEFT: MemberLeft,
        _K.MEMBER_REMOVED: MemberRemoved,
        _K.REBALANCE_STARTED: RebalanceStarted,
        _K.REBALANCE_COMPLETED: RebalanceCompleted,
        _K.OFFSETS_COMMITTED: OffsetsCommitted,
        _K.OFFSETS_COMMIT_FAILED: OffsetsCommitFailed,
        _K.OFFSETS_EXPIRED: OffsetsExpired,
        _K.OFFSETS_DELETED: OffsetsDeleted,
        _K.OFFSETS_TOPIC_CREATION_FAILED: OffsetsTopicCreationFailed,
        _K.GROUP_DELETED: GroupDeleted,
        _K.TXN_COORDINATOR_LOADED: TxnCoordinatorLoaded,
        _K.TRANSACTION_COMMITTED: TransactionCommitted,
        _K.TRANSACTION_ABORTED: TransactionAborted,
        _K.TRANSACTION_STATE_TOPIC_CREATION_FAILED: TransactionStateTopicCreationFailed,
        _K.APP_STARTED: AppStarted,
        _K.APP_STOPPED: AppStopped,
        _K.APP_CRASHED: AppCrashed,
        _K.APP_PROCESSED: AppProcessed,
        _K.APP_ERROR: AppError,
    }
)


def _fits(value: Any, annotation: Any) -> bool:
    if annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return any(_fits(value, option) for option in get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict:
        key, item = get_args(annotation)
        return isinstance(value, dict) and all(
            _fits(k, key) and _fits(v, item) for k, v in value.items()
        )
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def payload_problems(kind: str, data: Mapping[str, Any]) -> list[str]:
    """What in an event does not fit the catalogue: an unknown kind, a missing or unexpected
    field, or a field of the wrong type (an empty list means it fits)."""
    try:
        payload = PAYLOADS[EventKind(kind)]
    except ValueError:
        return [f"{kind!r} is not an event kind"]
    # Read NotRequired from the annotations themselves: with postponed annotations Python 3.11
    # counts every key of a TypedDict as required.
    hints: dict[str, Any] = {}
    required: set[str] = set()
    for name, hint in get_type_hints(payload, include_extras=True).items():
        if get_origin(hint) is NotRequired:
            hint = get_args(hint)[0]
        else:
            required.add(name)
        hints[name] = hint
    problems = [f"{kind}: {name!r} is missing" for name in sorted(required - set(data))]
    for name, value in data.items():
        if name not in hints:
            problems.append(f"{kind}: {name!r} is not a field of {payload.__name__}")
        elif not _fits(value, hints[name]):
            problems.append(f"{kind}: {name!r} = {value!r} does not fit {hints[name]}")
    return problems
