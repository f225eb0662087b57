"""A broker node (Kafka's `KafkaServer`/`BrokerServer`): its lifecycle, its heartbeats to the
KRaft controller, its metadata cache and replicas, and the produce, consumer fetch and list
offsets work its request handler (`engine.server.kafka_apis.KafkaApis`) dispatches to.

It owns and wires the components that live on a broker: the follower's fetcher
(`engine.server.replica_fetcher`), the leader's answer to followers
(`engine.server.replica_manager`) and the fetches parked until there is data
(`engine.server.delayed_fetch`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.common.config import TOPIC_BROKER_SYNONYMS
from engine.common.metadata import (
    NO_LEADER,
    BrokerRegistration,
    MetadataRecord,
    PartitionRegistration,
)
from engine.common.records import Record, RecordBatch, TopicPartition
from engine.common.requests import Request
from engine.coordinator.transaction.transaction_state import TRANSACTION_STATE_TOPIC
from engine.errors import RESOURCE_LIMIT_EXCEEDED, KafkaError, ResourceLimitError, protocol_name
from engine.server.delayed_fetch import FetchPurgatory, ParkedFetch
from engine.server.fetch_session import ConsumerFetchSessionCache, FetchSessionCache
from engine.server.kafka_apis import KafkaApis
from engine.server.partition import DelayedProduce, Partition
from engine.server.replica_fetcher import ReplicaFetcher
from engine.server.replica_manager import (
    FetchPartitionData,
    FollowerFetchPartition,
    ReplicaManager,
    Reply,
    read_batches,
)
from engine.sim.clock import Timer
from engine.sim.context import SimContext
from engine.sim.network import DISCONNECTED, request
from engine.storage.transaction_index import aborted_transactions

if TYPE_CHECKING:
    from engine.controller.quorum_controller import QuorumController
    from engine.coordinator.group.group_coordinator import GroupCoordinator
    from engine.coordinator.transaction.transaction_coordinator import TransactionCoordinator
    from engine.coordinator.transaction.transactional_offsets import TransactionalOffsets
    from engine.sim.context import CreateTopic
    from engine.storage.log_cleaner import LogCleaner


@dataclass(slots=True)
class TopicView:
    """A broker's cached view of a topic (its `MetadataCache`)."""

    name: str
    config: dict[str, Any]
    partitions: dict[int, PartitionRegistration] = field(default_factory=dict)
    internal: bool = False
    # The controller's effective config and the keys the topic sets itself: `config` is that
    # config with this broker's own dynamic broker config applied to the other keys.
    cluster_config: dict[str, Any] = field(default_factory=dict)
    overrides: frozenset[str] = frozenset()


