"""The producer's side of transactions: Kafka's `TransactionManager` (T2-T6).

It finds the transaction coordinator, gets the producer id and epoch (`init_transactions`),
adds partitions to the transaction before their first batch is sent, sends offsets with the
transaction, and ends it with EndTxn. A fenced producer (PRODUCER_FENCED, or
INVALID_PRODUCER_EPOCH from a partition leader) is in a fatal state: every later transactional
call raises `ProducerFencedError`. Other failures make the transaction abortable: it must be
aborted before the producer can go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.clients.network_client import REQUEST_TIMED_OUT, transaction_coordinator_at
from engine.clients.network_client import group_coordinator_at as group_coordinator_of
from engine.common.records import TopicPartition
from engine.errors import (
    CommitFailedError,
    IllegalStateError,
    InvalidProducerEpochError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
    TransactionAbortableError,
    TransactionAbortedError,
    error_for_name,
)
from engine.sim.network import DISCONNECTED

if TYPE_CHECKING:
    from engine.clients.producer.kafka_producer import KafkaProducer
    from engine.coordinator.transaction.transaction_coordinator import (
        TransactionCoordinator,
    )
    from engine.server.broker import Broker
    from engine.sim.context import SimContext

__all__ = ["ConsumerGroupMetadata", "TransactionAbortedError", "TransactionManager"]

UNINITIALIZED = "UNINITIALIZED"
INITIALIZING = "INITIALIZING"
READY = "READY"
IN_TRANSACTION = "IN_TRANSACTION"
COMMITTING_TRANSACTION = "COMMITTING_TRANSACTION"
ABORTING_TRANSACTION = "ABORTING_TRANSACTION"
ABORTABLE_ERROR = "ABORTABLE_ERROR"
FATAL_ERROR = "FATAL_ERROR"

_RETRY_COORDINATOR = {
    "NOT_COORDINATOR",
    "COORDINATOR_NOT_AVAILABLE",
    "COORDINATOR_LOAD_IN_PROGRESS",
}
# A coordinator's INVALID_PRODUCER_EPOCH means the same as PRODUCER_FENCED (Kafka's handlers).
_FENCED = {"PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"}
CoordinatorCall = Callable[["TransactionCoordinator", Callable[[Any], None]], None]


@dataclass(frozen=True, slots=True)
class ConsumerGroupMetadata:
    """Kafka's `ConsumerGroupMetadata` (KIP-447): what `send_offsets_to_transaction` needs to
    have the group coordinator check that the consumer still owns its partitions."""

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None

    @classmethod
    def of(cls, value: Any) -> ConsumerGroupMetadata:
        """A group id, a ConsumerGroupMetadata, its dict form (an exported log) or a consumer."""
        if isinstance(value, ConsumerGroupMetadata):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict):
            return cls(**value)
        coordinator = getattr(value, "coordinator", None)
        if coordinator is not None:
            return cls(
                coordinator.group_id,
                coordinator.generation,
                coordinator.member_id,
                coordinator.instance_id,
            )
        raise TypeError("send_offsets_to_transaction takes a group id or a ConsumerGroupMetadata")

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "generation_id": self.generation_id,
            "member_id": self.member_id,
            "group_instance_id": self.group_instance_id,
        }


def consumer_group_metadata(consumer: Any) -> ConsumerGroupMetadata:
    """`consumer.groupMetadata()`: the consumer's group, generation and member id right now."""
    return ConsumerGroupMetadata.of(consumer)


