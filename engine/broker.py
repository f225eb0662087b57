"""A broker: its replicas (Kafka's `ReplicaManager`), its replica fetchers
(`ReplicaFetcherThread`/`AbstractFetcherThread`), its metadata cache and its heartbeats to the
KRaft controller, plus the request handlers clients talk to (`KafkaApis`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from engine.clock import Timer
from engine.errors import RESOURCE_LIMIT_EXCEEDED, KafkaError, ResourceLimitError, protocol_name
from engine.metadata import NO_LEADER, BrokerRegistration, MetadataRecord, PartitionRegistration
from engine.network import DISCONNECTED, request
from engine.partition import DelayedProduce, Partition
from engine.records import Record, RecordBatch, TopicPartition

if TYPE_CHECKING:
    from engine.cluster import Cluster

Reply = Callable[[object], None]


@dataclass(slots=True)
class TopicView:
    """A broker's cached view of a topic (its `MetadataCache`)."""

    name: str
    config: dict[str, Any]
    partitions: dict[int, PartitionRegistration] = field(default_factory=dict)
    internal: bool = False


@dataclass(slots=True)
class FetchPartitionData:
    error: str = ""
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    batches: list[RecordBatch] = field(default_factory=list)
    diverging_epoch: tuple[int, int] | None = None
    aborted: list[tuple[int, int]] = field(default_factory=list)


@dataclass(slots=True)
class ParkedFetch:
    """A fetch waiting at the leader for data (Kafka's `DelayedFetch`)."""

    tps: list[TopicPartition]
    ready: Callable[[], bool]
    respond: Callable[[], None]
    parked_ms: int
    max_wait_ms: int | None
    timer: Timer | None = None
    done: bool = False
    follower_id: int | None = None


@dataclass(slots=True)
class FollowerFetchPartition:
    tp: TopicPartition
    fetch_offset: int
    last_fetched_epoch: int
    current_leader_epoch: int
    high_watermark: int = -1


