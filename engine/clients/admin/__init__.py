"""Kafka's Admin client (`org.apache.kafka.clients.admin.Admin`), on the request catalogue.

`cluster.admin()` returns the cluster's `AdminClient`. It is the operator's console attached to
the cluster: its requests reach the handler at once (the controller quorum's `ControllerApis`
for topics, configs, elections, the cluster and the quorum; a broker's `KafkaApis` for groups,
offsets and ListOffsets), with no network latency or faults of its own, and a call whose answer
waits for replication (committing or deleting offsets, deleting groups) runs the cluster's clock
until it is answered or `default.api.timeout.ms` passes.

Kafka's methods return futures per topic or group; these return the per-entity outcome as a
result object, whose `all()` raises the first failure as the `engine.errors` class a Kafka
client would throw, with the broker's message. Calls that change the cluster are recorded in
the command log as `admin.<method>`, so `export_log()` replays them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.common.records import TopicPartition
from engine.common.requests import Reply, Request
from engine.common.requests.admin import (
    BROKER_RESOURCE,
    DELETE,
    PREFERRED,
    SET,
    TOPIC_RESOURCE,
    UNCLEAN,
    AlterableConfig,
    AlterConfigsResource,
    AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse,
    ConfigResource,
    CreatableTopic,
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreatePartitionsTopic,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
    DescribeQuorumRequest,
    DescribeQuorumResponse,
    ElectLeadersRequest,
    ElectLeadersResponse,
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
    ListPartitionReassignmentsTopic,
    ReassignablePartition,
    ReassignableTopic,
    ReplicaState,
)
from engine.common.requests.fetch import ListOffsetsRequest, ListOffsetsResponse
from engine.common.requests.group import (
    GROUP,
    DeleteGroupsRequest,
    DeleteGroupsResponse,
    DescribedGroup,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    ListedGroup,
    ListGroupsRequest,
    ListGroupsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetDeleteRequest,
    OffsetDeleteResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
)
from engine.common.requests.metadata import (
    DescribeClusterRequest,
    DescribeClusterResponse,
    MetadataRequest,
    MetadataResponse,
)
from engine.errors import (
    CoordinatorNotAvailableError,
    InvalidConfigurationError,
    KafkaError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    error_class,
)

if TYPE_CHECKING:
    from engine.sim.context import SimContext

# Requests the controller quorum answers, handed to its request handler by the facade.
ControllerChannel = Callable[[Request, Reply], None]
DEFAULT_API_TIMEOUT_MS = 60000
# retry.backoff.ms: the wait before a group request is sent again after a coordinator error.
RETRY_BACKOFF_MS = 100
# The coordinator errors Kafka's Admin client retries (CoordinatorStrategy): it finds the
# coordinator again and resends, until default.api.timeout.ms.
RETRIABLE_COORDINATOR = frozenset(
    ("NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE")
)
ELECTION_TYPES = {"preferred": PREFERRED, "unclean": UNCLEAN}
# Recorded calls whose JSON arguments are the call's own (replayed by name).
REPLAYED_AS_IS = frozenset(
    (
        "delete_topics",
        "create_partitions",
        "incremental_alter_configs",
        "list_consumer_groups",
        "describe_consumer_groups",
        "delete_consumer_groups",
        "list_consumer_group_offsets",
        "alter_broker_configs",
    )
)


def raise_for(error: str, message: str | None = None) -> None:
    """Raise the error a response names (nothing when `error` is empty)."""
    if error:
        raise error_class(error)(message)


# Kafka's `NewTopic` (name, partitions, replication factor, configs) is the CreateTopics entry
# the request carries, so the admin call hands it on as it is.
NewTopic = CreatableTopic


@dataclass(frozen=True, slots=True)
class Outcome:
    """Per-entity outcomes (topic, partition or group) of one admin call."""

    errors: dict[Any, tuple[str, str | None]] = field(default_factory=dict)

    def error(self, key: Any) -> KafkaError | None:
        name, message = self.errors[key]
        return error_class(name)(message) if name else None

    def all(self) -> None:
        """Kafka's `all().get()`: raise the first failure, in request order."""
        for name, message in self.errors.values():
            raise_for(name, message)


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    name: str
    value: Any
    is_default: bool


