"""Kafka's producer `Sender`: drains ready batches from the `RecordAccumulator` into produce
requests per leader, handles the responses, retries with backoff, and gets the idempotent
producer its id (InitProducerId)."""

from __future__ import annotations

from collections import deque
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING

from engine.clients.network_client import REQUEST_TIMED_OUT
from engine.common.metadata import NO_LEADER
from engine.common.records import RecordBatch, RecordMetadata, TopicPartition
from engine.common.requests.produce import ProducePartitionData, ProduceRequest, ProduceResponse
from engine.common.requests.txn import InitProducerIdRequest, InitProducerIdResponse
from engine.errors import KafkaError, KafkaTimeoutError, NetworkError, error_for_name
from engine.sim.clock import Timer
from engine.sim.network import DISCONNECTED

if TYPE_CHECKING:
    from engine.clients.producer.kafka_producer import KafkaProducer
    from engine.clients.producer.producer_sequences import ProducerSequences
    from engine.clients.producer.record_accumulator import ProducerBatch, RecordAccumulator

_METADATA_ERRORS = {
    "NOT_LEADER_OR_FOLLOWER",
    "UNKNOWN_TOPIC_OR_PARTITION",
    "LEADER_NOT_AVAILABLE",
    "FENCED_LEADER_EPOCH",
    "UNKNOWN_LEADER_EPOCH",
    "NETWORK_EXCEPTION",
}


_TIMESTAMP = attrgetter("timestamp")  # read in C by max(map(...)) over a batch's records