class TransactionManager:
    def __init__(self, producer: KafkaProducer) -> None:
        self.producer = producer
        assert producer.transactional_id is not None
        self.transactional_id: str = producer.transactional_id
        self.timeout_ms = int(producer.config["transaction.timeout.ms"])
        self.state = UNINITIALIZED
        self.coordinator: int | None = None
        self.partitions_in_transaction: set[TopicPartition] = set()
        self.pending_partitions: set[TopicPartition] = set()
        self.offsets_added = False
        self.add_in_flight = False
        self.last_error: KafkaError | None = None
        self._generation = 0
        self._coordinator_busy = False
        self._waiting: list[Callable[[], None]] = []
        self._timed_out_end: bool | None = None  # commit (True) or abort (False) to retry

    @property
    def ctx(self) -> SimContext:
        return self.producer.ctx

    @staticmethod
    def _coordinator_at(broker: Broker) -> TransactionCoordinator:
        return transaction_coordinator_at(broker)

    # --- requests to the coordinator ---------------------------------------------------------

    def _request(
        self,
        kind: str,
        call: CoordinatorCall,
        done: Callable[[str, Any], None],
        deadline_ms: int,
    ) -> None:
        """Send to the coordinator (looking it up first), retrying retriable answers until the
        deadline; `done(error, payload)` gets the final answer. As in Kafka's client, one
        request to the coordinator is in flight at a time, so the producer's own requests never
        collide (CONCURRENT_TRANSACTIONS) with each other."""
        generation = self._generation
        backoff = int(self.producer.config["retry.backoff.ms"])

        def finish(error: str, payload: Any) -> None:
            self._coordinator_busy = False
            done(error, payload)
            if self._waiting and not self._coordinator_busy:
                self._coordinator_busy = True
                self._waiting.pop(0)()

        def retry() -> None:
            if self._generation != generation:
                return
            if self.producer.now_ms + backoff > deadline_ms:
                finish("REQUEST_TIMED_OUT", None)
                return
            self.ctx.scheduler.call_later(backoff, attempt)

        def attempt() -> None:
            if self._generation != generation:
                return
            if self.coordinator is None:
                self._find_coordinator(attempt, retry)
                return

            def handle(broker: Broker, reply: Callable[[object], None]) -> None:
                call(self._coordinator_at(broker), reply)

            def on_reply(response: object) -> None:
                if self._generation != generation:
                    return
                if response is DISCONNECTED or response == REQUEST_TIMED_OUT:
                    self.coordinator = None
                    retry()
                    return
                assert isinstance(response, tuple)
                error, payload = response
                if error in _RETRY_COORDINATOR:
                    self.coordinator = None
                    retry()
                elif error == "CONCURRENT_TRANSACTIONS":
                    retry()
                else:
                    finish(error, payload)

            self.producer.send_request(self.coordinator, kind, handle, on_reply)

        if self._coordinator_busy:
            self._waiting.append(attempt)
        else:
            self._coordinator_busy = True
            attempt()

    def _find_coordinator(self, then: Callable[[], None], retry: Callable[[], None]) -> None:
        broker_id = self.producer.pick_broker()
        if broker_id is None:
            retry()
            return
        transactional_id = self.transactional_id

        def handle(broker: Broker, reply: Callable[[object], None]) -> None:
            reply(
                self._coordinator_at(broker).service.handle_find_coordinator(
                    broker, transactional_id
                )
            )

        def on_reply(response: object) -> None:
            if isinstance(response, tuple) and response[0] == "":
                self.coordinator = response[1]
                then()
            else:
                retry()

        self.producer.send_request(broker_id, "find_coordinator", handle, on_reply)

    def _call(self, kind: str, call: CoordinatorCall) -> tuple[str, Any]:
        """A blocking request: the cluster's clock runs until it answers or max.block.ms passes."""
        result: list[tuple[str, Any]] = []
        deadline = self.producer.now_ms + int(self.producer.config["max.block.ms"])
        self._request(kind, call, lambda error, payload: result.append((error, payload)), deadline)
        self.ctx.run_until(lambda: bool(result), deadline)
        if not result or result[0][0] == "REQUEST_TIMED_OUT":
            self._generation += 1  # late answers to this call are ignored
            self._coordinator_busy = False
            self._waiting = []
            self.add_in_flight = False
            raise KafkaTimeoutError(
                f"{kind} did not complete within max.block.ms "
                f"({self.producer.config['max.block.ms']} ms)."
            )
        return result[0]

    # --- state checks ------------------------------------------------------------------------

    def _fail_fatal(self, error: KafkaError) -> None:
        self.state = FATAL_ERROR
        self.last_error = error
        self._fail_queued_batches(error)

    def _fail_abortable(self, error: KafkaError) -> None:
        if self.state in (FATAL_ERROR, ABORTABLE_ERROR):
            return
        self.state = ABORTABLE_ERROR
        self.last_error = error

    def _raise_if_failed(self) -> None:
        if self.state == FATAL_ERROR and self.last_error is not None:
            raise self.last_error

    def _fenced(self, error: str = "PRODUCER_FENCED") -> ProducerFencedError:
        return ProducerFencedError(
            f"There is a newer producer with the same transactional.id ({self.transactional_id!r}) "
            f"which fences this one ({error})."
        )

    def _error(self, error: str) -> KafkaError:
        if error in _FENCED:
            return self._fenced(error)
        return error_for_name(error)()

    # --- hooks called by KafkaProducer -------------------------------------------------------

    def before_send(self) -> None:
        self._raise_if_failed()
        if self.state in (UNINITIALIZED, INITIALIZING):
            raise IllegalStateError(
                "Cannot perform a 'send' before completing a call to init_transactions."
            )
        if self.state == ABORTABLE_ERROR:
            raise TransactionAbortableError(
                "Cannot send: an earlier request of this transaction failed "
                f"({self._last_error_name()}); abort the transaction first."
            )
        if self.state != IN_TRANSACTION:
            raise IllegalStateError(
                f"Cannot call send in state {self.state}: call begin_transaction first."
            )

    def maybe_add_partition(self, tp: TopicPartition) -> None:
        if tp not in self.partitions_in_transaction:
            self.pending_partitions.add(tp)

    def ready_to_send(self) -> bool:
        if self.state in (FATAL_ERROR, ABORTABLE_ERROR):
            return False
        if self.pending_partitions and not self.add_in_flight:
            self._add_partitions()
        return not self.pending_partitions and not self.add_in_flight

    def on_batch_failed(self, error: KafkaError) -> None:
        """Kafka's `maybeTransitionToErrorState`: PRODUCER_FENCED is fatal; anything else,
        INVALID_PRODUCER_EPOCH from a partition leader included (KIP-588), makes the
        transaction abortable. The EndTxn of that abort then learns the producer was fenced."""
        if isinstance(error, ProducerFencedError):
            if self.state != FATAL_ERROR:
                self._fail_fatal(self._fenced(error.kafka_name))
        elif not isinstance(error, TransactionAbortedError):
            self._fail_abortable(error)

    def _add_partitions(self) -> None:
        tps = sorted(self.pending_partitions)
        self.add_in_flight = True
        producer = self.producer
        pid, epoch, tid = producer.producer_id, producer.producer_epoch, self.transactional_id

        def done(error: str, _payload: Any) -> None:
            self.add_in_flight = False
            if not error:
                self.partitions_in_transaction.update(tps)
                self.pending_partitions.difference_update(tps)
            elif error in _FENCED:
                self._fail_fatal(self._fenced(error))
            else:
                self._fail_abortable(self._error(error))
                self._fail_queued_batches(self.last_error or self._error(error))
            producer._wake_sender(0)

        deadline = producer.now_ms + int(producer.config["max.block.ms"])
        self._request(
            "add_partitions_to_txn",
            lambda coordinator, reply: coordinator.handle_add_partitions(
                tid, pid, epoch, tps, reply
            ),
            done,
            deadline,
        )

    def _fail_queued_batches(self, error: KafkaError) -> None:
        """Batches not yet sent fail with the transaction's error."""
        producer = self.producer
        for queue in producer.batches.values():
            while queue:
                producer._fail_batch(queue.popleft(), error)

    def _last_error_name(self) -> str:
        return self.last_error.kafka_name if self.last_error is not None else "unknown"

    # --- the public calls (KafkaProducer delegates here) -------------------------------------

    def init_transactions(self) -> None:
        self._raise_if_failed()
        if self.state not in (UNINITIALIZED, INITIALIZING):
            raise IllegalStateError(f"init_transactions was already called (state {self.state}).")
        self.state = INITIALIZING
        self._init_producer_id(None)
        self.state = READY

    def _init_producer_id(self, expected: tuple[int, int] | None) -> None:
        tid, timeout = self.transactional_id, self.timeout_ms
        error, payload = self._call(
            "init_producer_id",
            lambda coordinator, reply: coordinator.handle_init_producer_id(
                tid, timeout, expected, reply
            ),
        )
        if error:
            exception = self._error(error)
            if error in _FENCED:
                self._fail_fatal(exception)
            raise exception
        producer = self.producer
        producer.producer_id, producer.producer_epoch = payload
        producer.next_sequence.clear()

    def begin_transaction(self) -> None:
        self._raise_if_failed()
        if self.state != READY:
            raise IllegalStateError(f"Cannot begin a transaction in state {self.state}.")
        self.state = IN_TRANSACTION
        self.partitions_in_transaction = set()
        self.pending_partitions = set()
        self.offsets_added = False

    def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group: str | ConsumerGroupMetadata | Any
    ) -> None:
        """AddOffsetsToTxn to the transaction coordinator, then TxnOffsetCommit to the group
        coordinator, which holds the offsets until the transaction ends (T6)."""
        self._raise_if_failed()
        if self.state == ABORTABLE_ERROR:
            raise TransactionAbortableError(
                "Abort the transaction first: an earlier request failed."
            )
        if self.state != IN_TRANSACTION:
            raise IllegalStateError(
                f"Cannot send offsets in state {self.state}: no transaction is open."
            )
        metadata = ConsumerGroupMetadata.of(group)
        group_id = metadata.group_id
        producer = self.producer
        pid, epoch, tid = producer.producer_id, producer.producer_epoch, self.transactional_id
        error, _ = self._call(
            "add_offsets_to_txn",
            lambda coordinator, reply: coordinator.handle_add_offsets(
                tid, pid, epoch, group_id, reply
            ),
        )
        if not error:
            self.offsets_added = True
            error = self._txn_offset_commit(metadata, dict(offsets))
        if error:
            if error in _FENCED:
                exception = self._error(error)
                self._fail_fatal(exception)
            elif error in ("UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION"):
                exception = CommitFailedError(
                    "Transaction offset commit failed: the consumer group metadata does not match "
                    f"the group's current generation ({error})."
                )
                self._fail_abortable(exception)
            else:
                exception = self._error(error)
                self._fail_abortable(exception)
            raise exception

    def _txn_offset_commit(
        self, metadata: ConsumerGroupMetadata, offsets: dict[TopicPartition, int]
    ) -> str:
        """TxnOffsetCommit, retried on a moved or unavailable group coordinator."""
        producer = self.producer
        pid, epoch = producer.producer_id, producer.producer_epoch
        deadline = producer.now_ms + int(producer.config["max.block.ms"])
        backoff = int(producer.config["retry.backoff.ms"])
        while True:
            coordinator_id = self._find_group_coordinator(metadata.group_id, deadline)
            result: list[object] = []

            def handle(broker: Broker, reply: Callable[[object], None]) -> None:
                store = broker.txn_offsets
                if store is None:
                    reply("COORDINATOR_NOT_AVAILABLE")
                    return
                store.handle_txn_offset_commit(
                    pid,
                    epoch,
                    metadata.group_id,
                    metadata.generation_id,
                    metadata.member_id,
                    metadata.group_instance_id,
                    offsets,
                    reply,
                )

            producer.send_request(coordinator_id, "txn_offset_commit", handle, result.append)

            def answered(seen: list[object] = result) -> bool:
                return bool(seen)

            self.ctx.run_until(answered, deadline)
            if not result:
                raise KafkaTimeoutError("TxnOffsetCommit did not complete within max.block.ms.")
            response = result[0]
            if (
                response is DISCONNECTED
                or response == REQUEST_TIMED_OUT
                or response in _RETRY_COORDINATOR
                or response == "CONCURRENT_TRANSACTIONS"
            ):
                if producer.now_ms + backoff > deadline:
                    raise KafkaTimeoutError(
                        f"TxnOffsetCommit did not complete within max.block.ms ({response})."
                    )
                self.ctx.run_until(lambda: False, producer.now_ms + backoff)
                continue
            assert isinstance(response, str)
            return response

    def _find_group_coordinator(self, group_id: str, deadline: int) -> int:
        """FindCoordinator(GROUP): creates `__consumer_offsets` if needed and waits until the
        group's coordinator is elected (up to the deadline)."""
        producer = self.producer
        found: list[int] = []
        backoff = int(producer.config["retry.backoff.ms"])

        def attempt() -> None:
            broker_id = producer.pick_broker()
            if broker_id is None:
                retry()
                return

            def handle(broker: Broker, reply: Callable[[object], None]) -> None:
                reply(group_coordinator_of(broker).service.find_coordinator(broker, group_id))

            def on_reply(response: object) -> None:
                if isinstance(response, tuple) and response[0] == "":
                    found.append(int(response[1]))
                else:
                    retry()

            producer.send_request(broker_id, "find_coordinator", handle, on_reply)

        def retry() -> None:
            if producer.now_ms + backoff <= deadline:
                self.ctx.scheduler.call_later(backoff, attempt)

        attempt()
        self.ctx.run_until(lambda: bool(found), deadline)
        if not found:
            raise KafkaTimeoutError(
                f"The coordinator of group {group_id!r} was not found within max.block.ms."
            )
        return found[0]

    def _raise_if_stale_epoch(self) -> None:
        """Kafka's `maybeFailWithError` rethrows InvalidProducerEpochException as it is."""
        if self.state == ABORTABLE_ERROR and isinstance(self.last_error, InvalidProducerEpochError):
            raise InvalidProducerEpochError(
                f"Producer with transactional.id {self.transactional_id!r} attempted to produce "
                "with an old epoch: abort the transaction."
            )

    def commit_transaction(self) -> None:
        self._raise_if_failed()
        if self.state == COMMITTING_TRANSACTION and self._timed_out_end is True:
            self._end(commit=True)  # the retry of a commit that timed out
            return
        self._raise_if_stale_epoch()
        if self.state == ABORTABLE_ERROR:
            raise TransactionAbortableError(
                f"Cannot commit: a request of this transaction failed ({self._last_error_name()}); "
                "abort it instead."
            )
        if self.state != IN_TRANSACTION:
            raise IllegalStateError(f"Cannot commit a transaction in state {self.state}.")
        self.state = COMMITTING_TRANSACTION
        self.producer._flush()
        self._raise_if_failed()
        self._raise_if_stale_epoch()
        if self.state == ABORTABLE_ERROR:
            raise TransactionAbortableError(
                "Cannot commit: a send of this transaction failed "
                f"({self._last_error_name()}); abort it instead."
            )
        self._end(commit=True)

    def abort_transaction(self) -> None:
        self._raise_if_failed()
        if self.state == ABORTING_TRANSACTION and self._timed_out_end is False:
            self._end(commit=False)  # the retry of an abort that timed out
            return
        if self.state not in (IN_TRANSACTION, ABORTABLE_ERROR, COMMITTING_TRANSACTION):
            raise IllegalStateError(f"Cannot abort a transaction in state {self.state}.")
        had_error = self.state == ABORTABLE_ERROR
        self.state = ABORTING_TRANSACTION
        producer = self.producer
        self._fail_queued_batches(
            TransactionAbortedError("Failing batch since transaction was aborted.")
        )
        self.pending_partitions = set()
        # Batches already sent must finish first (their sequence numbers are spoken for).
        producer.ctx.run_until(
            lambda: not any(producer.in_flight_batches.values()),
            producer.now_ms + producer.request_timeout_ms + 1000,
        )
        self._end(commit=False)
        if had_error:
            # KIP-360: after an abortable error the producer bumps its epoch, which resets
            # sequence numbers on every partition.
            self._init_producer_id((producer.producer_id, producer.producer_epoch))

    def _end(self, commit: bool) -> None:
        if not self.partitions_in_transaction and not self.offsets_added:
            self.state = READY  # nothing reached the coordinator: nothing to end
            return
        producer = self.producer
        pid, epoch, tid = producer.producer_id, producer.producer_epoch, self.transactional_id
        try:
            error, _ = self._call(
                "end_txn",
                lambda coordinator, reply: coordinator.handle_end_txn(
                    tid, pid, epoch, commit, reply
                ),
            )
        except KafkaTimeoutError:
            # Kafka lets the application call the same method again to finish the job.
            self._timed_out_end = commit
            raise
        self._timed_out_end = None
        if error:
            exception = self._error(error)
            if error in _FENCED:
                self._fail_fatal(exception)
            else:
                self._fail_abortable(exception)
            raise exception
        self.state = READY
        self.partitions_in_transaction = set()
        self.offsets_added = False

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "coordinator": self.coordinator,
            "partitions": [
                [tp.topic, tp.partition] for tp in sorted(self.partitions_in_transaction)
            ],
        }


def attach_transaction_manager(producer: KafkaProducer) -> None:
    if producer.transactional_id:
        producer.transaction = TransactionManager(producer)