@dataclass(frozen=True, slots=True)
class BrokerConfigEntry:
    """One broker config as DescribeConfigs gives it (with synonyms): the value in effect, its
    source (DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG or
    DEFAULT_CONFIG), whether it can change while the cluster runs, and every level's value."""

    name: str
    value: Any
    source: str
    read_only: bool
    synonyms: list[tuple[str, str, Any]]


@dataclass(frozen=True, slots=True)
class BrokerNode:
    id: int
    host: str
    port: int
    fenced: bool


@dataclass(frozen=True, slots=True)
class ClusterDescription:
    cluster_id: str
    controller: int | None
    nodes: list[BrokerNode]


# Kafka's `QuorumInfo.ReplicaState` is the DescribeQuorum response's `ReplicaState`: replica id,
# log end offset, whether the controller runs, the fetch timestamps (-1 when unknown).
QuorumReplica = ReplicaState


@dataclass(frozen=True, slots=True)
class QuorumInfo:
    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: list[QuorumReplica]
    observers: list[QuorumReplica]


@dataclass(frozen=True, slots=True)
class TopicPartitionInfo:
    partition: int
    leader: int | None
    replicas: list[int]
    isr: list[int]


@dataclass(frozen=True, slots=True)
class DescribedTopic:
    """Kafka's `TopicDescription` (from Metadata): name, internal, partitions in order."""

    name: str
    internal: bool
    partitions: list[TopicPartitionInfo]


@dataclass(frozen=True, slots=True)
class PartitionReassignment:
    """Kafka's `PartitionReassignment`: an ongoing reassignment's replicas (the target followed
    by those being removed), and the replicas being added and removed."""

    replicas: list[int]
    adding_replicas: list[int]
    removing_replicas: list[int]


@dataclass(frozen=True, slots=True)
class ConsumerGroupListing:
    group_id: str
    state: str


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    assignment: list[TopicPartition]


@dataclass(frozen=True, slots=True)
class ConsumerGroupDescription:
    group_id: str
    state: str
    partition_assignor: str | None
    generation: int
    leader: str | None
    members: list[MemberDescription]
    coordinator: int


