"""Which Kafka APIs the listener speaks, and how each maps to the engine's remote-client
vocabulary (`engine/server/remote_requests.py`) and back.

`to_engine` turns a decoded kio request into the JSON-safe dict the engine logs and handles;
`to_wire` turns the engine's answer into the fields of the kio response of the version the
client asked for (`codec.build` drops what that version lacks). Versions advertised stop at
the highest version whose semantics the engine serves (Kafka 4.0's own maxima are higher for
several: Produce 12 needs transactions v2, Fetch 13 topic ids, ListOffsets 7 MAX_TIMESTAMP,
JoinGroup 9 skip_assignment, TxnOffsetCommit 3 generation fencing); flexible versions (compact
types, tagged fields) are read and written by kio, unknown tagged fields skipped by the codec.
Minimums are Apache Kafka 4.1's, so librdkafka's feature checks pass.
"""

from __future__ import annotations

import datetime
import importlib
import io
import struct
import uuid
from dataclasses import dataclass
from typing import Any

from kio.serial import entity_reader, entity_writer

from webapp.kafka_listener import records as batches
from webapp.kafka_listener.codec import error_code

_ZERO_ID = uuid.UUID(int=0)

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14
DESCRIBE_GROUPS, LIST_GROUPS, API_VERSIONS, CREATE_TOPICS, INIT_PRODUCER_ID = 15, 16, 18, 19, 22
OFFSET_FOR_LEADER_EPOCH, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN = 23, 24, 25, 26
TXN_OFFSET_COMMIT = 28
DELETE_TOPICS, DESCRIBE_CONFIGS, CREATE_PARTITIONS, DELETE_GROUPS = 20, 32, 37, 42
ELECT_LEADERS, INCREMENTAL_ALTER_CONFIGS, OFFSET_DELETE = 43, 44, 47
DESCRIBE_QUORUM, DESCRIBE_CLUSTER = 55, 60

# api key -> (name in the engine's vocabulary, min advertised, max advertised)
SUPPORTED: dict[int, tuple[str, int, int]] = {
    PRODUCE: ("produce", 0, 11),
    FETCH: ("fetch", 4, 12),
    LIST_OFFSETS: ("list_offsets", 1, 6),
    METADATA: ("metadata", 0, 12),
    OFFSET_COMMIT: ("offset_commit", 2, 9),
    OFFSET_FETCH: ("offset_fetch", 1, 9),
    FIND_COORDINATOR: ("find_coordinator", 0, 4),
    JOIN_GROUP: ("join_group", 0, 8),
    HEARTBEAT: ("heartbeat", 0, 4),
    LEAVE_GROUP: ("leave_group", 0, 5),
    SYNC_GROUP: ("sync_group", 0, 5),
    DESCRIBE_GROUPS: ("describe_groups", 0, 5),
    LIST_GROUPS: ("list_groups", 0, 4),
    API_VERSIONS: ("api_versions", 0, 4),
    CREATE_TOPICS: ("create_topics", 2, 4),
    INIT_PRODUCER_ID: ("init_producer_id", 0, 4),
    OFFSET_FOR_LEADER_EPOCH: ("offset_for_leader_epoch", 2, 4),
    ADD_PARTITIONS_TO_TXN: ("add_partitions_to_txn", 0, 3),
    ADD_OFFSETS_TO_TXN: ("add_offsets_to_txn", 0, 3),
    END_TXN: ("end_txn", 0, 3),
    TXN_OFFSET_COMMIT: ("txn_offset_commit", 0, 2),
    # Admin APIs, at Kafka 4.0's ranges. DescribeQuorum v2 lists the voters' listeners: the
    # simulated controllers have none a client could reach, so each voter is listed without.
    DELETE_TOPICS: ("delete_topics", 1, 6),
    DESCRIBE_CONFIGS: ("describe_configs", 1, 4),
    CREATE_PARTITIONS: ("create_partitions", 0, 3),
    DELETE_GROUPS: ("delete_groups", 0, 2),
    ELECT_LEADERS: ("elect_leaders", 0, 2),
    INCREMENTAL_ALTER_CONFIGS: ("incremental_alter_configs", 0, 1),
    OFFSET_DELETE: ("offset_delete", 0, 0),
    DESCRIBE_QUORUM: ("describe_quorum", 0, 2),
    DESCRIBE_CLUSTER: ("describe_cluster", 0, 2),
}
# Produce v0-v2 are advertised but refused, as Kafka 4.0 does: old librdkafka turns compression
# off unless the range includes v0 (KAFKA-18659).
REFUSED: dict[int, range] = {PRODUCE: range(0, 3)}
ISOLATION = {0: "read_uncommitted", 1: "read_committed"}


