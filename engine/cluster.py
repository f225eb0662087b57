"""The `Cluster` facade: the one object lessons, the web app and tests drive (ENGINE_API.md).

It wires the clock, the network, the controller quorum, the brokers and the clients together,
records every call that changes state so the cluster can be rebuilt from its log, and exposes
read-only views (describe_topic, read, snapshot, events).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from random import Random
from typing import Any

from engine.broker import Broker, TopicView
from engine.clock import Scheduler
from engine.config import TOPIC, broker_config, topic_defaults
from engine.controller import QuorumController
from engine.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    KafkaError,
    UnknownTopicOrPartitionError,
)
from engine.events import Event
from engine.limits import ResourceLimits
from engine.metadata import NO_LEADER
from engine.network import CLIENTS, Network
from engine.records import ConsumerRecord, Record, RecordBatch, TopicPartition

LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_LENGTH = 249
INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")


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


def validate_topic_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidTopicError("Topic name is illegal, it can't be empty.")
    if name in (".", ".."):
        raise InvalidTopicError('Topic name cannot be "." or "..".')
    if len(name) > MAX_TOPIC_LENGTH:
        raise InvalidTopicError(
            f"Topic name is illegal, it can't be longer than {MAX_TOPIC_LENGTH} characters, "
            f"topic name: {name[:40]}..."
        )
    if not LEGAL_TOPIC.match(name):
        raise InvalidTopicError(
            f'Topic name "{name}" is illegal, it contains a character other than ASCII '
            "alphanumerics, '.', '_' and '-'."
        )
    return name


class Cluster:
    def __init__(
        self,
        brokers: int = 3,
        seed: int = 0,
        config: dict[str, Any] | None = None,
        controllers: int = 3,
        limits: ResourceLimits | dict[str, Any] | None = None,
    ) -> None:
        self.limits = ResourceLimits.from_value(limits)
        if not isinstance(brokers, int) or not isinstance(controllers, int):
            raise TypeError("brokers and controllers must be whole numbers")
        self.limits.check_cluster_shape(brokers, controllers)
        self.seed = seed
        self.rng = Random(seed)
        self.scheduler = Scheduler()
        self.broker_config = broker_config(config, brokers)
        self.topic_defaults = topic_defaults(self.broker_config)
        self._constructor = {
            "brokers": brokers,
            "seed": seed,
            "config": dict(config or {}),
            "controllers": controllers,
            "limits": self.limits.to_dict(),
        }
        self._log: list[dict[str, Any]] = [{"op": "cluster.new", **_jsonable(self._constructor)}]
        self._depth = 0
        self._replaying = False
        self._events: list[Event] = []
        self._listeners: list[Callable[[Event], None]] = []
        self.network = Network(
            self.scheduler,
            self.rng,
            int(self.broker_config["sim.network.latency.ms"]),
            int(self.broker_config["sim.network.jitter.ms"]),
        )
        self.controller = QuorumController(
            [100 + i for i in range(1, controllers + 1)],
            self.scheduler,
            self.network,
            self.rng,
            self.broker_config,
            self.emit,
        )
        self._brokers: dict[int, Broker] = {}
        for broker_id in range(1, brokers + 1):
            broker = Broker(self, broker_id)
            self._brokers[broker_id] = broker
            self.controller.register_broker_node(broker)
        self.producers: list[Any] = []
        self.consumers: list[Any] = []
        self.apps: list[Any] = []
        self.retained_records = 0
        self.retained_bytes = 0
        self._next_producer_id = 1000
        self.history: Any = None
        self.services: dict[str, Any] = {}
        # The cluster starts already running: every broker registered, unfenced and caught up.
        for broker in self._brokers.values():
            self.controller.brokers[broker.id].fenced = False
            self.controller.last_heartbeat_ms[broker.id] = 0
            self.controller._arm_session_timer(broker.id)
        for broker in self._brokers.values():
            broker._apply_image(
                *self.controller.full_image()
            ) if self.controller.metadata_offset else None
            broker.brokers = {r.id: r for r in (_copy(r) for r in self.controller.brokers.values())}
            broker.start()
        self.controller.on_connectivity_change()
        from engine.checker import History

        self.history = History(self)
        _load_extensions()
        for extension in _EXTENSIONS:
            extension(self)

    # --- recording and time ------------------------------------------------------------------

    def _record_call(self, op: str, args: dict[str, Any]) -> None:
        if self._depth == 0 and not self._replaying:
            # Plain values and bytes (immutable) are kept as they are and made JSON-safe by
            # export_log; anything mutable is copied into its JSON form now.
            entry = {"op": op}
            for name, value in args.items():
                entry[name] = value if type(value) in _LOGGED_AS_IS else _jsonable(value)
            self._log.append(entry)

    def _run_until(self, stop: Callable[[], bool], deadline_ms: int) -> bool:
        self._depth += 1
        try:
            return self.scheduler.run_until(deadline_ms, stop)
        finally:
            self._depth -= 1

    @property
    def events(self) -> list[Event]:
        """Everything that happened, in order (read it; don't change it)."""
        return self._events

    @property
    def now_ms(self) -> int:
        return self.scheduler.now_ms

    def advance(self, ms: int) -> None:
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
            raise ValueError("advance takes a whole, non-negative number of milliseconds")
        if ms > self.limits.max_advance_ms:
            raise ValueError(f"advance is limited to {self.limits.max_advance_ms} ms at a time")
        self._record_call("cluster.advance", {"ms": ms})
        self._run_until(lambda: False, self.now_ms + ms)

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        event = Event(self.scheduler.now_ms, kind, data)
        self._events.append(event)
        for listener in self._listeners:
            listener(event)

    def subscribe_events(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    # --- topics ------------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = 1,
        config: dict[str, Any] | None = None,
    ) -> None:
        self._record_call(
            "cluster.create_topic",
            {
                "name": name,
                "partitions": partitions,
                "replication_factor": replication_factor,
                "config": config,
            },
        )
        validate_topic_name(name)
        if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
            raise InvalidPartitionsError(
                f"Number of partitions must be larger than 0, not {partitions!r}."
            )
        if (
            not isinstance(replication_factor, int)
            or isinstance(replication_factor, bool)
            or replication_factor < 1
        ):
            raise InvalidReplicationFactorError(
                f"Replication factor must be larger than 0, not {replication_factor!r}."
            )
        self._create_topic(name, partitions, replication_factor, config)

    def _create_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        config: dict[str, Any] | None,
        internal: bool = False,
    ) -> None:
        overrides = TOPIC.parse(config)
        if replication_factor > len(self._brokers):
            raise InvalidReplicationFactorError(
                f"Replication factor: {replication_factor} larger than available brokers: "
                f"{len(self._brokers)}."
            )
        from engine.errors import TopicExistsError

        if name in self.controller.topics:
            raise TopicExistsError(f"Topic '{name}' already exists.")
        self.limits.check_topic(self, partitions, new_topic=True)
        effective = dict(self.topic_defaults)
        effective.update(overrides)
        self.controller.create_topic(name, partitions, replication_factor, effective, internal)

    def delete_topic(self, name: str) -> None:
        self._record_call("cluster.delete_topic", {"name": name})
        self.controller.delete_topic(name)

    def add_partitions(self, name: str, total: int) -> None:
        self._record_call("cluster.add_partitions", {"name": name, "total": total})
        topic = self.controller.topics.get(name)
        if topic is None:
            raise UnknownTopicOrPartitionError(f"Topic '{name}' does not exist.")
        if not isinstance(total, int) or total <= len(topic.partitions):
            raise InvalidPartitionsError(
                f"Topic '{name}' has {len(topic.partitions)} partitions; the new total must be "
                f"larger, not {total}."
            )
        self.limits.check_topic(self, total - len(topic.partitions), new_topic=False)
        self.controller.add_partitions(name, total)

    def alter_topic_config(self, name: str, config: dict[str, Any]) -> None:
        self._record_call("cluster.alter_topic_config", {"name": name, "config": config})
        if name not in self.controller.topics:
            raise UnknownTopicOrPartitionError(f"Topic '{name}' does not exist.")
        changes = TOPIC.parse(config)
        self.controller.alter_config(name, changes)

    def list_topics(self) -> list[str]:
        return sorted(self.controller.topics)

    def _leader_log_partition(self, topic: str, partition: int) -> Any:
        registration = self.controller.topics[topic].partitions[partition]
        candidates = [registration.leader] if registration.leader != NO_LEADER else []
        candidates += list(registration.replicas)
        for broker_id in candidates:
            replica = self._brokers[broker_id].partitions.get(TopicPartition(topic, partition))
            if replica is not None:
                return replica
        return None

    def describe_topic(self, name: str) -> TopicDescription:
        topic = self.controller.topics.get(name)
        if topic is None:
            raise UnknownTopicOrPartitionError(f"Topic '{name}' does not exist.")
        partitions = []
        for number in sorted(topic.partitions):
            registration = topic.partitions[number]
            replica = self._leader_log_partition(name, number)
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

    def read(
        self,
        topic: str,
        partition: int,
        offset: int = 0,
        max_records: int | None = None,
        replica: int | None = None,
        isolation_level: str = "read_uncommitted",
    ) -> list[ConsumerRecord]:
        """An operator's view of a log, up to its end (not limited by the high watermark)."""
        if (
            topic not in self.controller.topics
            or partition not in self.controller.topics[topic].partitions
        ):
            raise UnknownTopicOrPartitionError(f"{topic}-{partition} does not exist.")
        if replica is not None:
            if replica not in self._brokers:
                raise ValueError(f"There is no broker {replica}.")
            holder = self._brokers[replica].partitions.get(TopicPartition(topic, partition))
            if holder is None:
                raise UnknownTopicOrPartitionError(
                    f"Broker {replica} holds no replica of {topic}-{partition}."
                )
        else:
            holder = self._leader_log_partition(topic, partition)
            if holder is None:
                return []
        log = holder.log
        out: list[ConsumerRecord] = []
        aborted = None
        if isolation_level == "read_committed":
            from engine.consumer import _AbortedFilter

            aborted = _AbortedFilter(self.aborted_transactions(holder, offset, log.log_end_offset))
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

    # --- brokers, controllers and faults ---------------------------------------------------

    def broker_by_id(self, broker_id: int) -> Broker:
        return self._brokers[broker_id]

    def broker_ids(self) -> list[int]:
        return sorted(self._brokers)

    def _broker(self, broker_id: int) -> Broker:
        if broker_id not in self._brokers:
            raise ValueError(
                f"There is no broker {broker_id}; brokers are 1..{len(self._brokers)}."
            )
        return self._brokers[broker_id]

    def stop_broker(self, broker_id: int) -> None:
        """A crash: no controlled shutdown; the controller notices missed heartbeats."""
        self._record_call("cluster.stop_broker", {"id": broker_id})
        broker = self._broker(broker_id)
        if not broker.alive:
            return
        broker.stop()
        self.controller.on_connectivity_change()
        self._close_client_connections(broker_id)
        self.emit("broker_stopped", {"broker": broker_id, "controlled": False})

    def shutdown_broker(self, broker_id: int) -> None:
        """A controlled shutdown: leadership moves away first, then the broker stops."""
        self._record_call("cluster.shutdown_broker", {"id": broker_id})
        broker = self._broker(broker_id)
        if not broker.alive:
            return
        if self.controller.has_quorum():
            broker.want_shutdown = True
            self.controller.controlled_shutdown(broker_id)
            # Leaders elsewhere learn the new metadata before this broker goes away.
            self._run_until(
                lambda: False,
                self.now_ms + 2 * self.network.latency_ms + self.network.jitter_ms + 1,
            )
        broker.stop()
        self.controller.on_connectivity_change()
        self._close_client_connections(broker_id)
        self.emit("broker_stopped", {"broker": broker_id, "controlled": True})

    def _close_client_connections(self, broker_id: int) -> None:
        for client in [*self.producers, *self.consumers]:
            client.on_broker_stopped(broker_id)

    def start_broker(self, broker_id: int) -> None:
        self._record_call("cluster.start_broker", {"id": broker_id})
        broker = self._broker(broker_id)
        if broker.alive:
            return
        broker.start()
        self.controller.on_connectivity_change()
        self.emit("broker_started", {"broker": broker_id})

    def stop_controller(self, controller_id: int) -> None:
        self._record_call("cluster.stop_controller", {"id": controller_id})
        if controller_id not in self.controller.nodes:
            raise ValueError(f"There is no controller {controller_id}.")
        self.controller.stop_node(controller_id)

    def start_controller(self, controller_id: int) -> None:
        self._record_call("cluster.start_controller", {"id": controller_id})
        if controller_id not in self.controller.nodes:
            raise ValueError(f"There is no controller {controller_id}.")
        self.controller.start_node(controller_id)

    def partition_network(self, groups: list[set[Any]]) -> None:
        self._record_call(
            "cluster.partition_network", {"groups": [sorted(map(str, g)) for g in groups]}
        )
        normalized: list[set[Any]] = []
        known = set(self._brokers) | set(self.controller.nodes)
        for group in groups:
            members: set[Any] = set()
            for node in group:
                if node == CLIENTS:
                    members.add(CLIENTS)
                    continue
                try:
                    number = int(node)
                except (TypeError, ValueError):
                    raise ValueError(f"Unknown node {node!r} in a network partition.") from None
                if number not in known:
                    raise ValueError(f"Unknown node {node!r} in a network partition.")
                members.add(number)
            normalized.append(members)
        self.network.partition(normalized)
        self.emit("network_partitioned", {"groups": [sorted(map(str, g)) for g in normalized]})
        self._after_network_change()

    def heal_network(self) -> None:
        self._record_call("cluster.heal_network", {})
        if not self.network.partitioned:
            return
        self.network.heal()
        self.emit("network_healed", {})
        self._after_network_change()

    def _after_network_change(self) -> None:
        for broker in self._brokers.values():
            if not broker.alive:
                continue
            for partition in broker.partitions.values():
                if partition.is_leader:
                    broker._refresh_parked_followers(partition)
            # A follower cut off from its leader loses its fetch; every follower then fetches
            # again over the new routes (superseding any fetch still waiting at a leader).
            leaders = {p.leader_id for p in broker.partitions.values() if not p.is_leader}
            for leader in sorted(leaders - {NO_LEADER}):
                if not self.network.reachable(broker.id, leader):
                    broker.connection_lost(leader)
                else:
                    broker._ensure_fetching(leader, partitions_changed=True)

    def lose_responses(self, broker_id: int, count: int = 1) -> None:
        self._record_call("cluster.lose_responses", {"broker_id": broker_id, "count": count})
        if not isinstance(count, int) or count < 0:
            raise ValueError("count must be a non-negative whole number")
        self._broker(broker_id).lost_responses += count

    def brokers(self) -> list[BrokerState]:
        out = []
        for broker_id in sorted(self._brokers):
            registration = self.controller.brokers[broker_id]
            out.append(
                BrokerState(
                    broker_id,
                    self._brokers[broker_id].alive,
                    registration.fenced,
                    registration.in_controlled_shutdown,
                )
            )
        return out

    def controllers(self) -> list[ControllerState]:
        return [
            ControllerState(
                node.id,
                node.alive,
                node.id == self.controller.active_id and self.controller.has_quorum(),
            )
            for node in sorted(self.controller.nodes.values(), key=lambda n: n.id)
        ]

    def elect_leaders(self, topic: str, partition: int, election_type: str = "preferred") -> None:
        self._record_call(
            "cluster.elect_leaders",
            {"topic": topic, "partition": partition, "election_type": election_type},
        )
        self.controller.elect_leaders(topic, partition, election_type)

    # --- clients -----------------------------------------------------------------------------

    def producer(self, config: dict[str, Any] | None = None) -> Any:
        from engine.producer import KafkaProducer

        self._record_call("cluster.producer", {"config": config})
        self.limits.check_clients(len(self.producers) + len(self.consumers))
        producer = KafkaProducer(self, config, len(self.producers) + 1)
        self.producers.append(producer)
        for hook in _PRODUCER_HOOKS:
            hook(producer)
        return producer

    def consumer(self, config: dict[str, Any] | None = None) -> Any:
        from engine.consumer import KafkaConsumer

        self._record_call("cluster.consumer", {"config": config})
        self.limits.check_clients(len(self.producers) + len(self.consumers))
        consumer = KafkaConsumer(self, config, len(self.consumers) + 1)
        self.consumers.append(consumer)
        return consumer

    def allocate_producer_id(self) -> int:
        self._next_producer_id += 1
        return self._next_producer_id

    def metadata_response(
        self, broker: Broker, topics: list[str], allow_auto_create: bool
    ) -> tuple[dict[str, Any], dict[str, str]]:
        from engine.client import PartitionInfo

        found: dict[str, list[PartitionInfo]] = {}
        errors: dict[str, str] = {}
        for name in topics:
            view: TopicView | None = broker.topics.get(name)
            if view is None:
                if (
                    allow_auto_create
                    and self.broker_config["auto.create.topics.enable"]
                    and name not in self.controller.topics
                    and self.controller.has_quorum()
                ):
                    try:
                        validate_topic_name(name)
                        self._create_topic(
                            name,
                            int(self.broker_config["num.partitions"]),
                            min(
                                int(self.broker_config["default.replication.factor"]),
                                len(self._brokers),
                            ),
                            None,
                        )
                        errors[name] = "LEADER_NOT_AVAILABLE"
                    except KafkaError as exc:
                        from engine.errors import protocol_name

                        errors[name] = protocol_name(exc)
                else:
                    errors[name] = "UNKNOWN_TOPIC_OR_PARTITION"
                continue
            if not view.partitions:
                errors[name] = "LEADER_NOT_AVAILABLE"
                continue
            found[name] = [
                PartitionInfo(r.leader, r.leader_epoch, r.replicas, r.isr)
                for _, r in sorted(view.partitions.items())
            ]
        return found, errors

    # --- hooks used by brokers and clients ---------------------------------------------------

    def on_append(self, partition: Any, batch: RecordBatch) -> None:
        self.retained_records += len(batch.records)
        self.retained_bytes += batch.size

    def on_follower_append(self, partition: Any, batch: RecordBatch) -> None:
        self.retained_records += len(batch.records)
        self.retained_bytes += batch.size

    def on_truncate(self, partition: Any, removed: list[Record]) -> None:
        self.recount_retained()

    def recount_retained(self) -> None:
        records = 0
        size = 0
        for broker in self._brokers.values():
            for partition in broker.partitions.values():
                records += partition.log.record_count
                size += partition.log.size
        self.retained_records = records
        self.retained_bytes = size

    def on_high_watermark_changed(self, partition: Any) -> None:
        return None

    def on_client_send(self, producer: Any, tp: TopicPartition) -> None:
        return None

    def on_produce_request(self, producer: Any, leader: int, tps: list[TopicPartition]) -> None:
        return None

    def on_batch_acknowledged(self, producer: Any, batch: Any, base_offset: int) -> None:
        if self.history is not None:
            self.history.on_acknowledged(producer, batch, base_offset)

    def on_records_consumed(self, consumer: Any, records: list[ConsumerRecord]) -> None:
        if self.history is not None:
            self.history.on_consumed(consumer, records)

    def aborted_transactions(self, partition: Any, start: int, end: int) -> list[tuple[int, int]]:
        service = self.services.get("transactions")
        if service is None:
            return []
        result: list[tuple[int, int]] = service.aborted_transactions(partition, start, end)
        return result

    # --- groups (the group coordinator module registers itself here) -------------------------

    def describe_group(self, group_id: str) -> Any:
        return self.services["groups"].describe_group(group_id)

    def reset_offsets(
        self, group_id: str, topic: str, to: str | int = "earliest"
    ) -> dict[TopicPartition, int]:
        self._record_call("cluster.reset_offsets", {"group_id": group_id, "topic": topic, "to": to})
        result: dict[TopicPartition, int] = self.services["groups"].reset_offsets(
            group_id, topic, to
        )
        return result

    # --- snapshot and replay -----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        topics: dict[str, Any] = {}
        for name in sorted(self.controller.topics):
            topic = self.controller.topics[name]
            partitions = []
            for number in sorted(topic.partitions):
                registration = topic.partitions[number]
                tp = TopicPartition(name, number)
                replicas: dict[str, dict[str, Any] | None] = {}
                for broker_id in registration.replicas:
                    replica = self._brokers[broker_id].partitions.get(tp)
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
                    replicas.get(str(registration.leader))
                    if registration.leader != NO_LEADER
                    else None
                )
                partitions.append(
                    {
                        "partition": number,
                        "leader": registration.leader,
                        "leader_epoch": registration.leader_epoch,
                        "partition_epoch": registration.partition_epoch,
                        "replicas": list(registration.replicas),
                        "isr": list(registration.isr),
                        "high_watermark": leader_replica["high_watermark"]
                        if leader_replica
                        else None,
                        "log_end_offset": leader_replica["log_end_offset"]
                        if leader_replica
                        else None,
                        "replica_logs": replicas,
                    }
                )
            topics[name] = {
                "internal": topic.internal,
                "config": _jsonable(topic.config),
                "partitions": partitions,
            }
        snapshot: dict[str, Any] = {
            "now_ms": self.now_ms,
            "seed": self.seed,
            "controllers": [
                {"id": c.id, "alive": c.alive, "is_active": c.is_active} for c in self.controllers()
            ],
            "quorum_epoch": self.controller.quorum_epoch,
            "brokers": [
                {
                    "id": b.id,
                    "alive": b.alive,
                    "fenced": b.fenced,
                    "in_controlled_shutdown": b.in_controlled_shutdown,
                    "lost_responses_pending": self._brokers[b.id].lost_responses,
                }
                for b in self.brokers()
            ],
            "topics": topics,
            "network": {
                "groups": [sorted(map(str, g)) for g in self.network.groups],
                "in_flight": [
                    {
                        "id": m.id,
                        "from": m.source,
                        "to": m.destination,
                        "kind": m.kind,
                        "sent_ms": m.sent_ms,
                        "arrives_ms": m.arrives_ms,
                    }
                    for m in self.network.in_flight.values()
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
                for p in self.producers
            ],
            "consumers": [
                {
                    "client_id": c.client_id,
                    "group_id": c.group_id,
                    "closed": c.closed,
                    "crashed": c.crashed,
                    "assignment": [[tp.topic, tp.partition] for tp in sorted(c.assigned)],
                    "positions": [
                        [tp.topic, tp.partition, o] for tp, o in sorted(c.positions.items())
                    ],
                    "consumed": c.consumed_records,
                }
                for c in self.consumers
            ],
            "event_count": len(self._events),
        }
        for name, service in sorted(self.services.items()):
            snap = getattr(service, "snapshot", None)
            if snap is not None:
                snapshot[name] = snap()
        return snapshot

    def export_log(self) -> list[dict[str, Any]]:
        return [_jsonable(entry) for entry in self._log]

    @classmethod
    def from_log(cls, log: list[dict[str, Any]]) -> Cluster:
        if not log or log[0].get("op") != "cluster.new":
            raise ValueError("A cluster log starts with its constructor entry (op cluster.new).")
        first = _from_jsonable(log[0])
        cluster = cls(
            brokers=first["brokers"],
            seed=first["seed"],
            config=first.get("config") or None,
            controllers=first["controllers"],
            limits=first.get("limits"),
        )
        for entry in log[1:]:
            cluster.apply_logged(entry)
        return cluster

    def apply_logged(self, entry: dict[str, Any]) -> None:
        """Re-apply one entry of an exported log (errors raised the first time are raised and
        swallowed again, since they changed nothing)."""
        args = _from_jsonable(dict(entry))
        op = args.pop("op")
        self._replaying = True
        try:
            _dispatch(self, op, args)
        except (KafkaError, ValueError, TypeError):
            pass
        finally:
            self._replaying = False
        self._log.append(dict(entry))


def _dispatch(cluster: Cluster, op: str, args: dict[str, Any]) -> None:
    owner, _, method = op.partition(".")
    if owner == "cluster":
        renames = {
            "stop_broker": "broker_id",
            "start_broker": "broker_id",
            "shutdown_broker": "broker_id",
            "stop_controller": "controller_id",
            "start_controller": "controller_id",
        }
        if method in renames and "id" in args:
            args[renames[method]] = args.pop("id")
        if method == "partition_network":
            args["groups"] = [set(g) for g in args["groups"]]
        getattr(cluster, method)(**args)
    elif owner == "producer":
        producer = cluster.producers[args.pop("producer") - 1]
        if method == "send":
            producer.send(**args)
        elif method == "send_offsets_to_transaction":
            producer.send_offsets_to_transaction(
                {TopicPartition(t, p): o for t, p, o in args["offsets"]}, args["group_id"]
            )
        elif method == "future.get":
            pass
        else:
            getattr(producer, method)(**args)
    elif owner == "future":
        producer = cluster.producers[args["producer"] - 1]
        future = producer._pending.get(args["future"])
        if future is not None:
            future.get(args.get("timeout_ms"))
    elif owner == "consumer":
        consumer = cluster.consumers[args.pop("consumer") - 1]
        if method in ("assign",):
            consumer.assign([TopicPartition(*tp) for tp in args["partitions"]])
        elif method == "seek":
            consumer.seek(TopicPartition(*args["tp"]), args["offset"])
        elif method == "seek_to":
            tps = [TopicPartition(*tp) for tp in args["tps"]]
            consumer._seek_to(args["where"], tps)
        elif method == "position":
            consumer.position(TopicPartition(*args["tp"]))
        elif method == "commit":
            offsets = args.get("offsets")
            consumer.commit(
                None if offsets is None else {TopicPartition(t, p): o for t, p, o in offsets}
            )
        else:
            getattr(consumer, method)(**args)
    elif op in _CUSTOM_OPS:
        _CUSTOM_OPS[op](cluster, args)
    else:
        raise ValueError(f"Unknown logged operation {op!r}.")


# Modules that add to the cluster (groups, transactions, apps) register here.
_EXTENSIONS: list[Callable[[Cluster], None]] = []
_PRODUCER_HOOKS: list[Callable[[Any], None]] = []
_CUSTOM_OPS: dict[str, Callable[[Cluster, dict[str, Any]], None]] = {}
# Modules that register themselves above when first imported.
_EXTENSION_MODULES = (
    "engine.log_cleaner",
    "engine.transaction_coordinator",
    "engine.group_coordinator",
    "engine.apps",
)


def _load_extensions() -> None:
    import importlib

    for name in _EXTENSION_MODULES:
        importlib.import_module(name)


def _copy(registration: Any) -> Any:
    from engine.metadata import BrokerRegistration

    return BrokerRegistration(
        registration.id,
        registration.fenced,
        registration.in_controlled_shutdown,
        registration.epoch,
    )


_PLAIN_TYPES = frozenset((str, int, float, bool, type(None)))
_LOGGED_AS_IS = _PLAIN_TYPES | {bytes}


def _jsonable(value: Any) -> Any:
    if type(value) in _PLAIN_TYPES:  # the common case, checked first: the log records every send
        return value
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = sorted(value, key=str) if isinstance(value, set) else value
        return [_jsonable(v) for v in items]
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


def iter_partitions(cluster: Cluster) -> Iterable[tuple[TopicPartition, Any]]:
    for name, topic in sorted(cluster.controller.topics.items()):
        for number in sorted(topic.partitions):
            yield TopicPartition(name, number), topic.partitions[number]