class AdminClient:
    """Kafka's Admin API on this cluster (see the module docstring)."""

    def __init__(self, ctx: SimContext, controller: ControllerChannel) -> None:
        self.ctx = ctx
        self._controller = controller
        self._next_broker = 0

    # --- delivery ----------------------------------------------------------------------------

    def _ask_controller(self, request: Request) -> Any:
        answer: list[object] = []
        self._controller(request, answer.append)
        assert answer, f"the controller quorum did not answer {request.api_key.name}"
        return answer[0]

    def _ask_broker(self, broker_id: int, request: Request, what: str) -> Any:
        """Hand a request to a broker's request handler; run the clock while it waits."""
        endpoint = self.ctx.nodes.endpoint(broker_id)
        if not endpoint.alive:
            raise CoordinatorNotAvailableError(f"Broker {broker_id} is not running.")
        answer: list[object] = []
        endpoint.handle_request(request, answer.append)
        if not answer:
            deadline = self.ctx.now_ms + DEFAULT_API_TIMEOUT_MS
            self.ctx.run_until(lambda: bool(answer), deadline)
        if not answer:
            raise KafkaTimeoutError(f"{what} did not complete within default.api.timeout.ms.")
        return answer[0]

    def _any_broker(self) -> int:
        ids = self.ctx.nodes.broker_ids()
        for step in range(len(ids)):
            candidate = ids[(self._next_broker + step) % len(ids)]
            if self.ctx.nodes.endpoint(candidate).alive:
                self._next_broker = (self._next_broker + step + 1) % len(ids)
                return candidate
        raise LeaderNotAvailableError("No broker is running.")

    def _group_coordinator(self, group_id: str) -> int:
        """FindCoordinator(GROUP), retried until the group's coordinator is elected."""
        found: list[int] = []
        last = [""]

        def attempt() -> bool:
            endpoint_id = self._any_broker()
            answers: list[object] = []
            self.ctx.nodes.endpoint(endpoint_id).handle_request(
                FindCoordinatorRequest(group_id, GROUP), answers.append
            )
            response = answers[0]
            assert isinstance(response, FindCoordinatorResponse)
            if response.error:
                last[0] = response.error
                return False
            found.append(response.node_id)
            return True

        if not attempt():
            deadline = self.ctx.now_ms + DEFAULT_API_TIMEOUT_MS
            self.ctx.run_until(attempt, deadline)
        if not found:
            raise KafkaTimeoutError(f"No coordinator was found for group '{group_id}' ({last[0]}).")
        return found[0]

    def _ask_coordinator(
        self, group_id: str, request: Request, what: str, error_of: Callable[[Any], str]
    ) -> tuple[int, Any]:
        """A group request to the group's coordinator: on a coordinator error (not the
        coordinator, still loading, not available) wait retry.backoff.ms, find the coordinator
        again and resend, as Kafka's Admin client does, until default.api.timeout.ms."""
        deadline = self.ctx.now_ms + DEFAULT_API_TIMEOUT_MS
        while True:
            coordinator = self._group_coordinator(group_id)
            response = self._ask_broker(coordinator, request, what)
            error = error_of(response)
            if error not in RETRIABLE_COORDINATOR:
                return coordinator, response
            if self.ctx.now_ms + RETRY_BACKOFF_MS > deadline:
                raise KafkaTimeoutError(
                    f"{what} for group '{group_id}' did not complete within "
                    f"default.api.timeout.ms ({error})."
                )
            self.ctx.run_until(lambda: False, self.ctx.now_ms + RETRY_BACKOFF_MS)

    def _record(self, op: str, args: dict[str, Any]) -> None:
        self.ctx.record_call(f"admin.{op}", args)

    def replay(self, method: str, args: dict[str, Any]) -> None:
        """Re-run a call recorded as `admin.<method>` (its arguments in their JSON form)."""
        if method == "create_topics":
            self.create_topics(NewTopic(**topic) for topic in args["new_topics"])
        elif method == "elect_leaders":
            tps = [TopicPartition(t, p) for t, p in args["partitions"]]
            self.elect_leaders(args["election_type"], tps)
        elif method == "alter_consumer_group_offsets":
            offsets = {TopicPartition(t, p): o for t, p, o in args["offsets"]}
            self.alter_consumer_group_offsets(args["group_id"], offsets)
        elif method == "delete_consumer_group_offsets":
            tps = [TopicPartition(t, p) for t, p in args["partitions"]]
            self.delete_consumer_group_offsets(args["group_id"], tps)
        elif method == "list_offsets":
            wanted = {TopicPartition(t, p): spec for t, p, spec in args["partitions"]}
            self.list_offsets(wanted, args["isolation_level"])
        elif method == "alter_partition_reassignments":
            wanted = {TopicPartition(t, p): r for t, p, r in args["reassignments"]}
            self.alter_partition_reassignments(wanted)
        elif method in REPLAYED_AS_IS:
            getattr(self, method)(**args)
        else:
            raise ValueError(f"Unknown logged operation 'admin.{method}'.")

    # --- topics ------------------------------------------------------------------------------

    def create_topics(self, new_topics: Iterable[NewTopic]) -> Outcome:
        topics = list(new_topics)
        self._record(
            "create_topics",
            {
                "new_topics": [
                    {
                        "name": t.name,
                        "num_partitions": t.num_partitions,
                        "replication_factor": t.replication_factor,
                        "configs": t.configs,
                    }
                    for t in topics
                ]
            },
        )
        request = CreateTopicsRequest(tuple(topics))
        response = self._ask_controller(request)
        assert isinstance(response, CreateTopicsResponse)
        return Outcome({r.name: (r.error, r.error_message) for r in response.topics})

    def delete_topics(self, topics: Iterable[str]) -> Outcome:
        names = list(topics)
        self._record("delete_topics", {"topics": names})
        response = self._ask_controller(DeleteTopicsRequest(tuple(names)))
        assert isinstance(response, DeleteTopicsResponse)
        return Outcome({r.name: (r.error, r.error_message) for r in response.responses})

    def create_partitions(self, new_partitions: Mapping[str, int]) -> Outcome:
        """Grow each topic to the given total number of partitions (Kafka's
        `NewPartitions.increaseTo`)."""
        wanted = dict(new_partitions)
        self._record("create_partitions", {"new_partitions": wanted})
        request = CreatePartitionsRequest(
            tuple(CreatePartitionsTopic(name, count) for name, count in wanted.items())
        )
        response = self._ask_controller(request)
        assert isinstance(response, CreatePartitionsResponse)
        return Outcome({r.name: (r.error, r.error_message) for r in response.results})

    def list_topics(self, list_internal: bool = False) -> list[str]:
        """Metadata for every topic from a running broker (its metadata cache, which learns of
        a change one network hop after the controller)."""
        broker_id = self._any_broker()
        answer: list[object] = []
        self.ctx.nodes.endpoint(broker_id).handle_request(
            MetadataRequest(None, allow_auto_topic_creation=False), answer.append
        )
        response = answer[0]
        assert isinstance(response, MetadataResponse)
        return sorted(t.name for t in response.topics if list_internal or not t.is_internal)

    def describe_topics(self, topics: Iterable[str]) -> dict[str, DescribedTopic]:
        """Metadata for the given topics from a running broker's cache (Kafka's
        `describeTopics`); an unknown topic raises `UnknownTopicOrPartitionError`."""
        names = list(topics)
        broker_id = self._any_broker()
        answer: list[object] = []
        self.ctx.nodes.endpoint(broker_id).handle_request(
            MetadataRequest(tuple(names), allow_auto_topic_creation=False), answer.append
        )
        response = answer[0]
        assert isinstance(response, MetadataResponse)
        out: dict[str, DescribedTopic] = {}
        for topic in response.topics:
            raise_for(topic.error, f"Topic '{topic.name}': {topic.error}")
            out[topic.name] = DescribedTopic(
                topic.name,
                topic.is_internal,
                [
                    TopicPartitionInfo(
                        p.partition_index,
                        None if p.leader_id < 0 else p.leader_id,
                        list(p.replica_nodes),
                        list(p.isr_nodes),
                    )
                    for p in sorted(topic.partitions, key=lambda p: p.partition_index)
                ],
            )
        return out

    # --- configs -----------------------------------------------------------------------------

    def describe_configs(self, topics: Iterable[str]) -> dict[str, list[ConfigEntry]]:
        names = list(topics)
        request = DescribeConfigsRequest(
            tuple(ConfigResource(TOPIC_RESOURCE, name) for name in names)
        )
        response = self._ask_controller(request)
        assert isinstance(response, DescribeConfigsResponse)
        out: dict[str, list[ConfigEntry]] = {}
        for result in response.results:
            raise_for(result.error, result.error_message)
            out[result.resource.resource_name] = [
                ConfigEntry(c.name, c.value, c.is_default) for c in result.configs
            ]
        return out

    def incremental_alter_configs(
        self,
        configs: Mapping[str, Mapping[str, Any]],
        delete: Mapping[str, Iterable[str]] | None = None,
    ) -> Outcome:
        """SET each topic's `configs` and DELETE (back to the default) its `delete` keys."""
        for values in configs.values():
            if not isinstance(values, Mapping):
                raise InvalidConfigurationError("The topic config must be a mapping.")
        sets = {name: dict(values) for name, values in configs.items()}
        deletes = {name: list(keys) for name, keys in (delete or {}).items()}
        self._record("incremental_alter_configs", {"configs": sets, "delete": deletes})
        resources = []
        for name in list(dict.fromkeys([*sets, *deletes])):
            ops = [AlterableConfig(k, SET, v) for k, v in sets.get(name, {}).items()]
            ops += [AlterableConfig(k, DELETE) for k in deletes.get(name, [])]
            resources.append(AlterConfigsResource(ConfigResource(TOPIC_RESOURCE, name), tuple(ops)))
        response = self._ask_controller(IncrementalAlterConfigsRequest(tuple(resources)))
        assert isinstance(response, IncrementalAlterConfigsResponse)
        return Outcome(
            {r.resource.resource_name: (r.error, r.error_message) for r in response.responses}
        )

    def describe_broker_configs(
        self, entities: Iterable[str]
    ) -> dict[str, list[BrokerConfigEntry]]:
        """DescribeConfigs for BROKER resources: "1" is broker 1 (every key), "" the cluster
        default (the keys set there). A broker that is not registered answers nothing: Kafka's
        client times out waiting for a node assignment."""
        names = [str(e) for e in entities]
        for name in names:
            if self._unregistered(name):
                raise KafkaTimeoutError(
                    "Timed out waiting for a node assignment. Call: describeConfigs"
                )
        request = DescribeConfigsRequest(
            tuple(ConfigResource(BROKER_RESOURCE, name) for name in names)
        )
        response = self._ask_controller(request)
        assert isinstance(response, DescribeConfigsResponse)
        out: dict[str, list[BrokerConfigEntry]] = {}
        for result in response.results:
            raise_for(result.error, result.error_message)
            out[result.resource.resource_name] = [
                BrokerConfigEntry(c.name, c.value, c.source, c.read_only, list(c.synonyms))
                for c in result.configs
            ]
        return out

    def alter_broker_configs(
        self,
        entity: str,
        configs: Mapping[str, Any],
        delete: Iterable[str] = (),
    ) -> Outcome:
        """IncrementalAlterConfigs on one BROKER resource ("1" or "" for every broker): SET
        `configs`, DELETE `delete`. Keys that cannot change at run time are refused with
        INVALID_REQUEST, as Kafka's broker refuses them."""
        entity = str(entity)
        sets = dict(configs)
        deletes = list(delete)
        self._record("alter_broker_configs", {"entity": entity, "configs": sets, "delete": deletes})
        if (
            entity
            and entity.lstrip("-").isdigit()
            and int(entity) not in self.ctx.nodes.broker_ids()
        ):
            raise KafkaTimeoutError(
                "Timed out waiting for a node assignment. Call: incrementalAlterConfigs"
            )
        ops = [AlterableConfig(k, SET, v) for k, v in sets.items()]
        ops += [AlterableConfig(k, DELETE) for k in deletes]
        resource = AlterConfigsResource(ConfigResource(BROKER_RESOURCE, entity), tuple(ops))
        response = self._ask_controller(IncrementalAlterConfigsRequest((resource,)))
        assert isinstance(response, IncrementalAlterConfigsResponse)
        return Outcome(
            {r.resource.resource_name: (r.error, r.error_message) for r in response.responses}
        )

    def _unregistered(self, entity: str) -> bool:
        """A broker id no broker of the cluster has (no node to send the request to)."""
        digits = entity.lstrip("-")
        return bool(digits.isdigit()) and int(entity) not in self.ctx.nodes.broker_ids()

    # --- elections, the cluster, the quorum --------------------------------------------------

    def elect_leaders(self, election_type: str, partitions: Iterable[TopicPartition]) -> Outcome:
        tps = list(partitions)
        self._record(
            "elect_leaders",
            {
                "election_type": election_type,
                "partitions": [[tp.topic, tp.partition] for tp in tps],
            },
        )
        request = ElectLeadersRequest(
            ELECTION_TYPES.get(election_type, -1), tuple((tp.topic, tp.partition) for tp in tps)
        )
        response = self._ask_controller(request)
        assert isinstance(response, ElectLeadersResponse)
        return Outcome(
            {
                TopicPartition(r.topic, r.partition_id): (r.error, r.error_message)
                for r in response.replica_election_results
            }
        )

    # --- partition reassignment (KIP-455) ----------------------------------------------------

    def alter_partition_reassignments(
        self, reassignments: Mapping[TopicPartition, Iterable[int] | None]
    ) -> Outcome:
        """Start (or replace) each partition's reassignment to the given replicas, or cancel its
        ongoing one for None (Kafka's `Optional.empty()`). Per partition: "" or
        INVALID_REPLICA_ASSIGNMENT, NO_REASSIGNMENT_IN_PROGRESS, UNKNOWN_TOPIC_OR_PARTITION."""
        wanted = {tp: None if r is None else [int(b) for b in r] for tp, r in reassignments.items()}
        self._record(
            "alter_partition_reassignments",
            {"reassignments": [[tp.topic, tp.partition, r] for tp, r in wanted.items()]},
        )
        topics: dict[str, list[ReassignablePartition]] = {}
        for tp, replicas in wanted.items():
            topics.setdefault(tp.topic, []).append(
                ReassignablePartition(tp.partition, None if replicas is None else tuple(replicas))
            )
        request = AlterPartitionReassignmentsRequest(
            tuple(ReassignableTopic(name, tuple(parts)) for name, parts in topics.items())
        )
        response = self._ask_controller(request)
        assert isinstance(response, AlterPartitionReassignmentsResponse)
        raise_for(response.error, response.error_message)
        return Outcome(
            {
                TopicPartition(r.topic, r.partition_id): (r.error, r.error_message)
                for r in response.responses
            }
        )

    def list_partition_reassignments(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, PartitionReassignment]:
        """The ongoing reassignments, of the given partitions or of all."""
        topics = None
        if partitions is not None:
            by_topic: dict[str, list[int]] = {}
            for tp in partitions:
                by_topic.setdefault(tp.topic, []).append(tp.partition)
            topics = tuple(
                ListPartitionReassignmentsTopic(name, tuple(numbers))
                for name, numbers in by_topic.items()
            )
        response = self._ask_controller(ListPartitionReassignmentsRequest(topics))
        assert isinstance(response, ListPartitionReassignmentsResponse)
        raise_for(response.error, response.error_message)
        return {
            TopicPartition(r.topic, r.partition_index): PartitionReassignment(
                list(r.replicas), list(r.adding_replicas), list(r.removing_replicas)
            )
            for r in response.topics
        }

    def describe_cluster(self) -> ClusterDescription:
        response = self._ask_controller(DescribeClusterRequest())
        assert isinstance(response, DescribeClusterResponse)
        raise_for(response.error, response.error_message)
        return ClusterDescription(
            response.cluster_id,
            None if response.controller_id < 0 else response.controller_id,
            [BrokerNode(b.broker_id, b.host, b.port, b.fenced) for b in response.brokers],
        )

    def describe_metadata_quorum(self) -> QuorumInfo:
        response = self._ask_controller(DescribeQuorumRequest())
        assert isinstance(response, DescribeQuorumResponse)
        raise_for(response.error, response.error_message)
        return QuorumInfo(
            response.leader_id,
            response.leader_epoch,
            response.high_watermark,
            list(response.current_voters),
            list(response.observers),
        )

    # --- consumer groups ---------------------------------------------------------------------

    def list_consumer_groups(self) -> list[ConsumerGroupListing]:
        """ListGroups to every running broker, merged (as Kafka's admin does)."""
        self._record("list_consumer_groups", {})
        found: dict[str, ListedGroup] = {}
        for broker_id in self.ctx.nodes.broker_ids():
            if not self.ctx.nodes.endpoint(broker_id).alive:
                continue
            response = self._ask_broker(broker_id, ListGroupsRequest(), "ListGroups")
            assert isinstance(response, ListGroupsResponse)
            for group in response.groups:
                found[group.group_id] = group
        return [ConsumerGroupListing(g.group_id, g.group_state) for _, g in sorted(found.items())]

    def describe_consumer_groups(
        self, group_ids: Iterable[str]
    ) -> dict[str, ConsumerGroupDescription]:
        ids = list(group_ids)
        self._record("describe_consumer_groups", {"group_ids": ids})
        out: dict[str, ConsumerGroupDescription] = {}
        for group_id in ids:
            coordinator, response = self._ask_coordinator(
                group_id,
                DescribeGroupsRequest((group_id,)),
                "DescribeGroups",
                lambda r: str(r.groups[0].error),
            )
            assert isinstance(response, DescribeGroupsResponse)
            group: DescribedGroup = response.groups[0]
            raise_for(group.error)
            out[group_id] = ConsumerGroupDescription(
                group_id,
                group.group_state,
                group.protocol_data,
                group.generation_id,
                group.leader,
                [
                    MemberDescription(
                        m.member_id, m.group_instance_id, m.client_id, list(m.assignment)
                    )
                    for m in group.members
                ],
                coordinator,
            )
        return out

    def delete_consumer_groups(self, group_ids: Iterable[str]) -> Outcome:
        ids = list(group_ids)
        self._record("delete_consumer_groups", {"group_ids": ids})
        errors: dict[Any, tuple[str, str | None]] = {}
        for group_id in ids:

            def error_of(r: Any, g: str = group_id) -> str:
                return str(r.results.get(g, ""))

            _, response = self._ask_coordinator(
                group_id, DeleteGroupsRequest((group_id,)), "DeleteGroups", error_of
            )
            assert isinstance(response, DeleteGroupsResponse)
            error = response.results.get(group_id, "")
            errors[group_id] = (error, _group_message(group_id, error))
        return Outcome(errors)

    def list_consumer_group_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        self._record("list_consumer_group_offsets", {"group_id": group_id})
        _, response = self._ask_coordinator(
            group_id, OffsetFetchRequest(group_id, None), "OffsetFetch", lambda r: str(r.error)
        )
        assert isinstance(response, OffsetFetchResponse)
        raise_for(response.error)
        return {tp: offset for tp, offset in sorted(response.offsets.items()) if offset >= 0}

    def alter_consumer_group_offsets(
        self, group_id: str, offsets: Mapping[TopicPartition, int]
    ) -> None:
        """OffsetCommit as an admin (generation -1, no member): only an empty group takes it."""
        targets = dict(offsets)
        self._record(
            "alter_consumer_group_offsets",
            {
                "group_id": group_id,
                "offsets": [[tp.topic, tp.partition, o] for tp, o in sorted(targets.items())],
            },
        )
        _, response = self._ask_coordinator(
            group_id,
            OffsetCommitRequest(group_id, -1, "", None, targets),
            "OffsetCommit",
            lambda r: str(r.error),
        )
        assert isinstance(response, OffsetCommitResponse)
        raise_for(response.error, _group_message(group_id, response.error))

    def delete_consumer_group_offsets(
        self, group_id: str, partitions: Iterable[TopicPartition]
    ) -> Outcome:
        tps = list(partitions)
        self._record(
            "delete_consumer_group_offsets",
            {"group_id": group_id, "partitions": [[tp.topic, tp.partition] for tp in tps]},
        )
        _, response = self._ask_coordinator(
            group_id,
            OffsetDeleteRequest(group_id, tuple(tps)),
            "OffsetDelete",
            lambda r: str(r.error),
        )
        assert isinstance(response, OffsetDeleteResponse)
        raise_for(response.error, _group_message(group_id, response.error))
        return Outcome(
            {
                tp: (error, f"{tp.topic}-{tp.partition}: {error}" if error else None)
                for tp, error in response.partition_errors.items()
            }
        )

    # --- offsets -----------------------------------------------------------------------------

    def list_offsets(
        self,
        partitions: Mapping[TopicPartition, str | int],
        isolation_level: str = "read_uncommitted",
    ) -> dict[TopicPartition, int]:
        """ListOffsets to each partition's leader: "earliest", "latest" or a timestamp; -1 when
        no record is that recent."""
        wanted = dict(partitions)
        self._record(
            "list_offsets",
            {
                "partitions": [[tp.topic, tp.partition, s] for tp, s in wanted.items()],
                "isolation_level": isolation_level,
            },
        )
        out: dict[TopicPartition, int] = {}
        for tp, spec in wanted.items():
            leader = self._leader(tp)
            response = self._ask_broker(
                leader, ListOffsetsRequest(tp, spec, isolation_level), "ListOffsets"
            )
            assert isinstance(response, ListOffsetsResponse)
            raise_for(response.error, f"{tp.topic}-{tp.partition}: {response.error}")
            out[tp] = response.offset
        return out

    def _leader(self, tp: TopicPartition) -> int:
        broker_id = self._any_broker()
        answer: list[object] = []
        self.ctx.nodes.endpoint(broker_id).handle_request(
            MetadataRequest((tp.topic,), allow_auto_topic_creation=False), answer.append
        )
        response = answer[0]
        assert isinstance(response, MetadataResponse)
        topic = response.topics[0]
        raise_for(topic.error, f"Topic '{tp.topic}': {topic.error}")
        for partition in topic.partitions:
            if partition.partition_index == tp.partition and partition.leader_id >= 0:
                return partition.leader_id
        raise LeaderNotAvailableError(f"{tp.topic}-{tp.partition} has no leader.")


def _group_message(group_id: str, error: str) -> str | None:
    if not error:
        return None
    if error in ("NON_EMPTY_GROUP", "UNKNOWN_MEMBER_ID"):
        return f"The group '{group_id}' has members; stop its consumers first."
    if error == "GROUP_ID_NOT_FOUND":
        return f"The group '{group_id}' does not exist."
    return f"Group '{group_id}': {error}."


__all__ = [
    "AdminClient",
    "BrokerConfigEntry",
    "ClusterDescription",
    "ConfigEntry",
    "ConsumerGroupDescription",
    "ConsumerGroupListing",
    "DescribedTopic",
    "NewTopic",
    "Outcome",
    "PartitionReassignment",
    "QuorumInfo",
    "QuorumReplica",
    "TopicPartitionInfo",
    "raise_for",
]
