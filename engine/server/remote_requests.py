"""Requests of clients outside the simulation: what real Kafka clients sent over the wire.

A real client (kafka-python, librdkafka, the Java tools) talks to a simulated broker through a
loopback listener above the engine. The listener decodes each request into a plain, JSON-safe
dict (this module's request vocabulary, one kind per Kafka API, free of any wire library) and
hands it to `cluster.remote.request(connection, broker_id, request)`. That call is
recorded in the cluster's log (`remote.request`), and the request then travels the simulated
network from the node `client-wire-<connection>` to the broker like any simulated client's:
network partitions, latency, a stopped broker and lost responses all apply. On arrival the
broker handles it with the same broker-level code the simulated clients reach (Kafka's
`KafkaApis` role for these requests), and the answer travels back and is handed to `sink`.

`sink` is set by the live listener only: replaying the log makes the same calls at the same
cluster times, so the cluster ends equal, and the answers go nowhere. This module is the one
place that maps wire requests onto broker internals; once the engine has request and response
objects of its own it is the one place to switch.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from engine.common.config import BROKER, TOPIC
from engine.common.group_messages import JoinGroupRequest, JoinGroupResponse, SyncGroupResponse
from engine.common.metadata import NO_LEADER
from engine.common.record_size import batch_size_in_bytes, record_size_in_bytes
from engine.common.records import Record, RecordBatch, TopicPartition
from engine.common.requests import Request
from engine.common.requests.admin import (
    BROKER_RESOURCE,
    AlterableConfig,
    AlterConfigsResource,
    ConfigResource,
    CreatePartitionsRequest,
    CreatePartitionsTopic,
    DeleteTopicsRequest,
    DescribeConfigsRequest,
    DescribeQuorumRequest,
    ElectLeadersRequest,
    IncrementalAlterConfigsRequest,
    TopicResult,
)
from engine.common.requests.fetch import FetchPartitionData
from engine.common.requests.group import (
    DeleteGroupsRequest,
    DeleteGroupsResponse,
    OffsetDeleteRequest,
    OffsetDeleteResponse,
)
from engine.common.requests.metadata import (
    DescribeClusterRequest,
    MetadataRequest,
    MetadataResponse,
)
from engine.common.topic_admin import validate_topic_name
from engine.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    KafkaError,
    protocol_name,
)
from engine.server.delayed_fetch import ParkedFetch
from engine.sim.command_log import _from_jsonable, _jsonable
from engine.sim.network import DISCONNECTED, request
from engine.storage.transaction_index import aborted_transactions

if TYPE_CHECKING:
    from engine.cluster import Cluster
    from engine.coordinator.group.group_coordinator import GroupCoordinator
    from engine.coordinator.transaction.transaction_coordinator import TransactionCoordinator
    from engine.coordinator.transaction.transactional_offsets import TransactionalOffsets
    from engine.server.broker import Broker
    from engine.server.partition import Partition

# sink(connection, correlation_id, response): response None means the broker refused the
# connection (its process is down), so the listener closes the client's socket.
Sink = Callable[[int, int, "dict[str, Any] | None"], None]
Reply = Callable[[object], None]

OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTION_STATE_TOPIC = "__transaction_state"
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC})
APIS = (
    "metadata",
    "produce",
    "init_producer_id",
    "list_offsets",
    "fetch",
    "find_coordinator",
    "join_group",
    "sync_group",
    "heartbeat",
    "leave_group",
    "offset_commit",
    "offset_fetch",
    "create_topics",
    "describe_groups",
    "list_groups",
    "offset_for_leader_epoch",
    "add_partitions_to_txn",
    "add_offsets_to_txn",
    "end_txn",
    "txn_offset_commit",
    # Admin APIs (the Java admin client, kafka-python's KafkaAdminClient, kcat, librdkafka).
    "describe_configs",
    "incremental_alter_configs",
    "create_partitions",
    "delete_topics",
    "delete_groups",
    "offset_delete",
    "elect_leaders",
    "describe_cluster",
    "describe_quorum",
)
# Kafka's ConfigEntry.ConfigType by the engine's config key kinds (DescribeConfigs v3+).
CONFIG_TYPES = {"boolean": 1, "string": 2, "int": 3, "long": 5, "double": 6, "list": 7}
# DescribeConfigs config sources: a topic's own setting, or the broker default it inherits.
DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5
# Kafka's DescribeConfigsResponse ConfigSource codes, by name (broker resources name theirs).
CONFIG_SOURCES = {
    "DYNAMIC_TOPIC_CONFIG": 1,
    "DYNAMIC_BROKER_CONFIG": 2,
    "DYNAMIC_DEFAULT_BROKER_CONFIG": 3,
    "STATIC_BROKER_CONFIG": 4,
    "DEFAULT_CONFIG": 5,
    "DYNAMIC_BROKER_LOGGER_CONFIG": 6,
}


class _PartitionInfo(NamedTuple):
    """One partition of the broker's metadata answer, as the wire encoder reads it."""

    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(slots=True)
class RemoteConnection:
    """One TCP connection of a real client, as the cluster sees it (for the stage)."""

    connection: int
    broker_id: int
    client_id: str
    node: str
    requests: dict[str, int] = field(default_factory=dict)
    records_produced: int = 0
    records_fetched: int = 0
    last_request_ms: int = 0
    # The offset each partition was last fetched from: the client's position, as its broker
    # sees it (the stage draws it like a simulated consumer's).
    positions: dict[TopicPartition, int] = field(default_factory=dict)


