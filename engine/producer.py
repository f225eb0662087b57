"""The producer client: Kafka's `KafkaProducer`, `RecordAccumulator` and `Sender`.

Records are batched per partition (`batch.size`, `linger.ms`), sent to the partition leader
with `acks`, retried with backoff on retriable errors until `delivery.timeout.ms`, and
deduplicated by the broker when the producer is idempotent (the default since Kafka 3.0).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.client import REQUEST_TIMED_OUT, ClientBase
from engine.clock import Timer
from engine.config import PRODUCER
from engine.errors import (
    IllegalStateError,
    InvalidConfigurationError,
    InvalidPartitionGivenError,
    KafkaClosedError,
    KafkaError,
    KafkaTimeoutError,
    NetworkError,
    RecordTooLargeError,
    error_for_name,
)
from engine.metadata import NO_LEADER
from engine.network import DISCONNECTED
from engine.partitioner import BuiltInPartitioner, partition_for_key
from engine.record_size import (
    RECORD_BATCH_OVERHEAD,
    estimate_size_in_bytes_upper_bound,
    record_size_in_bytes,
)
from engine.records import Record, RecordBatch, RecordMetadata, TopicPartition

if TYPE_CHECKING:
    from engine.broker import Broker
    from engine.cluster import Cluster

_METADATA_ERRORS = {
    "NOT_LEADER_OR_FOLLOWER",
    "UNKNOWN_TOPIC_OR_PARTITION",
    "LEADER_NOT_AVAILABLE",
    "FENCED_LEADER_EPOCH",
    "UNKNOWN_LEADER_EPOCH",
    "NETWORK_EXCEPTION",
}


class FutureRecordMetadata:
    """What `send()` returns: `get()` advances the cluster's clock until the send completes."""

    __slots__ = ("_producer", "_value", "_error", "_done", "id", "tp", "callbacks")

    def __init__(self, producer: KafkaProducer, future_id: int, tp: TopicPartition | None) -> None:
        self._producer = producer
        self._value: RecordMetadata | None = None
        self._error: KafkaError | None = None
        self._done = False
        self.id = future_id
        self.tp = tp
        self.callbacks: list[Callable[[RecordMetadata | None, KafkaError | None], None]] = []

    def done(self) -> bool:
        return self._done

    def succeeded(self) -> bool:
        return self._done and self._error is None

    def failed(self) -> bool:
        return self._done and self._error is not None

    @property
    def exception(self) -> KafkaError | None:
        return self._error

    @property
    def value(self) -> RecordMetadata | None:
        return self._value

    def _complete(self, value: RecordMetadata | None, error: KafkaError | None) -> None:
        if self._done:
            return
        self._done = True
        self._value = value
        self._error = error
        self._producer._pending.pop(self.id, None)
        for callback in self.callbacks:
            callback(value, error)

    def add_callback(
        self, callback: Callable[[RecordMetadata | None, KafkaError | None], None]
    ) -> None:
        if self._done:
            callback(self._value, self._error)
        else:
            self.callbacks.append(callback)

    def get(self, timeout_ms: int | None = None) -> RecordMetadata:
        if not self._done:
            self._producer.cluster._record_call(
                "future.get",
                {
                    "producer": self._producer.client_number,
                    "future": self.id,
                    "timeout_ms": timeout_ms,
                },
            )
            self._producer._wait_for(self, timeout_ms)
        if not self._done:
            raise KafkaTimeoutError(f"The send did not complete within {timeout_ms} ms.")
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


@dataclass(slots=True)
class ProducerBatch:
    tp: TopicPartition
    created_ms: int
    records: list[Record] = field(default_factory=list)
    futures: list[FutureRecordMetadata] = field(default_factory=list)
    size: int = RECORD_BATCH_OVERHEAD
    attempts: int = 0
    retry_at_ms: int = 0
    base_sequence: int = -1
    producer_id: int = -1
    producer_epoch: int = -1
    is_transactional: bool = False
    closed: bool = False
    done: bool = False
    in_flight: bool = False
    last_error: str = ""


