"""The consumer client: Kafka's `KafkaConsumer`, its `Fetcher` and `SubscriptionState`.

Manual assignment works on its own; group membership (`subscribe`, commits) goes through the
consumer coordinator in `engine.clients.consumer.consumer_coordinator`, as in Kafka's classic
protocol, where rejoining happens inside `poll()`."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import repeat
from operator import add, attrgetter
from typing import TYPE_CHECKING, Any

from engine.clients.consumer.fetch_sessions import FetchSessionHandler
from engine.clients.network_client import REQUEST_TIMED_OUT, ClientBase
from engine.common.config import CONSUMER
from engine.common.metadata import NO_LEADER
from engine.common.records import ConsumerRecord, RecordBatch, TopicPartition
from engine.common.requests.fetch import (
    FetchPartitionData,
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from engine.errors import (
    IllegalStateError,
    InvalidGroupIdError,
    KafkaClosedError,
    LogTruncationError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
)
from engine.sim.network import DISCONNECTED

if TYPE_CHECKING:
    from engine.clients.consumer.consumer_coordinator import ConsumerCoordinator
    from engine.sim.context import SimContext


# A stored record's fields as a consumer record has them, after its topic and partition.
_RECORD_FIELDS = attrgetter("offset", "timestamp", "key", "value", "headers")


@dataclass(slots=True)
class CompletedFetch:
    tp: TopicPartition
    records: deque[ConsumerRecord]
    next_fetch_offset: int
    fetch_position: int
    # The leader epoch each record was written in (in record order), that of the last batch
    # (a marker's too), and the leader's epoch when the fetch was made (KIP-320).
    epochs: list[int] = field(default_factory=list)
    last_epoch: int = -1
    leader_epoch: int = -1


class KafkaConsumer(ClientBase):
    kind = "consumer"

    def __init__(
        self,
        ctx: SimContext,
        config: dict[str, Any] | None,
        client_number: int,
    ) -> None:
        resolved = CONSUMER.resolve(config)
        super().__init__(ctx, resolved, client_number)
        self.group_id: str | None = resolved["group.id"]
        self.isolation_level: str = resolved["isolation.level"]
        self.subscription: set[str] = set()
        self.user_assignment: set[TopicPartition] = set()
        self.assigned: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()
        self.completed: deque[CompletedFetch] = deque()
        self.fetches_in_flight: set[int] = set()
        self.resets_in_flight: set[TopicPartition] = set()
        self.reset_errors: dict[TopicPartition, Exception] = {}
        # seek_to_beginning/end and policy resets wait here until a ListOffsets answers them.
        self.requested_resets: dict[TopicPartition, str] = {}
        self.reconnect_at: dict[int, int] = {}
        # The incremental fetch session with each broker fetched from (KIP-227).
        self.fetch_sessions: dict[int, FetchSessionHandler] = {}
        # KIP-320: the epoch of the record before each position (Kafka's FetchPosition
        # offsetEpoch), as (position, epoch), and the leader epoch it was last validated
        # against; a position waits for OffsetForLeaderEpoch after a leader change.
        self.position_epochs: dict[TopicPartition, tuple[int, int]] = {}
        self.validated_epochs: dict[TopicPartition, int] = {}
        self.awaiting_validation: dict[TopicPartition, int] = {}
        # Positions whose OffsetForLeaderEpoch is out (or whose truncation was reported).
        self.validation_sent: set[TopicPartition] = set()
        self.closed = False
        self.crashed = False
        self.last_poll_ms = ctx.scheduler.now_ms
        self.consumed_records = 0
        self.coordinator: ConsumerCoordinator | None = None
        # Bumped whenever something arrives that a blocked poll() should look at again.
        self.progress = 0
        if self.group_id is not None:
            if not self.group_id:
                raise InvalidGroupIdError("group.id cannot be empty.")
            from engine.clients.consumer.consumer_coordinator import ConsumerCoordinator

            self.coordinator = ConsumerCoordinator(self)

    # --- subscription ------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str]) -> None:
        topics = sorted(set(topics)) if not isinstance(topics, str) else [topics]
        self.ctx.record_call(
            "consumer.subscribe", {"consumer": self.client_number, "topics": topics}
        )
        self._check_open()
        if self.coordinator is None:
            raise InvalidGroupIdError(
                "To use the group management or offset commit APIs, you must provide a valid "
                "group.id in the consumer configuration."
            )
        if self.user_assignment:
            raise IllegalStateError(
                "Subscription to topics and manual assignment are mutually exclusive."
            )
        self.subscription = set(topics)
        self.wanted_topics |= self.subscription
        self.request_metadata_update(set(topics))
        self.coordinator.on_subscription_change()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        tps = sorted({TopicPartition(*tp) for tp in partitions})
        self.ctx.record_call(
            "consumer.assign",
            {"consumer": self.client_number, "partitions": [list(tp) for tp in tps]},
        )
        self._check_open()
        if self.subscription:
            raise IllegalStateError(
                "Subscription to topics and manual assignment are mutually exclusive."
            )
        self.user_assignment = set(tps)
        self.set_assignment(set(tps))
        topics = {tp.topic for tp in tps}
        self.wanted_topics |= topics
        self.request_metadata_update(topics)

    def unsubscribe(self) -> None:
        self.ctx.record_call("consumer.unsubscribe", {"consumer": self.client_number})
        self._check_open()
        if self.coordinator is not None and self.subscription:
            self.coordinator.leave_group("the consumer unsubscribed")
        self.subscription = set()
        self.user_assignment = set()
        self.set_assignment(set())

    def set_assignment(self, partitions: set[TopicPartition]) -> None:
        """Called by manual assignment and by the coordinator after a rebalance."""
        for tp in self.assigned - partitions:
            self.positions.pop(tp, None)
            self.requested_resets.pop(tp, None)
        self.assigned = set(partitions)
        self.completed = deque(c for c in self.completed if c.tp in self.assigned)
        self.paused &= self.assigned

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    # --- positions ---------------------------------------------------------------------------

    def position(self, tp: TopicPartition) -> int:
        tp = TopicPartition(*tp)
        if tp not in self.assigned:
            raise IllegalStateError(
                f"You can only check the position for partitions assigned to this consumer: {tp}."
            )
        if tp not in self.positions:
            self.ctx.record_call(
                "consumer.position", {"consumer": self.client_number, "tp": list(tp)}
            )
            deadline = self.now_ms + int(self.config["default.api.timeout.ms"])
            self._ensure_positions()
            self.ctx.run_until(lambda: tp in self.positions or tp in self.reset_errors, deadline)
            self._raise_reset_error(tp)
        if tp not in self.positions:
            from engine.errors import KafkaTimeoutError

            raise KafkaTimeoutError(f"Timeout while fetching the position of {tp}.")
        return self.positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        tp = TopicPartition(*tp)
        self.ctx.record_call(
            "consumer.seek", {"consumer": self.client_number, "tp": list(tp), "offset": offset}
        )
        if tp not in self.assigned:
            raise IllegalStateError(f"No current assignment for partition {tp}.")
        if not isinstance(offset, int) or offset < 0:
            raise ValueError("seek offset must not be a negative number")
        self.positions[tp] = offset
        self.position_epochs.pop(tp, None)
        self.awaiting_validation.pop(tp, None)
        self.validation_sent.discard(tp)
        self.requested_resets.pop(tp, None)
        self.completed = deque(c for c in self.completed if c.tp != tp)

    def seek_to_beginning(self, tps: Iterable[TopicPartition] | None = None) -> None:
        self._seek_to("earliest", tps)

    def seek_to_end(self, tps: Iterable[TopicPartition] | None = None) -> None:
        self._seek_to("latest", tps)

    def _seek_to(self, where: str, tps: Iterable[TopicPartition] | None) -> None:
        targets = self.assigned if tps is None else {TopicPartition(*tp) for tp in tps}
        self.ctx.record_call(
            "consumer.seek_to",
            {
                "consumer": self.client_number,
                "where": where,
                "tps": [list(tp) for tp in sorted(targets)],
            },
        )
        for tp in targets:
            if tp not in self.assigned:
                raise IllegalStateError(f"No current assignment for partition {tp}.")
            self.positions.pop(tp, None)
            self.completed = deque(c for c in self.completed if c.tp != tp)
            self._start_reset(tp, where)

    def _ensure_positions(self) -> None:
        for tp in sorted(self.assigned):
            if tp in self.positions or tp in self.resets_in_flight or tp in self.reset_errors:
                continue
            if tp in self.requested_resets:
                self._start_reset(tp, self.requested_resets[tp])
                continue
            if self.coordinator is not None and self.coordinator.fetch_committed_position(tp):
                continue
            self._reset_by_policy(tp)

    def _reset_by_policy(self, tp: TopicPartition) -> None:
        policy = self.config["auto.offset.reset"]
        if policy == "none":
            self.reset_errors[tp] = NoOffsetForPartitionError(
                f"No committed offset for {tp} and auto.offset.reset is none."
            )
            return
        self._start_reset(tp, policy)

    def _start_reset(self, tp: TopicPartition, where: str) -> None:
        """ListOffsets to the leader: earliest is the log start, latest the high watermark
        (or the last stable offset for read_committed) (L9)."""
        self.requested_resets[tp] = where
        leader = self.leader_for(tp.topic, tp.partition)
        if leader == NO_LEADER:
            self.request_metadata_update({tp.topic})
            return
        self.resets_in_flight.add(tp)
        isolation = self.isolation_level

        def retry_later() -> None:
            # Keep the reset "in flight" through retry.backoff.ms, then let a waiting poll()
            # start it again (a lost or failed ListOffsets is retried, as in Kafka).
            self.resets_in_flight.add(tp)
            self.request_metadata_update({tp.topic})

            def wake() -> None:
                self.resets_in_flight.discard(tp)
                self.progress += 1

            self.ctx.scheduler.call_later(int(self.config["retry.backoff.ms"]), wake)

        def on_reply(response: object) -> None:
            self.resets_in_flight.discard(tp)
            if tp not in self.assigned or tp in self.positions:
                return
            if response is DISCONNECTED or response == REQUEST_TIMED_OUT:
                retry_later()
                return
            assert isinstance(response, ListOffsetsResponse)
            offset = response.offset
            if response.error:
                retry_later()
                return
            self.positions[tp] = offset
            self.requested_resets.pop(tp, None)
            self.progress += 1
            self.ctx.emit(
                "offset_reset",
                {
                    "client": self.client_id,
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "to": where,
                    "offset": offset,
                },
            )

        self.send_request(leader, ListOffsetsRequest(tp, where, isolation), on_reply)

    def _raise_reset_error(self, tp: TopicPartition | None = None) -> None:
        for key in [tp] if tp is not None else sorted(self.reset_errors):
            if key in self.reset_errors:
                raise self.reset_errors.pop(key)

    # --- poll --------------------------------------------------------------------------------

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> list[ConsumerRecord]:
        self.ctx.record_call(
            "consumer.poll",
            {"consumer": self.client_number, "timeout_ms": timeout_ms, "max_records": max_records},
        )
        return self._poll(timeout_ms, max_records)

    def _poll(self, timeout_ms: int, max_records: int | None) -> list[ConsumerRecord]:
        self._check_open()
        if not self.assigned and not self.subscription:
            raise IllegalStateError(
                "Consumer is not subscribed to any topics or assigned any partitions."
            )
        limit = int(max_records or self.config["max.poll.records"])
        deadline = self.now_ms + max(0, int(timeout_ms))
        self.last_poll_ms = self.now_ms
        while True:
            if self.coordinator is not None:
                self.coordinator.poll()
            self._raise_reset_error()
            self._ensure_positions()
            records = self._drain(limit)
            if records:
                self._send_fetches()  # pipeline the next fetch, as Kafka does
                self.last_poll_ms = self.now_ms
                if self.coordinator is not None:
                    self.coordinator.on_records_returned()
                return records
            self._send_fetches()
            if self.now_ms >= deadline:
                self.last_poll_ms = self.now_ms
                return []
            seen = self.progress
            self.ctx.run_until(self._progressed_since(seen), deadline)
            self.last_poll_ms = self.now_ms

    def _progressed_since(self, seen: int) -> Callable[[], bool]:
        return lambda: self.progress != seen or self._has_progress()

    def _has_progress(self) -> bool:
        if self.completed:
            return True
        if self.reset_errors:
            return True
        return self.coordinator is not None and self.coordinator.needs_poll()

    def _drain(self, limit: int) -> list[ConsumerRecord]:
        out: list[ConsumerRecord] = []
        while self.completed and len(out) < limit:
            chunk = self.completed[0]
            if (
                chunk.tp not in self.assigned
                or self.positions.get(chunk.tp) != chunk.fetch_position
                or chunk.tp in self.paused
            ):
                self.completed.popleft()
                continue
            before = len(out)
            buffered = chunk.records
            take = min(limit - before, len(buffered))
            if take == len(buffered):
                out.extend(buffered)
                buffered.clear()
            else:
                popleft = buffered.popleft
                out.extend([popleft() for _ in range(take)])
            if take > 0:
                # The position follows the last record handed out.
                chunk.fetch_position = out[-1].offset + 1
                self.positions[chunk.tp] = chunk.fetch_position
            if len(out) > before:
                # The epoch of the record before the position (Kafka's FetchPosition.offsetEpoch).
                self._note_epoch(chunk, chunk.epochs[len(chunk.epochs) - len(chunk.records) - 1])
            if not chunk.records:
                if chunk.next_fetch_offset > self.positions[chunk.tp]:
                    self.positions[chunk.tp] = chunk.next_fetch_offset
                    self._note_epoch(chunk, chunk.last_epoch)
                self.completed.popleft()
        self.consumed_records += len(out)
        if out:
            self.ctx.taps.on_records_consumed(self, out)
        return out

    def _fetchable(self) -> list[TopicPartition]:
        buffered = {chunk.tp for chunk in self.completed}
        return [
            tp
            for tp in sorted(self.assigned)
            if tp in self.positions
            and tp not in buffered
            and tp not in self.paused
            and not self._awaits_validation(tp)
        ]

    def _send_fetches(self) -> None:
        by_leader: dict[int, dict[TopicPartition, int]] = {}
        for tp in self._fetchable():
            leader = self.leader_for(tp.topic, tp.partition)
            if leader == NO_LEADER:
                self.request_metadata_update({tp.topic})
                continue
            if leader in self.fetches_in_flight or self.reconnect_at.get(leader, 0) > self.now_ms:
                continue
            by_leader.setdefault(leader, {})[tp] = self.positions[tp]
        for leader, asks in by_leader.items():
            self._send_fetch(leader, asks)

    def _send_fetch(self, leader: int, asks: dict[TopicPartition, int]) -> None:
        self.fetches_in_flight.add(leader)
        isolation = self.isolation_level
        wait = int(self.config["fetch.max.wait.ms"])
        max_bytes = int(self.config["max.partition.fetch.bytes"])
        handler = self.fetch_sessions.get(leader)
        if handler is None:
            handler = self.fetch_sessions[leader] = FetchSessionHandler()
        sent = handler.build(asks)

        def on_reply(response: object) -> None:
            self.fetches_in_flight.discard(leader)
            self.progress += 1
            if response is DISCONNECTED or response == REQUEST_TIMED_OUT:
                handler.handle_error()
                if response is DISCONNECTED:
                    self._back_off_from(leader)
                self.request_metadata_update({tp.topic for tp in asks})
                return
            assert isinstance(response, FetchResponse)
            if not handler.handle_response(sent, response):
                return  # the next fetch (at once, the poll is woken) is a full one
            responses = response.responses
            # An incremental answer holds only the partitions with news; they are taken in the
            # order they were asked for.
            for tp, offset in asks.items():
                data = responses.get(tp)
                if data is not None:
                    self._handle_fetch_data(tp, offset, data)

        self.send_request(
            leader,
            FetchRequest(
                sent.offsets,
                isolation,
                wait,
                max_bytes,
                session_id=sent.session_id,
                session_epoch=sent.epoch,
                forgotten=sent.forgotten,
            ),
            on_reply,
            timeout_ms=int(self.config["request.timeout.ms"]) + wait,
        )

    def _back_off_from(self, broker_id: int) -> None:
        """A refused connection is retried after reconnect.backoff.ms, not at once."""
        backoff = int(self.config["reconnect.backoff.ms"])
        self.reconnect_at[broker_id] = self.now_ms + backoff

        def retry() -> None:
            self.progress += 1  # wakes a blocked poll() to fetch again

        self.ctx.scheduler.call_later(backoff, retry)

    def _handle_fetch_data(
        self, tp: TopicPartition, fetch_offset: int, data: FetchPartitionData
    ) -> None:
        if tp not in self.assigned or self.positions.get(tp) != fetch_offset:
            return
        if data.error:
            if data.error == "OFFSET_OUT_OF_RANGE":
                self.ctx.emit(
                    "offset_out_of_range",
                    {
                        "client": self.client_id,
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "offset": fetch_offset,
                    },
                )
                self.positions.pop(tp, None)
                if self.config["auto.offset.reset"] == "none":
                    self.reset_errors[tp] = OffsetOutOfRangeError(
                        f"Fetch position {fetch_offset} is out of range for partition {tp}."
                    )
                else:
                    self._start_reset(tp, self.config["auto.offset.reset"])
            else:
                self.request_metadata_update({tp.topic})
            return
        if not data.batches:
            return
        records: deque[ConsumerRecord] = deque()
        epochs: list[int] = []
        last_epoch = -1
        topic, partition = tp
        aborted = _AbortedFilter(data.aborted) if self.isolation_level == "read_committed" else None
        next_offset = fetch_offset
        for batch in data.batches:
            next_offset = max(next_offset, batch.last_offset + 1)
            last_epoch = batch.leader_epoch
            if batch.is_control:
                if aborted is not None:
                    aborted.on_marker(batch)
                continue
            if aborted is not None and aborted.is_aborted(batch):
                continue
            batch_records = batch.records
            if batch_records and batch_records[0].offset >= fetch_offset:
                # The whole batch is past the fetch offset (the common case): one pass.
                # ConsumerRecord(topic, partition, offset, timestamp, key, value, headers) per
                # record, made in C: (topic, partition) + the record's five fields.
                records.extend(
                    map(
                        tuple.__new__,
                        repeat(ConsumerRecord),
                        map(add, repeat((topic, partition)), map(_RECORD_FIELDS, batch_records)),
                    )
                )
                epochs.extend([batch.leader_epoch] * len(batch_records))
                continue
            for record in batch_records:
                if record.offset >= fetch_offset:
                    records.append(
                        ConsumerRecord(
                            tp.topic,
                            tp.partition,
                            record.offset,
                            record.timestamp,
                            record.key,
                            record.value,
                            record.headers,
                        )
                    )
                    epochs.append(batch.leader_epoch)
        self.completed.append(
            CompletedFetch(
                tp,
                records,
                next_offset,
                fetch_offset,
                epochs,
                last_epoch,
                self._leader_epoch_of(tp),
            )
        )

    # --- groups (delegated) ------------------------------------------------------------------

    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        self.ctx.record_call(
            "consumer.commit",
            {
                "consumer": self.client_number,
                "offsets": None
                if offsets is None
                else [[tp[0], tp[1], int(o)] for tp, o in offsets.items()],
            },
        )
        self._check_open()
        if self.coordinator is None:
            raise InvalidGroupIdError(
                "To use the group management or offset commit APIs, you must provide a valid "
                "group.id in the consumer configuration."
            )
        if offsets is None:
            offsets = {
                tp: self.positions[tp] for tp in sorted(self.assigned) if tp in self.positions
            }
        self.coordinator.commit_sync({TopicPartition(*tp): int(o) for tp, o in offsets.items()})

    def committed(self, tp: TopicPartition) -> int | None:
        # Recorded: asking the coordinator advances the clock.
        self.ctx.record_call("consumer.committed", {"consumer": self.client_number, "tp": list(tp)})
        if self.coordinator is None:
            raise InvalidGroupIdError("committed() needs a group.id.")
        return self.coordinator.fetch_committed_sync(TopicPartition(*tp))

    def close(self, timeout_ms: int | None = None) -> None:
        """Leave the group (committing first under auto commit), waiting for the answers up to
        `timeout_ms` (default: as long as the requests take, Kafka's close()); with 0, as
        Kafka's close(Duration.ZERO), the commit and the LeaveGroup are sent and not waited
        for, so the call runs no cluster time."""
        if self.closed:
            return
        args: dict[str, Any] = {"consumer": self.client_number}
        if timeout_ms is not None:
            args["timeout_ms"] = timeout_ms
        self.ctx.record_call("consumer.close", args)
        if self.coordinator is not None and not self.crashed:
            self.coordinator.close(wait=timeout_ms is None or timeout_ms > 0)
        self.closed = True
        self.alive = False

    def crash(self) -> None:
        """The process dies: no leave-group, no commits, no more heartbeats."""
        if self.closed:
            return
        self.ctx.record_call("consumer.crash", {"consumer": self.client_number})
        self.crashed = True
        self.closed = True
        self.alive = False
        if self.coordinator is not None:
            self.coordinator.on_crash()
        self.ctx.emit("consumer_crashed", {"client": self.client_id, "group": self.group_id})

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        self.paused |= {TopicPartition(*tp) for tp in tps} & self.assigned

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        self.paused -= {TopicPartition(*tp) for tp in tps}

    def _check_open(self) -> None:
        if self.closed:
            raise KafkaClosedError("This consumer has already been closed.")

    def allow_auto_create_topics(self) -> bool:
        return bool(self.config["allow.auto.create.topics"])

    # --- log truncation detection (KIP-320) ---------------------------------------------------

    def _note_epoch(self, chunk: CompletedFetch, epoch: int) -> None:
        if epoch >= 0:
            self.position_epochs[chunk.tp] = (self.positions[chunk.tp], epoch)
            self.validated_epochs[chunk.tp] = chunk.leader_epoch

    def _leader_epoch_of(self, tp: TopicPartition) -> int:
        infos = self.topics.get(tp.topic)
        if infos is None or tp.partition >= len(infos):
            return -1
        return infos[tp.partition].leader_epoch

    def _offset_epoch(self, tp: TopicPartition) -> int:
        """The epoch of the record before the position, when the position came from records."""
        known = self.position_epochs.get(tp)
        position = self.positions.get(tp)
        if known is None or position is None or known[0] != position:
            return -1
        return known[1]

    def _awaits_validation(self, tp: TopicPartition) -> bool:
        awaiting = self.awaiting_validation.get(tp)
        return awaiting is not None and awaiting == self.positions.get(tp)

    def _maybe_validate_positions(self) -> None:
        """Kafka's `SubscriptionState.maybeValidatePositionForCurrentLeader`: a position with a
        known epoch is checked against a leader with a newer epoch before it fetches there."""
        for tp in sorted(self.assigned):
            if self._offset_epoch(tp) < 0:
                continue
            if self._awaits_validation(tp):
                if tp not in self.validation_sent:
                    self._validate_position(tp)  # a retry, now that the metadata is fresh
                continue
            if self._leader_epoch_of(tp) > self.validated_epochs.get(tp, -1):
                self._validate_position(tp)

    def _validate_position(self, tp: TopicPartition) -> None:
        """OffsetForLeaderEpoch for the position's epoch (Kafka's `OffsetsForLeaderEpochClient`,
        then `SubscriptionState.maybeCompleteValidation`)."""
        position = self.positions[tp]
        offset_epoch = self._offset_epoch(tp)
        current_epoch = self._leader_epoch_of(tp)
        self.awaiting_validation[tp] = position  # no fetching until it is answered
        leader = self.leader_for(tp.topic, tp.partition)
        if leader == NO_LEADER:
            self.request_metadata_update({tp.topic})
            return
        self.validation_sent.add(tp)

        def on_reply(response: object) -> None:
            if not self._awaits_validation(tp) or self.awaiting_validation[tp] != position:
                return  # the position moved (a seek) while the request was out
            self.validation_sent.discard(tp)
            if (
                response is DISCONNECTED
                or response == REQUEST_TIMED_OUT
                or (isinstance(response, OffsetForLeaderEpochResponse) and response.error)
            ):
                # Still awaiting validation: sent again once the metadata names the leader.
                self.request_metadata_update({tp.topic})
                return
            assert isinstance(response, OffsetForLeaderEpochResponse)
            end_epoch, end_offset = response.leader_epoch, response.end_offset
            self.progress += 1
            if end_epoch >= 0 and end_offset >= position:
                self.awaiting_validation.pop(tp, None)
                self.validated_epochs[tp] = current_epoch
                return
            self._on_log_truncation(tp, position, offset_epoch, end_epoch, end_offset)

        self.send_request(
            leader, OffsetForLeaderEpochRequest(tp, current_epoch, offset_epoch), on_reply
        )

    def _on_log_truncation(
        self, tp: TopicPartition, position: int, offset_epoch: int, end_epoch: int, end: int
    ) -> None:
        """With a reset policy the position moves back to where the logs diverge (or, with no
        epoch to compare, resets by the policy); with auto.offset.reset=none poll() raises."""
        policy = self.config["auto.offset.reset"]
        diverged = end if end_epoch >= 0 else None
        self.completed = deque(c for c in self.completed if c.tp != tp)
        self.ctx.emit(
            "log_truncation_detected",
            {
                "client": self.client_id,
                "topic": tp.topic,
                "partition": tp.partition,
                "position": position,
                "epoch": offset_epoch,
                "divergent_offset": diverged,
                "reset_to": None
                if policy == "none"
                else (policy if diverged is None else diverged),
            },
        )
        if policy == "none":
            self.reset_errors[tp] = LogTruncationError(
                f"Detected truncated partitions: {tp} at fetch offset {position} "
                + (
                    f"(the log diverges at offset {diverged})"
                    if diverged is not None
                    else "(no common epoch with the leader's log)"
                ),
                {tp: position},
                {} if diverged is None else {tp: diverged},
            )
            # The position stays awaiting validation until the application seeks.
            self.validation_sent.add(tp)
            return
        self.awaiting_validation.pop(tp, None)
        if diverged is None:
            self.positions.pop(tp, None)
            self._start_reset(tp, policy)
            return
        self.positions[tp] = diverged
        self.position_epochs[tp] = (diverged, end_epoch)
        self.validated_epochs[tp] = self._leader_epoch_of(tp)

    def refreshes_metadata_in_background(self) -> bool:
        # A group member's heartbeat thread polls the network client between poll() calls.
        return self.coordinator is not None and not self.closed

    def on_metadata_update(self) -> None:
        self.progress += 1
        self._maybe_validate_positions()
        for tp, where in sorted(self.requested_resets.items()):
            if tp not in self.resets_in_flight and tp not in self.positions:
                self._start_reset(tp, where)


class _AbortedFilter:
    """Kafka's read_committed filtering: batches of producers with an aborted transaction that
    starts at or before them are dropped until that producer's abort marker."""

    def __init__(self, aborted: list[tuple[int, int]]) -> None:
        self.pending = sorted(aborted, key=lambda item: item[1])
        self.active: set[int] = set()

    def is_aborted(self, batch: RecordBatch) -> bool:
        if not batch.is_transactional:
            return False
        while self.pending and self.pending[0][1] <= batch.last_offset:
            self.active.add(self.pending.pop(0)[0])
        return batch.producer_id in self.active

    def on_marker(self, batch: RecordBatch) -> None:
        if batch.control_type == "ABORT":
            self.active.discard(batch.producer_id)