class UnsupportedRequest(Exception):
    """A request version this listener advertises but does not serve (Produce v0-v2)."""


def supported_version(api_key: int, version: int) -> bool:
    entry = SUPPORTED.get(api_key)
    return entry is not None and entry[1] <= version <= entry[2]


def api_versions_body(error: str = "") -> dict[str, Any]:
    return {
        "error_code": error_code(error),
        "api_keys": [
            {"api_key": key, "min_version": low, "max_version": high}
            for key, (_, low, high) in sorted(SUPPORTED.items())
        ],
        "throttle_time": 0,
    }


def ms(value: Any) -> int:
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds() * 1000)
    return int(value)


# --- consumer protocol payloads (opaque to the broker, read for the stage) ------------------


def subscription_topics(metadata: bytes | None) -> list[str]:
    """The topics in a consumer's JoinGroup metadata (ConsumerProtocolSubscription)."""
    entity = _read_consumer_protocol("consumer_protocol_subscription", metadata)
    return sorted(str(t) for t in entity.topics) if entity is not None else []


def assignment_partitions(assignment: bytes | None) -> list[list[Any]]:
    entity = _read_consumer_protocol("consumer_protocol_assignment", assignment)
    if entity is None:
        return []
    return [[str(tp.topic), int(p)] for tp in entity.assigned_partitions for p in tp.partitions]


def encode_assignment(partitions: list[list[Any]]) -> bytes:
    from kio.schema.consumer_protocol_assignment.v0.data import (
        ConsumerProtocolAssignment,
        TopicPartition,
    )

    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(str(topic), []).append(int(partition))
    entity = ConsumerProtocolAssignment(
        assigned_partitions=tuple(
            TopicPartition(topic=t, partitions=tuple(sorted(p)))
            for t, p in sorted(by_topic.items())
        ),
        user_data=None,
    )
    out = io.BytesIO()
    out.write(struct.pack(">h", 0))
    entity_writer(ConsumerProtocolAssignment)(out, entity)
    return out.getvalue()


def encode_subscription(topics: list[str]) -> bytes:
    from kio.schema.consumer_protocol_subscription.v0.data import ConsumerProtocolSubscription

    out = io.BytesIO()
    out.write(struct.pack(">h", 0))
    entity_writer(ConsumerProtocolSubscription)(
        out, ConsumerProtocolSubscription(topics=tuple(topics), user_data=None)
    )
    return out.getvalue()


def _read_consumer_protocol(schema: str, data: bytes | None) -> Any:
    if not data or len(data) < 2:
        return None
    (version,) = struct.unpack_from(">h", data, 0)
    version = min(max(version, 0), 3)  # newer versions only append fields (Kafka's rule)
    module = importlib.import_module(f"kio.schema.{schema}.v{version}.data")
    name = "".join(part.capitalize() for part in schema.split("_"))
    cls = getattr(module, name)
    try:
        entity, _ = entity_reader(cls)(data, 2)
    except Exception:
        return None
    return entity


# --- requests -> the engine's vocabulary -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngineRequest:
    """A request in the engine's vocabulary. Partitions of a produce request the listener
    refused itself (a bad CRC, a codec) carry their error and still go to the engine, which
    answers them without touching a log. acks=0 produce requests get no response (Kafka's)."""

    request: dict[str, Any]
    expects_response: bool = True
    # What the answer needs from the request but the engine does not echo (kept by the
    # listener with the pending request, never logged).
    context: dict[str, Any] | None = None


def to_engine(api_key: int, version: int, body: Any) -> EngineRequest:
    name = SUPPORTED[api_key][0]
    if api_key in REFUSED and version in REFUSED[api_key]:
        raise UnsupportedRequest(f"{name} v{version} is advertised but no longer served")
    builder = globals()[f"_req_{name}"]
    fields_ = dict(builder(version, body))
    context = fields_.pop("_context", None)
    request: dict[str, Any] = {"api": name, "version": version, **fields_}
    expects = not (api_key == PRODUCE and int(body.acks) == 0)
    return EngineRequest(request, expects, context)