class KafkaProducer(ClientBase):
    kind = "producer"

    def __init__(self, cluster: Cluster, config: dict[str, Any] | None, client_number: int) -> None:
        given = PRODUCER.parse(config)
        resolved = PRODUCER.defaults()
        resolved.update(given)
        super().__init__(cluster, resolved, client_number)
        self.acks = -1 if resolved["acks"] in ("all", "-1") else int(resolved["acks"])
        self.idempotent = self._resolve_idempotence(given, resolved)
        self.transactional_id: str | None = resolved["transactional.id"]
        self.batch_size = int(resolved["batch.size"])
        self.linger_ms = int(resolved["linger.ms"])
        self.delivery_timeout_ms = int(resolved["delivery.timeout.ms"])
        self.request_timeout_ms = int(resolved["request.timeout.ms"])
        # Kafka: delivery.timeout.ms must cover linger.ms + request.timeout.ms; an explicit
        # smaller value is a configuration error, a default one is raised to match.
        if self.delivery_timeout_ms < self.linger_ms + self.request_timeout_ms:
            if "delivery.timeout.ms" in given:
                raise InvalidConfigurationError(
                    "delivery.timeout.ms should be equal to or larger than linger.ms + "
                    "request.timeout.ms."
                )
            self.delivery_timeout_ms = self.linger_ms + self.request_timeout_ms
        self.max_in_flight = int(resolved["max.in.flight.requests.per.connection"])
        self.retries = int(resolved["retries"])
        self._max_request_size = int(resolved["max.request.size"])
        self._ignore_keys = bool(resolved["partitioner.ignore.keys"])
        self._metadata_max_age_ms = int(resolved["metadata.max.age.ms"])
        self._key_partitions: dict[tuple[bytes, int], int] = {}
        self._topic_partitions: dict[str, list[TopicPartition]] = {}
        self.batches: dict[TopicPartition, deque[ProducerBatch]] = {}
        self.in_flight: dict[int, int] = {}
        self.in_flight_batches: dict[TopicPartition, list[ProducerBatch]] = {}
        self.partitioners: dict[str, BuiltInPartitioner] = {}
        self.next_sequence: dict[TopicPartition, int] = {}
        # The producer epoch each partition's sequence numbers belong to: after an epoch bump a
        # partition keeps its old epoch until nothing sequenced under it is still pending, so a
        # retried batch is still recognised by the broker (Kafka's per-partition TxnPartitionEntry).
        self.sequence_epoch: dict[TopicPartition, int] = {}
        self._rewrite_sequences: set[TopicPartition] = set()
        self.producer_id = -1
        self.producer_epoch = -1
        self._pid_in_flight = False
        self._epoch_bump_needed = False
        self._sender_timer: Timer | None = None
        self._sender_due = -1
        self._pending: dict[int, FutureRecordMetadata] = {}
        self._next_future = 0
        self._flushing = False
        self.closed = False
        self.sent_records = 0
        self.acked_records = 0
        self.transaction: Any = None  # the transaction manager, when transactional

    def _resolve_idempotence(self, given: dict[str, Any], resolved: dict[str, Any]) -> bool:
        """I1: idempotence needs acks=all, retries > 0 and at most 5 in flight; an explicit
        request that conflicts is an error, an implicit default is silently turned off."""
        conflicts = []
        if self.acks != -1:
            conflicts.append("acks must be all")
        if int(resolved["retries"]) == 0:
            conflicts.append("retries must be greater than 0")
        if int(resolved["max.in.flight.requests.per.connection"]) > 5:
            conflicts.append("max.in.flight.requests.per.connection must be at most 5")
        explicit = "enable.idempotence" in given and given["enable.idempotence"]
        if explicit and conflicts:
            raise InvalidConfigurationError(
                "enable.idempotence=true conflicts with this producer's settings: "
                + "; ".join(conflicts)
                + "."
            )
        if resolved.get("transactional.id") and not resolved["enable.idempotence"]:
            raise InvalidConfigurationError(
                "A transactional producer needs enable.idempotence=true."
            )
        if resolved.get("transactional.id") and conflicts:
            raise InvalidConfigurationError(
                "A transactional producer needs " + "; ".join(conflicts) + "."
            )
        return bool(resolved["enable.idempotence"]) and not conflicts

    # --- public API --------------------------------------------------------------------------

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Any = None,
        timestamp_ms: int | None = None,
    ) -> FutureRecordMetadata:
        self.cluster._record_call(
            "producer.send",
            {
                "producer": self.client_number,
                "topic": topic,
                "value": value,
                "key": key,
                "partition": partition,
                "headers": headers,
                "timestamp_ms": timestamp_ms,
            },
        )
        return self._send(topic, value, key, partition, headers, timestamp_ms)

    def _send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        headers: Any,
        timestamp_ms: int | None,
    ) -> FutureRecordMetadata:
        if self.closed:
            raise KafkaClosedError("Cannot send after the producer is closed.")
        if not isinstance(topic, str):
            raise TypeError("topic must be a string")
        if key is not None and type(key) is not bytes:
            key = _as_bytes(key, "key")
        if value is not None and type(value) is not bytes:
            value = _as_bytes(value, "value")
        header_tuple = _headers(headers) if headers else ()
        if self.transaction is not None:
            self.transaction.before_send()
        self._next_future += 1
        future = FutureRecordMetadata(self, self._next_future, None)
        # A cheap bound first (batch header, varints, key and value): the exact estimate only
        # matters near the limits.
        size = _SIZE_SLACK + (len(key) if key else 0) + (len(value) if value else 0)
        if (
            header_tuple
            or size > self._max_request_size
            or size > self.cluster.limits.max_record_bytes
        ):
            size = estimate_size_in_bytes_upper_bound(key, value, header_tuple)
        if size > self._max_request_size:
            future._complete(
                None,
                RecordTooLargeError(
                    f"The message is {size} bytes when serialized which is larger than "
                    f"{self.config['max.request.size']}, "
                    "which is the value of the max.request.size configuration."
                ),
            )
            return future
        if size > self.cluster.limits.max_record_bytes:
            self.cluster.limits.check_record(size)
        infos = self.topics.get(topic)
        if infos is None:
            infos = self._wait_on_metadata(topic)
        elif self.now_ms - self.last_metadata_ms >= self._metadata_max_age_ms:
            self.request_metadata_update()  # metadata.max.age.ms: learn new partitions and leaders
        if infos is None:
            error = self.topic_errors.get(topic)
            message = (
                f"Topic {topic} not present in metadata after {self.config['max.block.ms']} ms."
                if not error
                else f"Topic {topic}: {error}"
            )
            future._complete(
                None,
                KafkaTimeoutError(message)
                if not error or error == "UNKNOWN_TOPIC_OR_PARTITION"
                else error_for_name(error)(),
            )
            return future
        count = len(infos)
        if partition is not None:
            if not isinstance(partition, int) or not 0 <= partition < count:
                raise InvalidPartitionGivenError(
                    f"Invalid partition given with record: {partition} is not in the range "
                    f"[0...{count})."
                )
            chosen = partition
        elif key is not None and not self._ignore_keys:
            chosen = self._partition_for_key(key, count)
        else:
            chosen = self._sticky(topic).peek_current_partition(count, self._available(topic))
        known = self._topic_partitions.get(topic)
        if known is None or len(known) != count:
            known = self._topic_partitions[topic] = [TopicPartition(topic, n) for n in range(count)]
        tp = known[chosen]
        future.tp = tp
        if self.transaction is not None:
            self.transaction.maybe_add_partition(tp)
        timestamp = self.now_ms if timestamp_ms is None else int(timestamp_ms)
        self._pending[future.id] = future
        appended, new_batch = self._append(tp, timestamp, key, value, header_tuple, future)
        if partition is None and (key is None or self._ignore_keys):
            # Kafka's allBatchesFull: only a full last batch lets the sticky partition switch.
            last = self.batches[tp][-1]
            full = last.closed or last.size >= self.batch_size
            self._sticky(topic).update_partition_info(appended, count, self._available(topic), full)
        self.sent_records += 1
        self.cluster.on_client_send(self, tp)
        return future

    def flush(self) -> None:
        if not self._pending:
            return
        self.cluster._record_call("producer.flush", {"producer": self.client_number})
        self._flush()

    def _flush(self) -> None:
        self._flushing = True
        try:
            self._wake_sender(0)
            self.cluster._run_until(
                lambda: not self._pending,
                self.now_ms + self.delivery_timeout_ms + self.request_timeout_ms + 1000,
            )
        finally:
            self._flushing = False

    def close(self) -> None:
        if self.closed:
            return
        self.cluster._record_call("producer.close", {"producer": self.client_number})
        self._flush()
        self.closed = True

    # --- transactions (the work is done by engine.transaction_manager) -----------------------

    def init_transactions(self) -> None:
        self.cluster._record_call("producer.init_transactions", {"producer": self.client_number})
        self._transactions().init_transactions()

    def begin_transaction(self) -> None:
        self.cluster._record_call("producer.begin_transaction", {"producer": self.client_number})
        self._transactions().begin_transaction()

    def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None:
        self.cluster._record_call(
            "producer.send_offsets_to_transaction",
            {
                "producer": self.client_number,
                "group_id": group_id if isinstance(group_id, (str, dict)) else group_id.to_dict(),
                "offsets": [[tp[0], tp[1], int(offset)] for tp, offset in offsets.items()],
            },
        )
        self._transactions().send_offsets_to_transaction(
            {TopicPartition(*tp): int(offset) for tp, offset in offsets.items()}, group_id
        )

    def commit_transaction(self) -> None:
        self.cluster._record_call("producer.commit_transaction", {"producer": self.client_number})
        self._transactions().commit_transaction()

    def abort_transaction(self) -> None:
        self.cluster._record_call("producer.abort_transaction", {"producer": self.client_number})
        self._transactions().abort_transaction()

    def _transactions(self) -> Any:
        if self.closed:
            raise KafkaClosedError("Cannot use a closed producer.")
        if self.transaction is None:
            raise IllegalStateError(
                "Transactional method invoked on a non-transactional producer: "
                "set transactional.id."
            )
        return self.transaction

    def metrics(self) -> dict[str, Any]:
        return {
            "sent": self.sent_records,
            "acked": self.acked_records,
            "pending": len(self._pending),
        }

    # --- accumulator -------------------------------------------------------------------------

    def _partition_for_key(self, key: bytes, count: int) -> int:
        """partition_for_key, remembered: murmur2 in Python is the costliest step of a send."""
        cache = self._key_partitions
        found = cache.get((key, count))
        if found is None:
            if len(cache) > 4096:
                cache.clear()
            found = cache[(key, count)] = partition_for_key(key, count)
        return found

    def _sticky(self, topic: str) -> BuiltInPartitioner:
        partitioner = self.partitioners.get(topic)
        if partitioner is None:
            partitioner = BuiltInPartitioner(topic, self.batch_size, self.cluster.rng)
            self.partitioners[topic] = partitioner
        return partitioner

    def _available(self, topic: str) -> list[int]:
        return [
            number
            for number, info in enumerate(self.topics.get(topic, []))
            if info.leader != NO_LEADER
        ]

    def _wait_on_metadata(self, topic: str) -> list[Any] | None:
        if topic in self.topics:
            return self.topics[topic]
        self.request_metadata_update({topic})
        deadline = self.now_ms + int(self.config["max.block.ms"])
        self.cluster._run_until(lambda: topic in self.topics, deadline)
        return self.topics.get(topic)

    def _append(
        self,
        tp: TopicPartition,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Any,
        future: FutureRecordMetadata,
    ) -> tuple[int, bool]:
        queue = self.batches.get(tp)
        if queue is None:
            queue = deque()
            self.batches[tp] = queue
        batch = queue[-1] if queue else None
        new_batch = False
        if batch is not None and not batch.closed:
            delta = len(batch.records)
            size = _record_size(delta, timestamp - batch.records[0].timestamp, key, value, headers)
            if batch.size + size > self.batch_size:
                batch.closed = True
                batch = None
        else:
            batch = None
        if batch is None:
            batch = ProducerBatch(tp, self.now_ms)
            queue.append(batch)
            new_batch = True
            size = _record_size(0, 0, key, value, headers)
        batch.records.append(Record(-1, timestamp, key, value, headers, size))
        batch.futures.append(future)
        batch.size += size
        if batch.size >= self.batch_size:
            batch.closed = True
            self._wake_sender(0)
        elif len(queue) > 1:
            self._wake_sender(0)  # an earlier batch is full (Kafka: dq.size() > 1 wakes the sender)
        else:
            self._wake_sender(max(0, batch.created_ms + self.linger_ms - self.now_ms))
        return size, new_batch

    # --- sender ------------------------------------------------------------------------------

    def _wake_sender(self, delay_ms: int) -> None:
        due = self.now_ms + delay_ms
        if (
            self._sender_timer is not None
            and not self._sender_timer.cancelled
            and self._sender_due <= due
        ):
            return
        if self._sender_timer is not None:
            self._sender_timer.cancel()
        self._sender_due = due
        self._sender_timer = self.cluster.scheduler.call_at(due, self._run_sender)

    def _run_sender(self) -> None:
        self._sender_timer = None
        if not self.alive:
            return
        now = self.now_ms
        self._expire_batches(now)
        if self.idempotent and self.producer_id < 0 and self.transaction is None:
            self._init_producer_id()  # a transactional producer gets its id in init_transactions
            return
        if self._epoch_bump_needed and not any(
            self._sequenced_pending(tp) for tp in self._rewrite_sequences
        ):
            # Kafka bumps only once the broken partitions have nothing sequenced in flight or
            # waiting for a retry: those retries go out under the old epoch, to be deduplicated.
            self._bump_epoch()
        if self.transaction is not None and not self.transaction.ready_to_send():
            return
        next_wake: int | None = None
        by_leader: dict[int, list[ProducerBatch]] = {}
        unknown_leader = False
        for tp, queue in self.batches.items():
            if not queue:
                continue
            batch = queue[0]
            ready_at = batch.retry_at_ms if batch.attempts else batch.created_ms + self.linger_ms
            if batch.closed or self._flushing or len(queue) > 1:
                ready_at = max(batch.retry_at_ms, now) if batch.attempts else now
            if ready_at > now:
                next_wake = ready_at if next_wake is None else min(next_wake, ready_at)
                continue
            if (
                self.idempotent
                and self.in_flight_batches.get(tp)
                and (batch.attempts or any(b.last_error for b in self.in_flight_batches[tp]))
            ):
                continue  # a retried batch goes alone, in sequence order
            if not self._may_drain(batch):
                continue
            leader = self.leader_for(tp.topic, tp.partition)
            if leader == NO_LEADER:
                unknown_leader = True
                continue
            by_leader.setdefault(leader, []).append(batch)
        for leader, batches in by_leader.items():
            while batches and self.in_flight.get(leader, 0) < self.max_in_flight:
                request: list[ProducerBatch] = []
                total = 0
                for batch in list(batches):
                    if request and total + batch.size > int(self.config["max.request.size"]):
                        break
                    request.append(batch)
                    total += batch.size
                    batches.remove(batch)
                for batch in request:
                    queue = self.batches[batch.tp]
                    queue.popleft()
                    if queue and not queue[0].in_flight and self._may_drain(queue[0]):
                        batches.append(queue[0]) if queue[0].closed or self._flushing else None
                self._send_produce(leader, request)
        if unknown_leader:
            self.request_metadata_update()
        if any(self.batches.values()):
            if next_wake is not None:
                self._wake_sender(next_wake - now)
            elif unknown_leader:
                self._wake_sender(int(self.config["retry.backoff.ms"]))

    def _expire_batches(self, now: int) -> None:
        for queue in self.batches.values():
            while queue and now - queue[0].created_ms >= self.delivery_timeout_ms:
                batch = queue.popleft()
                self._fail_batch(
                    batch,
                    KafkaTimeoutError(
                        f"Expiring {len(batch.records)} record(s) for "
                        f"{batch.tp}:{now - batch.created_ms} ms "
                        "has passed since batch creation"
                    ),
                )

    def _send_produce(self, leader: int, batches: list[ProducerBatch]) -> None:
        self.in_flight[leader] = self.in_flight.get(leader, 0) + 1
        wire: list[tuple[TopicPartition, RecordBatch]] = []
        for batch in batches:
            batch.in_flight = True
            batch.attempts += 1
            batch.last_error = ""
            if self.idempotent and batch.base_sequence < 0:
                self._assign_sequence(batch)
            self.in_flight_batches.setdefault(batch.tp, []).append(batch)
            wire.append(
                (
                    batch.tp,
                    RecordBatch(
                        base_offset=0,
                        records=batch.records,
                        leader_epoch=-1,
                        producer_id=batch.producer_id,
                        producer_epoch=batch.producer_epoch,
                        base_sequence=batch.base_sequence,
                        is_transactional=batch.is_transactional,
                        size=batch.size,
                        max_timestamp=max(r.timestamp for r in batch.records),
                    ),
                )
            )
        acks = self.acks
        timeout = self.request_timeout_ms
        self.cluster.on_produce_request(self, leader, [b.tp for b in batches])

        def handle(broker: Broker, reply: Callable[[object], None]) -> None:
            results: dict[int, tuple[str, int, int]] = {}
            remaining = [len(wire)]

            def done_one(index: int) -> Callable[[str, int, int], None]:
                def complete(error: str, base: int, log_start: int) -> None:
                    results[index] = (error, base, log_start)
                    remaining[0] -= 1
                    if remaining[0] == 0 and acks != 0:
                        reply([results[i] for i in range(len(wire))])

                return complete

            for index, (tp, record_batch) in enumerate(wire):
                broker.handle_produce(tp, record_batch, acks, timeout, done_one(index))

        if acks == 0:
            # acks=0: the producer does not wait for anything and reports offset -1 (L1).
            self.send_request(leader, "produce", handle, lambda _response: None, timeout_ms=timeout)
            self.in_flight[leader] -= 1
            for batch in batches:
                self._complete_batch(batch, -1)
            self._wake_sender(0)
            return

        def on_reply(response: object) -> None:
            self.in_flight[leader] = max(0, self.in_flight.get(leader, 0) - 1)
            if response is DISCONNECTED or response == REQUEST_TIMED_OUT:
                error = "NETWORK_EXCEPTION" if response is DISCONNECTED else "REQUEST_TIMED_OUT"
                for batch in batches:
                    self._handle_result(batch, error, -1)
            else:
                assert isinstance(response, list)
                for batch, (error, base, _log_start) in zip(batches, response, strict=True):
                    self._handle_result(batch, error, base)
            self._wake_sender(0)

        self.send_request(leader, "produce", handle, on_reply, timeout_ms=timeout)

    def _handle_result(self, batch: ProducerBatch, error: str, base_offset: int) -> None:
        batch.in_flight = False
        flights = self.in_flight_batches.get(batch.tp, [])
        if batch in flights:
            flights.remove(batch)
        if batch.done:
            return
        if not error:
            self._complete_batch(batch, base_offset)
            return
        batch.last_error = error
        if error in _METADATA_ERRORS or error == "REQUEST_TIMED_OUT":
            self.request_metadata_update()
        exception = NetworkError() if error == "NETWORK_EXCEPTION" else error_for_name(error)()
        retriable = exception.retriable
        if error == "OUT_OF_ORDER_SEQUENCE_NUMBER" and self._earlier_batch_pending(batch):
            retriable = True
        elapsed = self.now_ms - batch.created_ms
        if retriable and batch.attempts <= self.retries and elapsed < self.delivery_timeout_ms:
            backoff = min(
                int(self.config["retry.backoff.ms"]) * (2 ** (batch.attempts - 1)),
                int(self.config["retry.backoff.max.ms"]),
            )
            batch.retry_at_ms = self.now_ms + backoff
            self._reenqueue(batch)
            self.cluster.emit(
                "produce_retried",
                {
                    "producer": self.client_id,
                    "topic": batch.tp.topic,
                    "partition": batch.tp.partition,
                    "error": exception.kafka_name,
                    "attempt": batch.attempts,
                },
            )
            return
        if elapsed >= self.delivery_timeout_ms and retriable:
            exception = KafkaTimeoutError(
                f"Expiring {len(batch.records)} record(s) for {batch.tp}:{elapsed} ms "
                f"has passed since "
                f"batch creation (last error: {exception.kafka_name})"
            )
        self._fail_batch(batch, exception)

    def _earlier_batch_pending(self, batch: ProducerBatch) -> bool:
        queue = self.batches.get(batch.tp, deque())
        others = list(queue) + self.in_flight_batches.get(batch.tp, [])
        return any(
            0 <= other.base_sequence < batch.base_sequence for other in others if other is not batch
        )

    def _reenqueue(self, batch: ProducerBatch) -> None:
        queue = self.batches.setdefault(batch.tp, deque())
        batch.closed = True
        # Keep sequence order: a retried batch goes before later batches of its partition.
        position = 0
        for index, other in enumerate(queue):
            if (
                other.base_sequence >= 0
                and batch.base_sequence >= 0
                and other.base_sequence < batch.base_sequence
            ):
                position = index + 1
        queue.insert(position, batch)

    def _complete_batch(self, batch: ProducerBatch, base_offset: int) -> None:
        batch.done = True
        tp = batch.tp
        for index, (record, future) in enumerate(zip(batch.records, batch.futures, strict=True)):
            offset = base_offset + index if base_offset >= 0 else -1
            future._complete(RecordMetadata(tp.topic, tp.partition, offset, record.timestamp), None)
        self.acked_records += len(batch.records)
        self.cluster.on_batch_acknowledged(self, batch, base_offset)

    def _fail_batch(self, batch: ProducerBatch, error: KafkaError) -> None:
        batch.done = True
        if self.idempotent and self.transaction is None and batch.base_sequence >= 0:
            # KIP-360: a sequenced batch that failed leaves a gap the broker would refuse, so the
            # idempotent producer bumps its epoch and starts that partition's sequences at 0.
            self._epoch_bump_needed = True
            self._rewrite_sequences.add(batch.tp)
        for future in batch.futures:
            future._complete(None, error)
        self.cluster.emit(
            "produce_failed",
            {
                "producer": self.client_id,
                "topic": batch.tp.topic,
                "partition": batch.tp.partition,
                "records": len(batch.records),
                "error": error.kafka_name,
                "message": error.message,
            },
        )
        if self.transaction is not None:
            self.transaction.on_batch_failed(error)

    # --- producer id (idempotence) ----------------------------------------------------------

    def _assign_sequence(self, batch: ProducerBatch) -> None:
        tp = batch.tp
        epoch = self.sequence_epoch.get(tp)
        if epoch != self.producer_epoch and not self._sequenced_pending(tp, batch):
            epoch = self.sequence_epoch[tp] = self.producer_epoch
            self.next_sequence[tp] = 0
        batch.base_sequence = self.next_sequence.get(tp, 0)
        self.next_sequence[tp] = (batch.base_sequence + len(batch.records)) % (2**31)
        batch.producer_id = self.producer_id
        batch.producer_epoch = self.producer_epoch if epoch is None else epoch
        batch.is_transactional = self.transaction is not None

    def _may_drain(self, batch: ProducerBatch) -> bool:
        """A fresh batch of a partition whose sequences are being rewritten waits for the bump."""
        return not (
            self._epoch_bump_needed
            and batch.base_sequence < 0
            and batch.tp in self._rewrite_sequences
        )

    def _sequenced_pending(self, tp: TopicPartition, besides: ProducerBatch | None = None) -> bool:
        if any(b is not besides and not b.done for b in self.in_flight_batches.get(tp, [])):
            return True
        return any(
            b is not besides and not b.done and b.base_sequence >= 0
            for b in self.batches.get(tp, ())
        )

    def _bump_epoch(self) -> None:
        """KIP-360: a new epoch for the partitions whose sequences broke; every other partition
        keeps sequencing its pending batches under the old epoch, so their retries stay
        deduplicated, and moves to the new epoch once it has nothing pending."""
        self._epoch_bump_needed = False
        self.producer_epoch += 1
        for tp in sorted(self._rewrite_sequences):
            self.sequence_epoch[tp] = self.producer_epoch
            self.next_sequence[tp] = 0
            for batch in self.batches.get(tp, ()):
                batch.base_sequence = -1
        self._rewrite_sequences.clear()
        self.cluster.emit(
            "producer_epoch_bumped",
            {
                "producer": self.client_id,
                "producer_id": self.producer_id,
                "producer_epoch": self.producer_epoch,
            },
        )

    def _init_producer_id(self) -> None:
        if self._pid_in_flight:
            return
        broker_id = self.pick_broker()
        if broker_id is None:
            self._wake_sender(int(self.config["retry.backoff.ms"]))
            return
        self._pid_in_flight = True

        def handle(broker: Broker, reply: Callable[[object], None]) -> None:
            reply(self.cluster.allocate_producer_id())

        def on_reply(response: object) -> None:
            self._pid_in_flight = False
            if isinstance(response, int):
                self.producer_id = response
                self.producer_epoch = 0
                self._wake_sender(0)
            else:
                self._wake_sender(int(self.config["retry.backoff.ms"]))

        self.send_request(broker_id, "init_producer_id", handle, on_reply)

    # --- blocking ---------------------------------------------------------------------------

    def _wait_for(self, future: FutureRecordMetadata, timeout_ms: int | None) -> None:
        if self.closed and not future.done():
            raise IllegalStateError("The producer is closed.")
        self._wake_sender(0) if self._flushing else None
        limit = self.delivery_timeout_ms + self.request_timeout_ms + 1000
        deadline = self.now_ms + (limit if timeout_ms is None else min(int(timeout_ms), limit))
        self.cluster._run_until(future.done, deadline)

    def on_metadata_update(self) -> None:
        if any(self.batches.values()):
            self._wake_sender(0)


