"""The console's one door into the cluster: an Admin-client-shaped adapter the tools call.

Every tool asks through the engine's admin client (`cluster.admin()`, Kafka's Admin API on the
request catalogue), with the calls Kafka's tools make: CreateTopics, DeleteTopics,
CreatePartitions, IncrementalAlterConfigs (topics and brokers), DescribeConfigs for brokers,
ElectLeaders, DescribeCluster, AlterPartitionReassignments and ListPartitionReassignments;
TopicCommand's listTopics / describeTopics (Metadata from a broker's cache, one network hop
behind the controller) with listPartitionReassignments; ConsumerGroupCommand's
listConsumerGroups, describeConsumerGroups, listConsumerGroupOffsets, listOffsets (log-end
offsets), alterConsumerGroupOffsets, deleteConsumerGroups and deleteConsumerGroupOffsets
(FindCoordinator first, which may run the clock: console lines are logged commands, so replay
repeats it); GetOffsetShell's listOffsets; MetadataQuorumCommand's describeMetadataQuorum.
Still read from the facade: a topic's DescribeConfigs entries (`topic_config_entries`, the
config tool and describe's Configs column), topic ids (the engine's Metadata carries none) and,
for tab completion only, the topic and group names (completing a word sends no request).
Answers and errors are shaped as Kafka's Admin client gives them to the tools: errors carry
Kafka's exception class and message.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from engine import Cluster, TopicPartition
from engine.clients.admin import AdminClient, NewTopic
from engine.common.config import TOPIC, TOPIC_BROKER_SYNONYMS
from engine.common.config import _parse_value as parse_config_value
from engine.common.metadata import NO_LEADER
from engine.common.topic_admin import INTERNAL_TOPICS, LEGAL_TOPIC, MAX_TOPIC_LENGTH
from engine.errors import KafkaError

ERRORS = "org.apache.kafka.common.errors."


class AdminError(Exception):
    """A failed admin call: `java_class` is Kafka's exception class, `message` its message."""

    def __init__(self, java_class: str, message: str) -> None:
        super().__init__(message)
        self.java_class = java_class if "." in java_class else ERRORS + java_class
        self.message = message

    @property
    def simple_name(self) -> str:
        return self.java_class.rsplit(".", 1)[-1]

    def __str__(self) -> str:  # Throwable.toString
        return f"{self.java_class}: {self.message}"


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str
    source: str  # DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, STATIC_BROKER_CONFIG, ...
    synonyms: tuple[tuple[str, str, str], ...]  # (source, name, value)
    sensitive: bool = False

    @property
    def is_default(self) -> bool:
        return self.source == "DEFAULT_CONFIG"


@dataclass(frozen=True)
class PartitionInfo:
    """Kafka's `TopicPartitionInfo` as the tools read it: `leader` is -1 without a leader."""

    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]


@dataclass(frozen=True)
class Topic:
    """Kafka's `TopicDescription`: the name, whether internal, the partitions in order."""

    name: str
    internal: bool
    partitions: list[PartitionInfo]


@dataclass(frozen=True)
class GroupMember:
    """Kafka's `MemberDescription`: the member's ids and its assigned partitions."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    assignment: set[TopicPartition]


@dataclass(frozen=True)
class Group:
    """A `ConsumerGroupDescription` with the group's committed offsets
    (`listConsumerGroupOffsets`), as ConsumerGroupCommand combines them."""

    group_id: str
    state: str
    protocol: str | None
    members: list[GroupMember]
    offsets: dict[TopicPartition, int]
    coordinator: int


@dataclass(frozen=True)
class QuorumReplica:
    """A replica of the metadata log as `QuorumInfo.ReplicaState` gives it (-1: unknown)."""

    id: int
    log_end_offset: int
    last_fetch_ms: int
    last_caught_up_ms: int


@dataclass(frozen=True)
class Quorum:
    """Kafka's `QuorumInfo`: the leader, its epoch, the high watermark, voters and observers."""

    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: list[QuorumReplica]
    observers: list[QuorumReplica]


