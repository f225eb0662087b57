"""The `Cluster` facade: the one object lessons, the web app and tests drive (ENGINE_API.md).

It wires the clock, the network, the controller quorum, the brokers and the clients together and
holds every public method. The command log lives in `engine.sim.command_log`, the read-only views
(describe_topic, read, snapshot) in `engine.cluster_views`, topic-name rules in
`engine.common.topic_admin`; the names other modules import from here are re-exported below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from random import Random
from types import MappingProxyType
from typing import Any

from engine.checker import History, check
from engine.clients.admin import AdminClient, NewTopic
from engine.clients.apps.app_service import AppService
from engine.clients.consumer.kafka_consumer import KafkaConsumer
from engine.clients.producer.kafka_producer import KafkaProducer
from engine.clients.producer.transaction_manager import attach_transaction_manager
from engine.cluster_views import (
    BrokerState,
    ControllerState,
    PartitionDescription,
    QuorumDescription,
    TopicDescription,
    broker_states,
    build_snapshot,
    controller_states,
    describe_quorum,
    iter_partitions,
    leader_log_partition,
    list_offsets,
    read_log,
)
from engine.cluster_views import describe_topic as _describe_topic
from engine.common.config import broker_config, topic_defaults
from engine.common.events import Event
from engine.common.metadata import NO_LEADER
from engine.common.records import ConsumerRecord, TopicPartition
from engine.common.requests import ApiKey, Reply, Request
from engine.common.topic_admin import (
    INTERNAL_TOPICS,
    LEGAL_TOPIC,
    MAX_TOPIC_LENGTH,
    validate_new_topic,
    validate_topic_name,
)
from engine.controller.controller_apis import ControllerApis
from engine.controller.quorum_controller import QuorumController
from engine.coordinator.group.group_service import GroupDescription, GroupService
from engine.coordinator.transaction.transaction_coordinator import TransactionService
from engine.coordinator.transaction.transactional_offsets import TransactionalOffsets
from engine.errors import (
    ClusterUnavailableError,
)
from engine.server.broker import Broker
from engine.server.remote_requests import RemoteClients
from engine.sim.clock import Scheduler
from engine.sim.command_log import (
    SEND_SHAPE,
    EntryRun,
    _dispatch,
    _from_jsonable,
    _jsonable,
    log_entry,
    logged_as_is,
    replay_entry,
    shape_of,
)
from engine.sim.context import Nodes, SimContext, Taps
from engine.sim.limits import ResourceLimits
from engine.sim.network import CLIENTS, Network
from engine.storage.log_cleaner import LogCleaner
from engine.storage.transaction_index import aborted_transactions

# Names other modules and older callers import from `engine.cluster`.
__all__ = [
    "INTERNAL_TOPICS",
    "LEGAL_TOPIC",
    "MAX_TOPIC_LENGTH",
    "BrokerState",
    "Cluster",
    "ControllerState",
    "PartitionDescription",
    "QuorumDescription",
    "TopicDescription",
    "_dispatch",
    "_from_jsonable",
    "_jsonable",
    "iter_partitions",
    "validate_topic_name",
]

# The distinct advance lengths a log shares one int object for (`Cluster._advance_lengths`).
MAX_ADVANCE_LENGTHS = 4096

# The events a cluster holds (`Cluster.events`), newest kept: a few hundred bytes each, so
# about 10 MiB at most, hours of any lesson's events.
MAX_EVENTS = 25_000

# How long a broker keeps retrying to forward an admin request to the controller before it
# answers REQUEST_TIMED_OUT (Kafka's BrokerServer gives its forwarding channel 60000 ms).
FORWARDING_RETRY_TIMEOUT_MS = 60_000
# The admin requests a broker forwards to the active controller (Kafka's ForwardingManager).
FORWARDED_APIS = frozenset(
    (
        ApiKey.CREATE_TOPICS,
        ApiKey.DELETE_TOPICS,
        ApiKey.CREATE_PARTITIONS,
        ApiKey.INCREMENTAL_ALTER_CONFIGS,
        ApiKey.ELECT_LEADERS,
        ApiKey.ALTER_PARTITION_REASSIGNMENTS,
        ApiKey.LIST_PARTITION_REASSIGNMENTS,
    )
)


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
        self._log: list[dict[str, Any] | EntryRun] = [
            {"op": "cluster.new", **_jsonable(self._constructor)}
        ]
        # The fields of the EntryRun at the end of the log, while it is the last entry.
        self._run: list[Any] | None = None
        # The log's entry shapes, one tuple per kind (`shape_of`), and the lengths of its
        # advances, one int object each (a live host's ticks take a handful of values, and ints
        # past 256 are not shared by Python itself); both bounded.
        self._shapes: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._advance_lengths: dict[int, int] = {}
        self._depth = 0
        self._replaying = False
        # The most recent events (at most `max_events` and a quarter, trimmed in steps), and how
        # many older ones were dropped: positions in `events` are absolute minus that count.
        self._events: list[Event] = []
        self._events_dropped = 0
        self.max_events = MAX_EVENTS
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
        # The controller quorum's request handler: the admin APIs (CreateTopics, ...).
        self.controller_apis = ControllerApis(
            self.controller,
            self.topic_defaults,
            self.limits,
            self.broker_ids,
            frozenset(config or {}),
        )
        self.nodes = Nodes(self._brokers)
        self.taps = Taps(self.nodes)
        # The one context every component gets instead of the cluster.
        self.ctx = SimContext(
            scheduler=self.scheduler,
            network=self.network,
            rng=self.rng,
            emit=self.emit,
            record_call=self._record_call,
            record_send=self._record_send,
            run_until=self._run_until,
            unrecorded=self._unrecorded,
            limits=self.limits,
            nodes=self.nodes,
            taps=self.taps,
        )
        for broker_id in range(1, brokers + 1):
            broker = Broker(
                self.ctx,
                broker_id,
                self.broker_config,
                self.topic_defaults,
                self.controller,
                self._create_topic,
                self.allocate_producer_id,
            )
            self._brokers[broker_id] = broker
            self.controller.register_broker_node(broker)
        self.producers: list[KafkaProducer] = []
        self.consumers: list[KafkaConsumer] = []
        self._next_producer_id = 1000
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
        # The record of what was acknowledged and consumed, for `engine.checker.check`.
        self.history = History(
            lambda: self.scheduler.now_ms,
            self.limits.max_retained_records,
            lambda history: check(self, history),
        )
        self.taps.history = self.history
        # The components that live beside the brokers, wired in a fixed order (their timers are
        # scheduled in this order, so the order is part of the simulation).
        self.log_cleaner = LogCleaner(self.ctx, self.broker_config)
        for broker in self._brokers.values():
            broker.log_cleaner = self.log_cleaner
        self.transactions = TransactionService(
            self.ctx,
            self.broker_config,
            self.controller,
            self._create_topic,
            self.allocate_producer_id,
        )
        for broker in self._brokers.values():
            broker.transaction_coordinator = self.transactions.coordinators[broker.id]
        for broker in self._brokers.values():
            broker.txn_offsets = TransactionalOffsets(self.ctx, broker)
        self.groups = GroupService(
            self.ctx,
            self.broker_config,
            self.controller,
            self._create_topic,
            self._leader_log_partition,
        )
        for broker in self._brokers.values():
            broker.group_coordinator = self.groups.coordinators[broker.id]
        self.transactions.groups = self.groups
        self.apps = AppService(self.ctx, self.producer, self.consumer)
        # Real Kafka clients' requests (the wire front door above the engine), recorded.
        self.remote = RemoteClients(self)
        self._admin = AdminClient(self.ctx, self._controller_request)

    # --- recording and time ------------------------------------------------------------------

    def _record_call(self, op: str, args: dict[str, Any]) -> None:
        if self._depth == 0 and not self._replaying:
            if logged_as_is(args):  # the commonest case: flat, in the log's open run
                run = self._run
                if run is None:
                    run = self._open_run()
                run.append(shape_of(op, args, self._shapes))
                run.extend(args.values())
            else:
                self._log.append(log_entry(op, args))
                self._run = None

    def _record_send(self, producer: int, topic: str, value: bytes | None, key: bytes) -> None:
        """`_record_call("producer.send", ...)` for a keyed send whose arguments are all in their
        logged form (no partition, headers or timestamp), without building its dict."""
        if self._depth == 0 and not self._replaying:
            run = self._run
            if run is None:
                run = self._open_run()
            run += (SEND_SHAPE, producer, topic, value, key, None, None, None)

    def _open_run(self) -> list[Any]:
        run = EntryRun()
        self._log.append(run)
        self._run = run.fields
        return run.fields

    def seal_log(self) -> None:
        """Close the log's open `EntryRun`: later entries start a new one, so every entry
        already in the log stays as it is from now on (what a copy sharing its items relies on).
        The entries `export_log` hands out do not change."""
        self._run = None

    @contextmanager
    def _unrecorded(self) -> Iterator[None]:
        """Calls made inside are part of an already recorded call, not new entries."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def _run_until(self, stop: Callable[[], bool], deadline_ms: int) -> bool:
        self._depth += 1
        try:
            return self.scheduler.run_until(deadline_ms, stop)
        finally:
            self._depth -= 1

    @property
    def services(self) -> Mapping[str, Any]:
        """A read-only view of the wired components by name, for older callers and tests; the
        engine itself uses the typed attributes (`apps`, `groups`, `log_cleaner`,
        `transactions`)."""
        return MappingProxyType(
            {
                "apps": self.apps,
                "groups": self.groups,
                "log_cleaner": self.log_cleaner,
                "transactions": self.transactions,
                "remote": self.remote,
            }
        )

    @property
    def events(self) -> list[Event]:
        """What happened, in order: every event, or in a cluster that ran long the most recent
        `max_events` or more (`events_dropped` says how many came before). Read it; don't
        change it."""
        return self._events

    @property
    def events_dropped(self) -> int:
        """How many of the oldest events `events` no longer holds (0 until the bound is hit)."""
        return self._events_dropped

    @property
    def event_count(self) -> int:
        """Every event emitted so far, the dropped ones included: an event's absolute index is
        `events_dropped` plus its position in `events`."""
        return self._events_dropped + len(self._events)

    def events_since(self, index: int) -> list[Event]:
        """The events still held whose absolute index is `index` or more."""
        return self._events[max(0, index - self._events_dropped) :]

    @property
    def now_ms(self) -> int:
        return self.scheduler.now_ms

    def advance(self, ms: int) -> None:
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
            raise ValueError("advance takes a whole, non-negative number of milliseconds")
        if ms > self.limits.max_advance_ms:
            raise ValueError(f"advance is limited to {self.limits.max_advance_ms} ms at a time")
        lengths = self._advance_lengths
        if ms in lengths:
            ms = lengths[ms]
        elif len(lengths) < MAX_ADVANCE_LENGTHS:
            lengths[ms] = ms
        self._record_call("cluster.advance", {"ms": ms})
        # _run_until with no stop condition: the scheduler's loop that checks none per timer.
        self._depth += 1
        try:
            self.scheduler.run_until(self.now_ms + ms)
        finally:
            self._depth -= 1

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        event = Event(self.scheduler.now_ms, kind, data)
        events = self._events
        events.append(event)
        if len(events) > self.max_events + self.max_events // 4:
            # A bounded window, like every other per-cluster list: a fault left running (a
            # producer app refused at the record bound, retries while the ISR is short) emits
            # events for as long as it runs. Dropped a quarter at a time, so amortised.
            excess = len(events) - self.max_events
            del events[:excess]
            self._events_dropped += excess
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
        # Names and counts are checked before the request is forwarded to the controller.
        validate_new_topic(name, partitions, replication_factor)
        with self._unrecorded():
            new_topic = NewTopic(name, partitions, replication_factor, config)
            self._admin.create_topics([new_topic]).all()

    def _create_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        config: dict[str, Any] | None,
        internal: bool = False,
    ) -> None:
        """How coordinators and auto-creation create a topic (no name or count checks)."""
        self.controller_apis.create_topic(name, partitions, replication_factor, config, internal)

    def delete_topic(self, name: str) -> None:
        self._record_call("cluster.delete_topic", {"name": name})
        with self._unrecorded():
            self._admin.delete_topics([name]).all()

    def add_partitions(self, name: str, total: int) -> None:
        self._record_call("cluster.add_partitions", {"name": name, "total": total})
        with self._unrecorded():
            self._admin.create_partitions({name: total}).all()

    def alter_topic_config(self, name: str, config: dict[str, Any]) -> None:
        """Set topic configs; a value of None deletes the topic's own setting, so the key
        follows the broker's default again (`kafka-configs --delete-config`)."""
        self._record_call("cluster.alter_topic_config", {"name": name, "config": config})
        with self._unrecorded():
            admin = self._admin
            given: Any = {} if config is None else config
            if not isinstance(given, Mapping):
                admin.incremental_alter_configs({name: given}).all()  # refused: not a mapping
                return
            sets = {k: v for k, v in given.items() if v is not None}
            deleted = [k for k, v in given.items() if v is None]
            admin.incremental_alter_configs({name: sets}, delete={name: deleted}).all()

    def _controller_request(self, request: Request, reply: Reply) -> None:
        """The admin client's way to the controller quorum: requests that change metadata are
        forwarded by a broker (and wait for an active controller), the others answered."""
        if request.api_key in FORWARDED_APIS:
            self._forward_to_controller(
                "".join(part.capitalize() for part in request.api_key.name.split("_"))
            )
        self.controller_apis.handle(request, reply)

    def _forward_to_controller(self, api: str) -> None:
        """A broker forwards admin requests that change metadata to the active controller
        (Kafka's ForwardingManager). With none elected it keeps retrying for its forwarding
        retry timeout (BrokerServer: retryTimeoutMs = 60000) and then answers the request with
        REQUEST_TIMED_OUT. The call blocks meanwhile, so the cluster's clock runs on; a quorum
        that comes back in time lets the request through."""
        controller = self.controller
        if controller.has_quorum():
            return
        started = self.now_ms
        if self._run_until(controller.has_quorum, started + FORWARDING_RETRY_TIMEOUT_MS):
            return
        self.emit(
            "controller_request_timed_out",
            {"api": api, "waited_ms": self.now_ms - started, "error": "TimeoutException"},
        )
        raise ClusterUnavailableError(
            f"{api} timed out: no active controller answered the forwarded request within "
            f"{FORWARDING_RETRY_TIMEOUT_MS} ms (REQUEST_TIMED_OUT)."
        )

    def list_topics(self) -> list[str]:
        return sorted(self.controller.topics)

    def _leader_log_partition(self, topic: str, partition: int) -> Any:
        return leader_log_partition(self, topic, partition)

    def describe_topic(self, name: str) -> TopicDescription:
        return _describe_topic(self, name)

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
        return read_log(self, topic, partition, offset, max_records, replica, isolation_level)

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
        return broker_states(self)

    def controllers(self) -> list[ControllerState]:
        return controller_states(self)

    def elect_leaders(self, topic: str, partition: int, election_type: str = "preferred") -> None:
        self._record_call(
            "cluster.elect_leaders",
            {"topic": topic, "partition": partition, "election_type": election_type},
        )
        with self._unrecorded():
            self._admin.elect_leaders(election_type, [TopicPartition(topic, partition)]).all()

    def admin(self) -> AdminClient:
        """The cluster's admin client (Kafka's Admin API on the request catalogue)."""
        return self._admin

    # --- clients -----------------------------------------------------------------------------

    def producer(self, config: dict[str, Any] | None = None) -> KafkaProducer:
        self._record_call("cluster.producer", {"config": config})
        self.limits.check_clients(len(self.producers) + len(self.consumers))
        producer = KafkaProducer(self.ctx, config, len(self.producers) + 1)
        self.producers.append(producer)
        attach_transaction_manager(producer)
        return producer

    def consumer(self, config: dict[str, Any] | None = None) -> KafkaConsumer:
        self._record_call("cluster.consumer", {"config": config})
        self.limits.check_clients(len(self.producers) + len(self.consumers))
        consumer = KafkaConsumer(self.ctx, config, len(self.consumers) + 1)
        self.consumers.append(consumer)
        return consumer

    def allocate_producer_id(self) -> int:
        self._next_producer_id += 1
        return self._next_producer_id

    # --- hooks used by brokers and clients ---------------------------------------------------

    @property
    def retained_records(self) -> int:
        """Records held in every replica's log (counted as brokers append and truncate)."""
        return self.taps.retained_records

    @property
    def retained_bytes(self) -> int:
        return self.taps.retained_bytes

    def recount_retained(self) -> None:
        self.taps.recount_retained()

    def aborted_transactions(self, partition: Any, start: int, end: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of the aborted transactions overlapping [start, end) in
        this replica's log, from its aborted-transaction index."""
        return aborted_transactions(partition, start, end)

    # --- groups ------------------------------------------------------------------------------

    def describe_group(self, group_id: str) -> GroupDescription:
        return self.groups.describe_group(group_id)

    def reset_offsets(
        self, group_id: str, topic: str, to: str | int = "earliest"
    ) -> dict[TopicPartition, int]:
        self._record_call("cluster.reset_offsets", {"group_id": group_id, "topic": topic, "to": to})
        return self.groups.reset_offsets(group_id, topic, to)

    def alter_group_offsets(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        """Commit the given offsets for an inactive group (Kafka's AlterConsumerGroupOffsets, as
        `kafka-consumer-groups --reset-offsets --execute` sends it); `GroupNotEmptyError` while
        the group has members."""
        self._record_call(
            "cluster.alter_group_offsets",
            {
                "group_id": group_id,
                "offsets": [[tp.topic, tp.partition, o] for tp, o in sorted(offsets.items())],
            },
        )
        self.groups.alter_offsets(group_id, dict(offsets))

    def delete_group(self, group_id: str) -> None:
        """Delete an inactive group with its committed offsets (Kafka's DeleteGroups):
        `GroupNotEmptyError` while it has members, `GroupIdNotFoundError` when unknown."""
        self._record_call("cluster.delete_group", {"group_id": group_id})
        self.groups.delete_group(group_id)

    def delete_group_offsets(
        self, group_id: str, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, str]:
        """Delete a group's committed offsets of the given partitions (Kafka's OffsetDelete):
        per partition "" or `GROUP_SUBSCRIBED_TO_TOPIC` when a member still subscribes to its
        topic; `GroupIdNotFoundError` for an unknown group."""
        self._record_call(
            "cluster.delete_group_offsets",
            {"group_id": group_id, "partitions": [[tp.topic, tp.partition] for tp in partitions]},
        )
        return self.groups.delete_offsets(group_id, [TopicPartition(*tp) for tp in partitions])

    def list_groups(self) -> list[str]:
        """Every group a running coordinator knows, sorted (Kafka's ListGroups)."""
        return self.groups.list_groups()

    def list_offsets(self, topic: str, partition: int, spec: str | int = "latest") -> int | None:
        """Kafka's ListOffsets as an admin sees it: `"earliest"` (log start), `"latest"` (high
        watermark), `"max-timestamp"` (the record with the largest timestamp) or a timestamp (the
        first offset whose record's timestamp is at least it); None when no offset matches.
        Raises `LeaderNotAvailableError` while the partition has no leader."""
        return list_offsets(self, topic, partition, spec)

    def describe_quorum(self) -> QuorumDescription:
        """The KRaft metadata quorum (Kafka's DescribeQuorum): leader, epoch, high watermark and
        each voter's and observer's (broker's) replication state."""
        return describe_quorum(self)

    # --- snapshot and replay -----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return build_snapshot(self)

    def export_log(self) -> list[dict[str, Any]]:
        exported: list[dict[str, Any]] = []
        for entry in self._log:
            if isinstance(entry, EntryRun):
                exported.extend(map(_jsonable, entry.entries()))
            else:
                exported.append(_jsonable(entry))
        return exported

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
        self._replaying = True
        try:
            replay_entry(self, entry)
        finally:
            self._replaying = False
        self._log.append(dict(entry))
        self._run = None


def _copy(registration: Any) -> Any:
    from engine.common.metadata import BrokerRegistration

    return BrokerRegistration(
        registration.id,
        registration.fenced,
        registration.in_controlled_shutdown,
        registration.epoch,
    )