def _record_size(
    offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes | None, headers: Any
) -> int:
    """record_size_in_bytes, computed inline for the common case (no headers, deltas >= 0)."""
    if headers or offset_delta < 0 or timestamp_delta < 0 or offset_delta > 0x3FFFFFFF:
        return record_size_in_bytes(offset_delta, timestamp_delta, key, value, headers)
    # attributes and the header count take one byte each
    body = 2 + _zigzag_size(offset_delta) + _zigzag_size(timestamp_delta)
    if key is None:
        body += 1
    else:
        body += _zigzag_size(len(key)) + len(key)
    if value is None:
        body += 1
    else:
        body += _zigzag_size(len(value)) + len(value)
    return body + _zigzag_size(body)


def _zigzag_size(number: int) -> int:
    """Bytes of a zig-zag varint holding a non-negative number: 7 bits a byte."""
    return ((number << 1).bit_length() + 6) // 7 or 1


# More than the batch header and every varint of a one-record batch without headers can take.
_SIZE_SLACK = RECORD_BATCH_OVERHEAD + 64


def _as_bytes(data: Any, what: str) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, str or None")


def _headers(headers: Any) -> tuple[tuple[str, bytes | None], ...]:
    if not headers:
        return ()
    items = headers.items() if isinstance(headers, dict) else headers
    return tuple((str(k), _as_bytes(v, "header value")) for k, v in items)
