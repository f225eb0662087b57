"""Kafka's errors, one class per Kafka exception the simulation can raise.

Named as Kafka's Java exceptions with `Error` for `Exception`; `.code` is Kafka's protocol error
code (`None` for errors only a client raises) and `.retriable` says whether a client retries.
Each class carries a plain sentence for learners (`.explanation`).
"""

from __future__ import annotations

from typing import Any


class KafkaError(Exception):
    code: int | None = None
    retriable: bool = False
    explanation: str = "Kafka reported an error."
    # The Java name where it is not this class's name with Exception for Error.
    java_name: str | None = None

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.explanation)
        self.message = message or self.explanation

    @property
    def kafka_name(self) -> str:
        """The Java exception name a learner would see in Kafka's logs."""
        if self.java_name is not None:
            return self.java_name
        name = type(self).__name__
        if name == "KafkaTimeoutError":
            return "TimeoutException"
        return name[: -len("Error")] + "Exception" if name.endswith("Error") else name


class RetriableError(KafkaError):
    retriable = True


class UnknownServerError(KafkaError):
    code = -1
    explanation = "The broker hit an unexpected error."


class OffsetOutOfRangeError(KafkaError):
    code: int | None = 1
    explanation = "The requested offset is below the log start offset or above the log end."


class LogTruncationError(OffsetOutOfRangeError):
    """Kafka's `LogTruncationException` (KIP-320): the consumer's position is past the end of
    its epoch on the new leader, so records it read are no longer in the log. Raised from poll()
    only with auto.offset.reset=none; `divergent_offsets` holds where the logs part ways."""

    code = None
    explanation = (
        "The partition's log was truncated below this consumer's position (an unclean leader "
        "election): records it already read are gone, and no reset policy says where to go."
    )

    def __init__(
        self,
        message: str | None = None,
        fetch_offsets: dict[Any, int] | None = None,
        divergent_offsets: dict[Any, int] | None = None,
    ) -> None:
        super().__init__(message)
        self.fetch_offsets = dict(fetch_offsets or {})
        self.divergent_offsets = dict(divergent_offsets or {})


class CorruptRecordError(RetriableError):
    code = 2
    explanation = "The record failed its checksum."


class UnknownTopicOrPartitionError(RetriableError):
    code = 3
    explanation = "This broker does not host that topic-partition, or the topic does not exist."


class LeaderNotAvailableError(RetriableError):
    code = 5
    explanation = "The partition has no leader right now (an election is under way)."


class NotLeaderOrFollowerError(RetriableError):
    code = 6
    explanation = (
        "The broker is not the leader of that partition any more; the client refreshes its "
        "metadata and retries against the new leader."
    )


class RequestTimedOutError(RetriableError):
    """REQUEST_TIMED_OUT, which Kafka's clients raise as `TimeoutException`."""

    code = 7
    java_name = "TimeoutException"
    explanation = "The broker could not complete the request within its timeout."


class BrokerNotAvailableError(KafkaError):
    code = 8
    explanation = "The broker is not available."


class ReplicaNotAvailableError(RetriableError):
    code = 9
    explanation = "The replica is not available on that broker."


class RecordTooLargeError(KafkaError):
    code = 10
    explanation = (
        "The record is larger than max.request.size on the producer or the topic's "
        "max.message.bytes on the broker."
    )


class NetworkError(RetriableError):
    code = 13
    explanation = "The connection to the broker was lost before a response arrived."


class CoordinatorLoadInProgressError(RetriableError):
    code = 14
    explanation = "The coordinator is still loading its state; the client retries."


class CoordinatorNotAvailableError(RetriableError):
    code = 15
    explanation = "The coordinator is not available; the client looks it up again."


class NotCoordinatorError(RetriableError):
    code = 16
    explanation = "This broker is not the coordinator for that group or transactional id."


class InvalidTopicError(KafkaError):
    code = 17
    explanation = (
        "Topic names use only letters, digits, '.', '_' and '-', are 1 to 249 characters "
        "long, and cannot be '.' or '..'."
    )