class Broker:
    def __init__(
        self,
        ctx: SimContext,
        broker_id: int,
        config: dict[str, Any],
        topic_defaults: dict[str, Any],
        controller: QuorumController,
        create_topic: CreateTopic,
        allocate_producer_id: Callable[[], int],
    ) -> None:
        self.ctx = ctx
        self.id = broker_id
        self.config = config
        self.topic_defaults = topic_defaults
        self.controller = controller
        self.alive = True
        self.partitions: dict[TopicPartition, Partition] = {}
        self.topics: dict[str, TopicView] = {}
        self.brokers: dict[int, BrokerRegistration] = {}
        self.metadata_offset = 0
        # This broker's own dynamic broker config (DYNAMIC_BROKER_CONFIG), from the metadata log.
        self.dynamic_config: dict[str, Any] = {}
        self.lost_responses = 0
        self.fetcher = ReplicaFetcher(self)
        self.replica_manager = ReplicaManager(self)
        self.purgatory = FetchPurgatory(self)
        # The fetch sessions followers hold here (KIP-227), and a count that moves whenever
        # the set of replicas on this broker or their leaders change (a follower's session
        # with a leader lists the partitions it follows there, so it starts over then).
        self.fetch_sessions = FetchSessionCache()
        self.consumer_fetch_sessions = ConsumerFetchSessionCache()
        self.replica_layout = 0
        # A count that moves whenever a replica here changes leader, epoch, ISR or follower
        # states, or a replica comes or goes: quiet session partitions are re-checked then.
        self.replica_states = 0
        # The one request handler: every API this broker serves.
        self.apis = KafkaApis(self, create_topic, allocate_producer_id)
        self._timers: list[Timer] = []
        self.want_shutdown = False
        self.incarnation = 0
        self.heartbeat_phase_ms = 0
        self._heartbeat_timer: Timer | None = None
        # The ISR expiration check (every replica.lag.time.max.ms / 2, from the broker's
        # start): its next timer, or None while it is dormant, and since when it is.
        self._isr_check_timer: Timer | None = None
        self._isr_check_phase_ms = 0
        self._isr_interval_ms = 0
        self._isr_dormant_since: int | None = None
        # Coordinators living on this broker, attached by later modules.
        # The coordinators this broker hosts; the facade wires them once every broker exists.
        self.transaction_coordinator: TransactionCoordinator | None = None
        self.txn_offsets: TransactionalOffsets | None = None
        self.group_coordinator: GroupCoordinator | None = None
        # The log cleaner, told when this broker's replicas or their configs change, so that
        # a sleeping cleaner wakes; the facade wires it.
        self.log_cleaner: LogCleaner | None = None

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        return self.ctx.scheduler.now_ms

    def emit_log_event(self, kind: str, data: dict[str, Any]) -> None:
        self.ctx.emit(kind, {**data, "broker": self.id})

    def handle_request(self, request: Request, reply: Reply) -> None:
        """A request arrived over the network: `KafkaApis` dispatches it by API key."""
        self.apis.handle(request, reply)

    def lose_reply(self) -> bool:
        if self.lost_responses > 0:
            self.lost_responses -= 1
            self.ctx.emit("response_lost", {"broker": self.id})
            return True
        return False

    def is_broker_eligible(self, broker_id: int) -> bool:
        registration = self.brokers.get(broker_id)
        return (
            registration is not None
            and not registration.fenced
            and not registration.in_controlled_shutdown
        )

    def topic_config(self, topic: str) -> dict[str, Any]:
        view = self.topics.get(topic)
        return view.config if view else self.topic_defaults

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.alive = True
        self.want_shutdown = False
        self.incarnation += 1
        self.replica_layout += 1
        self.replica_states += 1
        # A restarted broker replays the metadata image before acting on it (its replicas were
        # reset to followers below), so it asks the controller for everything again.
        self.metadata_offset = 0
        incarnation = self.incarnation
        self.heartbeat_phase_ms = self.ctx.scheduler.now_ms
        self._heartbeat_timer = None
        self.wake_heartbeats(at_once=True)
        self._isr_check_phase_ms = self.ctx.scheduler.now_ms
        self._isr_interval_ms = int(self.config["replica.lag.time.max.ms"]) // 2
        self._isr_dormant_since = None
        self._schedule_isr_check(self.ctx.scheduler.now_ms + self._isr_check_interval())
        self._every(
            int(self.config["log.retention.check.interval.ms"]), self._retention, incarnation
        )
        # Replicas of a restarted broker start as followers until metadata says otherwise.
        for partition in self.partitions.values():
            partition.leader_id = NO_LEADER
            partition.followers = {}
        if self.log_cleaner is not None:
            self.log_cleaner.wake(self.id)

    def stop(self) -> None:
        self.alive = False
        self.incarnation += 1
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
            self._heartbeat_timer = None
        if self._isr_check_timer is not None:
            self._isr_check_timer.cancel()
            self._isr_check_timer = None
        self._isr_dormant_since = None
        # Leaders learn of a follower's death at their next ISR check: wake theirs.
        for other in self.ctx.nodes.broker_ids():
            if other != self.id:
                self.ctx.nodes.broker_by_id(other).wake_isr_checks()
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        self.fetcher.stop()
        self.purgatory.stop()
        self.fetch_sessions.clear()
        self.consumer_fetch_sessions.clear()
        self.replica_layout += 1
        self.replica_states += 1
        # Followers fetching from this broker see their connections reset.
        for other in self.ctx.nodes.broker_ids():
            follower = self.ctx.nodes.broker_by_id(other)
            if other != self.id and follower.alive and self.id in follower.fetcher.fetching_from:
                self.ctx.network.send(
                    self.id, other, "disconnect", partial(follower.fetcher.connection_lost, self.id)
                )
        for partition in self.partitions.values():
            partition.delayed_produces = []
            partition.pending_isr = None
        for coordinator in self._hosted():
            coordinator.on_broker_stopped()

    def _every(
        self,
        interval_ms: int,
        action: Callable[[], None],
        incarnation: int,
        first_delay: int | None = None,
    ) -> None:
        def tick() -> None:
            if not self.alive or self.incarnation != incarnation:
                return
            action()
            self._timers.append(self.ctx.scheduler.call_later(interval_ms, tick))

        delay = interval_ms if first_delay is None else first_delay
        self._timers.append(self.ctx.scheduler.call_later(delay, tick))

    def _isr_check_interval(self) -> int:
        """replica.lag.time.max.ms / 2, as it was when the broker started."""
        return self._isr_interval_ms

    def _schedule_isr_check(self, due_ms: int) -> None:
        incarnation = self.incarnation

        def tick() -> None:
            self._isr_check_timer = None
            if not self.alive or self.incarnation != incarnation:
                return
            self._isr_expiration()
            if self._isr_checks_steady():
                self._isr_dormant_since = self.ctx.scheduler.now_ms
            else:
                self._schedule_isr_check(self.ctx.scheduler.now_ms + self._isr_check_interval())

        self._isr_check_timer = self.ctx.scheduler.call_at(due_ms, tick)

    def _isr_expiration(self) -> None:
        self._timers = [
            t for t in self._timers if not t.cancelled and t.due_ms >= self.ctx.scheduler.now_ms
        ]
        for partition in list(self.partitions.values()):
            if partition.is_leader:
                self.purgatory.refresh_followers(partition)
                partition.maybe_shrink_isr()

    def _isr_checks_steady(self) -> bool:
        """True when every ISR check from now on would only restamp the same followers as
        caught up: each ISR follower of each partition led here waits here, in a parked fetch,
        at the log end, and every parked follower is alive and reachable (R5 cannot expire
        anyone then). The checks then sleep, like steady heartbeats, and any change that could
        matter (a fetch, an append, a metadata or network change, a broker stopping) wakes
        them with the stamps they would have made (`wake_isr_checks`)."""
        nodes = self.ctx.nodes
        network = self.ctx.network
        parked = self.purgatory.parked_followers
        for follower_id, fetch in parked.items():
            if fetch.done:
                return False
            if not nodes.broker_by_id(follower_id).alive or not network.reachable(
                follower_id, self.id
            ):
                return False
        for partition in self.partitions.values():
            if not partition.is_leader:
                continue
            if partition.pending_isr is not None:
                return False
            end = partition.log.log_end_offset
            for replica in partition.isr:
                if replica == self.id:
                    continue
                state = partition.followers.get(replica)
                waiting = parked.get(replica)
                if (
                    waiting is None
                    or state is None
                    or state.log_end_offset < end
                    or not waiting.parked_with(partition.tp)
                ):
                    return False
        return True

    def wake_isr_checks(self) -> None:
        """Something changed that a sleeping ISR check may need to see: stamp the followers as
        the checks skipped since then would have (the last one at or before now), and schedule
        the next check on the broker's schedule."""
        since = self._isr_dormant_since
        if since is None or not self.alive:
            return
        self._isr_dormant_since = None
        interval = self._isr_check_interval()
        now = self.ctx.scheduler.now_ms
        last = since + ((now - since) // interval) * interval
        if last > since:
            watching = {
                follower_id: fetch
                for follower_id, fetch in self.purgatory.parked_followers.items()
                if not fetch.done
            }
            for partition in self.partitions.values():
                if not partition.is_leader:
                    continue
                end = partition.log.log_end_offset
                for follower_id, state in partition.followers.items():
                    if (
                        follower_id in watching
                        and watching[follower_id].parked_with(partition.tp)
                        and state.log_end_offset >= end
                    ):
                        state.last_caught_up_ms = last
                        state.last_fetch_ms = last
        self._schedule_isr_check(last + interval)

    def _retention(self) -> None:
        now = self.ctx.scheduler.now_ms
        for partition in list(self.partitions.values()):
            if partition.log.delete_old_segments(now):
                self._after_log_start_change(partition)

    def _after_log_start_change(self, partition: Partition) -> None:
        partition.producer_state.rebuild(
            list(partition.log.iter_batches(partition.log.log_start_offset))
        )

    # --- controller link ---------------------------------------------------------------------

    def heartbeat_steady(self) -> bool:
        """True when a heartbeat would change nothing: registered, unfenced, caught up with
        metadata and connected to the active controller. The controller then counts this
        broker's heartbeats as arriving on schedule without each one being simulated, which
        keeps long fast-forwards cheap; any fault wakes the real heartbeats again."""
        controller = self.controller
        registration = controller.brokers.get(self.id)
        return (
            registration is not None
            and not registration.fenced
            and not registration.in_controlled_shutdown
            and not self.want_shutdown
            and self.metadata_offset >= controller.metadata_offset
            and controller.connected(self.id)
        )

    def wake_heartbeats(self, at_once: bool = False) -> None:
        """(Re)start sending real heartbeats, on this broker's heartbeat schedule."""
        if not self.alive or self._heartbeat_timer is not None:
            return
        interval = int(self.config["broker.heartbeat.interval.ms"])
        elapsed = self.ctx.scheduler.now_ms - self.heartbeat_phase_ms
        delay = 0 if at_once or elapsed % interval == 0 else interval - elapsed % interval
        incarnation = self.incarnation

        def tick() -> None:
            self._heartbeat_timer = None
            if not self.alive or self.incarnation != incarnation or self.heartbeat_steady():
                return
            self.send_heartbeat()
            self._heartbeat_timer = self.ctx.scheduler.call_later(interval, tick)

        self._heartbeat_timer = self.ctx.scheduler.call_later(delay, tick)

    def last_scheduled_heartbeat_arrival(self) -> int:
        """When the last heartbeat due on this broker's schedule reached the controller."""
        interval = int(self.config["broker.heartbeat.interval.ms"])
        latency = self.ctx.network.latency_ms
        sent = (
            self.heartbeat_phase_ms
            + ((self.ctx.scheduler.now_ms - self.heartbeat_phase_ms) // interval) * interval
        )
        if sent + latency > self.ctx.scheduler.now_ms:
            sent -= interval
        return max(self.heartbeat_phase_ms, sent + latency)

    def send_heartbeat(self) -> None:
        controller = self.controller
        active = controller.active_id
        if active is None:
            return
        offset = self.metadata_offset
        want_shutdown = self.want_shutdown
        incarnation = self.incarnation

        def handle(reply: Reply) -> None:
            if not controller.has_quorum() or controller.active_id != active:
                return
            controller.handle_heartbeat(self.id, offset, want_shutdown)
            reply(controller.metadata_offset)

        def on_reply(response: object) -> None:
            if response is DISCONNECTED or self.incarnation != incarnation or not self.alive:
                return
            assert isinstance(response, int)
            if response > self.metadata_offset:
                self._catch_up_metadata()

        request(
            self.ctx.network,
            self.id,
            active,
            "heartbeat",
            lambda: controller.nodes[active].alive,
            handle,
            on_reply,
        )

    def _catch_up_metadata(self) -> None:
        offset, records = self.controller.full_image()
        self._apply_image(offset, records)

    def apply_metadata(self, record: MetadataRecord) -> None:
        if not self.alive:
            return
        if record.offset != self.metadata_offset + 1:
            if record.offset > self.metadata_offset:
                self._catch_up_metadata()
            return
        self.metadata_offset = record.offset
        self._apply_record(record)

    def _apply_image(self, offset: int, records: list[MetadataRecord]) -> None:
        if offset <= self.metadata_offset:
            return
        self.metadata_offset = offset
        self.dynamic_config = {}  # the image holds this broker's layer, if it has one
        known = {record.topic for record in records if record.kind == "topic"}
        for name in list(self.topics):
            if name not in known:
                self._remove_topic(name)
        for record in records:
            self._apply_record(record)

    def _apply_record(self, record: MetadataRecord) -> None:
        self._apply_metadata_record(record)
        if record.kind in ("topic", "config", "broker_config", "partition"):
            # A replica or its config changed: a sleeping cleaner or timed-out transactions
            # check may have work again.
            if self.log_cleaner is not None:
                self.log_cleaner.wake(self.id)
            if record.topic == TRANSACTION_STATE_TOPIC and self.transaction_coordinator:
                self.transaction_coordinator.service.wake_timeout_checks()

    def _apply_metadata_record(self, record: MetadataRecord) -> None:
        if record.kind == "broker" and record.broker is not None:
            self.brokers[record.broker.id] = record.broker
            if self.is_broker_eligible(record.broker.id):
                # An unfenced follower that is caught up rejoins the ISR without waiting for data.
                for partition in self.partitions.values():
                    state = partition.followers.get(record.broker.id)
                    if partition.is_leader and state is not None:
                        partition.maybe_expand_isr(state)
        elif record.kind == "topic":
            view = self.topics.get(record.topic)
            if view is None:
                view = TopicView(record.topic, {}, {}, record.internal)
                self.topics[record.topic] = view
            view.cluster_config, view.overrides = dict(record.config), record.overrides
            # In place: the partitions hosted here read this dict.
            view.config.clear()
            view.config.update(self._local_config(view))
        elif record.kind == "config":
            view = self.topics.get(record.topic)
            if view is not None:
                view.cluster_config, view.overrides = dict(record.config), record.overrides
                view.config.clear()
                view.config.update(self._local_config(view))
        elif record.kind == "broker_config":
            if record.topic == str(self.id):
                self.dynamic_config = dict(record.config)
                for view in self.topics.values():
                    view.config.clear()
                    view.config.update(self._local_config(view))
        elif record.kind == "remove_topic":
            self._remove_topic(record.topic)
        elif record.kind == "partition" and record.registration is not None:
            self._apply_partition(record.topic, record.partition, record.registration)

    def _local_config(self, view: TopicView) -> dict[str, Any]:
        """A topic's config on this broker: the controller's, with this broker's dynamic
        broker config (DYNAMIC_BROKER_CONFIG) for the keys the topic does not set itself."""
        config = dict(view.cluster_config)
        if self.dynamic_config:
            for topic_key, broker_key in TOPIC_BROKER_SYNONYMS.items():
                if topic_key not in view.overrides and broker_key in self.dynamic_config:
                    config[topic_key] = self.dynamic_config[broker_key]
        return config

    def _remove_topic(self, name: str) -> None:
        self.replica_layout += 1
        self.replica_states += 1
        self.wake_isr_checks()
        known = self.topics.pop(name, None) is not None
        for tp in [tp for tp in self.partitions if tp.topic == name]:
            partition = self.partitions.pop(tp)
            partition.fail_delayed_produces("UNKNOWN_TOPIC_OR_PARTITION")
            self.purgatory.forget_partition(tp)
        if known and self.alive and self.group_coordinator is not None:
            # Kafka's BrokerMetadataPublisher: GroupCoordinator.onPartitionsDeleted.
            self.group_coordinator.on_topic_deleted(name)

    def _stop_replica(self, tp: TopicPartition) -> None:
        """This broker is no longer a replica (a reassignment removed it): Kafka's
        `ReplicaManager.stopPartitions` drops the replica and answers what waited on it."""
        partition = self.partitions.pop(tp, None)
        if partition is None:
            return
        partition.fail_delayed_produces("NOT_LEADER_OR_FOLLOWER")
        self.purgatory.forget_partition(tp)
        if partition.is_leader:
            self._notify_coordinators(False, partition)

    def _apply_partition(
        self, topic: str, number: int, registration: PartitionRegistration
    ) -> None:
        view = self.topics.get(topic)
        if view is None:
            return
        view.partitions[number] = registration
        self.replica_layout += 1
        self.replica_states += 1
        self.wake_isr_checks()
        tp = TopicPartition(topic, number)
        if self.id not in registration.replicas:
            self._stop_replica(tp)
            return
        partition = self.partitions.get(tp)
        if partition is None:
            partition = Partition(self, tp, view.config)
            self.partitions[tp] = partition
        if registration.leader == self.id:
            if partition.is_leader and partition.leader_epoch == registration.leader_epoch:
                partition.update_registration(registration)
            else:
                partition.make_leader(registration)
                self.purgatory.wake(tp)
                self._notify_coordinators(True, partition)
        else:
            if (
                not partition.is_leader
                and partition.leader_id == registration.leader
                and partition.leader_epoch == registration.leader_epoch
            ):
                partition.update_registration(registration)
            else:
                partition.make_follower(registration)
                self.purgatory.wake(tp)
                self._notify_coordinators(False, partition)
            if registration.leader != NO_LEADER:
                self.fetcher.ensure_fetching(registration.leader, partitions_changed=True)

    def _hosted(self) -> list[TransactionCoordinator | TransactionalOffsets | GroupCoordinator]:
        """The coordinators on this broker, in the order they were wired."""
        hosted = (self.transaction_coordinator, self.txn_offsets, self.group_coordinator)
        return [c for c in hosted if c is not None]

    @property
    def services(self) -> Mapping[str, Any]:
        """A read-only view of the hosted coordinators by name, for older callers and tests;
        the engine itself uses the typed attributes."""
        names = ("transactions", "txn_offsets", "groups")
        hosted = (self.transaction_coordinator, self.txn_offsets, self.group_coordinator)
        return MappingProxyType({n: c for n, c in zip(names, hosted, strict=True) if c is not None})

    def _notify_coordinators(self, leader: bool, partition: Partition) -> None:
        """Coordinators load or unload their state when leadership of their partitions moves
        (Kafka's `onElection`/`onResignation`)."""
        if self.transaction_coordinator is not None:
            if leader:
                self.transaction_coordinator.on_become_leader(partition)
            else:
                self.transaction_coordinator.on_become_follower(partition)
        if self.group_coordinator is not None:
            if leader:
                self.group_coordinator.on_become_leader(partition)
            else:
                self.group_coordinator.on_become_follower(partition)

    # --- AlterPartition ----------------------------------------------------------------------

    def send_alter_partition(self, partition: Partition, new_isr: tuple[int, ...]) -> None:
        controller = self.controller
        active = controller.active_id
        if active is None:
            partition.pending_isr = None
            return
        tp = partition.tp
        leader_epoch = partition.leader_epoch
        partition_epoch = partition.partition_epoch

        def handle(reply: Reply) -> None:
            reply(
                controller.alter_partition(
                    self.id, tp.topic, tp.partition, leader_epoch, partition_epoch, new_isr
                )
            )

        def on_reply(response: object) -> None:
            current = self.partitions.get(tp)
            if current is not partition:
                return
            if response is DISCONNECTED:
                partition.pending_isr = None
                return
            assert isinstance(response, tuple)
            error: str = response[0]
            registration: PartitionRegistration | None = response[1]
            partition.on_alter_partition_response(error, registration)

        request(
            self.ctx.network,
            self.id,
            active,
            "alter_partition",
            lambda: controller.nodes[active].alive and controller.active_id == active,
            handle,
            on_reply,
        )

        # Without an answer (a cut-off leader), give up after the request timeout and retry later.
        def expire() -> None:
            if self.partitions.get(tp) is partition and partition.pending_isr == new_isr:
                partition.pending_isr = None

        self.ctx.scheduler.call_later(30000, expire)

    # --- produce -----------------------------------------------------------------------------

    def handle_produce(
        self,
        tp: TopicPartition,
        batch: RecordBatch,
        acks: int,
        timeout_ms: int,
        complete: Callable[[str, int, int], None],
    ) -> None:
        """Append a producer's batch as leader; `complete(error, base_offset, log_start)`."""
        partition = self.partitions.get(tp)
        if partition is None:
            complete(
                "UNKNOWN_TOPIC_OR_PARTITION"
                if tp.topic not in self.topics
                else "NOT_LEADER_OR_FOLLOWER",
                -1,
                -1,
            )
            return
        if partition.leader_id != self.id:
            complete("NOT_LEADER_OR_FOLLOWER", -1, -1)
            return
        config = partition.config
        if batch.size > int(config["max.message.bytes"]):
            complete("MESSAGE_TOO_LARGE", -1, -1)
            return
        if "compact" in config["cleanup.policy"] and None in map(_KEY, batch.records):
            complete("INVALID_RECORD", -1, -1)
            return
        log = partition.log
        # R2: acks=all is refused up front when the ISR is below min.insync.replicas; Kafka
        # checks this before the log looks for a duplicate batch.
        if acks == -1 and len(partition.isr) < partition.effective_min_isr():
            complete("NOT_ENOUGH_REPLICAS", -1, -1)
            return
        duplicate = partition.producer_state.find_duplicate(batch)
        if duplicate is not None:
            # I2: a retried batch gets its original offsets back and is not appended again.
            self.ctx.emit(
                "duplicate_batch",
                {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "broker": self.id,
                    "base_offset": duplicate.first_offset,
                },
            )
            self._complete_after_replication(
                partition,
                acks,
                duplicate.last_offset + 1,
                duplicate.first_offset,
                timeout_ms,
                complete,
            )
            return
        problem = partition.producer_state.validate(batch, log.log_end_offset)
        if problem is not None:
            complete(_error_name(problem), -1, -1)
            return
        now = self.ctx.scheduler.now_ms
        base = log.log_end_offset
        append_time = config["message.timestamp.type"] == "LogAppendTime"
        records = []
        max_timestamp = -1
        offset = base
        for record in batch.records:
            timestamp = now if append_time else record.timestamp
            if record.offset == -1 and not append_time:
                # A record fresh from a producer (offset still unassigned) becomes the stored
                # record: records are never changed once they have an offset, so the producer's
                # batch (which reads only timestamps, keys and values) may keep it. A record that
                # already has one (a retry of a batch appended before) is copied.
                record.offset = offset
                records.append(record)
            else:
                records.append(
                    Record(offset, timestamp, record.key, record.value, record.headers, record.size)
                )
            offset += 1
            if timestamp > max_timestamp:
                max_timestamp = timestamp
        stored = RecordBatch(
            base_offset=base,
            records=records,
            leader_epoch=partition.leader_epoch,
            producer_id=batch.producer_id,
            producer_epoch=batch.producer_epoch,
            base_sequence=batch.base_sequence,
            is_transactional=batch.is_transactional,
            is_control=batch.is_control,
            control_type=batch.control_type,
            size=batch.size,
            max_timestamp=max_timestamp,
        )
        try:
            self.append_as_leader(partition, stored)
        except ResourceLimitError as exc:
            # A sandbox limit, not a Kafka error: the batch is refused, the broker carries on.
            self.ctx.emit(
                "resource_limit_reached",
                {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "broker": self.id,
                    "message": exc.message,
                },
            )
            complete(RESOURCE_LIMIT_EXCEEDED, -1, -1)
            return
        self._complete_after_replication(
            partition, acks, stored.last_offset + 1, base, timeout_ms, complete
        )

    def append_as_leader(self, partition: Partition, batch: RecordBatch) -> None:
        self.ctx.limits.check_append(self.ctx.taps, batch)
        self.wake_isr_checks()
        partition.log.append(batch, self.ctx.scheduler.now_ms)
        partition.producer_state.update(batch)
        self.ctx.taps.on_append(partition, batch)
        self.purgatory.wake(partition.tp)
        partition.maybe_increment_high_watermark()

    def _complete_after_replication(
        self,
        partition: Partition,
        acks: int,
        required_offset: int,
        base_offset: int,
        timeout_ms: int,
        complete: Callable[[str, int, int], None],
    ) -> None:
        if acks != -1:
            complete("", base_offset, partition.log.log_start_offset)
            return

        expiry: list[Timer] = []

        def done(error: str) -> None:
            if expiry:
                # Completed: the expiry timer would find the produce done and do nothing, so it
                # is cancelled, and lets go of the request (its batches) at once.
                expiry[0].cancel()
            complete(
                error,
                base_offset if not error or error == "NOT_ENOUGH_REPLICAS_AFTER_APPEND" else -1,
                partition.log.log_start_offset,
            )

        delayed = DelayedProduce(required_offset, done, self.ctx.scheduler.now_ms + timeout_ms)
        partition.add_delayed_produce(delayed)
        if not delayed.done:
            expiry.append(
                self.ctx.scheduler.call_later(
                    timeout_ms, lambda: partition.expire_delayed_produce(delayed)
                )
            )

    # --- the components' names as other modules know them (Cluster, Partition, tests) --------

    @property
    def fetching_from(self) -> set[int]:
        return self.fetcher.fetching_from

    @property
    def fetch_session(self) -> dict[int, int]:
        return self.fetcher.fetch_session

    @property
    def parked(self) -> dict[TopicPartition, list[ParkedFetch]]:
        return self.purgatory.parked

    @property
    def parked_followers(self) -> dict[int, ParkedFetch]:
        return self.purgatory.parked_followers

    def _ensure_fetching(self, leader_id: int, partitions_changed: bool = False) -> None:
        self.fetcher.ensure_fetching(leader_id, partitions_changed)

    def connection_lost(self, leader_id: int) -> None:
        self.fetcher.connection_lost(leader_id)

    def handle_replica_fetch(
        self, follower_id: int, asks: list[FollowerFetchPartition], reply: Reply
    ) -> None:
        self.replica_manager.handle_replica_fetch(follower_id, asks, reply)

    def _refresh_parked_followers(self, partition: Partition) -> None:
        self.wake_isr_checks()
        self.purgatory.refresh_followers(partition)

    def on_high_watermark_changed(self, partition: Partition) -> None:
        self.ctx.taps.on_high_watermark_changed(partition)
        self.purgatory.on_high_watermark_changed(partition)

    # --- consumer fetch ----------------------------------------------------------------------

    def handle_consumer_fetch(
        self,
        asks: dict[TopicPartition, int],
        isolation: str,
        max_wait_ms: int,
        max_partition_bytes: int,
        reply: Reply,
    ) -> None:
        def upper(partition: Partition) -> int:
            log = partition.log
            return log.last_stable_offset if isolation == "read_committed" else log.high_watermark

        def build() -> dict[TopicPartition, FetchPartitionData]:
            response: dict[TopicPartition, FetchPartitionData] = {}
            for tp, offset in asks.items():
                partition = self.partitions.get(tp)
                if partition is None:
                    error = (
                        "UNKNOWN_TOPIC_OR_PARTITION"
                        if tp.topic not in self.topics
                        else "NOT_LEADER_OR_FOLLOWER"
                    )
                    response[tp] = FetchPartitionData(error=error)
                    continue
                if partition.leader_id != self.id:
                    response[tp] = FetchPartitionData(error="NOT_LEADER_OR_FOLLOWER")
                    continue
                log = partition.log
                if offset < log.log_start_offset or offset > log.log_end_offset:
                    response[tp] = FetchPartitionData(
                        error="OFFSET_OUT_OF_RANGE",
                        high_watermark=log.high_watermark,
                        log_start_offset=log.log_start_offset,
                    )
                    continue
                limit = upper(partition)
                batches = (
                    read_batches(log, offset, limit, max_partition_bytes) if offset < limit else []
                )
                data = FetchPartitionData(
                    high_watermark=log.high_watermark,
                    last_stable_offset=log.last_stable_offset,
                    log_start_offset=log.log_start_offset,
                    batches=batches,
                )
                if isolation == "read_committed" and batches:
                    data.aborted = aborted_transactions(partition, offset, limit)
                response[tp] = data
            return response

        def ready() -> bool:
            for tp, offset in asks.items():
                partition = self.partitions.get(tp)
                if partition is None or partition.leader_id != self.id or upper(partition) > offset:
                    return True
            return False

        if ready() or max_wait_ms <= 0:
            reply(build())
            return
        self.purgatory.park(
            ParkedFetch(
                list(asks), ready, lambda: reply(build()), self.ctx.scheduler.now_ms, max_wait_ms
            )
        )

    def handle_list_offsets(
        self, tp: TopicPartition, spec: str | int, isolation: str
    ) -> tuple[str, int]:
        partition = self.partitions.get(tp)
        if partition is None or not partition.is_leader:
            return ("NOT_LEADER_OR_FOLLOWER", -1)
        log = partition.log
        if spec == "earliest":
            return ("", log.log_start_offset)
        if spec == "latest":
            return (
                "",
                log.last_stable_offset if isolation == "read_committed" else log.high_watermark,
            )
        assert isinstance(spec, int)
        found = log.offset_for_timestamp(spec)
        return ("", found if found is not None and found < log.high_watermark else -1)

    def handle_offset_for_leader_epoch(
        self, tp: TopicPartition, current_leader_epoch: int, leader_epoch: int
    ) -> tuple[str, int, int]:
        """OffsetForLeaderEpoch from a consumer (KIP-320; Kafka's
        `Partition.lastOffsetForLeaderEpoch`): the largest epoch at or below `leader_epoch` in
        the leader's log and where it ends, or (-1, -1) for an epoch older than the log."""
        partition = self.partitions.get(tp)
        if partition is None or not partition.is_leader:
            return ("NOT_LEADER_OR_FOLLOWER", -1, -1)
        if current_leader_epoch >= 0:
            if current_leader_epoch < partition.leader_epoch:
                return ("FENCED_LEADER_EPOCH", -1, -1)
            if current_leader_epoch > partition.leader_epoch:
                return ("UNKNOWN_LEADER_EPOCH", -1, -1)
        epoch, end_offset = partition.log.end_offset_for_epoch(leader_epoch)
        return ("", epoch, end_offset)

    def metadata_snapshot(self) -> tuple[dict[str, TopicView], dict[int, BrokerRegistration]]:
        return self.topics, self.brokers


def _error_name(error: KafkaError) -> str:
    return protocol_name(error)


# A record's key, read in C by map() (keys are bytes or None).
_KEY = attrgetter("key")