class Sender:
    """The producer's background loop, run on the cluster's scheduler whenever it is woken."""

    def __init__(
        self,
        producer: KafkaProducer,
        accumulator: RecordAccumulator,
        sequences: ProducerSequences,
    ) -> None:
        self._producer = producer
        self._accumulator = accumulator
        self._sequences = sequences
        self.in_flight: dict[int, int] = {}
        self.in_flight_batches: dict[TopicPartition, list[ProducerBatch]] = {}
        self._timer: Timer | None = None
        self._due = -1
        self._pid_in_flight = False

    def wake(self, delay_ms: int) -> None:
        self.wake_at(self._producer.ctx.scheduler.now_ms + delay_ms)

    def wake_at(self, due: int) -> None:
        """Run at `due` at the latest (an earlier wake-up already scheduled stands)."""
        timer = self._timer
        if timer is not None:
            if self._due <= due and not timer.cancelled:
                return
            timer.cancel()
        self._due = due
        self._timer = self._producer.ctx.scheduler.call_at(due, self.run)

    def run(self) -> None:
        producer = self._producer
        accumulator = self._accumulator
        sequences = self._sequences
        self._timer = None
        if not producer.alive:
            return
        now = producer.now_ms
        accumulator.expire_batches(now, self.expire_batch)
        if producer.idempotent and sequences.producer_id < 0 and producer.transaction is None:
            self._init_producer_id()  # a transactional producer gets its id in init_transactions
            return
        if sequences.unresolved:
            sequences.maybe_resolve()
        sequences.maybe_bump_epoch()
        if producer.transaction is not None and not producer.transaction.ready_to_send():
            return
        flushing = accumulator.flushing
        linger_ms = accumulator.linger_ms
        next_wake: int | None = None
        by_leader: dict[int, list[ProducerBatch]] = {}
        unknown_leader = False
        for tp, queue in accumulator.batches.items():
            if not queue:
                continue
            batch = queue[0]
            ready_at = batch.retry_at_ms if batch.attempts else batch.created_ms + linger_ms
            if batch.closed or flushing or len(queue) > 1:
                ready_at = max(batch.retry_at_ms, now) if batch.attempts else now
            if ready_at > now:
                next_wake = ready_at if next_wake is None else min(next_wake, ready_at)
                continue
            if (
                producer.idempotent
                and self.in_flight_batches.get(tp)
                and (batch.attempts or any(b.last_error for b in self.in_flight_batches[tp]))
            ):
                continue  # a retried batch goes alone, in sequence order
            if not sequences.may_drain(batch):
                continue
            leader = producer.leader_for(tp.topic, tp.partition)
            if leader == NO_LEADER:
                unknown_leader = True
                continue
            by_leader.setdefault(leader, []).append(batch)
        for leader, batches in by_leader.items():
            while batches and self.in_flight.get(leader, 0) < producer.max_in_flight:
                request: list[ProducerBatch] = []
                total = 0
                for batch in list(batches):
                    if request and total + batch.size > int(producer.config["max.request.size"]):
                        break
                    request.append(batch)
                    total += batch.size
                    batches.remove(batch)
                for batch in request:
                    queue = accumulator.batches[batch.tp]
                    queue.popleft()
                    if (
                        queue
                        and not queue[0].in_flight
                        and sequences.may_drain(queue[0])
                        and (queue[0].closed or accumulator.flushing)
                        # Kafka drains a retried batch only when it is the partition's first in
                        # flight: never behind the batch that just went.
                        and not (producer.idempotent and queue[0].base_sequence >= 0)
                    ):
                        batches.append(queue[0])  # a ready next batch may join the next request
                self._send_produce(leader, request)
        if unknown_leader:
            producer.request_metadata_update()
        if any(accumulator.batches.values()):
            if next_wake is not None:
                self.wake(next_wake - now)
            elif unknown_leader:
                self.wake(int(producer.config["retry.backoff.ms"]))

    def _send_produce(self, leader: int, batches: list[ProducerBatch]) -> None:
        producer = self._producer
        self.in_flight[leader] = self.in_flight.get(leader, 0) + 1
        wire: list[ProducePartitionData] = []
        for batch in batches:
            batch.in_flight = True
            batch.attempts += 1
            batch.last_error = ""
            if producer.idempotent and batch.base_sequence < 0:
                self._sequences.assign_sequence(batch)
            self.in_flight_batches.setdefault(batch.tp, []).append(batch)
            wire.append(
                ProducePartitionData(
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
                        max_timestamp=max(map(_TIMESTAMP, batch.records)),
                    ),
                )
            )
        acks = producer.acks
        timeout = producer.request_timeout_ms
        producer.ctx.taps.on_produce_request(producer, leader, [b.tp for b in batches])

        produce_request = ProduceRequest(acks, timeout, tuple(wire))

        if acks == 0:
            # acks=0: the producer does not wait for anything and reports offset -1 (L1).
            producer.send_request(
                leader, produce_request, lambda _response: None, timeout_ms=timeout
            )
            self.in_flight[leader] -= 1
            for batch in batches:
                self.complete_batch(batch, -1)
            self.wake(0)
            return

        def on_reply(response: object) -> None:
            self.in_flight[leader] = max(0, self.in_flight.get(leader, 0) - 1)
            if response is DISCONNECTED or response == REQUEST_TIMED_OUT:
                error = "NETWORK_EXCEPTION" if response is DISCONNECTED else "REQUEST_TIMED_OUT"
                for batch in batches:
                    self._handle_result(batch, error, -1)
            else:
                assert isinstance(response, ProduceResponse)
                for batch, result in zip(batches, response.responses, strict=True):
                    self._handle_result(batch, result.error, result.base_offset)
            self.wake(0)

        producer.send_request(leader, produce_request, on_reply, timeout_ms=timeout)

    def _handle_result(self, batch: ProducerBatch, error: str, base_offset: int) -> None:
        producer = self._producer
        batch.in_flight = False
        flights = self.in_flight_batches.get(batch.tp, [])
        if batch in flights:
            flights.remove(batch)
        if batch.done:
            return
        if not error:
            self.complete_batch(batch, base_offset)
            return
        batch.last_error = error
        if error in _METADATA_ERRORS or error == "REQUEST_TIMED_OUT":
            producer.request_metadata_update()
        exception = NetworkError() if error == "NETWORK_EXCEPTION" else error_for_name(error)()
        retriable = exception.retriable
        if error == "OUT_OF_ORDER_SEQUENCE_NUMBER" and self._earlier_batch_pending(batch):
            retriable = True
        elapsed = producer.now_ms - batch.created_ms
        if (
            retriable
            and batch.attempts <= producer.retries
            and elapsed < producer.delivery_timeout_ms
        ):
            backoff = min(
                int(producer.config["retry.backoff.ms"]) * (2 ** (batch.attempts - 1)),
                int(producer.config["retry.backoff.max.ms"]),
            )
            batch.retry_at_ms = producer.now_ms + backoff
            self._accumulator.reenqueue(batch)
            producer.ctx.emit(
                "produce_retried",
                {
                    "producer": producer.client_id,
                    "topic": batch.tp.topic,
                    "partition": batch.tp.partition,
                    "error": exception.kafka_name,
                    "attempt": batch.attempts,
                },
            )
            return
        if elapsed >= producer.delivery_timeout_ms:
            # Kafka's Sender expires a batch in flight once delivery.timeout.ms has passed,
            # whatever its answer would be: it fails without touching the sequences, and one
            # that was being retried leaves its partition's sequence unresolved.
            self.expire_batch(
                batch,
                KafkaTimeoutError(
                    f"Expiring {len(batch.records)} record(s) for {batch.tp}:{elapsed} ms "
                    f"has passed since "
                    f"batch creation (last error: {exception.kafka_name})"
                ),
                retried=batch.attempts > 1,
            )
            return
        # Kafka adjusts the sequences (here: an epoch bump, KIP-360) only for a batch that did
        # not use up its retries: after the last retry whether the broker holds it is unknown.
        # An OUT_OF_ORDER_SEQUENCE_NUMBER always does (TransactionManager.handleFailedBatch).
        self.fail_batch(
            batch,
            exception,
            adjust_sequences=batch.attempts <= producer.retries
            or error == "OUT_OF_ORDER_SEQUENCE_NUMBER",
        )

    def _earlier_batch_pending(self, batch: ProducerBatch) -> bool:
        queue = self._accumulator.batches.get(batch.tp, deque())
        others = list(queue) + self.in_flight_batches.get(batch.tp, [])
        return any(
            0 <= other.base_sequence < batch.base_sequence for other in others if other is not batch
        )

    def complete_batch(self, batch: ProducerBatch, base_offset: int) -> None:
        producer = self._producer
        batch.done = True
        topic, partition = batch.tp
        pending = producer._pending
        records = batch.records
        # RecordMetadata(topic, partition, offset, timestamp) per record, made in C.
        offsets = range(base_offset, base_offset + len(records)) if base_offset >= 0 else repeat(-1)
        values = map(
            tuple.__new__,
            repeat(RecordMetadata),
            zip(repeat(topic), repeat(partition), offsets, map(_TIMESTAMP, records)),
        )
        for value, future in zip(values, batch.futures, strict=True):
            if future._callbacks is not None or future._done:
                future._complete(value, None)
                continue
            # FutureRecordMetadata._complete without callbacks, inline: one per record sent.
            future._done = True
            future._value = value
            pending.pop(future.id, None)
        producer.acked_records += len(batch.records)
        if batch.base_sequence >= 0:
            self._sequences.on_acknowledged(batch)
        producer.release_buffer(batch)  # Kafka deallocates once the callbacks ran
        producer.ctx.taps.on_batch_acknowledged(producer, batch, base_offset)

    def expire_batch(
        self, batch: ProducerBatch, error: KafkaError, *, retried: bool | None = None
    ) -> None:
        """A batch past delivery.timeout.ms: it fails without adjusting sequences; if it had
        been sent and was being retried, its partition's sequence is unresolved (Kafka's
        `markSequenceUnresolved`). In the accumulator, a sequenced batch is a retried one."""
        producer = self._producer
        self.fail_batch(batch, error, adjust_sequences=False)
        if retried is None:
            retried = batch.attempts > 0
        if (
            retried
            and producer.idempotent
            and producer.transaction is None
            and batch.base_sequence >= 0
        ):
            self._sequences.mark_unresolved(batch)

    def fail_batch(
        self, batch: ProducerBatch, error: KafkaError, *, adjust_sequences: bool = True
    ) -> None:
        producer = self._producer
        batch.done = True
        if (
            adjust_sequences
            and producer.idempotent
            and producer.transaction is None
            and batch.base_sequence >= 0
        ):
            self._sequences.on_sequenced_batch_failed(batch.tp)
        for future in batch.futures:
            future._complete(None, error)
        producer.release_buffer(batch)
        producer.ctx.emit(
            "produce_failed",
            {
                "producer": producer.client_id,
                "topic": batch.tp.topic,
                "partition": batch.tp.partition,
                "records": len(batch.records),
                "error": error.kafka_name,
                "message": error.message,
            },
        )
        if producer.transaction is not None:
            producer.transaction.on_batch_failed(error)

    def _init_producer_id(self) -> None:
        if self._pid_in_flight:
            return
        producer = self._producer
        broker_id = producer.pick_broker()
        if broker_id is None:
            self.wake(int(producer.config["retry.backoff.ms"]))
            return
        self._pid_in_flight = True

        def on_reply(response: object) -> None:
            self._pid_in_flight = False
            if isinstance(response, InitProducerIdResponse) and not response.error:
                self._sequences.producer_id = response.producer_id
                self._sequences.producer_epoch = response.producer_epoch
                self.wake(0)
            else:
                self.wake(int(producer.config["retry.backoff.ms"]))

        producer.send_request(broker_id, InitProducerIdRequest(None), on_reply)