class RecordBatchTooLargeError(KafkaError):
    code = 18
    explanation = "The batch is larger than the broker accepts."


class NotEnoughReplicasError(RetriableError):
    code = 19
    explanation = (
        "acks=all needs at least min.insync.replicas replicas in sync; fewer are, so the "
        "leader refused the write and appended nothing."
    )


class NotEnoughReplicasAfterAppendError(RetriableError):
    code = 20
    explanation = (
        "The leader appended the record, but the in-sync replicas fell below "
        "min.insync.replicas before it could acknowledge; the record stays in the log."
    )


class InvalidRequiredAcksError(KafkaError):
    code = 21
    explanation = "acks must be 0, 1 or all (-1)."


class IllegalGenerationError(KafkaError):
    code = 22
    explanation = "The member's generation is not the group's current one: a rebalance happened."


class InconsistentGroupProtocolError(KafkaError):
    code = 23
    explanation = "The member supports none of the group's assignment strategies."


class InvalidGroupIdError(KafkaError):
    code = 24
    explanation = "The group id is empty or invalid."


class UnknownMemberIdError(KafkaError):
    code = 25
    explanation = "The coordinator does not know this member: it was removed from the group."


class InvalidSessionTimeoutError(KafkaError):
    code = 26
    explanation = "session.timeout.ms is outside the broker's allowed range."


class RebalanceInProgressError(KafkaError):
    code = 27
    explanation = "The group is rebalancing; the member must rejoin."


class InvalidCommitOffsetSizeError(KafkaError):
    code = 28
    explanation = "The offset commit was too large."


class TopicAuthorizationFailedError(KafkaError):
    code = 29
    explanation = "Not authorized to access the topic."


class InvalidTimestampError(KafkaError):
    code = 32
    explanation = "The record timestamp is out of the accepted range."


class InvalidPartitionsError(KafkaError):
    code = 37
    explanation = "A topic's partition count can only grow, and must be at least 1."


class InvalidReplicationFactorError(KafkaError):
    code = 38
    explanation = (
        "The replication factor must be at least 1 and at most the number of registered brokers."
    )


class InvalidReplicaAssignmentError(KafkaError):
    code = 39
    explanation = "The replica assignment is invalid."


class InvalidConfigurationError(KafkaError):
    code = 40
    explanation = "Unknown configuration key or invalid value."


class NotControllerError(RetriableError):
    code = 41
    explanation = "This node is not the active controller."


class InvalidRequestError(KafkaError):
    code = 42
    explanation = "The request is invalid."


class PolicyViolationError(KafkaError):
    code = 44
    explanation = "The request violates a configured policy."


class OutOfOrderSequenceError(KafkaError):
    code = 45
    explanation = (
        "The broker received a batch whose sequence number skips ahead of the last one it "
        "wrote for this producer: an earlier batch was lost."
    )


class DuplicateSequenceError(KafkaError):
    code = 46
    explanation = "The broker already wrote a batch with this sequence number."


class InvalidProducerEpochError(KafkaError):
    code = 47
    explanation = (
        "The producer epoch is older than the one the broker knows: a newer producer exists."
    )


class InvalidTxnStateError(KafkaError):
    code = 48
    explanation = "The transactional call is not valid in the transaction's current state."


class InvalidProducerIdMappingError(KafkaError):
    code = 49
    explanation = "The producer id is not mapped to this transactional id."


class InvalidTransactionTimeoutError(KafkaError):
    code = 50
    explanation = "transaction.timeout.ms is larger than the broker's transaction.max.timeout.ms."


class ConcurrentTransactionsError(RetriableError):
    code = 51
    explanation = "The previous transaction is still completing; the producer retries."


class TransactionCoordinatorFencedError(KafkaError):
    code = 52
    explanation = "A newer transaction coordinator took over."


class TransactionalIdAuthorizationFailedError(KafkaError):
    code = 53
    explanation = "Not authorized to use this transactional id."