def _req_metadata(version: int, body: Any) -> dict[str, Any]:
    topics = None if body.topics is None else [str(t.name) for t in body.topics if t.name]
    if version == 0 and topics == []:
        topics = None  # v0: an empty list means every topic
    # v10+: a topic may be named by id alone. The engine keeps no topic ids (every topic's
    # is the zero id), so those are answered UNKNOWN_TOPIC_ID, as Kafka answers an unknown id.
    by_id = [
        t.topic_id
        for t in (body.topics or ())
        if not t.name and getattr(t, "topic_id", None) not in (None, _ZERO_ID)
    ]
    return {
        "topics": topics,
        "allow_auto_create": bool(getattr(body, "allow_auto_topic_creation", True)),
        "_context": {"topic_ids": by_id} if by_id else None,
    }


def _req_produce(version: int, body: Any) -> dict[str, Any]:
    partitions = []
    for topic in body.topic_data:
        for part in topic.partition_data:
            entry: dict[str, Any] = {"topic": str(topic.name), "partition": int(part.index)}
            try:
                decoded = batches.decode_batches(part.records)
                if len(decoded) != 1:
                    raise batches.BatchError(
                        "INVALID_RECORD", "a produce request holds exactly one batch per partition"
                    )
                if decoded[0].is_control:
                    raise batches.BatchError(
                        "INVALID_RECORD", "clients may not send control batches"
                    )
                entry["batch"] = decoded[0].engine_batch()
            except batches.BatchError as error:
                entry["error"] = error.error
                entry["message"] = str(error)
            partitions.append(entry)
    return {
        "acks": int(body.acks),
        "timeout_ms": ms(body.timeout),
        "transactional_id": body.transactional_id,
        "partitions": partitions,
    }


def _req_init_producer_id(version: int, body: Any) -> dict[str, Any]:
    return {
        "transactional_id": body.transactional_id,
        "transaction_timeout_ms": ms(body.transaction_timeout),
        # v3+ (KIP-360): the producer's current id and epoch, -1 on a first call.
        "producer_id": int(getattr(body, "producer_id", -1)),
        "producer_epoch": int(getattr(body, "producer_epoch", -1)),
    }


def _req_list_offsets(version: int, body: Any) -> dict[str, Any]:
    return {
        "isolation": ISOLATION.get(int(getattr(body, "isolation_level", 0)), "read_uncommitted"),
        "partitions": [
            {
                "topic": str(t.name),
                "partition": int(p.partition_index),
                "timestamp": int(p.timestamp),
            }
            for t in body.topics
            for p in t.partitions
        ],
    }


def _req_fetch(version: int, body: Any) -> dict[str, Any]:
    parts = [
        {
            "topic": str(t.topic),
            "partition": int(p.partition),
            "fetch_offset": int(p.fetch_offset),
            "partition_max_bytes": int(p.partition_max_bytes),
            "current_leader_epoch": int(getattr(p, "current_leader_epoch", -1)),
        }
        for t in body.topics
        for p in t.partitions
    ]
    request = fetch_request(
        ms(body.max_wait),
        int(body.min_bytes),
        int(body.max_bytes),
        ISOLATION.get(int(getattr(body, "isolation_level", 0)), "read_uncommitted"),
        parts,
    )
    if version >= 7:  # KIP-227: the listener resolves the session before the engine sees it
        request["_context"] = {
            "session_id": int(body.session_id),
            "session_epoch": int(body.session_epoch),
            "forgotten": [
                (str(t.topic), int(p)) for t in body.forgotten_topics_data for p in t.partitions
            ],
        }
    return request


