"""Read-only views of a cluster: topic descriptions, an operator's read of a log, broker and
controller states, and the JSON-safe `snapshot()` used for rendering and replay comparison.

Nothing here changes state or is recorded in the command log; `Cluster` exposes these as its
public methods (ENGINE_API.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.common.metadata import NO_LEADER
from engine.common.records import ConsumerRecord, TopicPartition
from engine.errors import LeaderNotAvailableError, UnknownTopicOrPartitionError
from engine.sim.command_log import _jsonable
from engine.storage.transaction_index import aborted_transactions

if TYPE_CHECKING:
    from engine.cluster import Cluster


@dataclass(frozen=True, slots=True)
class PartitionDescription:
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]
    leader_epoch: int
    high_watermark: int
    log_end_offset: int
    log_start_offset: int
    last_stable_offset: int


@dataclass(frozen=True, slots=True)
class TopicDescription:
    name: str
    config: dict[str, Any]
    partitions: list[PartitionDescription]
    internal: bool = False


@dataclass(frozen=True, slots=True)
class BrokerState:
    id: int
    alive: bool
    fenced: bool
    in_controlled_shutdown: bool = False


@dataclass(frozen=True, slots=True)
class ControllerState:
    id: int
    alive: bool
    is_active: bool


def iter_partitions(cluster: Cluster) -> Iterable[tuple[TopicPartition, Any]]:
    for name, topic in sorted(cluster.controller.topics.items()):
        for number in sorted(topic.partitions):
            yield TopicPartition(name, number), topic.partitions[number]


def leader_log_partition(cluster: Cluster, topic: str, partition: int) -> Any:
    """The leader's replica, or the first assigned replica a broker holds when there is none."""
    registration = cluster.controller.topics[topic].partitions[partition]
    candidates = [registration.leader] if registration.leader != NO_LEADER else []
    candidates += list(registration.replicas)
    for broker_id in candidates:
        replica = cluster.broker_by_id(broker_id).partitions.get(TopicPartition(topic, partition))
        if replica is not None:
            return replica
    return None


def describe_topic(cluster: Cluster, name: str) -> TopicDescription:
    topic = cluster.controller.topics.get(name)
    if topic is None:
        raise UnknownTopicOrPartitionError(f"Topic '{name}' does not exist.")
    partitions = []
    for number in sorted(topic.partitions):
        registration = topic.partitions[number]
        replica = leader_log_partition(cluster, name, number)
        log = replica.log if replica is not None else None
        partitions.append(
            PartitionDescription(
                partition=number,
                leader=registration.leader,
                replicas=list(registration.replicas),
                isr=list(registration.isr),
                leader_epoch=registration.leader_epoch,
                high_watermark=log.high_watermark if log else 0,
                log_end_offset=log.log_end_offset if log else 0,
                log_start_offset=log.log_start_offset if log else 0,
                last_stable_offset=log.last_stable_offset if log else 0,
            )
        )
    return TopicDescription(name, dict(topic.config), partitions, topic.internal)


def read_log(
    cluster: Cluster,
    topic: str,
    partition: int,
    offset: int,
    max_records: int | None,
    replica: int | None,
    isolation_level: str,
) -> list[ConsumerRecord]:
    """An operator's view of a log, up to its end (not limited by the high watermark)."""
    if (
        topic not in cluster.controller.topics
        or partition not in cluster.controller.topics[topic].partitions
    ):
        raise UnknownTopicOrPartitionError(f"{topic}-{partition} does not exist.")
    if replica is not None:
        if replica not in cluster.broker_ids():
            raise ValueError(f"There is no broker {replica}.")
        holder = cluster.broker_by_id(replica).partitions.get(TopicPartition(topic, partition))
        if holder is None:
            raise UnknownTopicOrPartitionError(
                f"Broker {replica} holds no replica of {topic}-{partition}."
            )
    else:
        holder = leader_log_partition(cluster, topic, partition)
        if holder is None:
            return []
    log = holder.log
    out: list[ConsumerRecord] = []
    aborted = None
    if isolation_level == "read_committed":
        from engine.clients.consumer.kafka_consumer import _AbortedFilter

        aborted = _AbortedFilter(aborted_transactions(holder, offset, log.log_end_offset))
    for batch in log.iter_batches(offset):
        if batch.is_control:
            if aborted is not None:
                aborted.on_marker(batch)
            continue
        if aborted is not None and aborted.is_aborted(batch):
            continue
        for record in batch.records:
            if record.offset < offset:
                continue
            out.append(
                ConsumerRecord(
                    topic,
                    partition,
                    record.offset,
                    record.timestamp,
                    record.key,
                    record.value,
                    record.headers,
                )
            )
            if max_records is not None and len(out) >= max_records:
                return out
    return out