class UnknownProducerIdError(KafkaError):
    code = 59
    explanation = "The broker no longer has state for this producer id."


class GroupIdNotFoundError(KafkaError):
    code = 69
    explanation = "The group does not exist."


class GroupNotEmptyError(KafkaError):
    code = 68
    explanation = (
        "The group still has active members; stop every consumer of the group before resetting "
        "or deleting its offsets."
    )


class NoReassignmentInProgressError(KafkaError):
    code = 85
    explanation = "No partition reassignment is in progress."


class GroupSubscribedToTopicError(KafkaError):
    code = 86
    explanation = (
        "The group's members still subscribe to the topic, so its committed offsets cannot be "
        "deleted; stop the consumers or delete offsets of topics nobody reads."
    )


class FencedLeaderEpochError(RetriableError):
    code = 74
    explanation = "The request carried an older leader epoch than the broker's."


class UnknownLeaderEpochError(RetriableError):
    code = 75
    explanation = "The request carried a newer leader epoch than the broker knows yet."


class OffsetNotAvailableError(RetriableError):
    code = 78
    explanation = "The leader's high watermark has not caught up yet."


class MemberIdRequiredError(KafkaError):
    code = 79
    explanation = "A new member must rejoin with the member id the coordinator just gave it."


class PreferredLeaderNotAvailableError(RetriableError):
    code = 80
    explanation = "The preferred leader is not in sync or not alive, so it cannot lead now."


class GroupMaxSizeReachedError(KafkaError):
    code = 81
    explanation = "The group has reached group.max.size members."


class FencedInstanceIdError(KafkaError):
    code = 82
    explanation = (
        "Another consumer joined with the same group.instance.id; this one has been fenced."
    )


class EligibleLeadersNotAvailableError(RetriableError):
    code = 83
    explanation = "No replica is eligible to become leader."


class ElectionNotNeededError(KafkaError):
    code = 84
    explanation = "The preferred leader already leads the partition."


class UnstableOffsetCommitError(RetriableError):
    code = 88
    explanation = "There are pending transactional offsets for this partition."


class InvalidRecordError(KafkaError):
    code = 87
    explanation = (
        "The broker rejected the record: a compacted topic needs every record to have a key."
    )


class ThrottlingQuotaExceededError(RetriableError):
    code = 89
    explanation = "The request was throttled."


class ProducerFencedError(KafkaError):
    code = 90
    explanation = (
        "Another producer with the same transactional.id called init_transactions and bumped "
        "the epoch: this one is a zombie and has been fenced."
    )


class TopicExistsError(KafkaError):
    code = 36
    explanation = "A topic with that name already exists."


class InvalidUpdateVersionError(KafkaError):
    code = 95
    explanation = "The update version is stale."


class TransactionAbortableError(KafkaError):
    code = 120
    explanation = "The transaction must be aborted before the producer can continue."


# Errors only a client raises (no protocol code).


class KafkaTimeoutError(RetriableError):
    code: int | None = 7
    explanation = (
        "The client gave up waiting: the operation did not complete within its timeout "
        "(delivery.timeout.ms, max.block.ms or request.timeout.ms)."
    )


class BufferExhaustedError(KafkaTimeoutError):
    """Kafka's `BufferExhaustedException`, a `TimeoutException` raised by the producer itself."""

    code = None
    explanation = (
        "The producer's buffer.memory is used up by batches the brokers have not acknowledged, "
        "and no room came free within max.block.ms: the producer is faster than the brokers."
    )


class CommitFailedError(KafkaError):
    code = None
    explanation = (
        "The commit cannot be completed: this consumer is no longer part of the group's current "
        "generation (it was removed after max.poll.interval.ms or a missed session), and its "
        "partitions were probably given to another member."
    )


class IllegalStateError(KafkaError):
    code = None
    explanation = "The call is not valid in the client's current state."


class InvalidOffsetError(KafkaError):
    code = None
    explanation = "The offset is not valid."