class Broker:
    def __init__(self, cluster: Cluster, broker_id: int) -> None:
        self.cluster = cluster
        self.id = broker_id
        self.config = cluster.broker_config
        self.alive = True
        self.partitions: dict[TopicPartition, Partition] = {}
        self.topics: dict[str, TopicView] = {}
        self.brokers: dict[int, BrokerRegistration] = {}
        self.metadata_offset = 0
        self.lost_responses = 0
        self.fetching_from: set[int] = set()
        self.fetch_session: dict[int, int] = {}
        self._fetch_backoff: dict[int, Timer] = {}
        self.parked: dict[TopicPartition, list[ParkedFetch]] = {}
        self.parked_followers: dict[int, ParkedFetch] = {}
        self._timers: list[Timer] = []
        self.want_shutdown = False
        self.incarnation = 0
        self.heartbeat_phase_ms = 0
        self._heartbeat_timer: Timer | None = None
        # Coordinators living on this broker, attached by later modules.
        self.services: dict[str, Any] = {}

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        return self.cluster.scheduler.now_ms

    def emit_log_event(self, kind: str, data: dict[str, Any]) -> None:
        self.cluster.emit(kind, {**data, "broker": self.id})

    def lose_reply(self) -> bool:
        if self.lost_responses > 0:
            self.lost_responses -= 1
            self.cluster.emit("response_lost", {"broker": self.id})
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
        return view.config if view else self.cluster.topic_defaults

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.alive = True
        self.want_shutdown = False
        self.incarnation += 1
        # A restarted broker replays the metadata image before acting on it (its replicas were
        # reset to followers below), so it asks the controller for everything again.
        self.metadata_offset = 0
        incarnation = self.incarnation
        self.heartbeat_phase_ms = self.now_ms
        self._heartbeat_timer = None
        self.wake_heartbeats(at_once=True)
        self._every(
            int(self.config["replica.lag.time.max.ms"]) // 2, self._isr_expiration, incarnation
        )
        self._every(
            int(self.config["log.retention.check.interval.ms"]), self._retention, incarnation
        )
        # Replicas of a restarted broker start as followers until metadata says otherwise.
        for partition in self.partitions.values():
            partition.leader_id = NO_LEADER
            partition.followers = {}

    def stop(self) -> None:
        self.alive = False
        self.incarnation += 1
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
            self._heartbeat_timer = None
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        self.fetching_from.clear()
        for timer in self._fetch_backoff.values():
            timer.cancel()
        self._fetch_backoff.clear()
        for waiting in self.parked.values():
            for parked in waiting:
                parked.done = True
                if parked.timer:
                    parked.timer.cancel()
        self.parked.clear()
        self.parked_followers.clear()
        # Followers fetching from this broker see their connections reset.
        for other in self.cluster.broker_ids():
            follower = self.cluster.broker_by_id(other)
            if other != self.id and follower.alive and self.id in follower.fetching_from:
                self.cluster.network.send(
                    self.id, other, "disconnect", partial(follower.connection_lost, self.id)
                )
        for partition in self.partitions.values():
            partition.delayed_produces = []
            partition.pending_isr = None
        for service in self.services.values():
            stop = getattr(service, "on_broker_stopped", None)
            if stop:
                stop()

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
            self._timers.append(self.cluster.scheduler.call_later(interval_ms, tick))

        delay = interval_ms if first_delay is None else first_delay
        self._timers.append(self.cluster.scheduler.call_later(delay, tick))

    def _isr_expiration(self) -> None:
        self._timers = [t for t in self._timers if not t.cancelled and t.due_ms >= self.now_ms]
        for partition in list(self.partitions.values()):
            if partition.is_leader:
                self._refresh_parked_followers(partition)
                partition.maybe_shrink_isr()

    def _retention(self) -> None:
        now = self.now_ms
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
        controller = self.cluster.controller
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
        elapsed = self.now_ms - self.heartbeat_phase_ms
        delay = 0 if at_once or elapsed % interval == 0 else interval - elapsed % interval
        incarnation = self.incarnation

        def tick() -> None:
            self._heartbeat_timer = None
            if not self.alive or self.incarnation != incarnation or self.heartbeat_steady():
                return
            self.send_heartbeat()
            self._heartbeat_timer = self.cluster.scheduler.call_later(interval, tick)

        self._heartbeat_timer = self.cluster.scheduler.call_later(delay, tick)

    def last_scheduled_heartbeat_arrival(self) -> int:
        """When the last heartbeat due on this broker's schedule reached the controller."""
        interval = int(self.config["broker.heartbeat.interval.ms"])
        latency = self.cluster.network.latency_ms
        sent = (
            self.heartbeat_phase_ms
            + ((self.now_ms - self.heartbeat_phase_ms) // interval) * interval
        )
        if sent + latency > self.now_ms:
            sent -= interval
        return max(self.heartbeat_phase_ms, sent + latency)

    def send_heartbeat(self) -> None:
        controller = self.cluster.controller
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
            self.cluster.network,
            self.id,
            active,
            "heartbeat",
            lambda: controller.nodes[active].alive,
            handle,
            on_reply,
        )

    def _catch_up_metadata(self) -> None:
        offset, records = self.cluster.controller.full_image()
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
        known = {record.topic for record in records if record.kind == "topic"}
        for name in list(self.topics):
            if name not in known:
                self._remove_topic(name)
        for record in records:
            self._apply_record(record)

    def _apply_record(self, record: MetadataRecord) -> None:
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
                self.topics[record.topic] = TopicView(
                    record.topic, dict(record.config), {}, record.internal
                )
            else:
                view.config = dict(record.config)
        elif record.kind == "config":
            view = self.topics.get(record.topic)
            if view is not None:
                view.config.clear()
                view.config.update(record.config)
        elif record.kind == "remove_topic":
            self._remove_topic(record.topic)
        elif record.kind == "partition" and record.registration is not None:
            self._apply_partition(record.topic, record.partition, record.registration)

    def _remove_topic(self, name: str) -> None:
        self.topics.pop(name, None)
        for tp in [tp for tp in self.partitions if tp.topic == name]:
            partition = self.partitions.pop(tp)
            partition.fail_delayed_produces("UNKNOWN_TOPIC_OR_PARTITION")
            self.parked.pop(tp, None)

    def _apply_partition(
        self, topic: str, number: int, registration: PartitionRegistration
    ) -> None:
        view = self.topics.get(topic)
        if view is None:
            return
        view.partitions[number] = registration
        tp = TopicPartition(topic, number)
        if self.id not in registration.replicas:
            self.partitions.pop(tp, None)
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
                self._wake_parked(tp)
                self._notify_services("on_become_leader", partition)
        else:
            if (
                not partition.is_leader
                and partition.leader_id == registration.leader
                and partition.leader_epoch == registration.leader_epoch
            ):
                partition.update_registration(registration)
            else:
                partition.make_follower(registration)
                self._wake_parked(tp)
                self._notify_services("on_become_follower", partition)
            if registration.leader != NO_LEADER:
                self._ensure_fetching(registration.leader, partitions_changed=True)

    def _notify_services(self, hook: str, partition: Partition) -> None:
        """Coordinators load or unload their state when leadership of their partitions moves
        (Kafka's `onElection`/`onResignation`)."""
        for service in list(self.services.values()):
            handler = getattr(service, hook, None)
            if handler is not None:
                handler(partition)

    # --- AlterPartition ----------------------------------------------------------------------

    def send_alter_partition(self, partition: Partition, new_isr: tuple[int, ...]) -> None:
        controller = self.cluster.controller
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
            self.cluster.network,
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

        self.cluster.scheduler.call_later(30000, expire)

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
        if not partition.is_leader:
            complete("NOT_LEADER_OR_FOLLOWER", -1, -1)
            return
        config = partition.config
        if batch.size > int(config["max.message.bytes"]):
            complete("MESSAGE_TOO_LARGE", -1, -1)
            return
        if "compact" in config["cleanup.policy"] and any(r.key is None for r in batch.records):
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
            self.cluster.emit(
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
        now = self.now_ms
        base = log.log_end_offset
        append_time = config["message.timestamp.type"] == "LogAppendTime"
        records = []
        max_timestamp = -1
        for index, record in enumerate(batch.records):
            timestamp = now if append_time else record.timestamp
            records.append(
                Record(
                    base + index, timestamp, record.key, record.value, record.headers, record.size
                )
            )
            max_timestamp = max(max_timestamp, timestamp)
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
            self.cluster.emit(
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
        self.cluster.limits.check_append(self.cluster, batch)
        partition.log.append(batch, self.now_ms)
        partition.producer_state.update(batch)
        self.cluster.on_append(partition, batch)
        self._wake_parked(partition.tp)
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

        def done(error: str) -> None:
            complete(
                error,
                base_offset if not error or error == "NOT_ENOUGH_REPLICAS_AFTER_APPEND" else -1,
                partition.log.log_start_offset,
            )

        delayed = DelayedProduce(required_offset, done, self.now_ms + timeout_ms)
        partition.add_delayed_produce(delayed)
        if not delayed.done:
            self.cluster.scheduler.call_later(
                timeout_ms, lambda: partition.expire_delayed_produce(delayed)
            )

    # --- high watermark and parked fetches -----------------------------------------------------

    def on_high_watermark_changed(self, partition: Partition) -> None:
        self.cluster.on_high_watermark_changed(partition)
        waiting = self.parked.get(partition.tp)
        if not waiting:
            return
        for parked in list(waiting):
            if parked.done:
                continue
            if parked.ready():
                self._respond_parked(parked)
            elif parked.max_wait_ms is None and parked.timer is None:
                # A follower learns a new high watermark with its next fetch response, at the
                # latest replica.fetch.wait.max.ms after it asked.
                wait = int(self.config["replica.fetch.wait.max.ms"])
                parked.timer = self.cluster.scheduler.call_at(
                    parked.parked_ms + wait, self._responder(parked)
                )

    def _responder(self, parked: ParkedFetch) -> Callable[[], None]:
        return lambda: self._respond_parked(parked)

    def _wake_parked(self, tp: TopicPartition) -> None:
        waiting = self.parked.get(tp)
        if not waiting:
            return
        for parked in list(waiting):
            if not parked.done and parked.ready():
                self._respond_parked(parked)

    def _park(self, parked: ParkedFetch) -> None:
        for tp in parked.tps:
            self.parked.setdefault(tp, []).append(parked)
        if parked.follower_id is not None:
            self.parked_followers[parked.follower_id] = parked
        if parked.max_wait_ms is not None:
            parked.timer = self.cluster.scheduler.call_later(
                parked.max_wait_ms, lambda: self._respond_parked(parked)
            )

    def _respond_parked(self, parked: ParkedFetch) -> None:
        if parked.done:
            return
        parked.done = True
        if parked.timer is not None:
            parked.timer.cancel()
        self._unlink_parked(parked)
        if self.alive:
            parked.respond()

    def _unlink_parked(self, parked: ParkedFetch) -> None:
        if (
            parked.follower_id is not None
            and self.parked_followers.get(parked.follower_id) is parked
        ):
            del self.parked_followers[parked.follower_id]
        for tp in parked.tps:
            waiting = self.parked.get(tp)
            if waiting is not None:
                waiting[:] = [p for p in waiting if not p.done]
                if not waiting:
                    del self.parked[tp]

    def _refresh_parked_followers(self, partition: Partition) -> None:
        """A follower whose fetch waits here at the log end would, in Kafka, re-fetch every
        replica.fetch.wait.max.ms; while it can still reach us, count it as caught up now."""
        for parked in self.parked.get(partition.tp, []):
            follower = parked.follower_id
            if follower is None or parked.done:
                continue
            state = partition.followers.get(follower)
            if state is None:
                continue
            node = self.cluster.broker_by_id(follower)
            if node.alive and self.cluster.network.reachable(follower, self.id):
                if state.log_end_offset >= partition.log.log_end_offset:
                    state.last_caught_up_ms = self.now_ms
                    state.last_fetch_ms = self.now_ms
            else:
                self._respond_parked(parked)

    # --- replica fetching (follower side) ----------------------------------------------------

    def _ensure_fetching(self, leader_id: int, partitions_changed: bool = False) -> None:
        """Keep one fetch in flight to each leader; a changed set of partitions sends a new fetch
        that supersedes the one waiting at the leader."""
        if leader_id == self.id or not self.alive:
            return
        if leader_id in self._fetch_backoff:
            return
        if leader_id in self.fetching_from and not partitions_changed:
            return
        self._send_replica_fetch(leader_id)

    def _followed_from(self, leader_id: int) -> list[Partition]:
        return [p for p in self.partitions.values() if not p.is_leader and p.leader_id == leader_id]

    def _send_replica_fetch(self, leader_id: int) -> None:
        partitions = self._followed_from(leader_id)
        if not partitions or not self.alive:
            return
        if not self.cluster.network.reachable(self.id, leader_id):
            # No route: the follower tries again when the network changes (Cluster heals it).
            self.fetching_from.discard(leader_id)
            return
        self.fetching_from.add(leader_id)
        asks = [
            FollowerFetchPartition(
                p.tp,
                p.log.log_end_offset,
                p.log.latest_epoch(),
                p.leader_epoch,
                p.log.high_watermark,
            )
            for p in partitions
        ]
        leader = self.cluster.broker_by_id(leader_id)
        incarnation = self.incarnation
        session = self.fetch_session.get(leader_id, 0) + 1
        self.fetch_session[leader_id] = session
        finished = [False]

        def handle(reply: Reply) -> None:
            leader.handle_replica_fetch(self.id, asks, reply)

        def on_reply(response: object) -> None:
            if finished[0] or self.incarnation != incarnation or not self.alive:
                return
            finished[0] = True
            if self.fetch_session.get(leader_id) != session:
                return  # superseded by a newer fetch
            self.fetching_from.discard(leader_id)
            if response is DISCONNECTED:
                self._backoff_fetch(leader_id)
                return
            assert isinstance(response, dict)
            self._process_replica_fetch(leader_id, response)

        request(
            self.cluster.network,
            self.id,
            leader_id,
            "replica_fetch",
            lambda: leader.alive,
            handle,
            on_reply,
        )

    def connection_lost(self, leader_id: int) -> None:
        """The leader's process died or the route to it was cut: the fetch in flight is gone
        (a real follower sees its connection reset or time out) and it retries after backoff."""
        if leader_id not in self.fetching_from:
            return
        self.fetching_from.discard(leader_id)
        self.fetch_session[leader_id] = self.fetch_session.get(leader_id, 0) + 1
        self._backoff_fetch(leader_id)

    def _backoff_fetch(self, leader_id: int) -> None:
        backoff = int(self.config["replica.fetch.backoff.ms"])
        incarnation = self.incarnation

        def retry() -> None:
            self._fetch_backoff.pop(leader_id, None)
            if self.incarnation == incarnation:
                self._ensure_fetching(leader_id)

        self._fetch_backoff[leader_id] = self.cluster.scheduler.call_later(backoff, retry)

    def _process_replica_fetch(
        self, leader_id: int, response: dict[TopicPartition, FetchPartitionData]
    ) -> None:
        errors = False
        for tp, data in response.items():
            partition = self.partitions.get(tp)
            if partition is None or partition.is_leader or partition.leader_id != leader_id:
                continue
            if data.error:
                errors = True
                continue
            log = partition.log
            if data.diverging_epoch is not None:
                self._truncate_on_divergence(partition, leader_id, data.diverging_epoch)
                continue
            if (
                data.batches
                and data.batches[0].base_offset > log.log_end_offset
                and log.log_end_offset < data.log_start_offset
            ):
                log.truncate_fully_and_start_at(data.log_start_offset, self.now_ms)
            for batch in data.batches:
                if batch.last_offset < log.log_end_offset:
                    continue
                copy = RecordBatch(
                    base_offset=batch.base_offset,
                    records=[r for r in batch.records if r.offset >= log.log_end_offset],
                    leader_epoch=batch.leader_epoch,
                    producer_id=batch.producer_id,
                    producer_epoch=batch.producer_epoch,
                    base_sequence=batch.base_sequence,
                    is_transactional=batch.is_transactional,
                    is_control=batch.is_control,
                    control_type=batch.control_type,
                    size=batch.size,
                    max_timestamp=batch.max_timestamp,
                )
                if not copy.records:
                    continue
                copy.base_offset = copy.records[0].offset
                log.append(copy, self.now_ms)
                partition.producer_state.update(copy)
                self.cluster.on_follower_append(partition, copy)
            # R7: a follower's HW is the leader's, clamped to its own log end.
            if log.update_high_watermark(min(data.high_watermark, log.log_end_offset)):
                self.cluster.on_high_watermark_changed(partition)
            if data.log_start_offset > log.log_start_offset:
                log.maybe_increment_log_start_offset(
                    data.log_start_offset, "leader's log start offset"
                )
        if errors:
            self._backoff_fetch(leader_id)
        else:
            self._ensure_fetching(leader_id)

    def _truncate_on_divergence(
        self, partition: Partition, leader_id: int, diverging: tuple[int, int]
    ) -> None:
        """R8: cut the log back to where it agrees with the new leader's epochs."""
        leader_epoch, leader_end = diverging
        log = partition.log
        follower_epoch, follower_end = log.end_offset_for_epoch(leader_epoch)
        if follower_epoch == leader_epoch:
            target = min(leader_end, follower_end)
        else:
            target = min(leader_end, follower_end) if follower_end >= 0 else leader_end
        target = (
            max(target, log.log_start_offset)
            if follower_end >= 0
            else min(leader_end, log.log_end_offset)
        )
        target = min(target, log.log_end_offset)
        removed = log.truncate_to(target)
        partition.producer_state.rebuild(list(log.iter_batches(log.log_start_offset)))
        if removed:
            self.cluster.emit(
                "log_truncated",
                {
                    "topic": partition.tp.topic,
                    "partition": partition.tp.partition,
                    "broker": self.id,
                    "truncated_to": target,
                    "leader": leader_id,
                    "offsets": [r.offset for r in removed],
                    "records": len(removed),
                },
            )
            self.cluster.on_truncate(partition, removed)

    # --- replica fetching (leader side) ------------------------------------------------------

    def handle_replica_fetch(
        self, follower_id: int, asks: list[FollowerFetchPartition], reply: Reply
    ) -> None:
        # A newer fetch from the same follower supersedes the one waiting here.
        superseded = self.parked_followers.pop(follower_id, None)
        if superseded is not None and not superseded.done:
            superseded.done = True
            if superseded.timer is not None:
                superseded.timer.cancel()
            self._unlink_parked(superseded)

        def build() -> dict[TopicPartition, FetchPartitionData]:
            response: dict[TopicPartition, FetchPartitionData] = {}
            for ask in asks:
                response[ask.tp] = self._read_for_follower(follower_id, ask)
            return response

        first = build()
        if any(data.batches or data.error or data.diverging_epoch for data in first.values()):
            reply(first)
            return
        watched = [ask.tp for ask in asks]
        ends = {ask.tp: ask.fetch_offset for ask in asks}

        def ready() -> bool:
            for tp in watched:
                partition = self.partitions.get(tp)
                if (
                    partition is None
                    or not partition.is_leader
                    or partition.log.log_end_offset > ends[tp]
                ):
                    return True
            return False

        parked = ParkedFetch(
            watched, ready, lambda: reply(build()), self.now_ms, None, follower_id=follower_id
        )
        self._park(parked)
        # A follower behind on the high watermark learns it with the next response, at the
        # latest replica.fetch.wait.max.ms from now (R7).
        if any(
            ask.high_watermark < min(data.high_watermark, ask.fetch_offset)
            for ask, data in zip(asks, first.values(), strict=True)
        ):
            wait = int(self.config["replica.fetch.wait.max.ms"])
            parked.timer = self.cluster.scheduler.call_later(
                wait, lambda: self._respond_parked(parked)
            )

    def _read_for_follower(
        self, follower_id: int, ask: FollowerFetchPartition
    ) -> FetchPartitionData:
        partition = self.partitions.get(ask.tp)
        if partition is None or not partition.is_leader:
            return FetchPartitionData(error="NOT_LEADER_OR_FOLLOWER")
        if ask.current_leader_epoch < partition.leader_epoch:
            return FetchPartitionData(error="FENCED_LEADER_EPOCH")
        if ask.current_leader_epoch > partition.leader_epoch:
            return FetchPartitionData(error="UNKNOWN_LEADER_EPOCH")
        log = partition.log
        if ask.last_fetched_epoch >= 0:
            epoch, end = log.end_offset_for_epoch(ask.last_fetched_epoch)
            if epoch != ask.last_fetched_epoch or end < ask.fetch_offset:
                return FetchPartitionData(
                    high_watermark=log.high_watermark,
                    log_start_offset=log.log_start_offset,
                    diverging_epoch=(epoch, end),
                )
        if ask.fetch_offset > log.log_end_offset:
            return FetchPartitionData(
                high_watermark=log.high_watermark,
                log_start_offset=log.log_start_offset,
                diverging_epoch=(log.latest_epoch(), log.log_end_offset),
            )
        fetch_offset = max(ask.fetch_offset, log.log_start_offset)
        partition.update_follower_fetch(follower_id, ask.fetch_offset)
        batches = self._read_batches(
            log, fetch_offset, log.log_end_offset, int(self.config["replica.fetch.max.bytes"])
        )
        return FetchPartitionData(
            high_watermark=log.high_watermark,
            last_stable_offset=log.last_stable_offset,
            log_start_offset=log.log_start_offset,
            batches=batches,
        )

    @staticmethod
    def _read_batches(log: Any, start: int, end: int, max_bytes: int) -> list[RecordBatch]:
        out: list[RecordBatch] = []
        total = 0
        for batch in log.iter_batches(start, end):
            if batch.base_offset >= end:
                break
            if out and total + batch.size > max_bytes:
                break
            out.append(batch)
            total += batch.size
        return out

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
                if not partition.is_leader:
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
                    self._read_batches(log, offset, limit, max_partition_bytes)
                    if offset < limit
                    else []
                )
                data = FetchPartitionData(
                    high_watermark=log.high_watermark,
                    last_stable_offset=log.last_stable_offset,
                    log_start_offset=log.log_start_offset,
                    batches=batches,
                )
                if isolation == "read_committed" and batches:
                    data.aborted = self.cluster.aborted_transactions(partition, offset, limit)
                response[tp] = data
            return response

        def ready() -> bool:
            for tp, offset in asks.items():
                partition = self.partitions.get(tp)
                if partition is None or not partition.is_leader or upper(partition) > offset:
                    return True
            return False

        if ready() or max_wait_ms <= 0:
            reply(build())
            return
        self._park(ParkedFetch(list(asks), ready, lambda: reply(build()), self.now_ms, max_wait_ms))

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

    def metadata_snapshot(self) -> tuple[dict[str, TopicView], dict[int, BrokerRegistration]]:
        return self.topics, self.brokers


def _error_name(error: KafkaError) -> str:
    return protocol_name(error)
