"""The transaction coordinator: Kafka's `TransactionCoordinator` and `TransactionStateManager`
(T1-T6).

Every broker runs one (`broker.transaction_coordinator`). The coordinator of a
`transactional.id` is the leader of partition
`abs(hashCode(transactional.id)) % transaction.state.log.num.partitions` of the internal,
compacted `__transaction_state` topic, created on the first FindCoordinator (P4). The records of
that partition, keyed by transactional id, are the source of truth: a broker that becomes leader
of a state partition loads its transactions from its own replica of the log, and sends the
markers again for any transaction it finds in PrepareCommit/PrepareAbort, so a coordinator
failover completes the transactions in flight.

Every state change is written first and applied once the high watermark covers the record (acks=all
to the ISR, `transaction.state.log.min.isr`); only then does the coordinator answer. Ending a
transaction writes PrepareCommit/PrepareAbort (the EndTxn answer goes out then), then a marker on
every partition of the transaction (engine.coordinator.transaction.transaction_markers), then
CompleteCommit/CompleteAbort."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.common.metadata import NO_LEADER
from engine.common.records import TopicPartition
from engine.coordinator.transaction.transaction_markers import (
    COORDINATOR_WRITE_TIMEOUT_MS,
    MARKER_RETRY_BACKOFF_MS,
    OFFSETS_TOPIC,
    TransactionMarkerChannel,
    append_and_replicate,
    build_batch,
)
from engine.coordinator.transaction.transaction_state import (
    COMPLETE_ABORT,
    COMPLETE_COMMIT,
    EMPTY,
    MAX_EPOCH,
    NO_PRODUCER_EPOCH,
    ONGOING,
    PREPARE_ABORT,
    PREPARE_COMMIT,
    TRANSACTION_STATE_TOPIC,
    TransactionMetadata,
    java_abs,
    java_string_hash,
    read_transaction_state,
)
from engine.errors import KafkaError

if TYPE_CHECKING:
    from engine.controller.quorum_controller import QuorumController
    from engine.coordinator.group.group_service import GroupService
    from engine.server.broker import Broker
    from engine.server.partition import Partition
    from engine.sim.context import CreateTopic, SimContext

__all__ = [
    "TRANSACTION_STATE_TOPIC",
    "TransactionCoordinator",
    "TransactionMetadata",
    "TransactionService",
    "java_string_hash",
]

Response = tuple[str, Any]
Respond = Callable[[Response], None]

# How a failed state-log append is reported to the client (TransactionStateManager).
_APPEND_ERRORS = {
    "NOT_ENOUGH_REPLICAS": "COORDINATOR_NOT_AVAILABLE",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND": "COORDINATOR_NOT_AVAILABLE",
    "REQUEST_TIMED_OUT": "COORDINATOR_NOT_AVAILABLE",
    "UNKNOWN_TOPIC_OR_PARTITION": "COORDINATOR_NOT_AVAILABLE",
    "NOT_LEADER_OR_FOLLOWER": "NOT_COORDINATOR",
}


class TransactionCoordinator:
    """The transaction coordinator of one broker."""

    def __init__(self, service: TransactionService, broker: Broker) -> None:
        self.service = service
        self.ctx = service.ctx
        self.controller = service.controller
        self.broker_config = service.broker_config
        self.allocate_producer_id = service.allocate_producer_id
        self.broker = broker
        self.transactions: dict[str, TransactionMetadata] = {}
        # The __transaction_state partitions loaded, each at the leader epoch it was loaded at.
        self.loaded: dict[int, int] = {}
        self.markers = TransactionMarkerChannel(self)

    @property
    def now_ms(self) -> int:
        return self.ctx.scheduler.now_ms

    # --- ownership and loading -------------------------------------------------------------

    def _state_partition(self, transactional_id: str) -> tuple[int, Partition | None]:
        number = self.service.partition_for(transactional_id)
        tp = TopicPartition(TRANSACTION_STATE_TOPIC, number)
        return number, self.broker.partitions.get(tp)

    def _lookup(self, transactional_id: str) -> tuple[str, TransactionMetadata | None]:
        """NOT_COORDINATOR unless this broker leads the id's state partition (loading it if
        this is a new leadership)."""
        number, partition = self._state_partition(transactional_id)
        if not self.broker.alive or partition is None or not partition.is_leader:
            self._unload(number)
            return ("NOT_COORDINATOR", None)
        if self.loaded.get(number) != partition.leader_epoch:
            self.load(number, partition)
        return ("", self.transactions.get(transactional_id))

    def owns(self, meta: TransactionMetadata) -> bool:
        """This broker still coordinates the transaction and still holds this very metadata."""
        number, partition = self._state_partition(meta.transactional_id)
        return (
            self.broker.alive
            and partition is not None
            and partition.is_leader
            and self.loaded.get(number) == partition.leader_epoch
            and self.transactions.get(meta.transactional_id) is meta
        )

    def coordinator_epoch(self, meta: TransactionMetadata) -> int:
        """Kafka's coordinatorEpoch: the leader epoch of the `__transaction_state` partition
        when this broker loaded it, carried by every marker it writes."""
        number = self.service.partition_for(meta.transactional_id)
        return self.loaded.get(number, -1)

    def load(self, number: int, partition: Partition) -> None:
        self._unload(number)
        loaded = read_transaction_state(partition)
        self.transactions.update(loaded)
        self.loaded[number] = partition.leader_epoch
        completing = sorted(
            t for t, m in loaded.items() if m.state in (PREPARE_COMMIT, PREPARE_ABORT)
        )
        if not loaded:
            return
        self.ctx.emit(
            "txn_coordinator_loaded",
            {
                "broker": self.broker.id,
                "partition": number,
                "leader_epoch": partition.leader_epoch,
                "transactions": sorted(loaded),
                "completing": completing,
            },
        )
        for transactional_id in completing:
            # Kafka sends the markers again for transactions it loads half-ended.
            meta = loaded[transactional_id]
            meta.end_reason = meta.end_reason or "completed after coordinator failover"
            self.markers.send_markers(meta)

    def _unload(self, number: int) -> None:
        if self.loaded.pop(number, None) is None:
            return
        for transactional_id in [
            t for t in self.transactions if self.service.partition_for(t) == number
        ]:
            del self.transactions[transactional_id]

    def on_become_leader(self, partition: Partition) -> None:
        if partition.tp.topic == TRANSACTION_STATE_TOPIC and self.broker.alive:
            self.load(partition.tp.partition, partition)

    def on_become_follower(self, partition: Partition) -> None:
        if partition.tp.topic == TRANSACTION_STATE_TOPIC:
            self._unload(partition.tp.partition)

    def on_broker_stopped(self) -> None:
        self.loaded = {}
        self.transactions = {}

    def check_loaded(self) -> None:
        """Load any state partition this broker leads but has not loaded yet."""
        if not self.broker.alive:
            return
        for tp, partition in sorted(self.broker.partitions.items()):
            if tp.topic != TRANSACTION_STATE_TOPIC:
                continue
            if partition.is_leader and self.loaded.get(tp.partition) != partition.leader_epoch:
                self.load(tp.partition, partition)
            elif not partition.is_leader:
                self._unload(tp.partition)

    # --- writing the state log -------------------------------------------------------------

    def _write(
        self, meta: TransactionMetadata, target: TransactionMetadata, done: Callable[[str], None]
    ) -> None:
        """Kafka's `appendTransactionToLog`: write the target state; apply it once replicated."""
        number, partition = self._state_partition(meta.transactional_id)
        if partition is None or not partition.is_leader:
            done("NOT_COORDINATOR")
            return
        target.last_update_ms = self.now_ms
        meta.pending_state = target.state
        batch = build_batch(
            partition, [(meta.transactional_id.encode(), target.log_value())], self.now_ms
        )

        def written(error: str) -> None:
            if not self.owns(meta):
                done("NOT_COORDINATOR")
                return
            meta.pending_state = None
            if error:
                done(_APPEND_ERRORS.get(error, "UNKNOWN_SERVER_ERROR"))
                return
            meta.complete_transit(target)
            done("")

        append_and_replicate(self.broker, partition, batch, COORDINATOR_WRITE_TIMEOUT_MS, written)

    def _bumped(self, meta: TransactionMetadata) -> tuple[int, int]:
        if meta.producer_epoch >= MAX_EPOCH - 1:
            return (self.allocate_producer_id(), 0)
        return (meta.producer_id, meta.producer_epoch + 1)

    # --- requests from producers -------------------------------------------------------------

    def handle_init_producer_id(
        self,
        transactional_id: str,
        timeout_ms: int,
        expected: tuple[int, int] | None,
        respond: Respond,
    ) -> None:
        """InitProducerId (T2): a new epoch for the id, fencing older producers."""
        if timeout_ms > int(self.broker_config["transaction.max.timeout.ms"]):
            respond(("INVALID_TRANSACTION_TIMEOUT", None))
            return
        error, meta = self._lookup(transactional_id)
        if error:
            respond((error, None))
            return
        if meta is None:
            meta = TransactionMetadata(
                transactional_id, self.allocate_producer_id(), NO_PRODUCER_EPOCH, timeout_ms
            )
            self.transactions[transactional_id] = meta
        if meta.pending_state is not None:
            respond(("CONCURRENT_TRANSACTIONS", None))
            return
        if (
            expected is not None
            and meta.producer_epoch != NO_PRODUCER_EPOCH
            and expected != (meta.producer_id, meta.producer_epoch)
        ):
            respond(("PRODUCER_FENCED", None))
            return
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            respond(("CONCURRENT_TRANSACTIONS", None))
            return
        producer_id, producer_epoch = self._bumped(meta)
        if meta.state == ONGOING:
            # The old producer's open transaction is aborted under a bumped epoch (fencing it);
            # the new producer retries until the abort completes.
            target = meta.transit(
                producer_id=producer_id, producer_epoch=producer_epoch, state=PREPARE_ABORT
            )
            self._end_transaction(
                meta,
                target,
                "fenced by a newer producer",
                lambda error: respond((error or "CONCURRENT_TRANSACTIONS", None)),
            )
            return
        target = meta.transit(
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            timeout_ms=timeout_ms,
            state=EMPTY,
            partitions=set(),
            txn_start_ms=-1,
        )
        self._write(
            meta,
            target,
            lambda error: respond((error, None) if error else ("", (producer_id, producer_epoch))),
        )

    def _check_producer(
        self, transactional_id: str, producer_id: int, producer_epoch: int
    ) -> tuple[str, TransactionMetadata | None]:
        error, meta = self._lookup(transactional_id)
        if error:
            return (error, None)
        if meta is None or meta.producer_id != producer_id:
            return ("INVALID_PRODUCER_ID_MAPPING", None)
        if producer_epoch != meta.producer_epoch:
            return ("PRODUCER_FENCED", None)
        if meta.pending_state is not None or meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            return ("CONCURRENT_TRANSACTIONS", None)
        return ("", meta)

    def handle_add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        tps: list[TopicPartition],
        respond: Respond,
    ) -> None:
        """AddPartitionsToTxn: the partitions that will need a marker."""
        error, meta = self._check_producer(transactional_id, producer_id, producer_epoch)
        if meta is None:
            respond((error, None))
            return
        for tp in tps:
            topic = self.controller.topics.get(tp.topic)
            if topic is None or tp.partition not in topic.partitions:
                respond(("UNKNOWN_TOPIC_OR_PARTITION", None))
                return
        if meta.state == ONGOING and set(tps) <= meta.partitions:
            respond(("", None))
            return
        if meta.state == ONGOING:
            target = meta.transit(partitions=meta.partitions | set(tps))
        else:
            target = meta.transit(state=ONGOING, partitions=set(tps), txn_start_ms=self.now_ms)
        self._write(meta, target, lambda error: respond((error, None)))

    def handle_add_offsets(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        group_id: str,
        respond: Respond,
    ) -> None:
        """AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction."""
        groups = self.service.groups
        if groups is None:
            respond(("COORDINATOR_NOT_AVAILABLE", None))
            return
        groups.ensure_offsets_topic()
        if OFFSETS_TOPIC not in self.controller.topics:
            respond(("COORDINATOR_NOT_AVAILABLE", None))
            return
        tp = TopicPartition(OFFSETS_TOPIC, groups.partition_for(group_id))
        self.handle_add_partitions(transactional_id, producer_id, producer_epoch, [tp], respond)

    def handle_end_txn(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        respond: Respond,
    ) -> None:
        """EndTxn: PrepareCommit/PrepareAbort now (the answer), markers and Complete* after."""
        error, meta = self._lookup(transactional_id)
        if error:
            respond((error, None))
            return
        if meta is None or meta.producer_id != producer_id:
            respond(("INVALID_PRODUCER_ID_MAPPING", None))
            return
        if producer_epoch != meta.producer_epoch:
            respond(("PRODUCER_FENCED", None))
            return
        if meta.pending_state is not None:
            respond(("CONCURRENT_TRANSACTIONS", None))
            return
        wanted_prepare = PREPARE_COMMIT if commit else PREPARE_ABORT
        wanted_complete = COMPLETE_COMMIT if commit else COMPLETE_ABORT
        if meta.state == ONGOING:
            self._end_transaction(
                meta,
                meta.transit(state=wanted_prepare),
                "commit_transaction" if commit else "abort_transaction",
                lambda error: respond((error, None)),
            )
        elif meta.state == wanted_complete:
            respond(("", None))  # a retry of an EndTxn that already completed
        elif meta.state == wanted_prepare:
            respond(("CONCURRENT_TRANSACTIONS", None))
        else:
            respond(("INVALID_TXN_STATE", None))

    # --- the state machine (T3) --------------------------------------------------------------

    def _end_transaction(
        self,
        meta: TransactionMetadata,
        target: TransactionMetadata,
        reason: str,
        done: Callable[[str], None],
    ) -> None:
        def prepared(error: str) -> None:
            if not error:
                meta.end_reason = reason
            done(error)
            if not error:
                self.markers.send_markers(meta)

        self._write(meta, target, prepared)

    def complete_transaction(self, meta: TransactionMetadata) -> None:
        """Every marker is written: CompleteCommit/CompleteAbort, retried until it lands."""
        if not self.owns(meta) or meta.state not in (PREPARE_COMMIT, PREPARE_ABORT):
            return
        if meta.pending_state is not None:
            self._retry_complete(meta)
            return
        commit = meta.state == PREPARE_COMMIT
        partitions = sorted(meta.partitions)
        target = meta.transit(
            state=COMPLETE_COMMIT if commit else COMPLETE_ABORT, partitions=set(), txn_start_ms=-1
        )

        def completed(error: str) -> None:
            if error == "COORDINATOR_NOT_AVAILABLE":
                self._retry_complete(meta)
                return
            if error:
                return  # no longer the coordinator: the new one completes it after loading
            self.ctx.emit(
                "transaction_committed" if commit else "transaction_aborted",
                {
                    "transactional_id": meta.transactional_id,
                    "producer_id": meta.producer_id,
                    "producer_epoch": meta.producer_epoch,
                    "partitions": [[tp.topic, tp.partition] for tp in partitions],
                    "coordinator": self.broker.id,
                    "reason": meta.end_reason,
                },
            )

        self._write(meta, target, completed)

    def _retry_complete(self, meta: TransactionMetadata) -> None:
        self.ctx.scheduler.call_later(
            MARKER_RETRY_BACKOFF_MS, lambda: self.complete_transaction(meta)
        )

    def abort_timed_out_transactions(self) -> None:
        """T1: an Ongoing transaction older than its timeout is aborted under a bumped epoch."""
        self.check_loaded()
        now = self.now_ms
        for transactional_id in sorted(self.transactions):
            meta = self.transactions[transactional_id]
            if meta.state != ONGOING or meta.pending_state is not None:
                continue
            if now - meta.txn_start_ms <= meta.timeout_ms or not self.owns(meta):
                continue
            producer_id, producer_epoch = self._bumped(meta)
            target = meta.transit(
                producer_id=producer_id, producer_epoch=producer_epoch, state=PREPARE_ABORT
            )
            self._end_transaction(meta, target, "transaction.timeout.ms", lambda _error: None)