def with_partitions(request: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """A Fetch in the engine's vocabulary for another list of partitions (a session's)."""
    return {
        **request,
        "partitions": parts,
        "partition_max_bytes": max((p["partition_max_bytes"] for p in parts), default=1048576),
    }


def fetch_request(
    max_wait_ms: int, min_bytes: int, max_bytes: int, isolation: str, parts: list[dict[str, Any]]
) -> dict[str, Any]:
    """A Fetch in the engine's vocabulary (the listener's fetch sessions build them too)."""
    return {
        "max_wait_ms": max_wait_ms,
        "min_bytes": min_bytes,
        "max_bytes": max_bytes,
        "isolation": isolation,
        "partition_max_bytes": max((p["partition_max_bytes"] for p in parts), default=1048576),
        "partitions": parts,
    }


def _req_find_coordinator(version: int, body: Any) -> dict[str, Any]:
    if version >= 4:  # KIP-699: a batch of keys
        return {"keys": [str(k) for k in body.coordinator_keys], "key_type": int(body.key_type)}
    return {"key": str(body.key), "key_type": int(getattr(body, "key_type", 0))}


def _req_join_group(version: int, body: Any) -> dict[str, Any]:
    protocols = [{"name": str(p.name), "metadata": bytes(p.metadata)} for p in body.protocols]
    topics = subscription_topics(protocols[0]["metadata"]) if protocols else []
    session = ms(body.session_timeout)
    return {
        "group_id": str(body.group_id),
        "member_id": str(body.member_id or ""),
        "group_instance_id": getattr(body, "group_instance_id", None),
        "session_timeout_ms": session,
        "rebalance_timeout_ms": ms(getattr(body, "rebalance_timeout", session)),
        "protocol_type": str(body.protocol_type),
        "protocols": protocols,
        "topics": topics,
        "reason": getattr(body, "reason", None),
        "_context": {"protocol_type": str(body.protocol_type)},
    }


def _req_sync_group(version: int, body: Any) -> dict[str, Any]:
    return {
        "group_id": str(body.group_id),
        "generation": int(body.generation_id),
        "member_id": str(body.member_id),
        "group_instance_id": getattr(body, "group_instance_id", None),
        "assignments": [
            {"member_id": str(a.member_id), "partitions": assignment_partitions(a.assignment)}
            for a in body.assignments
        ],
        # v5+: checked against the group's by the coordinator (INCONSISTENT_GROUP_PROTOCOL).
        "protocol_type": getattr(body, "protocol_type", None),
        "protocol_name": getattr(body, "protocol_name", None),
    }


def _req_heartbeat(version: int, body: Any) -> dict[str, Any]:
    return {
        "group_id": str(body.group_id),
        "generation": int(body.generation_id),
        "member_id": str(body.member_id),
        "group_instance_id": getattr(body, "group_instance_id", None),
    }


def _req_leave_group(version: int, body: Any) -> dict[str, Any]:
    if version <= 2:
        members = [{"member_id": str(body.member_id), "group_instance_id": None}]
    else:
        members = [
            {
                "member_id": str(m.member_id),
                "group_instance_id": m.group_instance_id,
                "reason": getattr(m, "reason", None),
            }
            for m in body.members
        ]
    return {"group_id": str(body.group_id), "members": members}


def _req_offset_commit(version: int, body: Any) -> dict[str, Any]:
    return {
        "group_id": str(body.group_id),
        "generation": int(getattr(body, "generation_id_or_member_epoch", -1)),
        "member_id": str(body.member_id or ""),
        "group_instance_id": getattr(body, "group_instance_id", None),
        "offsets": [
            [str(t.name), int(p.partition_index), int(p.committed_offset)]
            for t in body.topics
            for p in t.partitions
        ],
    }


def _req_offset_fetch(version: int, body: Any) -> dict[str, Any]:
    def wanted(topics: Any) -> list[list[Any]] | None:
        if topics is None:
            return None
        return [[str(t.name), int(p)] for t in topics for p in (t.partition_indexes or ())]

    if version >= 8:  # KIP-709: several groups in one request
        return {
            "groups": [
                {"group_id": str(g.group_id), "partitions": wanted(g.topics)} for g in body.groups
            ],
            "require_stable": bool(body.require_stable),
        }
    return {
        "group_id": str(body.group_id),
        "partitions": wanted(body.topics),
        "require_stable": bool(getattr(body, "require_stable", False)),
    }


def _req_create_topics(version: int, body: Any) -> dict[str, Any]:
    return {
        "validate_only": bool(getattr(body, "validate_only", False)),
        "topics": [
            {
                "name": str(t.name),
                "num_partitions": int(t.num_partitions),
                "replication_factor": int(t.replication_factor),
                "configs": {str(c.name): c.value for c in t.configs},
            }
            for t in body.topics
        ],
    }


def _req_describe_groups(version: int, body: Any) -> dict[str, Any]:
    return {"groups": [str(g) for g in body.groups]}


def _req_list_groups(version: int, body: Any) -> dict[str, Any]:
    return {"states_filter": [str(s) for s in getattr(body, "states_filter", ())]}


def _req_add_partitions_to_txn(version: int, body: Any) -> dict[str, Any]:
    return {
        "transactional_id": str(body.v3_and_below_transactional_id),
        "producer_id": int(body.v3_and_below_producer_id),
        "producer_epoch": int(body.v3_and_below_producer_epoch),
        "partitions": [
            [str(t.name), int(p)] for t in body.v3_and_below_topics for p in t.partitions
        ],
    }


def _req_add_offsets_to_txn(version: int, body: Any) -> dict[str, Any]:
    return {
        "transactional_id": str(body.transactional_id),
        "producer_id": int(body.producer_id),
        "producer_epoch": int(body.producer_epoch),
        "group_id": str(body.group_id),
    }


def _req_end_txn(version: int, body: Any) -> dict[str, Any]:
    return {
        "transactional_id": str(body.transactional_id),
        "producer_id": int(body.producer_id),
        "producer_epoch": int(body.producer_epoch),
        "committed": bool(body.committed),
    }


def _req_txn_offset_commit(version: int, body: Any) -> dict[str, Any]:
    return {
        "transactional_id": str(body.transactional_id),
        "group_id": str(body.group_id),
        "producer_id": int(body.producer_id),
        "producer_epoch": int(body.producer_epoch),
        "offsets": [
            [str(t.name), int(p.partition_index), int(p.committed_offset)]
            for t in body.topics
            for p in t.partitions
        ],
    }


def _req_offset_for_leader_epoch(version: int, body: Any) -> dict[str, Any]:
    return {
        "partitions": [
            {
                "topic": str(t.topic),
                "partition": int(p.partition),
                "current_leader_epoch": int(p.current_leader_epoch),
                "leader_epoch": int(p.leader_epoch),
            }
            for t in body.topics
            for p in t.partitions
        ]
    }


def _req_describe_configs(version: int, body: Any) -> dict[str, Any]:
    return {
        "resources": [
            {
                "resource_type": int(r.resource_type),
                "resource_name": str(r.resource_name),
                "keys": None
                if r.configuration_keys is None
                else [str(k) for k in r.configuration_keys],
            }
            for r in body.resources
        ]
    }


def _req_incremental_alter_configs(version: int, body: Any) -> dict[str, Any]:
    return {
        "validate_only": bool(body.validate_only),
        "resources": [
            {
                "resource_type": int(r.resource_type),
                "resource_name": str(r.resource_name),
                "configs": [
                    {"name": str(c.name), "operation": int(c.config_operation), "value": c.value}
                    for c in r.configs
                ],
            }
            for r in body.resources
        ],
    }


def _req_create_partitions(version: int, body: Any) -> dict[str, Any]:
    return {
        "validate_only": bool(body.validate_only),
        "topics": [{"name": str(t.name), "count": int(t.count)} for t in body.topics],
    }


def _req_delete_topics(version: int, body: Any) -> dict[str, Any]:
    if version >= 6:  # by name, or by id (the engine has none: UNKNOWN_TOPIC_ID)
        names = [str(t.name) for t in body.topics if t.name]
        ids = [t.topic_id for t in body.topics if not t.name]
        return {"topics": names, "_context": {"topic_ids": ids} if ids else None}
    return {"topics": [str(n) for n in body.topic_names]}


def _req_delete_groups(version: int, body: Any) -> dict[str, Any]:
    return {"groups": [str(g) for g in body.groups_names]}


def _req_offset_delete(version: int, body: Any) -> dict[str, Any]:
    return {
        "group_id": str(body.group_id),
        "partitions": [
            [str(t.name), int(p.partition_index)] for t in body.topics for p in t.partitions
        ],
    }


def _req_elect_leaders(version: int, body: Any) -> dict[str, Any]:
    partitions = None
    if body.topic_partitions is not None:
        partitions = [[str(t.topic), int(p)] for t in body.topic_partitions for p in t.partitions]
    # v0 knows only preferred elections.
    return {"election_type": int(getattr(body, "election_type", 0)), "partitions": partitions}


def _req_describe_cluster(version: int, body: Any) -> dict[str, Any]:
    return {
        "endpoint_type": int(getattr(body, "endpoint_type", 1)),
        "include_fenced": bool(getattr(body, "include_fenced_brokers", False)),
    }


def _req_describe_quorum(version: int, body: Any) -> dict[str, Any]:
    return {
        "partitions": [
            [str(t.topic_name), int(p.partition_index)] for t in body.topics for p in t.partitions
        ]
    }


# --- the engine's answers -> response fields ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Addresses:
    """Where each broker listens, for Metadata and FindCoordinator answers."""

    host: str
    ports: dict[int, int]
    cluster_id: str


def to_wire(
    api_key: int,
    version: int,
    response: dict[str, Any],
    where: Addresses,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    builder = globals()[f"_resp_{SUPPORTED[api_key][0]}"]
    result: dict[str, Any] = builder(version, response, where)
    finish = globals().get(f"_finish_{SUPPORTED[api_key][0]}")
    if finish is not None and context:
        finish(version, result, context)
    result.setdefault("throttle_time", 0)
    return result


def _finish_metadata(version: int, result: dict[str, Any], context: dict[str, Any]) -> None:
    for topic_id in context.get("topic_ids", ()):
        result["topics"].append(
            {
                "error_code": error_code("UNKNOWN_TOPIC_ID"),
                "name": None,
                "topic_id": topic_id,
                "is_internal": False,
                "partitions": [],
            }
        )


def _finish_fetch(version: int, result: dict[str, Any], context: dict[str, Any]) -> None:
    result["session_id"] = int(context.get("session_id", 0))


def _finish_delete_topics(version: int, result: dict[str, Any], context: dict[str, Any]) -> None:
    for topic_id in context.get("topic_ids", ()):
        result["responses"].append(
            {
                "name": None,
                "topic_id": topic_id,
                "error_code": error_code("UNKNOWN_TOPIC_ID"),
                "error_message": "This server does not know topic ids.",
            }
        )


def _finish_join_group(version: int, result: dict[str, Any], context: dict[str, Any]) -> None:
    # v7+: the group's protocol type, which every member's JoinGroup must match.
    result["protocol_type"] = context.get("protocol_type")


def _by_topic(parts: list[dict[str, Any]], make: Any) -> list[dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        grouped.setdefault(str(part["topic"]), []).append(make(part))
    return [{"name": name, "topic": name, "partitions": items} for name, items in grouped.items()]


def _resp_metadata(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    brokers = [
        {"node_id": b, "host": where.host, "port": where.ports[b], "rack": None}
        for b in r["brokers"]
        if b in where.ports
    ]
    return {
        "brokers": brokers,
        "cluster_id": where.cluster_id,
        "controller_id": r["controller_id"],
        "topics": [
            {
                "error_code": error_code(t["error"]),
                "name": t["name"],
                "is_internal": bool(t.get("internal", False)),
                "partitions": [
                    {
                        "error_code": error_code(p["error"]),
                        "partition_index": p["partition"],
                        "leader_id": p["leader"],
                        "leader_epoch": p["leader_epoch"],
                        "replica_nodes": p["replicas"],
                        "isr_nodes": p["isr"],
                        "offline_replicas": [],
                    }
                    for p in t["partitions"]
                ],
            }
            for t in r["topics"]
        ],
    }


def _resp_produce(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for p in r["partitions"]:
        grouped.setdefault(p["topic"], []).append(
            {
                "index": p["partition"],
                "error_code": error_code(p["error"]),
                "base_offset": p["base_offset"],
                "log_start_offset": p["log_start_offset"],
                "record_errors": [],
                "error_message": p.get("message"),
            }
        )
    responses = [{"name": name, "partition_responses": items} for name, items in grouped.items()]
    return {"responses": responses}


def _resp_init_producer_id(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "error_code": error_code(r["error"]),
        "producer_id": r["producer_id"],
        "producer_epoch": r.get("epoch", -1),
    }


def _resp_list_offsets(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "topics": _by_topic(
            r["partitions"],
            lambda p: {
                "partition_index": p["partition"],
                "error_code": error_code(p["error"]),
                "timestamp": p["timestamp"],
                "offset": p["offset"],
                "leader_epoch": p["leader_epoch"],
            },
        )
    }


def _resp_fetch(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    def partition(p: dict[str, Any]) -> dict[str, Any]:
        data = b"".join(batches.encode_batch(_wire_batch(b)) for b in p["batches"])
        return {
            "partition_index": p["partition"],
            "error_code": error_code(p["error"]),
            "high_watermark": p["high_watermark"],
            "last_stable_offset": p["last_stable_offset"],
            "log_start_offset": p["log_start_offset"],
            "aborted_transactions": [
                {"producer_id": pid, "first_offset": first} for pid, first in p["aborted"]
            ]
            if p["aborted"]
            else None,
            "records": data,
        }

    return {
        "error_code": error_code(""),
        "session_id": 0,
        "responses": _by_topic(r["partitions"], partition),
    }


def _wire_batch(batch: dict[str, Any]) -> dict[str, Any]:
    if not batch.get("is_control"):
        return batch
    first = batch["records"][0] if batch["records"] else None
    offset = first["offset"] if first else batch["base_offset"]
    timestamp = first["timestamp"] if first else batch.get("max_timestamp", 0)
    return {**batch, "records": [batches.control_record(batch["control_type"], offset, timestamp)]}


def _resp_find_coordinator(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    def coordinator(found: dict[str, Any]) -> dict[str, Any]:
        node = int(found["node_id"])
        known = node in where.ports
        return {
            "key": found.get("key", ""),
            "error_code": error_code(
                found["error"] if known or found["error"] else "COORDINATOR_NOT_AVAILABLE"
            ),
            "error_message": None,
            "node_id": node if known else -1,
            "host": where.host if known else "",
            "port": where.ports.get(node, -1),
        }

    if "coordinators" in r:  # v4+
        return {"coordinators": [coordinator(c) for c in r["coordinators"]]}
    return coordinator(r)


def _resp_join_group(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "error_code": error_code(r["error"]),
        "generation_id": r["generation"],
        "protocol_name": r["protocol"] or "",
        "leader": r["leader"],
        "member_id": r["member_id"],
        "members": [
            {
                "member_id": m["member_id"],
                "group_instance_id": m["group_instance_id"],
                "metadata": m["metadata"]
                if m["metadata"] is not None
                else encode_subscription(m.get("topics", [])),
            }
            for m in r["members"]
        ],
    }


def _resp_sync_group(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "error_code": error_code(r["error"]),
        "protocol_type": r.get("protocol_type"),
        "protocol_name": r.get("protocol_name"),
        "assignment": encode_assignment(r["partitions"]) if not r["error"] else b"",
    }


def _resp_heartbeat(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {"error_code": error_code(r["error"])}


def _resp_leave_group(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "error_code": error_code(r["error"]),
        "members": [
            {
                "member_id": m["member_id"],
                "group_instance_id": m.get("group_instance_id"),
                "error_code": error_code(m["error"]),
            }
            for m in r["members"]
        ],
    }


def _resp_offset_commit(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "topics": _by_topic(
            r["partitions"],
            lambda p: {"partition_index": p["partition"], "error_code": error_code(p["error"])},
        )
    }


def _resp_offset_fetch(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    def group(g: dict[str, Any]) -> dict[str, Any]:
        return {
            "group_id": g.get("group_id", ""),
            "error_code": error_code(g["error"]),
            "topics": _by_topic(
                g["partitions"],
                lambda p: {
                    "partition_index": p["partition"],
                    "committed_offset": p["offset"],
                    "committed_leader_epoch": -1,
                    "metadata": "",
                    "error_code": error_code(p.get("error", g["error"])),
                },
            ),
        }

    if "groups" in r:  # v8+
        return {"groups": [group(g) for g in r["groups"]]}
    return group(r)


def _resp_create_topics(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "topics": [
            {
                "name": t["name"],
                "error_code": error_code(t["error"]),
                "error_message": t["message"] or None,
            }
            for t in r["topics"]
        ]
    }


def _resp_describe_groups(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "groups": [
            {
                "error_code": error_code(g["error"]),
                "group_id": g["group_id"],
                "group_state": g.get("state", ""),
                "protocol_type": g.get("protocol_type", ""),
                "protocol_data": g.get("protocol", ""),
                "members": [
                    {
                        "member_id": m["member_id"],
                        "group_instance_id": m["group_instance_id"],
                        "client_id": m["client_id"],
                        "client_host": "/127.0.0.1",
                        "member_metadata": m["metadata"]
                        if m["metadata"] is not None
                        else encode_subscription([]),
                        "member_assignment": encode_assignment(m["partitions"]),
                    }
                    for m in g["members"]
                ],
            }
            for g in r["groups"]
        ]
    }


def _resp_list_groups(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "error_code": error_code(r["error"]),
        "groups": [
            {"group_id": g["group_id"], "protocol_type": "consumer", "group_state": g["state"]}
            for g in r["groups"]
        ],
    }


def _resp_offset_for_leader_epoch(
    version: int, r: dict[str, Any], where: Addresses
) -> dict[str, Any]:
    return {
        "topics": _by_topic(
            r["partitions"],
            lambda p: {
                "error_code": error_code(p["error"]),
                "partition": p["partition"],
                "leader_epoch": p["leader_epoch"],
                "end_offset": p["end_offset"],
            },
        )
    }


def _resp_add_partitions_to_txn(
    version: int, r: dict[str, Any], where: Addresses
) -> dict[str, Any]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for p in r["partitions"]:
        grouped.setdefault(p["topic"], []).append(
            {"partition_index": p["partition"], "partition_error_code": error_code(p["error"])}
        )
    return {
        "results_by_topic_v3_and_below": [
            {"name": name, "results_by_partition": items} for name, items in grouped.items()
        ]
    }


def _resp_add_offsets_to_txn(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {"error_code": error_code(r["error"])}


def _resp_end_txn(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {"error_code": error_code(r["error"])}


def _resp_txn_offset_commit(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "topics": _by_topic(
            r["partitions"],
            lambda p: {"partition_index": p["partition"], "error_code": error_code(p["error"])},
        )
    }


def _resp_describe_configs(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "results": [
            {
                "error_code": error_code(res["error"]),
                "error_message": res["message"],
                "resource_type": res["resource_type"],
                "resource_name": res["resource_name"],
                "configs": [
                    {
                        "name": c["name"],
                        "value": c["value"],
                        "read_only": c["read_only"],
                        "config_source": c["source"],
                        "is_sensitive": False,
                        "synonyms": [],
                        "config_type": c["type"],
                        "documentation": None,
                    }
                    for c in res["configs"]
                ],
            }
            for res in r["results"]
        ]
    }


def _resp_incremental_alter_configs(
    version: int, r: dict[str, Any], where: Addresses
) -> dict[str, Any]:
    return {
        "responses": [
            {
                "error_code": error_code(res["error"]),
                "error_message": res["message"],
                "resource_type": res["resource_type"],
                "resource_name": res["resource_name"],
            }
            for res in r["responses"]
        ]
    }


def _topic_results(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": t["name"], "error_code": error_code(t["error"]), "error_message": t["message"]}
        for t in items
    ]


def _resp_create_partitions(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {"results": _topic_results(r["results"])}


def _resp_delete_topics(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {"responses": _topic_results(r["responses"])}


def _resp_delete_groups(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "results": [
            {"group_id": g["group_id"], "error_code": error_code(g["error"])} for g in r["results"]
        ]
    }


def _resp_offset_delete(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "error_code": error_code(r["error"]),
        "topics": _by_topic(
            r["partitions"],
            lambda p: {"partition_index": p["partition"], "error_code": error_code(p["error"])},
        ),
    }


def _resp_elect_leaders(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for p in r["partitions"]:
        grouped.setdefault(p["topic"], []).append(
            {
                "partition_id": p["partition"],
                "error_code": error_code(p["error"]),
                "error_message": p["message"],
            }
        )
    return {
        "error_code": error_code(r["error"]),
        "replica_election_results": [
            {"topic": topic, "partition_result": items} for topic, items in grouped.items()
        ],
    }


def _resp_describe_cluster(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    return {
        "error_code": error_code(r["error"]),
        "error_message": None,
        "endpoint_type": 1,
        "cluster_id": where.cluster_id,
        "controller_id": r["controller_id"],
        "brokers": [
            {
                "broker_id": b["broker_id"],
                "host": where.host,
                "port": where.ports.get(b["broker_id"], -1),
                "rack": None,
                "is_fenced": b["fenced"],
            }
            for b in r["brokers"]
            if b["broker_id"] in where.ports
        ],
        "cluster_authorized_operations": -(2**31),
    }


def _resp_describe_quorum(version: int, r: dict[str, Any], where: Addresses) -> dict[str, Any]:
    def replicas(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "replica_id": i["replica_id"],
                "log_end_offset": i["log_end_offset"],
                "last_fetch_timestamp": -1,
                "last_caught_up_timestamp": -1,
            }
            for i in items
        ]

    return {
        "error_code": error_code(""),
        "topics": [
            {
                "topic_name": "__cluster_metadata",
                "partitions": [
                    {
                        "partition_index": 0,
                        "error_code": error_code(r["error"]),
                        "leader_id": r["leader_id"],
                        "leader_epoch": r["leader_epoch"],
                        "high_watermark": r["high_watermark"],
                        "current_voters": replicas(r["voters"]),
                        "observers": replicas(r["observers"]),
                    }
                ],
            }
        ],
        "nodes": [{"node_id": v["replica_id"], "listeners": []} for v in r["voters"]],
    }
