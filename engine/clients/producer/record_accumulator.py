"""Kafka's `RecordAccumulator`: per-partition queues of `ProducerBatch`es that fill up to
`batch.size`, wait up to `linger.ms`, and expire after `delivery.timeout.ms`."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.common.record_size import RECORD_BATCH_OVERHEAD, record_size_in_bytes
from engine.common.records import Record, TopicPartition
from engine.errors import KafkaError, KafkaTimeoutError

if TYPE_CHECKING:
    from engine.clients.producer.kafka_producer import FutureRecordMetadata, KafkaProducer


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
    buffer_bytes: int = 0  # taken from the producer's BufferPool, returned when the batch is done


class RecordAccumulator:
    """The batches a producer has not yet sent, oldest first in each partition's queue."""

    def __init__(
        self, producer: KafkaProducer, batch_size: int, linger_ms: int, delivery_timeout_ms: int
    ) -> None:
        self._producer = producer
        self.batch_size = batch_size
        self.linger_ms = linger_ms
        self.delivery_timeout_ms = delivery_timeout_ms
        self.batches: dict[TopicPartition, deque[ProducerBatch]] = {}
        # Kafka's flushInProgress: while a flush waits, every batch is ready, lingering or not.
        self.flushing = False

    def try_append(
        self,
        tp: TopicPartition,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Any,
        future: FutureRecordMetadata,
    ) -> int:
        """Kafka's `tryAppend`: add the record to the partition's open batch if it has room.

        Returns the bytes the batch grew by, or -1 when there is no open batch or the record does
        not fit (the batch is then closed for appends, as Kafka's `closeForRecordAppends`)."""
        queue = self.batches.get(tp)
        if not queue:
            return -1
        batch = queue[-1]
        if batch.closed:
            return -1
        records = batch.records
        offset_delta = len(records)
        timestamp_delta = timestamp - records[0].timestamp
        if headers or timestamp_delta < 0 or offset_delta > 0x3FFFFFFF:
            size = record_size_in_bytes(offset_delta, timestamp_delta, key, value, headers)
        else:
            # _record_size inline (one call per record sent): varints of small numbers first.
            body = 2
            body += (
                1 if offset_delta < 64 else 2 if offset_delta < 8192 else _zigzag_size(offset_delta)
            )
            body += (
                1
                if timestamp_delta < 64
                else 2
                if timestamp_delta < 8192
                else _zigzag_size(timestamp_delta)
            )
            if key is None:
                body += 1
            else:
                length = len(key)
                body += length
                body += 1 if length < 64 else 2 if length < 8192 else _zigzag_size(length)
            if value is None:
                body += 1
            else:
                length = len(value)
                body += length
                body += 1 if length < 64 else 2 if length < 8192 else _zigzag_size(length)
            size = body + (1 if body < 64 else 2 if body < 8192 else _zigzag_size(body))
        grown = batch.size + size
        batch_size = self.batch_size
        if grown > batch_size:
            batch.closed = True
            return -1
        records.append(Record(-1, timestamp, key, value, headers, size))
        batch.futures.append(future)
        batch.size = grown
        if grown >= batch_size:
            batch.closed = True
        return size

    def append_new_batch(
        self,
        tp: TopicPartition,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Any,
        future: FutureRecordMetadata,
        buffer_bytes: int,
    ) -> int:
        """Kafka's `appendNewBatch`: a new batch (in a buffer of `buffer_bytes` from the pool)
        holding the record; returns the batch's size, its header included."""
        queue = self.batches.get(tp)
        if queue is None:
            queue = deque()
            self.batches[tp] = queue
        batch = ProducerBatch(tp, self._producer.now_ms)
        batch.buffer_bytes = buffer_bytes
        queue.append(batch)
        size = _record_size(0, 0, key, value, headers)
        batch.records.append(Record(-1, timestamp, key, value, headers, size))
        batch.futures.append(future)
        batch.size += size
        if batch.size >= self.batch_size:
            batch.closed = True
        return batch.size

    def all_batches_full(self, tp: TopicPartition) -> bool:
        """Kafka's `allBatchesFull`: only the last batch can be open, so check that one."""
        queue = self.batches.get(tp)
        if not queue:
            return True
        last = queue[-1]
        return last.closed or last.size >= self.batch_size

    def expire_batches(self, now: int, fail: Callable[[ProducerBatch, KafkaError], None]) -> None:
        for queue in self.batches.values():
            while queue and now - queue[0].created_ms >= self.delivery_timeout_ms:
                batch = queue.popleft()
                fail(
                    batch,
                    KafkaTimeoutError(
                        f"Expiring {len(batch.records)} record(s) for "
                        f"{batch.tp}:{now - batch.created_ms} ms "
                        "has passed since batch creation"
                    ),
                )

    def reenqueue(self, batch: ProducerBatch) -> None:
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
