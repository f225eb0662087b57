"""The admin APIs the controller quorum serves: CreateTopics, DeleteTopics, CreatePartitions,
DescribeConfigs, IncrementalAlterConfigs, ElectLeaders, AlterPartitionReassignments,
ListPartitionReassignments and DescribeQuorum.

Each result carries Kafka's `error` (an `Errors` name) and `error_message`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.common.requests import ApiKey, Request, Response

# DescribeConfigs / IncrementalAlterConfigs resource types (Kafka's ConfigResource.Type).
TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4

# IncrementalAlterConfigs operations (Kafka's AlterConfigOp.OpType).
SET = 0
DELETE = 1

# ElectLeaders election types (Kafka's ElectionType).
PREFERRED = 0
UNCLEAN = 1


@dataclass(frozen=True, slots=True)
class CreatableTopic:
    """One topic to create; the admin client's `NewTopic` too. The defaults are the brokers'
    `num.partitions` and `default.replication.factor` (1)."""

    name: str
    num_partitions: int = 1
    replication_factor: int = 1
    # Checked by the controller (a mapping of topic config keys to values).
    configs: Any = None


@dataclass(frozen=True, slots=True)
class CreateTopicsRequest(Request):
    api_key = ApiKey.CREATE_TOPICS
    topics: tuple[CreatableTopic, ...]
    timeout_ms: int = 30000
    validate_only: bool = False


@dataclass(frozen=True, slots=True)
class TopicResult(Response):
    """One topic's outcome (CreateTopics, DeleteTopics, CreatePartitions)."""

    name: str
    error: str = ""
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class CreateTopicsResponse(Response):
    topics: tuple[TopicResult, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class DeleteTopicsRequest(Request):
    api_key = ApiKey.DELETE_TOPICS
    topic_names: tuple[str, ...]
    timeout_ms: int = 30000


@dataclass(frozen=True, slots=True)
class DeleteTopicsResponse(Response):
    responses: tuple[TopicResult, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class CreatePartitionsTopic:
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class CreatePartitionsRequest(Request):
    api_key = ApiKey.CREATE_PARTITIONS
    topics: tuple[CreatePartitionsTopic, ...]
    timeout_ms: int = 30000
    validate_only: bool = False


@dataclass(frozen=True, slots=True)
class CreatePartitionsResponse(Response):
    results: tuple[TopicResult, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class ConfigResource:
    resource_type: int
    resource_name: str


@dataclass(frozen=True, slots=True)
class DescribeConfigsRequest(Request):
    api_key = ApiKey.DESCRIBE_CONFIGS
    resources: tuple[ConfigResource, ...]


@dataclass(frozen=True, slots=True)
class DescribeConfigsResourceResult:
    name: str
    value: Any
    # True when the topic sets the key itself (Kafka's source DYNAMIC_TOPIC_CONFIG), False
    # for a default inherited from the broker.
    is_default: bool
    read_only: bool = False
    # Kafka's ConfigSource of the value in effect, and its synonyms in precedence order as
    # (source, name, value): filled for BROKER resources.
    source: str = ""
    synonyms: tuple[tuple[str, str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class DescribeConfigsResult(Response):
    resource: ConfigResource
    configs: tuple[DescribeConfigsResourceResult, ...]
    error: str = ""
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class DescribeConfigsResponse(Response):
    results: tuple[DescribeConfigsResult, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class AlterableConfig:
    name: str
    config_operation: int
    value: Any = None


@dataclass(frozen=True, slots=True)
class AlterConfigsResource:
    resource: ConfigResource
    configs: tuple[AlterableConfig, ...]


@dataclass(frozen=True, slots=True)
class IncrementalAlterConfigsRequest(Request):
    api_key = ApiKey.INCREMENTAL_ALTER_CONFIGS
    resources: tuple[AlterConfigsResource, ...]
    validate_only: bool = False


@dataclass(frozen=True, slots=True)
class AlterConfigsResourceResponse(Response):
    resource: ConfigResource
    error: str = ""
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class IncrementalAlterConfigsResponse(Response):
    responses: tuple[AlterConfigsResourceResponse, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class ElectLeadersRequest(Request):
    api_key = ApiKey.ELECT_LEADERS
    election_type: int
    # (topic, partition) pairs.
    topic_partitions: tuple[tuple[str, int], ...]
    timeout_ms: int = 30000


@dataclass(frozen=True, slots=True)
class PartitionResult(Response):
    topic: str
    partition_id: int
    error: str = ""
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class ElectLeadersResponse(Response):
    replica_election_results: tuple[PartitionResult, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class DescribeQuorumRequest(Request):
    api_key = ApiKey.DESCRIBE_QUORUM


@dataclass(frozen=True, slots=True)
class ReplicaState:
    replica_id: int
    log_end_offset: int
    # Not in Kafka's response: whether the controller process is running.
    alive: bool = True
    # When the leader last had a fetch from this replica, and when the replica last had fetched
    # up to the leader's end (Kafka's LastFetchTimestamp and LastCaughtUpTimestamp; -1 unknown).
    last_fetch_timestamp: int = -1
    last_caught_up_timestamp: int = -1


@dataclass(frozen=True, slots=True)
class DescribeQuorumResponse(Response):
    leader_id: int
    leader_epoch: int
    high_watermark: int
    current_voters: tuple[ReplicaState, ...]
    observers: tuple[ReplicaState, ...]
    error: str = ""
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class ReassignablePartition:
    partition_index: int
    # The target replicas; None cancels the partition's ongoing reassignment.
    replicas: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class ReassignableTopic:
    name: str
    partitions: tuple[ReassignablePartition, ...]


@dataclass(frozen=True, slots=True)
class AlterPartitionReassignmentsRequest(Request):
    api_key = ApiKey.ALTER_PARTITION_REASSIGNMENTS
    topics: tuple[ReassignableTopic, ...]
    timeout_ms: int = 60000


@dataclass(frozen=True, slots=True)
class AlterPartitionReassignmentsResponse(Response):
    # One result per partition, in request order (Kafka groups them by topic).
    responses: tuple[PartitionResult, ...]
    error: str = ""
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class ListPartitionReassignmentsTopic:
    name: str
    partition_indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ListPartitionReassignmentsRequest(Request):
    api_key = ApiKey.LIST_PARTITION_REASSIGNMENTS
    # None lists every ongoing reassignment.
    topics: tuple[ListPartitionReassignmentsTopic, ...] | None = None
    timeout_ms: int = 60000


@dataclass(frozen=True, slots=True)
class OngoingPartitionReassignment:
    topic: str
    partition_index: int
    replicas: tuple[int, ...]
    adding_replicas: tuple[int, ...]
    removing_replicas: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ListPartitionReassignmentsResponse(Response):
    topics: tuple[OngoingPartitionReassignment, ...]
    error: str = ""
    error_message: str | None = None