def broker_states(cluster: Cluster) -> list[BrokerState]:
    out = []
    for broker_id in cluster.broker_ids():
        registration = cluster.controller.brokers[broker_id]
        out.append(
            BrokerState(
                broker_id,
                cluster.broker_by_id(broker_id).alive,
                registration.fenced,
                registration.in_controlled_shutdown,
            )
        )
    return out


def controller_states(cluster: Cluster) -> list[ControllerState]:
    controller = cluster.controller
    return [
        ControllerState(
            node.id,
            node.alive,
            node.id == controller.active_id and controller.has_quorum(),
        )
        for node in sorted(controller.nodes.values(), key=lambda n: n.id)
    ]


@dataclass(frozen=True, slots=True)
class QuorumReplica:
    """One voter (controller) or observer (broker) of the metadata log."""

    id: int
    log_end_offset: int
    last_fetch_ms: int
    last_caught_up_ms: int


@dataclass(frozen=True, slots=True)
class QuorumDescription:
    leader_id: int  # -1 while no controller holds a majority
    leader_epoch: int
    high_watermark: int
    voters: list[QuorumReplica]
    observers: list[QuorumReplica]


def list_offsets(cluster: Cluster, topic: str, partition: int, spec: str | int) -> int | None:
    by_time = isinstance(spec, int) and not isinstance(spec, bool)
    if not by_time and spec not in ("earliest", "latest", "max-timestamp"):
        raise ValueError("spec is 'earliest', 'latest', 'max-timestamp' or a timestamp")
    registration = cluster.controller.topics.get(topic)
    if registration is None or partition not in registration.partitions:
        raise UnknownTopicOrPartitionError(f"{topic}-{partition} does not exist.")
    replica = leader_log_partition(cluster, topic, partition)
    if registration.partitions[partition].leader == NO_LEADER or replica is None:
        raise LeaderNotAvailableError(f"{topic}-{partition} has no leader.")
    log = replica.log
    if spec == "earliest":
        return int(log.log_start_offset)
    if spec == "latest":
        return int(log.high_watermark)
    best: tuple[int, int] | None = None  # (timestamp, offset) of the newest record so far
    for batch in log.iter_batches(log.log_start_offset):
        if batch.is_control:
            continue
        for record in batch.records:
            if record.offset >= log.high_watermark:  # consumers can't see past it
                return best[1] if best is not None else None
            if by_time and record.timestamp >= int(spec):
                return int(record.offset)
            if not by_time and (best is None or record.timestamp > best[0]):
                best = (record.timestamp, record.offset)
    return best[1] if best is not None and not by_time else None


def describe_quorum(cluster: Cluster) -> QuorumDescription:
    controller = cluster.controller
    controller.track_voters()
    now = cluster.now_ms
    leader = controller.active_id if controller.has_quorum() else None
    voters = []
    for node in sorted(controller.nodes.values(), key=lambda n: n.id):
        fetching = leader is not None and node.alive and cluster.network.reachable(leader, node.id)
        voters.append(
            QuorumReplica(
                node.id,
                node.log_end_offset,
                now if fetching else node.last_caught_up_ms,
                node.last_caught_up_ms,
            )
        )
    observers = []
    for broker_id in cluster.broker_ids():
        broker = cluster.broker_by_id(broker_id)
        fetching = (
            leader is not None and broker.alive and cluster.network.reachable(leader, broker_id)
        )
        caught_up = broker.metadata_offset >= controller.metadata_offset
        observers.append(
            QuorumReplica(
                broker_id,
                broker.metadata_offset,
                now if fetching else -1,
                now if fetching and caught_up else -1,
            )
        )
    return QuorumDescription(
        leader if leader is not None else NO_LEADER,
        controller.quorum_epoch,
        controller.metadata_offset,
        voters,
        observers,
    )