def kafka_uuid(*parts: object) -> str:
    """A Kafka `Uuid` as it prints (URL-safe base64 of 16 bytes, no padding), derived from the
    parts so the same cluster always shows the same ids."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def config_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if value is None:
        return "null"
    return str(value)


def _java_error(exc: KafkaError) -> AdminError:
    name = type(exc).__name__
    java = "TimeoutException" if name == "KafkaTimeoutError" else name.removesuffix("Error")
    if not java.endswith("Exception"):
        java += "Exception"
    return AdminError(java, exc.message if hasattr(exc, "message") else str(exc))


class ConsoleAdmin:
    """Admin operations the tools need, answered from (and applied to) an engine `Cluster`."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    # --- identity ------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        return self.cluster.now_ms

    def cluster_id(self) -> str:
        return kafka_uuid("cluster", self.cluster.seed)

    def topic_id(self, name: str) -> str:
        topic = self.cluster.controller.topics[name]
        return kafka_uuid("topic", self.cluster.seed, topic.topic_id, name)

    def directory_id(self, node_id: int) -> str:
        return kafka_uuid("directory", self.cluster.seed, node_id)

    @staticmethod
    def broker_host_port(broker_id: int) -> tuple[str, int]:
        """Where the simulation's brokers listen: broker 1 at localhost:9092, 2 at 9093, ..."""
        return "localhost", 9091 + broker_id

    @staticmethod
    def controller_endpoint(node_id: int) -> str:
        return f"CONTROLLER://localhost:{19000 + node_id}"

    @property
    def seed(self) -> int:
        """The cluster's seed: the console draws its "random" names from it, so a replay names
        them the same way."""
        return int(self.cluster.seed)

    def broker_ids(self) -> list[int]:
        return list(self.cluster.broker_ids())

    def wait(self, ms: int) -> None:
        """Let `ms` of cluster time pass (a tool that paces itself, like a perf test)."""
        self.cluster.advance(ms)

    # --- cluster -------------------------------------------------------------------------

    def live_brokers(self) -> set[int]:
        """DescribeCluster's nodes: registered, unfenced brokers that are running."""
        return set(self.cluster_node_ids())

    def require_quorum(self, call: str) -> None:
        if not self.cluster.controller.has_quorum():
            raise AdminError(
                "TimeoutException", f"Timed out waiting for a node assignment. Call: {call}"
            )

    def _admin(self) -> AdminClient:
        """The engine's admin client (Kafka's Admin API on the request catalogue)."""
        return self.cluster.admin()

    def _call(self, call: str, fn: Any, *args: Any) -> Any:
        """One admin request. Without an active controller the broker keeps forwarding it for
        60 s of cluster time (the engine blocks), then answers REQUEST_TIMED_OUT."""
        try:
            return fn(*args)
        except KafkaError as exc:
            if type(exc).__name__ == "ClusterUnavailableError":
                raise AdminError("TimeoutException", "The request timed out.") from None
            raise _java_error(exc) from None

    # --- completion (not a tool: no request, no clock, nothing logged) -------------------

    def known_topics(self) -> list[str]:
        """The cluster's topics for tab completion, read from the controller's image: completing
        a word is not a command, so it sends no request and runs no clock."""
        return self.cluster.list_topics()

    def known_groups(self) -> list[str]:
        return self.cluster.list_groups()

    # --- topics --------------------------------------------------------------------------

    def list_topics(self, include_internal: bool = True) -> list[str]:
        """listTopics on the engine's admin client (Metadata from a running broker's cache)."""
        return list(self._call("listTopics", lambda: self._admin().list_topics(include_internal)))

    def is_internal(self, name: str) -> bool:
        topic = self.cluster.controller.topics.get(name)
        return name in INTERNAL_TOPICS or bool(topic is not None and topic.internal)

    def describe_topic(self, name: str) -> Topic:
        """describeTopics on the engine's admin client: the partitions as a broker's metadata
        cache has them, in order."""
        try:
            described = self._admin().describe_topics([name])[name]
        except KafkaError as exc:
            if type(exc).__name__ == "UnknownTopicOrPartitionError":
                raise AdminError(
                    "UnknownTopicOrPartitionException",
                    "This server does not host this topic-partition.",
                ) from None
            raise _java_error(exc) from None
        return Topic(
            name,
            described.internal,
            [
                PartitionInfo(
                    p.partition,
                    NO_LEADER if p.leader is None else p.leader,
                    list(p.replicas),
                    list(p.isr),
                )
                for p in described.partitions
            ],
        )

    def default_partitions(self) -> int:
        return int(self.cluster.broker_config["num.partitions"])

    def default_replication_factor(self) -> int:
        return int(self.cluster.broker_config["default.replication.factor"])

    def create_topic(
        self,
        name: str,
        partitions: int | None,
        replication_factor: int | None,
        configs: dict[str, str],
    ) -> None:
        validate_topic_name(name)
        if name in self.cluster.controller.topics:
            raise AdminError("TopicExistsException", f"Topic '{name}' already exists.")
        count = partitions if partitions is not None else self.default_partitions()
        factor = (
            replication_factor
            if replication_factor is not None
            else self.default_replication_factor()
        )
        registered = len(self.cluster.broker_ids())
        if factor > registered:
            raise AdminError(
                "InvalidReplicationFactorException",
                f"Unable to replicate the partition {factor} time(s): The target replication "
                f"factor of {factor} cannot be reached because only {registered} broker(s) are "
                "registered.",
            )
        parsed = self.validate_topic_configs(configs)
        new_topic = NewTopic(name, count, factor, parsed or None)
        self._call("createTopics", lambda: self._admin().create_topics([new_topic]).all())

    def delete_topic(self, name: str) -> None:
        self._call("deleteTopics", lambda: self._admin().delete_topics([name]).all())

    def create_partitions(self, name: str, total: int) -> None:
        current = len(self.describe_topic(name).partitions)
        if total == current:
            raise AdminError(
                "InvalidPartitionsException", f"Topic already has {current} partition(s)."
            )
        if total < current:
            raise AdminError(
                "InvalidPartitionsException",
                f"The topic {name} currently has {current} partition(s); {total} would not be "
                "an increase.",
            )
        self._call("createPartitions", lambda: self._admin().create_partitions({name: total}).all())

    # --- configs -------------------------------------------------------------------------

    def validate_topic_configs(self, configs: dict[str, str]) -> dict[str, Any]:
        parsed: dict[str, Any] = {}
        for key, raw in configs.items():
            if key not in TOPIC.keys:
                raise AdminError(
                    "InvalidConfigurationException", f"Unknown topic config name: {key}"
                )
            spec = TOPIC.keys[key]
            try:
                value = parse_config_value(spec, raw)
            except ValueError:
                raise AdminError(
                    "InvalidConfigurationException",
                    f"Invalid value {raw} for configuration {key}: {_expectation(key)}",
                ) from None
            problem = spec.validator(value) if spec.validator and value is not None else None
            if problem:
                raise AdminError(
                    "InvalidConfigurationException",
                    f"Invalid value {raw} for configuration {key}: Value {problem}",
                )
            parsed[key] = value
        return parsed

    def topic_config_value(self, name: str, key: str) -> str | None:
        """One config of a topic as DescribeConfigs gives it (None for an unknown topic)."""
        topic = self.cluster.controller.topics.get(name)
        if topic is None:
            return None
        return config_text(topic.config.get(key, self.topic_default(key)))

    def topic_default(self, key: str) -> Any:
        return self.cluster.topic_defaults[key]

    def topic_config_entries(self, name: str) -> list[ConfigEntry]:
        """DescribeConfigs for a topic, with synonyms: every topic config, sorted by name; those
        set on the topic itself are DYNAMIC_TOPIC_CONFIG."""
        if name not in self.cluster.controller.topics:
            raise AdminError(
                "UnknownTopicOrPartitionException",
                "This server does not host this topic-partition.",
            )
        topic = self.cluster.controller.topics[name]
        config = topic.config
        static = self.cluster._constructor.get("config") or {}
        entries = []
        for key in sorted(TOPIC.keys):
            value = config.get(key, self.topic_default(key))
            synonyms: list[tuple[str, str, str]] = []
            dynamic = key in topic.overrides
            if dynamic:
                synonyms.append(("DYNAMIC_TOPIC_CONFIG", key, config_text(value)))
            broker_key = TOPIC_BROKER_SYNONYMS.get(key)
            if broker_key is not None:
                source = "STATIC_BROKER_CONFIG" if broker_key in static else "DEFAULT_CONFIG"
                synonyms.append(
                    (source, broker_key, config_text(self.cluster.broker_config[broker_key]))
                )
            else:
                synonyms.append(("DEFAULT_CONFIG", key, config_text(TOPIC.keys[key].default)))
            source = "DYNAMIC_TOPIC_CONFIG" if dynamic else synonyms[-1][0]
            entries.append(ConfigEntry(key, config_text(value), source, tuple(synonyms)))
        return entries

    def alter_topic_configs(self, name: str, set_: dict[str, str], delete: list[str]) -> None:
        """IncrementalAlterConfigs (SET and DELETE) for one topic."""
        if name not in self.cluster.controller.topics:
            raise AdminError(
                "UnknownTopicOrPartitionException",
                "This server does not host this topic-partition.",
            )
        for key in delete:
            if key not in TOPIC.keys:
                raise AdminError(
                    "InvalidConfigurationException", f"Unknown topic config name: {key}"
                )
        sets = self.validate_topic_configs(set_)
        # A key both set and deleted is set (the facade's alter_topic_config rule).
        deleted = [k for k in dict.fromkeys(delete) if k not in sets]
        if sets or deleted:
            self._call(
                "incrementalAlterConfigs",
                lambda: (
                    self._admin()
                    .incremental_alter_configs({name: sets}, delete={name: deleted})
                    .all()
                ),
            )

    def broker_config_entries(self, broker_id: int | None, describe_all: bool) -> list[ConfigEntry]:
        """DescribeConfigs (with synonyms) for a broker, or for the cluster default when
        `broker_id` is None, on the engine's admin client. Without --all, only what is set at
        that level: DYNAMIC_BROKER_CONFIG for a broker, DYNAMIC_DEFAULT_BROKER_CONFIG for the
        default (ConfigCommand's source filter)."""
        entity = "" if broker_id is None else str(broker_id)
        try:
            described = self.cluster.admin().describe_broker_configs([entity])[entity]
        except KafkaError as exc:
            raise _java_error(exc) from None
        wanted = "DYNAMIC_BROKER_CONFIG" if entity else "DYNAMIC_DEFAULT_BROKER_CONFIG"
        return [
            ConfigEntry(
                e.name,
                config_text(e.value),
                e.source,
                tuple((src, name, config_text(value)) for src, name, value in e.synonyms),
            )
            for e in sorted(described, key=lambda e: e.name)
            if describe_all or e.source == wanted
        ]

    def alter_broker_configs(
        self, broker_id: int | None, set_: dict[str, str], delete: list[str]
    ) -> None:
        """IncrementalAlterConfigs on a BROKER resource (None: every broker's default)."""
        entity = "" if broker_id is None else str(broker_id)
        outcome = self._call(
            "incrementalAlterConfigs",
            self.cluster.admin().alter_broker_configs,
            entity,
            set_,
            delete,
        )
        error = outcome.error(entity)
        if error is not None:
            raise _java_error(error)

    # --- partition reassignment (on the engine's admin client) ----------------------------

    def cluster_node_ids(self) -> list[int]:
        """DescribeCluster's nodes (registered, unfenced, running brokers), by id."""
        try:
            nodes = self.cluster.admin().describe_cluster().nodes
        except KafkaError as exc:
            raise _java_error(exc) from None
        return sorted(n.id for n in nodes if not n.fenced)

    def topic_replicas(self, name: str) -> dict[int, list[int]]:
        """describeTopics: each partition's replicas, from a broker's metadata."""
        try:
            described = self.cluster.admin().describe_topics([name])[name]
        except KafkaError as exc:
            raise _java_error(exc) from None
        return {p.partition: list(p.replicas) for p in described.partitions}

    def alter_partition_reassignments(
        self, reassignments: dict[TopicPartition, list[int] | None]
    ) -> dict[TopicPartition, AdminError]:
        """AlterPartitionReassignments: the partitions that failed, with their errors."""
        outcome = self._call(
            "alterPartitionReassignments",
            self.cluster.admin().alter_partition_reassignments,
            reassignments,
        )
        errors = {}
        for tp in reassignments:
            error = outcome.error(tp)
            if error is not None:
                errors[tp] = _java_error(error)
        return errors

    def list_partition_reassignments(
        self, partitions: list[TopicPartition] | None = None
    ) -> dict[TopicPartition, Any]:
        return dict(
            self._call(
                "listPartitionReassignments",
                self.cluster.admin().list_partition_reassignments,
                partitions,
            )
        )

    # --- groups --------------------------------------------------------------------------

    def list_groups(self) -> list[str]:
        """listConsumerGroups: ListGroups to every running broker, merged."""
        listed = self._call("listConsumerGroups", self._admin().list_consumer_groups)
        return [g.group_id for g in listed]

    def describe_group(self, group_id: str) -> Group:
        """describeConsumerGroups and listConsumerGroupOffsets (FindCoordinator, then
        DescribeGroups and OffsetFetch to the coordinator): what ConsumerGroupCommand asks."""
        admin = self._admin()
        described = self._call(
            "describeConsumerGroups", lambda: admin.describe_consumer_groups([group_id])
        )[group_id]
        offsets = self._call(
            "listConsumerGroupOffsets", lambda: admin.list_consumer_group_offsets(group_id)
        )
        return Group(
            group_id,
            described.state,
            described.partition_assignor or None,
            [
                GroupMember(m.member_id, m.group_instance_id, m.client_id, set(m.assignment))
                for m in described.members
            ],
            dict(offsets),
            described.coordinator,
        )

    def list_offsets(self, tp: TopicPartition, spec: str | int) -> int | None:
        """listOffsets to the partition's leader; None when no record is that recent."""
        answers = self._call(
            "listOffsets", lambda: self._admin().list_offsets({tp: spec}, "read_uncommitted")
        )
        offset = int(answers[tp])
        return None if offset < 0 else offset

    def alter_group_offsets(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        """alterConsumerGroupOffsets (OffsetCommit from no member: only an empty group takes
        it)."""
        try:
            self._admin().alter_consumer_group_offsets(group_id, offsets)
        except KafkaError as exc:
            raise _group_error(exc) from None

    def delete_group(self, group_id: str) -> None:
        """deleteConsumerGroups (DeleteGroups to the group's coordinator)."""
        try:
            self._admin().delete_consumer_groups([group_id]).all()
        except KafkaError as exc:
            raise _group_error(exc) from None

    def delete_group_offsets(
        self, group_id: str, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, AdminError | None]:
        """deleteConsumerGroupOffsets: per partition None (deleted) or its error; an unknown
        group raises GroupIdNotFoundException."""
        try:
            outcome = self._admin().delete_consumer_group_offsets(group_id, partitions)
        except KafkaError as exc:
            raise _group_error(exc) from None
        out: dict[TopicPartition, AdminError | None] = {}
        for tp in partitions:
            error = outcome.error(tp)
            out[tp] = None if error is None else _group_error(error)
        return out

    # --- leaders and the quorum ----------------------------------------------------------

    def elect_leaders(
        self, election_type: str, partitions: list[TopicPartition] | None
    ) -> dict[TopicPartition, AdminError | None]:
        """ElectLeaders: per partition, None when elected or the error. With no partitions
        given, every partition is tried and those needing no election are left out."""
        every = partitions is None
        targets = partitions if partitions is not None else self._all_partitions()
        results: dict[TopicPartition, AdminError | None] = {}
        for tp in targets:
            if tp.topic not in self.cluster.controller.topics or tp.partition not in (
                self.cluster.controller.topics[tp.topic].partitions
            ):
                results[tp] = AdminError(
                    "UnknownTopicOrPartitionException",
                    "This server does not host this topic-partition.",
                )
                continue
            if every and not self._election_needed(tp, election_type):
                continue
            try:
                self._admin().elect_leaders(election_type, [tp]).all()
                results[tp] = None
            except KafkaError as exc:
                if type(exc).__name__ == "ClusterUnavailableError":  # the request timed out
                    raise AdminError("TimeoutException", "The request timed out.") from None
                results[tp] = _election_error(exc, tp, election_type)
        return results

    def _all_partitions(self) -> list[TopicPartition]:
        out = []
        for name in self.cluster.list_topics():
            for number in sorted(self.cluster.controller.topics[name].partitions):
                out.append(TopicPartition(name, number))
        return out

    def _election_needed(self, tp: TopicPartition, election_type: str) -> bool:
        registration = self.cluster.controller.topics[tp.topic].partitions[tp.partition]
        if election_type == "preferred":
            return bool(registration.leader != registration.preferred_leader)
        return bool(registration.leader == NO_LEADER)

    def describe_quorum(self) -> Quorum:
        """describeMetadataQuorum on the engine's admin client (DescribeQuorum to the active
        controller)."""
        self.require_quorum("describeMetadataQuorum")
        info = self._call("describeMetadataQuorum", self._admin().describe_metadata_quorum)

        def replica(r: Any) -> QuorumReplica:
            return QuorumReplica(
                r.replica_id, r.log_end_offset, r.last_fetch_timestamp, r.last_caught_up_timestamp
            )

        return Quorum(
            info.leader_id,
            info.leader_epoch,
            info.high_watermark,
            [replica(v) for v in info.voters],
            [replica(o) for o in info.observers],
        )

    # --- clients -------------------------------------------------------------------------

    def producer(self, config: dict[str, Any]) -> Any:
        return self.cluster.producer(config)

    def consumer(self, config: dict[str, Any]) -> Any:
        return self.cluster.consumer(config)


def _group_error(exc: KafkaError) -> AdminError:
    """A group call's error as Kafka's Admin client throws it to ConsumerGroupCommand."""
    name = type(exc).__name__
    if name == "GroupNotEmptyError":
        return AdminError("GroupNotEmptyException", "The group is not empty.")
    if name == "GroupIdNotFoundError":
        return AdminError("GroupIdNotFoundException", "The group id does not exist.")
    if name == "GroupSubscribedToTopicError":
        return AdminError(
            "GroupSubscribedToTopicException",
            "Deleting offsets of a topic is forbidden while the consumer group is actively "
            "subscribed to it.",
        )
    if name == "ClusterUnavailableError":
        return AdminError("TimeoutException", "The request timed out.")
    return _java_error(exc)


def _election_error(exc: KafkaError, tp: TopicPartition, election_type: str) -> AdminError:
    name = type(exc).__name__
    if name == "ElectionNotNeededError":
        return AdminError(
            "ElectionNotNeededException", "Leader election not needed for topic partition."
        )
    if name == "PreferredLeaderNotAvailableError":
        return AdminError(
            "PreferredLeaderNotAvailableException",
            f"Failed to elect leader for partition {tp} under strategy "
            f"PreferredReplicaPartitionLeaderElectionStrategy",
        )
    if name == "EligibleLeadersNotAvailableError":
        return AdminError(
            "EligibleLeadersNotAvailableException",
            f"Failed to elect leader for partition {tp} under strategy "
            f"OfflinePartitionLeaderElectionStrategy(true)",
        )
    return _java_error(exc)


def validate_topic_name(name: str) -> None:
    """Kafka's `Topic.validate`, with its messages."""
    if not name:
        raise AdminError("InvalidTopicException", "Topic name is illegal, it can't be empty")
    if name in (".", ".."):
        raise AdminError("InvalidTopicException", 'Topic name cannot be "." or ".."')
    if len(name) > MAX_TOPIC_LENGTH:
        raise AdminError(
            "InvalidTopicException",
            f"Topic name is illegal, it can't be longer than {MAX_TOPIC_LENGTH} characters, "
            f"topic name: {name}",
        )
    if not LEGAL_TOPIC.match(name):
        raise AdminError(
            "InvalidTopicException",
            f'Topic name "{name}" is illegal, it contains a character other than ASCII '
            "alphanumerics, '.', '_' and '-'",
        )


def _expectation(key: str) -> str:
    kind = TOPIC.keys[key].type
    return {
        "int": "Not a number of type INT",
        "long": "Not a number of type LONG",
        "double": "Not a number of type DOUBLE",
        "boolean": "Expected value to be either true or false",
    }.get(kind, "String must be one of the allowed values")