class RemoteClients:
    """`cluster.remote`: requests of real clients, recorded and replayable."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.connections: dict[int, RemoteConnection] = {}
        self.sink: Sink | None = None

    # --- the recorded entry point ------------------------------------------------------------

    def request(self, connection: int, broker_id: int, request: dict[str, Any]) -> None:
        """Send one decoded request of a real client's connection to broker `broker_id`."""
        if broker_id not in self.cluster.broker_ids():
            raise ValueError(f"There is no broker {broker_id} in this cluster.")
        api = str(request.get("api", ""))
        if api not in APIS:
            raise ValueError(f"Unknown wire request kind {api!r}.")
        self.cluster._record_call(
            "remote.request",
            {"connection": connection, "broker_id": broker_id, "request": request},
        )
        client_id = str(request.get("client_id") or f"wire-{connection}")
        state = self.connections.get(connection)
        if state is None:
            state = RemoteConnection(connection, broker_id, client_id, f"client-wire-{connection}")
            self.connections[connection] = state
        state.requests[api] = state.requests.get(api, 0) + 1
        state.last_request_ms = self.cluster.now_ms
        correlation = int(request.get("correlation_id", 0))
        broker = self.cluster.broker_by_id(broker_id)
        handler: Callable[[Broker, dict[str, Any], RemoteConnection, Reply], None] = getattr(
            self, f"_handle_{api}"
        )

        def on_reply(response: object) -> None:
            if self.sink is None:
                return
            if response is DISCONNECTED:
                self.sink(connection, correlation, None)
            elif isinstance(response, dict):
                self.sink(connection, correlation, response)

        def handle(reply: Reply) -> None:
            handler(broker, request, state, reply)

        request_over_network(self.cluster, state.node, broker, api, handle, on_reply)

    # --- metadata and topics -------------------------------------------------------------------

    def _handle_metadata(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        wanted = req.get("topics")
        names = sorted(broker.topics) if wanted is None else [str(t) for t in wanted]
        answers: list[MetadataResponse] = []
        broker.handle_request(
            MetadataRequest(
                tuple(names),
                allow_auto_topic_creation=bool(req.get("allow_auto_create", True))
                and wanted is not None,
            ),
            lambda response: answers.append(cast(MetadataResponse, response)),
        )
        by_name = {topic.name: topic for topic in answers[0].topics} if answers else {}
        errors = {
            name: (by_name[name].error if name in by_name else "UNKNOWN_TOPIC_OR_PARTITION")
            for name in names
            if name not in by_name or by_name[name].error
        }
        found = {
            topic.name: [
                _PartitionInfo(p.leader_id, p.leader_epoch, p.replica_nodes, p.isr_nodes)
                for p in sorted(topic.partitions, key=lambda p: p.partition_index)
            ]
            for topic in by_name.values()
            if not topic.error
        }
        brokers = sorted(r.id for r in broker.brokers.values() if not r.fenced)
        topics: list[dict[str, Any]] = []
        for name in names:
            if name in errors:
                topics.append({"name": name, "error": errors[name], "partitions": []})
                continue
            # A leader this broker does not list as alive is reported as none, as Kafka's
            # metadata cache does when the leader has no endpoint (LEADER_NOT_AVAILABLE).
            partitions = [
                {
                    "partition": number,
                    "error": "" if info.leader in brokers else "LEADER_NOT_AVAILABLE",
                    "leader": info.leader if info.leader in brokers else NO_LEADER,
                    "leader_epoch": info.leader_epoch,
                    "replicas": list(info.replicas),
                    "isr": list(info.isr),
                }
                for number, info in enumerate(found.get(name, []))
            ]
            topics.append(
                {
                    "name": name,
                    "error": "",
                    "internal": name in INTERNAL_TOPICS,
                    "partitions": partitions,
                }
            )
        # KRaft brokers name a broker as "controller" (clients never reach the quorum itself).
        controller = brokers[0] if brokers else -1
        reply({"brokers": brokers, "controller_id": controller, "topics": topics})

    def _handle_create_topics(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        results: list[dict[str, Any]] = []
        for topic in req.get("topics", []):
            name = str(topic["name"])
            partitions = int(topic.get("num_partitions", -1))
            replication = int(topic.get("replication_factor", -1))
            if partitions == -1:
                partitions = int(self.cluster.broker_config["num.partitions"])
            if replication == -1:
                replication = int(self.cluster.broker_config["default.replication.factor"])
            error, message = "", ""
            if not self.cluster.controller.has_quorum():
                error, message = "NOT_CONTROLLER", "The controller quorum has no leader."
            elif not req.get("validate_only"):
                try:
                    validate_topic_name(name)
                    if partitions < 1:
                        raise InvalidPartitionsError("Number of partitions must be larger than 0.")
                    if replication < 1:
                        raise InvalidReplicationFactorError(
                            "Replication factor must be larger than 0."
                        )
                    self.cluster._create_topic(
                        name, partitions, replication, dict(topic.get("configs") or {}) or None
                    )
                except KafkaError as exc:
                    error, message = protocol_name(exc), exc.message
            results.append(
                {
                    "name": name,
                    "error": error,
                    "message": message,
                    "num_partitions": partitions,
                    "replication_factor": replication,
                }
            )
        reply({"topics": results})

    # --- produce -------------------------------------------------------------------------------

    def _handle_init_producer_id(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        transactional_id = req.get("transactional_id")
        if not transactional_id:
            # An idempotent producer: any broker hands out a new id (epoch 0).
            reply({"error": "", "producer_id": self.cluster.allocate_producer_id(), "epoch": 0})
            return

        def respond(response: object) -> None:
            assert isinstance(response, tuple)
            error, ids = response
            producer_id, epoch = ids if ids is not None else (-1, -1)
            reply({"error": error, "producer_id": producer_id, "epoch": epoch})

        self._transactions(broker).handle_init_producer_id(
            str(transactional_id), int(req.get("transaction_timeout_ms", 60000)), None, respond
        )

    # --- transactions (the coordinator's half; markers follow from EndTxn) ----------------------

    def _txn_call(self, reply: Reply) -> Callable[[object], None]:
        def respond(response: object) -> None:
            error = response[0] if isinstance(response, tuple) else str(response)
            reply({"error": error})

        return respond

    def _handle_add_partitions_to_txn(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        tps = [TopicPartition(str(t), int(p)) for t, p in req.get("partitions", [])]

        def respond(response: object) -> None:
            error = response[0] if isinstance(response, tuple) else str(response)
            reply(
                {
                    "partitions": [
                        {"topic": tp.topic, "partition": tp.partition, "error": error} for tp in tps
                    ]
                }
            )

        self._transactions(broker).handle_add_partitions(
            str(req["transactional_id"]),
            int(req["producer_id"]),
            int(req["producer_epoch"]),
            tps,
            respond,
        )

    def _handle_add_offsets_to_txn(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        self._transactions(broker).handle_add_offsets(
            str(req["transactional_id"]),
            int(req["producer_id"]),
            int(req["producer_epoch"]),
            str(req["group_id"]),
            self._txn_call(reply),
        )

    def _handle_end_txn(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        self._transactions(broker).handle_end_txn(
            str(req["transactional_id"]),
            int(req["producer_id"]),
            int(req["producer_epoch"]),
            bool(req["committed"]),
            self._txn_call(reply),
        )

    def _handle_txn_offset_commit(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        offsets = {TopicPartition(str(t), int(p)): int(o) for t, p, o in req.get("offsets", [])}

        def respond(error: object) -> None:
            reply(
                {
                    "partitions": [
                        {"topic": tp.topic, "partition": tp.partition, "error": str(error)}
                        for tp in sorted(offsets)
                    ]
                }
            )

        self._txn_offsets(broker).handle_txn_offset_commit(
            int(req["producer_id"]),
            int(req["producer_epoch"]),
            str(req["group_id"]),
            int(req.get("generation", -1)),
            str(req.get("member_id") or ""),
            req.get("group_instance_id"),
            offsets,
            respond,
        )

    def _handle_produce(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        acks = int(req.get("acks", -1))
        timeout = int(req.get("timeout_ms", 30000))
        parts: list[dict[str, Any]] = list(req.get("partitions", []))
        results: list[dict[str, Any] | None] = [None] * len(parts)
        remaining = [len(parts)]

        def finish() -> None:
            remaining[0] -= 1
            if remaining[0] == 0 and acks != 0:
                reply({"partitions": results})

        if not parts:
            reply({"partitions": []})
            return
        for index, part in enumerate(parts):
            tp = TopicPartition(str(part["topic"]), int(part["partition"]))

            def complete(
                error: str, base: int, log_start: int, index: int = index, tp: TopicPartition = tp
            ) -> None:
                results[index] = {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "error": error,
                    "base_offset": base,
                    "log_start_offset": log_start,
                }
                finish()

            if part.get("error"):
                complete(str(part["error"]), -1, -1)
                continue
            batch = _record_batch(part["batch"], self.cluster.now_ms)
            if not batch.records:
                complete("INVALID_RECORD", -1, -1)
                continue

            def counted(
                error: str,
                base: int,
                log_start: int,
                complete: Callable[[str, int, int], None] = complete,
                count: int = len(batch.records),
            ) -> None:
                if not error:
                    conn.records_produced += count
                complete(error, base, log_start)

            broker.handle_produce(tp, batch, acks, timeout, counted)

    # --- consume -------------------------------------------------------------------------------

    def _handle_list_offsets(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        isolation = str(req.get("isolation", "read_uncommitted"))
        results = []
        for part in req.get("partitions", []):
            tp = TopicPartition(str(part["topic"]), int(part["partition"]))
            timestamp = int(part["timestamp"])
            spec: str | int = (
                "latest" if timestamp == -1 else "earliest" if timestamp == -2 else timestamp
            )
            error, offset = broker.handle_list_offsets(tp, spec, isolation)
            partition = broker.partitions.get(tp)
            if error and tp.topic not in broker.topics:
                error = "UNKNOWN_TOPIC_OR_PARTITION"
            results.append(
                {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "error": error,
                    "offset": offset,
                    "timestamp": -1,
                    "leader_epoch": partition.leader_epoch if partition is not None else -1,
                }
            )
        reply({"partitions": results})

    def _handle_fetch(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        asks: dict[TopicPartition, int] = {}
        for part in req.get("partitions", []):
            asks[TopicPartition(str(part["topic"]), int(part["partition"]))] = int(
                part["fetch_offset"]
            )
        conn.positions.update(asks)

        def answer(response: dict[TopicPartition, FetchPartitionData]) -> None:
            partitions = []
            for tp, data in response.items():
                batches = [_batch_dict(b) for b in data.batches]
                conn.records_fetched += sum(len(b["records"]) for b in batches)
                partitions.append(
                    {
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "error": data.error,
                        "high_watermark": data.high_watermark,
                        "last_stable_offset": data.last_stable_offset,
                        "log_start_offset": data.log_start_offset,
                        "aborted": [list(a) for a in data.aborted],
                        "batches": batches,
                    }
                )
            reply({"partitions": partitions})

        if "max_bytes" in req:
            _ConsumerFetch(broker, req, answer).start()
            return

        # Requests logged before the listener sent max_bytes: the broker's plain consumer
        # fetch (any data completes it; one size limit for every partition), as they ran then.
        max_bytes = max(1, int(req.get("partition_max_bytes", 1048576)))

        def on_fetched(response: object) -> None:
            assert isinstance(response, dict)
            answer(dict(sorted(response.items())))

        broker.handle_consumer_fetch(
            asks,
            str(req.get("isolation", "read_uncommitted")),
            int(req.get("max_wait_ms", 0)),
            max_bytes,
            on_fetched,
        )

    def _handle_offset_for_leader_epoch(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        """KIP-101/KIP-320: where an epoch ends on the leader, so a consumer whose position
        came from an older leader can detect truncation (Kafka's `lastOffsetForLeaderEpoch`)."""
        results = []
        for part in req.get("partitions", []):
            tp = TopicPartition(str(part["topic"]), int(part["partition"]))
            partition = broker.partitions.get(tp)
            entry: dict[str, Any] = {
                "topic": tp.topic,
                "partition": tp.partition,
                "error": "",
                "leader_epoch": -1,
                "end_offset": -1,
            }
            current = int(part.get("current_leader_epoch", -1))
            if partition is None:
                entry["error"] = (
                    "UNKNOWN_TOPIC_OR_PARTITION"
                    if tp.topic not in broker.topics
                    else "NOT_LEADER_OR_FOLLOWER"
                )
            elif not partition.is_leader:
                entry["error"] = "NOT_LEADER_OR_FOLLOWER"
            elif 0 <= current < partition.leader_epoch:
                entry["error"] = "FENCED_LEADER_EPOCH"
            elif current > partition.leader_epoch:
                entry["error"] = "UNKNOWN_LEADER_EPOCH"
            else:
                epoch, end = partition.log.end_offset_for_epoch(int(part["leader_epoch"]))
                entry["leader_epoch"], entry["end_offset"] = epoch, end
            results.append(entry)
        reply({"partitions": results})

    # --- groups --------------------------------------------------------------------------------

    def _coordinator(self, broker: Broker) -> GroupCoordinator:
        coordinator = broker.group_coordinator
        assert coordinator is not None  # the facade wires one on every broker
        return coordinator

    def _transactions(self, broker: Broker) -> TransactionCoordinator:
        coordinator = broker.transaction_coordinator
        assert coordinator is not None
        return coordinator

    def _txn_offsets(self, broker: Broker) -> TransactionalOffsets:
        offsets = broker.txn_offsets
        assert offsets is not None
        return offsets

    def _handle_find_coordinator(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        key_type = int(req.get("key_type", 0))

        def find(key: str) -> dict[str, Any]:
            if key_type == 1:
                error, node = self.cluster.transactions.handle_find_coordinator(broker, key)
                return {"key": key, "error": error, "node_id": -1 if node is None else node}
            if key_type != 0:
                return {"key": key, "error": "INVALID_REQUEST", "node_id": -1}
            error, group_node = self.cluster.groups.find_coordinator(broker, key)
            return {"key": key, "error": error, "node_id": group_node}

        if "keys" in req:  # KIP-699 (v4+): one answer per key
            reply({"coordinators": [find(str(key)) for key in req["keys"]]})
            return
        found = find(str(req["key"]))
        reply({"error": found["error"], "node_id": found["node_id"]})

    def _handle_join_group(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        protocols = [(str(p["name"]), p.get("metadata") or b"") for p in req.get("protocols", [])]
        metadata: dict[str, Any] = {
            "topics": sorted(str(t) for t in req.get("topics", [])),
            "wire": {name: base64.b64encode(raw).decode() for name, raw in protocols},
        }
        join = JoinGroupRequest(
            str(req["group_id"]),
            str(req.get("member_id") or ""),
            req.get("group_instance_id"),
            conn.client_id,
            int(req["session_timeout_ms"]),
            int(req.get("rebalance_timeout_ms", req["session_timeout_ms"])),
            tuple(name for name, _ in protocols),
            metadata,
            str(req.get("reason") or ""),
        )

        def respond(response: object) -> None:
            assert isinstance(response, JoinGroupResponse)
            protocol = response.protocol or ""
            members = [
                {
                    "member_id": member_id,
                    "group_instance_id": instance,
                    "metadata": _wire_metadata(member_metadata, protocol),
                }
                for member_id, instance, member_metadata in response.members
            ]
            reply(
                {
                    "error": response.error,
                    "generation": response.generation,
                    "protocol": response.protocol,
                    "leader": response.leader,
                    "member_id": response.member_id,
                    "members": members,
                }
            )

        self._coordinator(broker).handle_join(join, respond)

    def _handle_sync_group(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        assignments: dict[str, list[TopicPartition]] | None = None
        if req.get("assignments"):
            assignments = {
                str(a["member_id"]): [TopicPartition(str(t), int(p)) for t, p in a["partitions"]]
                for a in req["assignments"]
            }

        coordinator = self._coordinator(broker)
        group = (
            coordinator.view(str(req["group_id"]))
            if coordinator.leads(str(req["group_id"]))
            else None
        )
        protocol = group.protocol if group is not None else None
        # SyncGroup v5+ names the protocol type and name; Kafka refuses a mismatch with the
        # group's (GroupCoordinator.isValidProtocol... INCONSISTENT_GROUP_PROTOCOL).
        wanted_type, wanted_name = req.get("protocol_type"), req.get("protocol_name")
        if (wanted_type is not None and wanted_type != "consumer") or (
            wanted_name is not None and protocol is not None and wanted_name != protocol
        ):
            reply({"error": "INCONSISTENT_GROUP_PROTOCOL", "partitions": []})
            return

        def respond(response: object) -> None:
            assert isinstance(response, SyncGroupResponse)
            view = coordinator.view(str(req["group_id"]))
            reply(
                {
                    "error": response.error,
                    "partitions": [[tp.topic, tp.partition] for tp in response.assignment],
                    "protocol_type": "consumer",
                    "protocol_name": view.protocol if view is not None else None,
                }
            )

        coordinator.handle_sync(
            str(req["group_id"]),
            int(req["generation"]),
            str(req["member_id"]),
            req.get("group_instance_id"),
            assignments,
            respond,
        )

    def _handle_heartbeat(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        self._coordinator(broker).handle_heartbeat(
            str(req["group_id"]),
            int(req["generation"]),
            str(req["member_id"]),
            req.get("group_instance_id"),
            lambda error: reply({"error": str(error)}),
        )

    def _handle_leave_group(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        coordinator = self._coordinator(broker)
        members: list[dict[str, Any]] = list(req.get("members", []))
        errors: list[str] = []

        def collect(error: object) -> None:
            errors.append(str(error))
            if len(errors) == len(members):
                reply(
                    {
                        "error": errors[0] if len(members) == 1 else "",
                        "members": [
                            {**member, "error": err}
                            for member, err in zip(members, errors, strict=True)
                        ],
                    }
                )

        if not members:
            reply({"error": "", "members": []})
            return
        for member in members:
            coordinator.handle_leave(
                str(req["group_id"]),
                str(member.get("member_id") or ""),
                member.get("group_instance_id"),
                str(member.get("reason") or ""),
                collect,
            )

    def _handle_offset_commit(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        offsets = {TopicPartition(str(t), int(p)): int(o) for t, p, o in req.get("offsets", [])}

        def respond(error: object) -> None:
            reply(
                {
                    "partitions": [
                        {"topic": tp.topic, "partition": tp.partition, "error": str(error)}
                        for tp in sorted(offsets)
                    ]
                }
            )

        self._coordinator(broker).offsets.handle_offset_commit(
            str(req["group_id"]),
            int(req.get("generation", -1)),
            str(req.get("member_id") or ""),
            req.get("group_instance_id"),
            offsets,
            respond,
        )

    def _handle_offset_fetch(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        stable = bool(req.get("require_stable"))
        if "groups" in req:  # KIP-709 (v8+): several groups, answered in order
            asked = list(req["groups"])
            answers: list[dict[str, Any]] = []

            def next_group() -> None:
                if len(answers) == len(asked):
                    reply({"groups": answers})
                    return
                group = asked[len(answers)]
                self._offset_fetch_one(
                    broker, str(group["group_id"]), group.get("partitions"), stable, collect
                )

            def collect(answer: dict[str, Any]) -> None:
                answers.append(answer)
                next_group()

            next_group()
            return
        self._offset_fetch_one(broker, str(req["group_id"]), req.get("partitions"), stable, reply)

    def _offset_fetch_one(
        self,
        broker: Broker,
        group_id: str,
        wanted: list[list[Any]] | None,
        require_stable: bool,
        reply: Callable[[dict[str, Any]], None],
    ) -> None:
        tps = None if wanted is None else [TopicPartition(str(t), int(p)) for t, p in wanted]

        def respond(response: object) -> None:
            assert isinstance(response, tuple)
            error, offsets = response
            unstable = self._pending_txn_offsets(broker, group_id) if require_stable else set()
            reply(
                {
                    "group_id": group_id,
                    "error": error,
                    "partitions": [
                        # KIP-447: with require_stable, a partition whose offset a transaction
                        # has written but not yet committed or aborted is answered
                        # UNSTABLE_OFFSET_COMMIT (the consumer retries).
                        {
                            "topic": tp.topic,
                            "partition": tp.partition,
                            "offset": -1 if tp in unstable else offset,
                            "error": "UNSTABLE_OFFSET_COMMIT" if tp in unstable else error,
                        }
                        for tp, offset in sorted(offsets.items())
                    ],
                }
            )

        self._coordinator(broker).offsets.handle_offset_fetch(group_id, tps, respond)

    def _pending_txn_offsets(self, broker: Broker, group_id: str) -> set[TopicPartition]:
        tp = TopicPartition(OFFSETS_TOPIC, self.cluster.groups.partition_for(group_id))
        partition = broker.partitions.get(tp)
        if partition is None or not partition.is_leader:
            return set()
        pending = self._txn_offsets(broker).pending_for(partition)
        return {t for groups in pending.values() for t in groups.get(group_id, {})}

    def _handle_describe_groups(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        coordinator = self._coordinator(broker)
        groups = []
        for group_id in req.get("groups", []):
            if not coordinator.leads(str(group_id)):
                groups.append({"group_id": group_id, "error": "NOT_COORDINATOR", "members": []})
                continue
            group = coordinator.view(str(group_id))
            if group is None:
                groups.append(
                    {
                        "group_id": group_id,
                        "error": "",
                        "state": "Dead",
                        "protocol_type": "",
                        "protocol": "",
                        "members": [],
                    }
                )
                continue
            protocol = group.protocol or ""
            groups.append(
                {
                    "group_id": group_id,
                    "error": "",
                    "state": group.state,
                    "protocol_type": "consumer" if group.members else "",
                    "protocol": protocol,
                    "members": [
                        {
                            "member_id": m.member_id,
                            "group_instance_id": m.group_instance_id,
                            "client_id": m.client_id,
                            "metadata": _wire_metadata(m.metadata, protocol),
                            "partitions": [[tp.topic, tp.partition] for tp in m.assignment],
                        }
                        for m in group.members.values()
                    ],
                }
            )
        reply({"groups": groups})

    def _handle_list_groups(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        coordinator = self._coordinator(broker)
        # ListGroups v4+ (KIP-518): only groups in one of these states (case-insensitive).
        wanted = {str(s).lower() for s in req.get("states_filter") or ()}
        listed = []
        for group_id in sorted(coordinator.groups):
            group = coordinator.groups[group_id]
            if wanted and group.state.lower() not in wanted:
                continue
            listed.append({"group_id": group_id, "state": group.state})
        reply({"error": "", "groups": listed})

    # --- admin -------------------------------------------------------------------------------
    # Brokers forward the APIs that change metadata to the active controller (Kafka's
    # ForwardingManager); without one, each resource is answered NOT_CONTROLLER (retriable),
    # as CreateTopics is above. The answers are the controller quorum's own handlers'.

    def _controller(self, request: Request) -> Any:
        answer: list[object] = []
        self.cluster.controller_apis.handle(request, answer.append)
        assert answer, f"the controller quorum did not answer {request.api_key.name}"
        return answer[0]

    def _no_quorum(self) -> bool:
        return not self.cluster.controller.has_quorum()

    def _handle_describe_configs(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        asked = list(req.get("resources", []))
        response = self._controller(
            DescribeConfigsRequest(
                tuple(
                    ConfigResource(int(r["resource_type"]), str(r["resource_name"])) for r in asked
                )
            )
        )
        results = []
        for wanted, result in zip(asked, response.results, strict=True):
            keys = wanted.get("keys")
            results.append(
                {
                    "resource_type": result.resource.resource_type,
                    "resource_name": result.resource.resource_name,
                    "error": result.error,
                    "message": result.error_message,
                    "configs": [
                        {
                            "name": c.name,
                            "value": _config_text(c.value),
                            "read_only": c.read_only,
                            "source": CONFIG_SOURCES.get(c.source, 0)
                            if c.source
                            else DEFAULT_CONFIG
                            if c.is_default
                            else DYNAMIC_TOPIC_CONFIG,
                            "type": _config_type(result.resource.resource_type, c.name),
                        }
                        for c in result.configs
                        if keys is None or c.name in keys
                    ],
                }
            )
        reply({"results": results})

    def _handle_incremental_alter_configs(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        resources = []
        for r in req.get("resources", []):
            resource = ConfigResource(int(r["resource_type"]), str(r["resource_name"]))
            configs = tuple(
                AlterableConfig(str(c["name"]), int(c["operation"]), c.get("value"))
                for c in r.get("configs", [])
            )
            resources.append(AlterConfigsResource(resource, configs))
        if self._no_quorum():
            reply({"responses": [_no_controller(r.resource) for r in resources]})
            return
        response = self._controller(
            IncrementalAlterConfigsRequest(
                tuple(resources), validate_only=bool(req.get("validate_only"))
            )
        )
        reply(
            {
                "responses": [
                    {
                        "resource_type": r.resource.resource_type,
                        "resource_name": r.resource.resource_name,
                        "error": r.error,
                        "message": r.error_message,
                    }
                    for r in response.responses
                ]
            }
        )

    def _handle_create_partitions(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        topics = [(str(t["name"]), int(t["count"])) for t in req.get("topics", [])]
        if self._no_quorum():
            reply({"results": [_topic_no_controller(name) for name, _ in topics]})
            return
        if req.get("validate_only"):
            # Kafka validates without creating; the checks are the controller's own, so run
            # them on a request for zero changes: each topic must exist and grow.
            results = []
            for name, count in topics:
                topic = self.cluster.controller.topics.get(name)
                if topic is None:
                    results.append(
                        _topic_error(
                            name, "UNKNOWN_TOPIC_OR_PARTITION", f"Topic '{name}' does not exist."
                        )
                    )
                elif count <= len(topic.partitions):
                    results.append(
                        _topic_error(
                            name,
                            "INVALID_PARTITIONS",
                            f"Topic '{name}' has {len(topic.partitions)} partitions; the new "
                            f"total must be larger, not {count}.",
                        )
                    )
                else:
                    results.append(_topic_error(name, "", None))
            reply({"results": results})
            return
        response = self._controller(
            CreatePartitionsRequest(tuple(CreatePartitionsTopic(n, c) for n, c in topics))
        )
        reply({"results": [_topic_result(r) for r in response.results]})

    def _handle_delete_topics(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        names = [str(n) for n in req.get("topics", [])]
        if self._no_quorum():
            reply({"responses": [_topic_no_controller(name) for name in names]})
            return
        response = self._controller(DeleteTopicsRequest(tuple(names)))
        reply({"responses": [_topic_result(r) for r in response.responses]})

    def _handle_delete_groups(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        def respond(response: object) -> None:
            assert isinstance(response, DeleteGroupsResponse)
            reply(
                {
                    "results": [
                        {"group_id": group_id, "error": error}
                        for group_id, error in response.results.items()
                    ]
                }
            )

        broker.apis.handle_delete_groups(
            DeleteGroupsRequest(tuple(str(g) for g in req.get("groups", []))), respond
        )

    def _handle_offset_delete(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        tps = [TopicPartition(str(t), int(p)) for t, p in req.get("partitions", [])]

        def respond(response: object) -> None:
            assert isinstance(response, OffsetDeleteResponse)
            reply(
                {
                    "error": response.error,
                    "partitions": [
                        {
                            "topic": tp.topic,
                            "partition": tp.partition,
                            "error": response.partition_errors.get(tp, ""),
                        }
                        for tp in tps
                    ]
                    if not response.error
                    else [],
                }
            )

        broker.apis.handle_offset_delete(
            OffsetDeleteRequest(str(req["group_id"]), tuple(tps)), respond
        )

    def _handle_elect_leaders(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        asked = req.get("partitions")
        if asked is None:  # every partition (Kafka: null topic_partitions)
            pairs = [
                (name, number)
                for name, topic in sorted(self.cluster.controller.topics.items())
                for number in range(len(topic.partitions))
            ]
        else:
            pairs = [(str(t), int(p)) for t, p in asked]
        if self._no_quorum():
            reply(
                {
                    "error": "",
                    "partitions": [
                        {"topic": t, "partition": p, "error": "NOT_CONTROLLER", "message": None}
                        for t, p in pairs
                    ],
                }
            )
            return
        response = self._controller(
            ElectLeadersRequest(int(req.get("election_type", 0)), tuple(pairs))
        )
        reply(
            {
                "error": "",
                "partitions": [
                    {
                        "topic": r.topic,
                        "partition": r.partition_id,
                        "error": r.error,
                        "message": r.error_message,
                    }
                    for r in response.replica_election_results
                ],
            }
        )

    def _handle_describe_cluster(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        response = self._controller(DescribeClusterRequest())
        # A broker answers from its metadata: the running brokers (fenced ones only when asked,
        # v2), and, as for Metadata, a broker named as the "controller" clients can reach.
        fenced = bool(req.get("include_fenced"))
        brokers = [
            {"broker_id": b.broker_id, "fenced": b.fenced}
            for b in response.brokers
            if fenced or not b.fenced
        ]
        reply(
            {
                "error": "",
                "controller_id": brokers[0]["broker_id"] if brokers else -1,
                "brokers": brokers,
            }
        )

    def _handle_describe_quorum(
        self, broker: Broker, req: dict[str, Any], conn: RemoteConnection, reply: Reply
    ) -> None:
        response = self._controller(DescribeQuorumRequest())

        def replicas(states: Any) -> list[dict[str, Any]]:
            return [
                {"replica_id": r.replica_id, "log_end_offset": r.log_end_offset} for r in states
            ]

        reply(
            {
                "error": response.error,
                "message": response.error_message,
                "leader_id": response.leader_id,
                "leader_epoch": response.leader_epoch,
                "high_watermark": response.high_watermark,
                "voters": replicas(response.current_voters),
                "observers": replicas(response.observers),
            }
        )

    # --- views ---------------------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {
                "connection": c.connection,
                "broker": c.broker_id,
                "client_id": c.client_id,
                "requests": dict(sorted(c.requests.items())),
                "records_produced": c.records_produced,
                "records_fetched": c.records_fetched,
                "last_request_ms": c.last_request_ms,
                "positions": [[tp.topic, tp.partition, o] for tp, o in sorted(c.positions.items())],
            }
            for c in sorted(self.connections.values(), key=lambda c: c.connection)
        ]


class _ConsumerFetch:
    """A consumer's Fetch as Kafka's broker serves it (`ReplicaManager.fetchMessages` and
    `DelayedFetch`): answered at once when the bytes available reach `min_bytes` (each
    partition counted up to its own `partition_max_bytes`), when a partition has an error to
    report, or when `max_wait_ms` of cluster time has passed; otherwise parked in the broker's
    purgatory, where every append re-checks it. The answer reads the partitions in request
    order, each up to its own limit and all together up to `max_bytes`; the first partition
    that has data returns at least one whole batch even when that batch is larger (KIP-74), so
    a consumer can always make progress. `current_leader_epoch` fences a consumer that knows
    a newer or older leader (KIP-320)."""

    def __init__(
        self,
        broker: Broker,
        req: dict[str, Any],
        answer: Callable[[dict[TopicPartition, FetchPartitionData]], None],
    ) -> None:
        self.broker = broker
        self.isolation = str(req.get("isolation", "read_uncommitted"))
        self.min_bytes = int(req.get("min_bytes", 1))
        self.max_bytes = int(req["max_bytes"])
        self.max_wait_ms = int(req.get("max_wait_ms", 0))
        self.asks = [
            (
                TopicPartition(str(p["topic"]), int(p["partition"])),
                int(p["fetch_offset"]),
                int(p.get("partition_max_bytes", 1048576)),
                int(p.get("current_leader_epoch", -1)),
            )
            for p in req.get("partitions", [])
        ]
        self.answer = answer

    def start(self) -> None:
        if self.max_wait_ms <= 0 or self.min_bytes <= 0 or not self.asks or self.ready():
            self.answer(self.build())
            return
        broker = self.broker
        broker.purgatory.park(
            ParkedFetch(
                [tp for tp, _, _, _ in self.asks],
                self.ready,
                lambda: self.answer(self.build()),
                broker.now_ms,
                self.max_wait_ms,
            )
        )

    def _upper(self, partition: Partition) -> int:
        log = partition.log
        if self.isolation == "read_committed":
            return int(log.last_stable_offset)
        return int(log.high_watermark)

    def _error(self, tp: TopicPartition, offset: int, epoch: int) -> str:
        partition = self.broker.partitions.get(tp)
        if partition is None:
            if tp.topic not in self.broker.topics:
                return "UNKNOWN_TOPIC_OR_PARTITION"
            return "NOT_LEADER_OR_FOLLOWER"
        if not partition.is_leader:
            return "NOT_LEADER_OR_FOLLOWER"
        if epoch >= 0 and epoch < partition.leader_epoch:
            return "FENCED_LEADER_EPOCH"
        if epoch > partition.leader_epoch:
            return "UNKNOWN_LEADER_EPOCH"
        log = partition.log
        if offset < log.log_start_offset or offset > log.log_end_offset:
            return "OFFSET_OUT_OF_RANGE"
        return ""

    def ready(self) -> bool:
        """Kafka's `DelayedFetch.tryComplete`: an error to report, or enough bytes."""
        available = 0
        for tp, offset, limit, epoch in self.asks:
            if self._error(tp, offset, epoch):
                return True
            partition = self.broker.partitions[tp]
            upper = self._upper(partition)
            if offset >= upper:
                continue
            here = 0
            for batch in partition.log.iter_batches(offset, upper):
                if batch.base_offset >= upper or here >= limit:
                    break
                here += batch.size
            available += min(here, limit)
            if available >= self.min_bytes:
                return True
        return False

    def build(self) -> dict[TopicPartition, FetchPartitionData]:
        response: dict[TopicPartition, FetchPartitionData] = {}
        remaining = self.max_bytes
        first = True  # no partition has returned data yet: one batch may exceed the limits
        for tp, offset, limit, epoch in self.asks:
            error = self._error(tp, offset, epoch)
            partition = self.broker.partitions.get(tp)
            if error:
                log = partition.log if partition is not None and partition.is_leader else None
                response[tp] = FetchPartitionData(
                    error=error,
                    high_watermark=log.high_watermark if log is not None else -1,
                    log_start_offset=log.log_start_offset if log is not None else -1,
                )
                continue
            assert partition is not None
            log = partition.log
            upper = self._upper(partition)
            batches: list[RecordBatch] = []
            size = 0
            budget = min(limit, remaining)
            if offset < upper:
                for batch in log.iter_batches(offset, upper):
                    if batch.base_offset >= upper:
                        break
                    if size + batch.size > budget and not (first and not batches):
                        break
                    batches.append(batch)
                    size += batch.size
            if batches:
                first = False
                remaining = max(0, remaining - size)
            data = FetchPartitionData(
                high_watermark=log.high_watermark,
                last_stable_offset=log.last_stable_offset,
                log_start_offset=log.log_start_offset,
                batches=batches,
            )
            if self.isolation == "read_committed" and batches:
                data.aborted = aborted_transactions(partition, offset, upper)
            response[tp] = data
        return response


def _config_type(resource_type: int, name: str) -> int:
    definition = BROKER if resource_type == BROKER_RESOURCE else TOPIC
    key = definition.keys.get(name)
    return CONFIG_TYPES.get(key.type, 0) if key is not None else 0


def _config_text(value: Any) -> str | None:
    """A config value as Kafka's DescribeConfigs writes it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _topic_result(result: TopicResult) -> dict[str, Any]:
    return _topic_error(result.name, result.error, result.error_message)


def _topic_error(name: str, error: str, message: str | None) -> dict[str, Any]:
    return {"name": name, "error": error, "message": message}


def _topic_no_controller(name: str) -> dict[str, Any]:
    return _topic_error(name, "NOT_CONTROLLER", "The controller quorum has no leader.")


def _no_controller(resource: ConfigResource) -> dict[str, Any]:
    return {
        "resource_type": resource.resource_type,
        "resource_name": resource.resource_name,
        "error": "NOT_CONTROLLER",
        "message": "The controller quorum has no leader.",
    }


def request_over_network(
    cluster: Cluster,
    node: str,
    broker: Broker,
    kind: str,
    handle: Callable[[Reply], None],
    on_reply: Reply,
) -> None:
    """The simulated network's request path for a node outside the simulation: no request
    timeout here (the real client keeps its own), a lost response is simply never delivered."""
    request(
        cluster.network,
        node,
        broker.id,
        "wire_" + kind,
        lambda: broker.alive,
        handle,
        on_reply,
        broker.lose_reply,
    )


def _record_batch(data: dict[str, Any], now_ms: int) -> RecordBatch:
    """A producer's batch as decoded by the listener: relative offsets from 0, sizes computed
    as Kafka's `DefaultRecordBatch.sizeInBytes` would."""
    records: list[Record] = []
    for index, record in enumerate(data.get("records", [])):
        headers = tuple((str(k), v) for k, v in record.get("headers", []))
        timestamp = int(record.get("timestamp", now_ms))
        key, value = record.get("key"), record.get("value")
        first = records[0].timestamp if records else timestamp
        size = record_size_in_bytes(index, timestamp - first, key, value, headers)
        records.append(Record(index, timestamp, key, value, headers, size))
    size = batch_size_in_bytes(records, 0)
    return RecordBatch(
        base_offset=0,
        records=records,
        leader_epoch=-1,
        producer_id=int(data.get("producer_id", -1)),
        producer_epoch=int(data.get("producer_epoch", -1)),
        base_sequence=int(data.get("base_sequence", -1)),
        is_transactional=bool(data.get("is_transactional", False)),
        size=size,
        max_timestamp=max((r.timestamp for r in records), default=-1),
    )


def _batch_dict(batch: RecordBatch) -> dict[str, Any]:
    return {
        "base_offset": batch.base_offset,
        "leader_epoch": batch.leader_epoch,
        "producer_id": batch.producer_id,
        "producer_epoch": batch.producer_epoch,
        "base_sequence": batch.base_sequence,
        "is_transactional": batch.is_transactional,
        "is_control": batch.is_control,
        "control_type": batch.control_type,
        "max_timestamp": batch.max_timestamp,
        "records": [
            {
                "offset": r.offset,
                "timestamp": r.timestamp,
                "key": r.key,
                "value": r.value,
                "headers": [[k, v] for k, v in r.headers],
            }
            for r in batch.records
        ],
    }


def _wire_metadata(metadata: dict[str, Any], protocol: str) -> bytes | None:
    """A member's protocol metadata as its client sent it; None for a simulated member (the
    listener then encodes a subscription from its topics)."""
    wire = metadata.get("wire") or {}
    raw = wire.get(protocol)
    return base64.b64decode(raw) if isinstance(raw, str) else None


def to_json(request: dict[str, Any]) -> dict[str, Any]:
    """A request in its logged, JSON-safe form (bytes as {"$bytes": base64}), as a host's command
    log stores it; `from_json` gives the request back."""
    result: dict[str, Any] = _jsonable(request)
    return result


def from_json(request: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _from_jsonable(request)
    return result