def build_snapshot(cluster: Cluster) -> dict[str, Any]:
    """The whole observable state, JSON-safe: what the web views render and replay compares."""
    topics: dict[str, Any] = {}
    for name in sorted(cluster.controller.topics):
        topic = cluster.controller.topics[name]
        partitions = []
        for number in sorted(topic.partitions):
            registration = topic.partitions[number]
            tp = TopicPartition(name, number)
            replicas: dict[str, dict[str, Any] | None] = {}
            for broker_id in registration.replicas:
                replica = cluster.broker_by_id(broker_id).partitions.get(tp)
                if replica is None:
                    replicas[str(broker_id)] = None
                    continue
                log = replica.log
                replicas[str(broker_id)] = {
                    "log_start_offset": log.log_start_offset,
                    "log_end_offset": log.log_end_offset,
                    "high_watermark": log.high_watermark,
                    "last_stable_offset": log.last_stable_offset,
                    "records": log.record_count,
                    "bytes": log.size,
                    "segments": [[s.base_offset, s.next_offset, s.size] for s in log.segments],
                    "leader_epoch": replica.leader_epoch,
                    "is_leader": replica.is_leader,
                    "digest": log.digest(),
                }
            leader_replica = (
                replicas.get(str(registration.leader)) if registration.leader != NO_LEADER else None
            )
            partitions.append(
                {
                    "partition": number,
                    "leader": registration.leader,
                    "leader_epoch": registration.leader_epoch,
                    "partition_epoch": registration.partition_epoch,
                    "replicas": list(registration.replicas),
                    "isr": list(registration.isr),
                    "high_watermark": leader_replica["high_watermark"] if leader_replica else None,
                    "log_end_offset": leader_replica["log_end_offset"] if leader_replica else None,
                    "replica_logs": replicas,
                }
            )
        topics[name] = {
            "internal": topic.internal,
            "config": _jsonable(topic.config),
            "partitions": partitions,
        }
    snapshot: dict[str, Any] = {
        "now_ms": cluster.now_ms,
        "seed": cluster.seed,
        "controllers": [
            {"id": c.id, "alive": c.alive, "is_active": c.is_active} for c in cluster.controllers()
        ],
        "quorum_epoch": cluster.controller.quorum_epoch,
        "brokers": [
            {
                "id": b.id,
                "alive": b.alive,
                "fenced": b.fenced,
                "in_controlled_shutdown": b.in_controlled_shutdown,
                "lost_responses_pending": cluster.broker_by_id(b.id).lost_responses,
            }
            for b in cluster.brokers()
        ],
        "topics": topics,
        "network": {
            "groups": [sorted(map(str, g)) for g in cluster.network.groups],
            "in_flight": [
                {
                    "id": m.id,
                    "from": m.source,
                    "to": m.destination,
                    "kind": m.kind,
                    "sent_ms": m.sent_ms,
                    "arrives_ms": m.arrives_ms,
                }
                for m in cluster.network.in_flight.values()
            ],
        },
        "producers": [
            {
                "client_id": p.client_id,
                "acks": p.config["acks"],
                "idempotent": p.idempotent,
                "transactional_id": p.transactional_id,
                "closed": p.closed,
                **p.metrics(),
                "producer_id": p.producer_id,
                "producer_epoch": p.producer_epoch,
            }
            for p in cluster.producers
        ],
        "consumers": [
            {
                "client_id": c.client_id,
                "group_id": c.group_id,
                "closed": c.closed,
                "crashed": c.crashed,
                "assignment": [[tp.topic, tp.partition] for tp in sorted(c.assigned)],
                "positions": [[tp.topic, tp.partition, o] for tp, o in sorted(c.positions.items())],
                "consumed": c.consumed_records,
            }
            for c in cluster.consumers
        ],
        "event_count": cluster.event_count,
    }
    snapshot["apps"] = cluster.apps.snapshot()
    snapshot["groups"] = cluster.groups.snapshot()
    snapshot["log_cleaner"] = cluster.log_cleaner.snapshot()
    snapshot["transactions"] = cluster.transactions.snapshot()
    snapshot["remote"] = cluster.remote.snapshot()
    return snapshot