class NoOffsetForPartitionError(KafkaError):
    code = None
    explanation = "No committed offset and auto.offset.reset is none."


class KafkaClosedError(KafkaError):
    code = None
    explanation = "The client has been closed."


# The name a broker answers a produce with when the sandbox's resource limits refuse it.
RESOURCE_LIMIT_EXCEEDED = "RESOURCE_LIMIT_EXCEEDED"


class ResourceLimitError(KafkaError):
    """Raised when a simulated cluster would exceed its resource limits (not a Kafka error)."""

    code = None
    explanation = "This simulated cluster has reached one of its resource limits."


class ClusterUnavailableError(RequestTimedOutError):
    """A metadata change with no active controller: Kafka's broker keeps the forwarded request
    for its forwarding retry timeout (60 s), then answers REQUEST_TIMED_OUT, which the admin
    client raises as `TimeoutException`. (The name is this engine's, kept for callers.)"""

    explanation = (
        "The broker could not forward the request to an active controller in time: the "
        "controller quorum has lost its majority, so no metadata can change."
    )


def error_for_code(code: int) -> type[KafkaError]:
    """The error class Kafka uses for a protocol error code."""
    return _BY_CODE.get(code, UnknownServerError)


def _collect() -> dict[int, type[KafkaError]]:
    found: dict[int, type[KafkaError]] = {}
    stack: list[type[KafkaError]] = [KafkaError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.code is not None and cls.code not in found and cls is not KafkaTimeoutError:
            found[cls.code] = cls
    return found


_BY_CODE = _collect()


class InvalidPartitionGivenError(KafkaError):
    code = None
    explanation = "The record names a partition the topic does not have."


def _protocol_name(cls: type[KafkaError]) -> str:
    name = cls.__name__.removesuffix("Error")
    out = "".join("_" + ch if ch.isupper() and i else ch for i, ch in enumerate(name))
    return out.upper()


_NAME_OVERRIDES: dict[str, type[KafkaError]] = {
    "MESSAGE_TOO_LARGE": RecordTooLargeError,
    "OUT_OF_ORDER_SEQUENCE_NUMBER": OutOfOrderSequenceError,
    "DUPLICATE_SEQUENCE_NUMBER": DuplicateSequenceError,
    "NON_EMPTY_GROUP": GroupNotEmptyError,
    "INVALID_TXN_STATE": InvalidTxnStateError,
    "REQUEST_TIMED_OUT": RequestTimedOutError,
    "NETWORK_EXCEPTION": NetworkError,
    RESOURCE_LIMIT_EXCEEDED: ResourceLimitError,
}


def error_for_name(name: str) -> type[KafkaError]:
    """The error class for a protocol error name such as NOT_LEADER_OR_FOLLOWER."""
    if name in _NAME_OVERRIDES:
        return _NAME_OVERRIDES[name]
    return _BY_NAME.get(name, UnknownServerError)


def protocol_name(error: KafkaError | type[KafkaError]) -> str:
    cls = error if isinstance(error, type) else type(error)
    for name, known in _NAME_OVERRIDES.items():
        if known is cls:
            return name
    return _protocol_name(cls)


_BY_NAME = {_protocol_name(cls): cls for cls in _BY_CODE.values()}


class TransactionAbortedError(KafkaError):
    """Kafka's `TransactionAbortedException` (client-side, no protocol code)."""

    code = None
    explanation = (
        "The record was not sent because its transaction was aborted before the batch went out."
    )


def error_class(name: str) -> type[KafkaError]:
    """The error class a response's error name stands for, client-only and sandbox errors
    included (a response names its error; the admin client raises this class)."""
    if name in _NAME_OVERRIDES:
        return _NAME_OVERRIDES[name]
    stack: list[type[KafkaError]] = [KafkaError]
    while stack:
        cls = stack.pop()
        if _protocol_name(cls) == name:
            return cls
        stack.extend(cls.__subclasses__())
    return error_for_name(name)