class TransactionService:
    """`cluster.transactions`: routes requests to the coordinator of the broker
    that receives them, creates the state topic, and gives read-only views."""

    def __init__(
        self,
        ctx: SimContext,
        broker_config: dict[str, Any],
        controller: QuorumController,
        create_topic: CreateTopic,
        allocate_producer_id: Callable[[], int],
    ) -> None:
        self.ctx = ctx
        self.broker_config = broker_config
        self.controller = controller
        self.create_topic = create_topic
        self.allocate_producer_id = allocate_producer_id
        self.coordinators: dict[int, TransactionCoordinator] = {}
        for broker_id in ctx.nodes.broker_ids():
            broker = ctx.nodes.broker_by_id(broker_id)
            coordinator = TransactionCoordinator(self, broker)
            self.coordinators[broker_id] = coordinator
        # The group coordinators' service, for AddOffsetsToTxn; the facade wires it.
        self.groups: GroupService | None = None
        # The timed-out transactions check sleeps while it could find nothing: no broker holds
        # a partition of the state topic, so no coordinator has loaded or holds a transaction.
        self._dormant_since: int | None = None
        self._check_interval_ms = int(
            broker_config["transaction.abort.timed.out.transaction.cleanup.interval.ms"]
        )
        self._schedule_timeout_check(ctx.now_ms + self._check_interval())

    def _check_interval(self) -> int:
        """The check's interval as it was when the cluster was built."""
        return self._check_interval_ms

    def _schedule_timeout_check(self, due_ms: int) -> None:
        def tick() -> None:
            for broker_id in sorted(self.coordinators):
                self.coordinators[broker_id].abort_timed_out_transactions()
            if self._nothing_to_check():
                self._dormant_since = self.ctx.now_ms
            else:
                self.ctx.scheduler.call_later(self._check_interval(), tick)

        self.ctx.scheduler.call_at(due_ms, tick)

    def _nothing_to_check(self) -> bool:
        for coordinator in self.coordinators.values():
            if coordinator.transactions or coordinator.loaded:
                return False
            if any(tp.topic == TRANSACTION_STATE_TOPIC for tp in coordinator.broker.partitions):
                return False
        return True

    def wake_timeout_checks(self) -> None:
        """A state-topic partition reached a broker: a sleeping check resumes on its schedule
        (the checks it skipped found nothing)."""
        since = self._dormant_since
        if since is None:
            return
        self._dormant_since = None
        interval = self._check_interval()
        now = self.ctx.now_ms
        self._schedule_timeout_check(since + ((now - since) // interval + 1) * interval)

    # --- where coordinators live -------------------------------------------------------------

    @property
    def num_partitions(self) -> int:
        topic = self.controller.topics.get(TRANSACTION_STATE_TOPIC)
        if topic is not None and topic.partitions:
            return len(topic.partitions)
        return int(self.broker_config["transaction.state.log.num.partitions"])

    def partition_for(self, transactional_id: str) -> int:
        return java_abs(java_string_hash(transactional_id)) % self.num_partitions

    def _ensure_state_topic(self) -> None:
        if TRANSACTION_STATE_TOPIC in self.controller.topics:
            return
        config = self.broker_config
        self.create_topic(
            TRANSACTION_STATE_TOPIC,
            int(config["transaction.state.log.num.partitions"]),
            min(
                int(config["transaction.state.log.replication.factor"]),
                len(self.ctx.nodes.broker_ids()),
            ),
            {
                "cleanup.policy": "compact",
                "min.insync.replicas": int(config["transaction.state.log.min.isr"]),
                "segment.bytes": 104857600,
                "unclean.leader.election.enable": False,
            },
            internal=True,
        )

    def handle_find_coordinator(self, broker: Broker, transactional_id: str) -> Response:
        """FindCoordinator(key type TRANSACTION): the leader of the id's state partition."""
        if TRANSACTION_STATE_TOPIC not in self.controller.topics:
            try:
                self._ensure_state_topic()
            except KafkaError as exc:
                self.ctx.emit("transaction_state_topic_creation_failed", {"error": exc.kafka_name})
            return ("COORDINATOR_NOT_AVAILABLE", None)
        view = broker.topics.get(TRANSACTION_STATE_TOPIC)
        if view is None:
            return ("COORDINATOR_NOT_AVAILABLE", None)
        registration = view.partitions.get(self.partition_for(transactional_id))
        if registration is None or registration.leader == NO_LEADER:
            return ("COORDINATOR_NOT_AVAILABLE", None)
        return ("", registration.leader)

    def coordinator_of(self, broker: Broker) -> TransactionCoordinator:
        return self.coordinators[broker.id]

    def current_coordinator(self, transactional_id: str) -> TransactionCoordinator | None:
        topic = self.controller.topics.get(TRANSACTION_STATE_TOPIC)
        if topic is None:
            return None
        registration = topic.partitions.get(self.partition_for(transactional_id))
        if registration is None or registration.leader == NO_LEADER:
            return None
        return self.coordinators.get(registration.leader)

    # --- read_committed support --------------------------------------------------------------

    def aborted_transactions(
        self, partition: Partition, start: int, end: int
    ) -> list[tuple[int, int]]:
        """(producer id, first offset) of every aborted transaction that overlaps [start, end)
        in this replica's log, from its aborted-transaction index."""
        from engine.storage.transaction_index import aborted_transactions

        return aborted_transactions(partition, start, end)

    # --- views -------------------------------------------------------------------------------

    def describe_transaction(self, transactional_id: str) -> dict[str, Any] | None:
        """The transaction as its current coordinator knows it (or as its log has it)."""
        coordinator = self.current_coordinator(transactional_id)
        if coordinator is None:
            return None
        number, partition = coordinator._state_partition(transactional_id)
        if partition is None:
            return None
        if coordinator.broker.alive and coordinator.loaded.get(number) == partition.leader_epoch:
            meta = coordinator.transactions.get(transactional_id)
        else:
            meta = read_transaction_state(partition).get(transactional_id)
        return meta.to_dict() if meta is not None else None

    def snapshot(self) -> dict[str, Any]:
        found: dict[str, dict[str, Any]] = {}
        for broker_id in sorted(self.coordinators):
            coordinator = self.coordinators[broker_id]
            for transactional_id, meta in coordinator.transactions.items():
                if self.current_coordinator(transactional_id) is coordinator:
                    found[transactional_id] = {**meta.to_dict(), "coordinator": broker_id}
        return {
            "transactions": [found[t] for t in sorted(found)],
            "loaded": [
                [broker_id, number, epoch]
                for broker_id in sorted(self.coordinators)
                for number, epoch in sorted(self.coordinators[broker_id].loaded.items())
            ],
        }
