"""The controller quorum's request handler (Kafka's `ControllerApis`): the admin APIs that change
or describe cluster metadata, in one table from API key to handler.

Kafka's admin client sends these to a broker, which forwards them to the active controller, or,
bootstrapped with `bootstrap.controllers` (KIP-919), straight to the quorum; here the admin client
(`engine.clients.admin`) hands them to this handler. Each handler answers one result per topic
or partition with Kafka's error name and message; nothing is raised across the boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.common.config import BROKER, TOPIC
from engine.common.requests import ApiKey, Reply, Request
from engine.common.requests.admin import (
    BROKER_RESOURCE,
    DELETE,
    PREFERRED,
    SET,
    TOPIC_RESOURCE,
    UNCLEAN,
    AlterConfigsResource,
    AlterConfigsResourceResponse,
    AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse,
    ConfigResource,
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResourceResult,
    DescribeConfigsResponse,
    DescribeConfigsResult,
    DescribeQuorumRequest,
    DescribeQuorumResponse,
    ElectLeadersRequest,
    ElectLeadersResponse,
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
    OngoingPartitionReassignment,
    PartitionResult,
    ReplicaState,
    TopicResult,
)
from engine.common.requests.metadata import (
    DescribeClusterBroker,
    DescribeClusterRequest,
    DescribeClusterResponse,
)
from engine.common.topic_admin import validate_new_topic
from engine.controller.dynamic_broker_config import (
    APPLIED,
    resolved,
    validate_broker_changes,
    validate_broker_name,
)
from engine.errors import (
    InvalidConfigurationError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidRequestError,
    KafkaError,
    TopicExistsError,
    UnknownTopicOrPartitionError,
    protocol_name,
)

if TYPE_CHECKING:
    from engine.controller.quorum_controller import QuorumController
    from engine.sim.limits import ResourceLimits

Handler = Callable[[Any, Reply], None]
CLUSTER_ID = "kafka-dojo"


class ControllerApis:
    """Serves the admin APIs on the controller quorum (`handlers` lists every one)."""

    def __init__(
        self,
        controller: QuorumController,
        topic_defaults: dict[str, Any],
        limits: ResourceLimits,
        broker_ids: Callable[[], list[int]],
        static_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.controller = controller
        self.topic_defaults = topic_defaults
        # The broker keys given when the cluster was made (STATIC_BROKER_CONFIG).
        self.static_keys = static_keys
        self.limits = limits
        self.broker_ids = broker_ids
        self.handlers: dict[ApiKey, Handler] = {
            ApiKey.CREATE_TOPICS: self.handle_create_topics,
            ApiKey.DELETE_TOPICS: self.handle_delete_topics,
            ApiKey.CREATE_PARTITIONS: self.handle_create_partitions,
            ApiKey.DESCRIBE_CONFIGS: self.handle_describe_configs,
            ApiKey.INCREMENTAL_ALTER_CONFIGS: self.handle_incremental_alter_configs,
            ApiKey.ELECT_LEADERS: self.handle_elect_leaders,
            ApiKey.ALTER_PARTITION_REASSIGNMENTS: self.handle_alter_partition_reassignments,
            ApiKey.LIST_PARTITION_REASSIGNMENTS: self.handle_list_partition_reassignments,
            ApiKey.DESCRIBE_CLUSTER: self.handle_describe_cluster,
            ApiKey.DESCRIBE_QUORUM: self.handle_describe_quorum,
        }

    def handle(self, request: Request, reply: Reply) -> None:
        handler = self.handlers.get(request.api_key)
        if handler is None:
            raise ValueError(f"the controller quorum does not serve {request.api_key.name}")
        handler(request, reply)

    # --- topics ------------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        config: Mapping[str, Any] | None,
        internal: bool = False,
    ) -> None:
        """Create a topic with the broker defaults overlaid by `config` (raises KafkaError).
        Coordinators and auto-creation call this for their topics; CreateTopics too."""
        overrides = TOPIC.parse(config)
        brokers = len(self.broker_ids())
        if replication_factor > brokers:
            raise InvalidReplicationFactorError(
                f"Replication factor: {replication_factor} larger than available brokers: "
                f"{brokers}."
            )
        if name in self.controller.topics:
            raise TopicExistsError(f"Topic '{name}' already exists.")
        self.limits.check_topic(self.controller.topics, partitions, new_topic=True)
        effective = dict(self.topic_defaults)
        effective.update(overrides)
        self.controller.create_topic(
            name, partitions, replication_factor, effective, internal, set(overrides)
        )

    def handle_create_topics(self, request: CreateTopicsRequest, reply: Reply) -> None:
        results = []
        for topic in request.topics:
            try:
                validate_new_topic(topic.name, topic.num_partitions, topic.replication_factor)
                self.create_topic(
                    topic.name, topic.num_partitions, topic.replication_factor, topic.configs
                )
                results.append(TopicResult(topic.name))
            except KafkaError as exc:
                results.append(_failed(topic.name, exc))
        reply(CreateTopicsResponse(tuple(results)))

    def handle_delete_topics(self, request: DeleteTopicsRequest, reply: Reply) -> None:
        results = []
        for name in request.topic_names:
            try:
                self.controller.delete_topic(name)
                results.append(TopicResult(name))
            except KafkaError as exc:
                results.append(_failed(name, exc))
        reply(DeleteTopicsResponse(tuple(results)))

    def handle_create_partitions(self, request: CreatePartitionsRequest, reply: Reply) -> None:
        results = []
        for wanted in request.topics:
            name, total = wanted.name, wanted.count
            try:
                topic = self.controller.topics.get(name)
                if topic is None:
                    raise UnknownTopicOrPartitionError(f"Topic '{name}' does not exist.")
                if not isinstance(total, int) or total <= len(topic.partitions):
                    raise InvalidPartitionsError(
                        f"Topic '{name}' has {len(topic.partitions)} partitions; the new total "
                        f"must be larger, not {total}."
                    )
                self.limits.check_topic(
                    self.controller.topics, total - len(topic.partitions), new_topic=False
                )
                self.controller.add_partitions(name, total)
                results.append(TopicResult(name))
            except KafkaError as exc:
                results.append(_failed(name, exc))
        reply(CreatePartitionsResponse(tuple(results)))

    # --- configs -----------------------------------------------------------------------------

    def handle_describe_configs(self, request: DescribeConfigsRequest, reply: Reply) -> None:
        results = []
        for resource in request.resources:
            topic = self.controller.topics.get(resource.resource_name)
            error: KafkaError
            if resource.resource_type == BROKER_RESOURCE:
                results.append(self._describe_broker(resource))
                continue
            if resource.resource_type != TOPIC_RESOURCE:
                error = InvalidRequestError("Only topic and broker configs are described here.")
                results.append(
                    DescribeConfigsResult(resource, (), protocol_name(error), error.message)
                )
                continue
            if topic is None:
                error = UnknownTopicOrPartitionError(
                    f"Topic '{resource.resource_name}' does not exist."
                )
                results.append(
                    DescribeConfigsResult(resource, (), protocol_name(error), error.message)
                )
                continue
            configs = tuple(
                DescribeConfigsResourceResult(
                    key, value, is_default=self.topic_defaults.get(key) == value
                )
                for key, value in sorted(topic.config.items())
            )
            results.append(DescribeConfigsResult(resource, configs))
        reply(DescribeConfigsResponse(tuple(results)))

    def _describe_broker(self, resource: ConfigResource) -> DescribeConfigsResult:
        """DescribeConfigs for a broker ("1": every broker key, each with its synonyms) or for
        the cluster default ("": the keys set there)."""
        entity = resource.resource_name
        try:
            validate_broker_name(entity)
        except KafkaError as exc:
            return DescribeConfigsResult(resource, (), protocol_name(exc), exc.message)
        controller = self.controller
        layers = controller.broker_configs
        keys = sorted(layers.get("", {})) if entity == "" else sorted(BROKER.keys)
        configs = []
        for key in keys:
            synonyms = resolved(key, entity, layers, controller.static_config, self.static_keys)
            source, value = synonyms[0]
            configs.append(
                DescribeConfigsResourceResult(
                    key,
                    value,
                    is_default=source == "DEFAULT_CONFIG",
                    read_only=key not in APPLIED,
                    source=source,
                    synonyms=tuple((src, key, v) for src, v in synonyms),
                )
            )
        return DescribeConfigsResult(resource, tuple(configs))

    def _alter_broker(self, entry: AlterConfigsResource, validate_only: bool) -> None:
        entity = entry.resource.resource_name
        validate_broker_name(entity)
        sets: dict[str, Any] = {}
        deletes: list[str] = []
        for config in entry.configs:
            if config.config_operation == SET:
                if config.value is None:
                    raise InvalidRequestError(f"Null value not supported for : {config.name}")
                sets[config.name] = config.value
            elif config.config_operation == DELETE:
                deletes.append(config.name)
            else:
                raise InvalidRequestError(f"Unknown operations type {config.config_operation}")
        parsed = validate_broker_changes(entity, sets, deletes)
        if not validate_only:
            self.controller.alter_broker_config(entity, parsed, deletes, self.topic_defaults)

    def handle_incremental_alter_configs(
        self, request: IncrementalAlterConfigsRequest, reply: Reply
    ) -> None:
        """SET gives a key a value, DELETE returns it to the broker's default."""
        results = []
        for entry in request.resources:
            resource = entry.resource
            name = resource.resource_name
            try:
                if resource.resource_type == BROKER_RESOURCE:
                    self._alter_broker(entry, request.validate_only)
                    results.append(AlterConfigsResourceResponse(resource))
                    continue
                if resource.resource_type != TOPIC_RESOURCE:
                    raise InvalidRequestError("Only topic and broker configs can be altered here.")
                if name not in self.controller.topics:
                    raise UnknownTopicOrPartitionError(f"Topic '{name}' does not exist.")
                sets: dict[str, Any] = {}
                deleted: list[str] = []
                for config in entry.configs:
                    if config.config_operation == SET:
                        sets[config.name] = config.value
                    elif config.config_operation == DELETE:
                        deleted.append(config.name)
                    else:
                        raise InvalidConfigurationError(
                            f"Config operation {config.config_operation} is not supported here "
                            "(SET and DELETE are)."
                        )
                changes = TOPIC.parse(sets)
                for key in deleted:
                    if key not in TOPIC.keys:
                        raise InvalidConfigurationError(f"Unknown topic config '{key}'.")
                    changes[key] = self.topic_defaults[key]
                if not request.validate_only:
                    self.controller.alter_config(name, changes, deleted)
                results.append(AlterConfigsResourceResponse(resource))
            except KafkaError as exc:
                results.append(
                    AlterConfigsResourceResponse(resource, protocol_name(exc), exc.message)
                )
        reply(IncrementalAlterConfigsResponse(tuple(results)))

    # --- elections, the cluster, the quorum --------------------------------------------------

    def handle_elect_leaders(self, request: ElectLeadersRequest, reply: Reply) -> None:
        # An unknown type reaches the controller, which refuses it (after its quorum and
        # topic checks, as before).
        election = {PREFERRED: "preferred", UNCLEAN: "unclean"}.get(
            request.election_type, str(request.election_type)
        )
        results = []
        for topic, partition in request.topic_partitions:
            try:
                self.controller.elect_leaders(topic, partition, election)
                results.append(PartitionResult(topic, partition))
            except KafkaError as exc:
                results.append(PartitionResult(topic, partition, protocol_name(exc), exc.message))
        reply(ElectLeadersResponse(tuple(results)))

    def handle_alter_partition_reassignments(
        self, request: AlterPartitionReassignmentsRequest, reply: Reply
    ) -> None:
        """ReplicationControlManager.alterPartitionReassignments: each partition on its own."""
        results = []
        for topic in request.topics:
            for partition in topic.partitions:
                try:
                    self.controller.alter_partition_reassignment(
                        topic.name, partition.partition_index, partition.replicas
                    )
                    results.append(PartitionResult(topic.name, partition.partition_index))
                except KafkaError as exc:
                    results.append(
                        PartitionResult(
                            topic.name, partition.partition_index, protocol_name(exc), exc.message
                        )
                    )
        reply(AlterPartitionReassignmentsResponse(tuple(results)))

    def handle_list_partition_reassignments(
        self, request: ListPartitionReassignmentsRequest, reply: Reply
    ) -> None:
        wanted = (
            None
            if request.topics is None
            else [(t.name, p) for t in request.topics for p in t.partition_indexes]
        )
        try:
            ongoing = self.controller.list_partition_reassignments(wanted)
        except KafkaError as exc:
            reply(ListPartitionReassignmentsResponse((), protocol_name(exc), exc.message))
            return
        reply(
            ListPartitionReassignmentsResponse(
                tuple(
                    OngoingPartitionReassignment(
                        name,
                        number,
                        registration.replicas,
                        registration.adding_replicas,
                        registration.removing_replicas,
                    )
                    for name, number, registration in ongoing
                )
            )
        )

    def handle_describe_cluster(self, request: DescribeClusterRequest, reply: Reply) -> None:
        controller = self.controller
        brokers = tuple(
            DescribeClusterBroker(
                broker_id,
                f"broker-{broker_id}",
                9092,
                fenced=controller.brokers[broker_id].fenced,
            )
            for broker_id in self.broker_ids()
            if controller.broker_nodes[broker_id].alive
        )
        active = controller.active_id if controller.has_quorum() else None
        reply(DescribeClusterResponse(CLUSTER_ID, -1 if active is None else active, brokers))

    def handle_describe_quorum(self, request: DescribeQuorumRequest, reply: Reply) -> None:
        """The active controller's view of the metadata log's replicas: a voter it reaches
        fetches now and is caught up; one it does not keeps the offset and time it last caught up
        at; a broker it reaches fetches now, caught up once it has applied the whole log."""
        controller = self.controller
        if not controller.has_quorum() or controller.active_id is None:
            voters = tuple(
                ReplicaState(node.id, controller.metadata_offset if node.alive else -1, node.alive)
                for node in sorted(controller.nodes.values(), key=lambda n: n.id)
            )
            reply(
                DescribeQuorumResponse(
                    -1,
                    controller.quorum_epoch,
                    controller.metadata_offset,
                    voters,
                    (),
                    "NOT_LEADER_OR_FOLLOWER",
                    "No controller leads the quorum with a majority.",
                )
            )
            return
        controller.track_voters()
        leader = controller.active_id
        now = controller.scheduler.now_ms
        reachable = controller.network.reachable
        voters = tuple(
            ReplicaState(
                node.id,
                node.log_end_offset,
                node.alive,
                now if node.alive and reachable(leader, node.id) else node.last_caught_up_ms,
                node.last_caught_up_ms,
            )
            for node in sorted(controller.nodes.values(), key=lambda n: n.id)
        )
        observers = []
        for broker_id in self.broker_ids():
            broker = controller.broker_nodes[broker_id]
            fetching = broker.alive and reachable(leader, broker_id)
            caught_up = broker.metadata_offset >= controller.metadata_offset
            observers.append(
                ReplicaState(
                    broker_id,
                    broker.metadata_offset,
                    broker.alive,
                    now if fetching else -1,
                    now if fetching and caught_up else -1,
                )
            )
        reply(
            DescribeQuorumResponse(
                leader,
                controller.quorum_epoch,
                controller.metadata_offset,
                voters,
                tuple(observers),
            )
        )


def _failed(name: str, exc: KafkaError) -> TopicResult:
    return TopicResult(name, protocol_name(exc), exc.message)
