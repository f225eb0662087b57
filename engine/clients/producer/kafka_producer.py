"""The producer client: Kafka's `KafkaProducer`, the public API that wires its parts.

Records are batched per partition (`batch.size`, `linger.ms`) by the `RecordAccumulator`, sent
to the partition leader with `acks` and retried with backoff on retriable errors until
`delivery.timeout.ms` by the `Sender`, and deduplicated by the broker when the producer is
idempotent (the default since Kafka 3.0), with sequence numbers from `ProducerSequences`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.clients.network_client import ClientBase
from engine.clients.producer.buffer_pool import BufferPool
from engine.clients.producer.producer_sequences import ProducerSequences
from engine.clients.producer.record_accumulator import (
    ProducerBatch,
    RecordAccumulator,
    _zigzag_size,
)
from engine.clients.producer.sender import Sender
from engine.common.config import PRODUCER
from engine.common.metadata import NO_LEADER
from engine.common.record_size import RECORD_BATCH_OVERHEAD, estimate_size_in_bytes_upper_bound
from engine.common.records import Record, RecordMetadata, TopicPartition
from engine.errors import (
    BufferExhaustedError,
    IllegalStateError,
    InvalidConfigurationError,
    InvalidPartitionGivenError,
    KafkaClosedError,
    KafkaError,
    KafkaTimeoutError,
    RecordTooLargeError,
    error_for_name,
)
from engine.partitioner import BuiltInPartitioner, partition_for_key

if TYPE_CHECKING:
    from engine.sim.context import SimContext


class FutureRecordMetadata:
    """What `send()` returns: `get()` advances the cluster's clock until the send completes."""

    __slots__ = ("_producer", "_value", "_error", "_done", "id", "tp", "_callbacks")

    def __init__(self, producer: KafkaProducer, future_id: int, tp: TopicPartition | None) -> None:
        self._producer = producer
        self._value: RecordMetadata | None = None
        self._error: KafkaError | None = None
        self._done = False
        self.id = future_id
        self.tp = tp
        # Made when first asked for (`callbacks`, `add_callback`): most sends never get one.
        self._callbacks: list[Callable[[RecordMetadata | None, KafkaError | None], None]] | None = (
            None
        )

    @property
    def callbacks(self) -> list[Callable[[RecordMetadata | None, KafkaError | None], None]]:
        """The callbacks run when the send completes (callers may append to this list)."""
        if self._callbacks is None:
            self._callbacks = []
        return self._callbacks

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
        if self._callbacks is not None:
            for callback in self._callbacks:
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
            self._producer.ctx.record_call(
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


class KafkaProducer(ClientBase):
    kind = "producer"

    def __init__(
        self,
        ctx: SimContext,
        config: dict[str, Any] | None,
        client_number: int,
    ) -> None:
        given = PRODUCER.parse(config)
        resolved = PRODUCER.defaults()
        resolved.update(given)
        super().__init__(ctx, resolved, client_number)
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
        self._max_block_ms = int(resolved["max.block.ms"])
        self.buffer_pool = BufferPool(int(resolved["buffer.memory"]), self.batch_size)
        self.buffer_exhausted_records = 0
        self._key_partitions: dict[tuple[bytes, int], int] = {}
        # topic -> (partition count, key -> the partition a keyed send went to at that count):
        # the fast path's, looked up without building a tuple.
        self._key_tps: dict[str, tuple[int, dict[bytes, TopicPartition]]] = {}
        self._topic_partitions: dict[str, list[TopicPartition]] = {}
        self.partitioners: dict[str, BuiltInPartitioner] = {}
        self.accumulator = RecordAccumulator(
            self, self.batch_size, self.linger_ms, self.delivery_timeout_ms
        )
        self.sequences = ProducerSequences(self)
        self.sender = Sender(self, self.accumulator, self.sequences)
        self._pending: dict[int, FutureRecordMetadata] = {}
        self._next_future = 0
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
        if (
            type(key) is bytes
            and partition is None
            and headers is None
            and timestamp_ms is None
            and (value is None or type(value) is bytes)
            and type(topic) is str
        ):
            # Every argument is already in its logged form: the entry record_call would make.
            self.ctx.record_send(self.client_number, topic, value, key)
            future = self._send_to_open_batch(topic, key, value)
            if future is not None:
                return future
        else:
            self.ctx.record_call(
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

    def _send_to_open_batch(
        self, topic: str, key: bytes, value: bytes | None
    ) -> FutureRecordMetadata | None:
        """`_send` for the commonest send, in one step: a keyed record without headers, to a
        topic whose metadata is fresh, for a key whose partition is known, that fits in the
        partition's open batch. None (having changed nothing) when any of that does not hold;
        `_send` then does the whole work, step by step, with the same result."""
        if self.closed or self.transaction is not None or self._ignore_keys:
            return None
        ctx = self.ctx
        key_length = len(key)
        value_length = len(value) if value is not None else -1
        size = _SIZE_SLACK + key_length + (value_length if value_length > 0 else 0)
        if (
            size > self._max_request_size
            or size > ctx.limits.max_record_bytes
            or size > self.buffer_pool.total_memory
        ):
            return None
        now = ctx.scheduler.now_ms
        infos = self.topics.get(topic)
        if infos is None or now - self.last_metadata_ms >= self._metadata_max_age_ms:
            return None
        # The partition `_send` chose for this key at this partition count (known[chosen]).
        known = self._key_tps.get(topic)
        if known is None or known[0] != len(infos):
            return None
        tp = known[1].get(key)
        if tp is None:
            return None
        accumulator = self.accumulator
        queue = accumulator.batches.get(tp)
        if not queue:
            return None
        batch = queue[-1]
        if batch.closed:
            return None
        records = batch.records
        offset_delta = len(records)
        timestamp_delta = now - records[0].timestamp
        if timestamp_delta < 0 or offset_delta >= 8192 or timestamp_delta >= 8192:
            return None
        # RecordAccumulator.try_append's size (record_size_in_bytes), for these small numbers.
        body = 4 if offset_delta < 64 else 5
        if timestamp_delta >= 64:
            body += 1
        length = key_length
        body += length + (1 if length < 64 else 2 if length < 8192 else _zigzag_size(length))
        if value is None:
            body += 1
        else:
            length = value_length
            body += length + (1 if length < 64 else 2 if length < 8192 else _zigzag_size(length))
        record_size = body + (1 if body < 64 else 2 if body < 8192 else _zigzag_size(body))
        grown = batch.size + record_size
        batch_size = accumulator.batch_size
        if grown > batch_size:
            return None  # try_append closes the batch; a new one is needed
        self._next_future += 1
        future = FutureRecordMetadata(self, self._next_future, tp)
        records.append(Record(-1, now, key, value, (), record_size))
        batch.futures.append(future)
        batch.size = grown
        if grown >= batch_size:
            batch.closed = True
        self._pending[future.id] = future
        # Kafka's RecordAppendResult: a full batch, or more than one, wakes the sender now.
        if batch.closed or len(queue) > 1:
            due = now
        else:
            due = batch.created_ms + self.linger_ms
            if due < now:
                due = now
        sender = self.sender
        timer = sender._timer
        if timer is None or sender._due > due or timer.cancelled:  # Sender.wake_at's own test
            sender.wake_at(due)
        self.sent_records += 1
        ctx.taps.on_client_send(self, tp)
        return future

    def _send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        headers: Any,
        timestamp_ms: int | None,
        blocking: bool = True,
    ) -> FutureRecordMetadata:
        """The send itself. `blocking=False` (a simulated application sending from a timer,
        which cannot wait on the clock it runs on) raises `SendWouldBlock` where Kafka's `send()`
        would wait for buffer memory."""
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
        ctx = self.ctx
        if (
            header_tuple
            or size > self._max_request_size
            or size > ctx.limits.max_record_bytes
            or size > self.buffer_pool.total_memory
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
        if size > self.buffer_pool.total_memory:
            future._complete(
                None,
                RecordTooLargeError(
                    f"The message is {size} bytes when serialized which is larger than the total "
                    "memory buffer you have configured with the buffer.memory configuration."
                ),
            )
            return future
        if size > self.ctx.limits.max_record_bytes:
            self.ctx.limits.check_record(size)
        scheduler = ctx.scheduler
        started_ms = now = scheduler.now_ms  # max.block.ms covers the metadata wait too
        infos = self.topics.get(topic)
        if infos is None:
            infos = self._wait_on_metadata(topic)
            now = scheduler.now_ms
        elif now - self.last_metadata_ms >= self._metadata_max_age_ms:
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
            found = self._key_partitions.get((key, count))
            chosen = self._partition_for_key(key, count) if found is None else found
            known = self._key_tps.get(topic)
            if known is None or known[0] != count:
                known = self._key_tps[topic] = (count, {})
            key_tps = known[1]
            if key not in key_tps:
                if len(key_tps) > 4096:
                    key_tps.clear()
                key_tps[key] = TopicPartition(topic, chosen)
        else:
            chosen = -1  # the sticky partitioner chooses in _append
        sticky = partition is None and (key is None or self._ignore_keys)
        timestamp = now if timestamp_ms is None else int(timestamp_ms)
        if not self._append(
            topic,
            chosen,
            count,
            sticky,
            timestamp,
            key,
            value,
            header_tuple,
            future,
            started_ms,
            blocking,
        ):
            return future
        self.sent_records += 1
        assert future.tp is not None
        ctx.taps.on_client_send(self, future.tp)
        return future

    def _append(
        self,
        topic: str,
        chosen: int,
        count: int,
        sticky: bool,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: tuple[tuple[str, bytes | None], ...],
        future: FutureRecordMetadata,
        started_ms: int,
        blocking: bool,
    ) -> bool:
        """Kafka's `RecordAccumulator.append`: the record goes into the partition's open batch,
        or into a new batch whose buffer comes from the pool (waiting for what is left of
        `max.block.ms` since `started_ms`).

        For a record without a key the sticky partition may switch first: once every batch of
        the partition is full and enough bytes went to it (`partitionChanged`). False means the
        future failed (the pool stayed exhausted); `SendWouldBlock` that a non-blocking caller
        must come back later."""
        accumulator = self.accumulator
        partitioner = self._sticky(topic) if sticky else None
        available = self._available(topic) if partitioner is not None else []
        allocated = 0
        known = self._topic_partitions.get(topic)
        if known is None or len(known) != count:
            known = self._tp_list(topic, count)
        while True:
            if partitioner is not None:
                chosen = partitioner.peek_current_partition(count, available)
                # Time may have passed while waiting for memory: the partitions may have grown.
                known = self._topic_partitions.get(topic)
                if known is None or len(known) != count:
                    known = self._tp_list(topic, count)
            tp = known[chosen]
            if partitioner is not None and self._partition_changed(
                partitioner, tp, count, available
            ):
                continue
            future.tp = tp
            appended = accumulator.try_append(tp, timestamp, key, value, headers, future)
            if appended < 0:
                if not allocated:
                    allocated = self._allocate(key, value, headers, future, started_ms, blocking)
                    if not allocated:
                        return False
                    if partitioner is not None:
                        continue  # time may have passed: look at the partition again
                appended = accumulator.append_new_batch(
                    tp, timestamp, key, value, headers, future, allocated
                )
                allocated = 0
            if allocated:
                self.buffer_pool.deallocate(allocated)  # the open batch had room after all
            self._pending[future.id] = future
            if self.transaction is not None:
                self.transaction.maybe_add_partition(tp)  # Kafka: once the append succeeded
            # Kafka's RecordAppendResult: a full batch, or more than one, wakes the sender now.
            queue = accumulator.batches[tp]
            last = queue[-1]
            now = self.ctx.scheduler.now_ms
            if last.closed or len(queue) > 1:
                self.sender.wake_at(now)
            else:
                due = last.created_ms + self.linger_ms
                self.sender.wake_at(due if due > now else now)
            if partitioner is not None:
                # Kafka's allBatchesFull: while the last batch is open, switching waits.
                partitioner.update_partition_info(
                    appended, count, available, accumulator.all_batches_full(tp)
                )
            return True

    def _partition_changed(
        self,
        partitioner: BuiltInPartitioner,
        tp: TopicPartition,
        count: int,
        available: list[int],
    ) -> bool:
        """Kafka's `partitionChanged`: with every batch of the sticky partition full, count
        nothing more and let the partitioner switch if enough bytes already went there."""
        if not self.accumulator.all_batches_full(tp):
            return False
        partitioner.update_partition_info(0, count, available, True)
        return partitioner.current_partition != tp.partition

    def _tp_list(self, topic: str, count: int) -> list[TopicPartition]:
        known = self._topic_partitions[topic] = [TopicPartition(topic, n) for n in range(count)]
        return known

    def _allocate(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: tuple[tuple[str, bytes | None], ...],
        future: FutureRecordMetadata,
        started_ms: int,
        blocking: bool,
    ) -> int:
        """A buffer for a new batch: `batch.size`, or the record's upper bound when larger
        (Kafka: max(batchSize, estimateSizeInBytesUpperBound)). Blocks on cluster time while
        the pool is used up; 0 means the future failed with BufferExhaustedException."""
        size = self.batch_size
        rough = _SIZE_SLACK + (len(key) if key else 0) + (len(value) if value else 0)
        if headers or rough > size:
            size = max(size, estimate_size_in_bytes_upper_bound(key, value, headers))
        pool = self.buffer_pool
        if pool.try_allocate(size):
            return size
        if not blocking:
            raise SendWouldBlock(size)
        started = self.now_ms
        max_block_ms = max(0, self._max_block_ms - (started - started_ms))
        self.emit_buffer_event("producer_buffer_blocked", size, future, max_block_ms=max_block_ms)
        self.ctx.run_until(lambda: pool.available_memory >= size, started + max_block_ms)
        if pool.try_allocate(size):
            self.emit_buffer_event(
                "producer_buffer_unblocked", size, future, waited_ms=self.now_ms - started
            )
            return size
        self.buffer_exhausted_records += 1
        error = self.buffer_exhausted_error(size, max_block_ms)
        self.emit_buffer_event(
            "producer_buffer_exhausted", size, future, waited_ms=self.now_ms - started
        )
        future._complete(None, error)
        return 0

    def buffer_exhausted_error(self, size: int, max_block_ms: int) -> BufferExhaustedError:
        pool = self.buffer_pool
        return BufferExhaustedError(
            f"Failed to allocate {size} bytes within the configured max blocking time "
            f"{max_block_ms} ms. Total memory: {pool.total_memory} bytes. Available memory: "
            f"{pool.available_memory} bytes. Poolable size: {pool.poolable_size} bytes"
        )

    def emit_buffer_event(
        self, kind: str, size: int, future: FutureRecordMetadata | None, **extra: Any
    ) -> None:
        """The events a lesson shows back-pressure with: a send waiting for buffer memory
        (`producer_buffer_blocked`), getting it (`..._unblocked`), or failing (`..._exhausted`)."""
        pool = self.buffer_pool
        tp = None if future is None else future.tp
        self.ctx.emit(
            kind,
            {
                "producer": self.client_id,
                "topic": None if tp is None else tp.topic,
                "partition": None if tp is None else tp.partition,
                "needed_bytes": size,
                "available_bytes": pool.available_memory,
                "buffer_memory": pool.total_memory,
                **extra,
            },
        )

    def release_buffer(self, batch: ProducerBatch) -> None:
        """A batch is done (acknowledged or failed): its buffer goes back to the pool."""
        if batch.buffer_bytes:
            size, batch.buffer_bytes = batch.buffer_bytes, 0
            self.buffer_pool.deallocate(size)

    def flush(self) -> None:
        if not self._pending:
            return
        self.ctx.record_call("producer.flush", {"producer": self.client_number})
        self._flush()

    def _flush(self) -> None:
        self.accumulator.flushing = True
        try:
            self.sender.wake(0)
            self.ctx.run_until(
                lambda: not self._pending,
                self.now_ms + self.delivery_timeout_ms + self.request_timeout_ms + 1000,
            )
        finally:
            self.accumulator.flushing = False

    def close(self) -> None:
        if self.closed:
            return
        self.ctx.record_call("producer.close", {"producer": self.client_number})
        self._flush()
        self.closed = True

    # --- transactions (the work is done by engine.clients.producer.transaction_manager) -----------

    def init_transactions(self) -> None:
        self.ctx.record_call("producer.init_transactions", {"producer": self.client_number})
        self._transactions().init_transactions()

    def begin_transaction(self) -> None:
        self.ctx.record_call("producer.begin_transaction", {"producer": self.client_number})
        self._transactions().begin_transaction()

    def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None:
        self.ctx.record_call(
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
        self.ctx.record_call("producer.commit_transaction", {"producer": self.client_number})
        self._transactions().commit_transaction()

    def abort_transaction(self) -> None:
        self.ctx.record_call("producer.abort_transaction", {"producer": self.client_number})
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
        pool = self.buffer_pool
        return {
            "sent": self.sent_records,
            "acked": self.acked_records,
            "pending": len(self._pending),
            "buffer_memory": pool.total_memory,
            "buffered_bytes": pool.allocated_memory,
            "buffer_available_bytes": pool.available_memory,
            "buffer_exhausted": self.buffer_exhausted_records,
        }

    # --- partitioning ------------------------------------------------------------------------

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
            partitioner = BuiltInPartitioner(topic, self.batch_size, self.ctx.rng)
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
        self.ctx.run_until(lambda: topic in self.topics, deadline)
        return self.topics.get(topic)

    # --- the parts other modules reach through the producer --------------------------------

    @property
    def batches(self) -> dict[TopicPartition, deque[ProducerBatch]]:
        return self.accumulator.batches

    @property
    def in_flight(self) -> dict[int, int]:
        return self.sender.in_flight

    @property
    def in_flight_batches(self) -> dict[TopicPartition, list[ProducerBatch]]:
        return self.sender.in_flight_batches

    @property
    def producer_id(self) -> int:
        return self.sequences.producer_id

    @producer_id.setter
    def producer_id(self, producer_id: int) -> None:
        self.sequences.producer_id = producer_id

    @property
    def producer_epoch(self) -> int:
        return self.sequences.producer_epoch

    @producer_epoch.setter
    def producer_epoch(self, producer_epoch: int) -> None:
        self.sequences.producer_epoch = producer_epoch

    @property
    def next_sequence(self) -> dict[TopicPartition, int]:
        return self.sequences.next_sequence

    @property
    def sequence_epoch(self) -> dict[TopicPartition, int]:
        return self.sequences.sequence_epoch

    def _wake_sender(self, delay_ms: int) -> None:
        self.sender.wake(delay_ms)

    def _fail_batch(self, batch: ProducerBatch, error: KafkaError) -> None:
        self.sender.fail_batch(batch, error)

    # --- blocking ---------------------------------------------------------------------------

    def _wait_for(self, future: FutureRecordMetadata, timeout_ms: int | None) -> None:
        if self.closed and not future.done():
            raise IllegalStateError("The producer is closed.")
        self.sender.wake(0) if self.accumulator.flushing else None
        limit = self.delivery_timeout_ms + self.request_timeout_ms + 1000
        deadline = self.now_ms + (limit if timeout_ms is None else min(int(timeout_ms), limit))
        self.ctx.run_until(future.done, deadline)

    def refreshes_metadata_in_background(self) -> bool:
        return not self.closed  # the Sender thread polls the network client until close()

    def on_metadata_update(self) -> None:
        if any(self.accumulator.batches.values()):
            self.sender.wake(0)


class SendWouldBlock(Exception):
    """A non-blocking send found the buffer pool used up (`needed` bytes for a new batch)."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


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
