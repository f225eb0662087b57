"""The consumer's side of committed offsets: OffsetCommit and OffsetFetch to the group
coordinator, auto commit inside `poll()` (O3), `commit()` and `committed()`, and the committed
positions an assigned partition starts from (part of Kafka's `ConsumerCoordinator`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.clients.consumer.member_state import (
    COMPLETING_REBALANCE,
    COORDINATOR_ERRORS,
    PREPARING_REBALANCE,
    STABLE,
)
from engine.clients.network_client import REQUEST_TIMED_OUT
from engine.clients.network_client import group_coordinator_at as group_coordinator_of
from engine.common.records import TopicPartition
from engine.errors import (
    CommitFailedError,
    FencedInstanceIdError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    error_for_name,
)

if TYPE_CHECKING:
    from engine.clients.consumer.consumer_coordinator import ConsumerCoordinator
    from engine.server.broker import Broker


class ConsumerOffsets:
    """`coordinator.offsets`: commits and committed-offset fetches of one consumer's group."""

    def __init__(self, group: ConsumerCoordinator) -> None:
        # The consumer's membership in its group: generation, member id, coordinator, state.
        self.group = group

    def maybe_auto_commit(self) -> None:
        if not self.group.auto_commit or self.group.now_ms < self.group.next_auto_commit_ms:
            return
        self.group.next_auto_commit_ms = self.group.now_ms + self.group.auto_commit_interval_ms
        if self.group.consumer.subscription and (
            self.group.state != STABLE or self.group.generation < 0
        ):
            return
        offsets = self.group._positions()
        if offsets and self.group.coordinator_id is not None:
            self.send_commit(offsets, lambda error: None)

    def _commit_identity(self) -> tuple[int, str, str | None]:
        if self.group.consumer.subscription:
            return (
                self.group.generation,
                self.group.member_id,
                self.group.instance_id,
            )
        return -1, "", None

    def send_commit(self, offsets: dict[TopicPartition, int], done: Callable[[str], None]) -> None:
        if self.group.coordinator_id is None:
            self.group._find_coordinator()
            done("COORDINATOR_NOT_AVAILABLE")
            return
        group_id = self.group.group_id
        generation, member_id, instance_id = self._commit_identity()
        epoch = self.group.epoch

        def handle(broker: Broker, reply: Callable[[object], None]) -> None:
            group_coordinator_of(broker).offsets.handle_offset_commit(
                group_id, generation, member_id, instance_id, dict(offsets), reply
            )

        def on_reply(response: object) -> None:
            error = response if isinstance(response, str) else "COORDINATOR_NOT_AVAILABLE"
            if error in COORDINATOR_ERRORS or error == REQUEST_TIMED_OUT:
                self.group._coordinator_unknown()
            elif epoch == self.group.epoch and error in (
                "ILLEGAL_GENERATION",
                "UNKNOWN_MEMBER_ID",
            ):
                self.group._reset_generation(reset_member_id=error == "UNKNOWN_MEMBER_ID")
            elif error == "REBALANCE_IN_PROGRESS":
                self.group.rejoin_needed = True
            done(error)

        self.group.consumer.send_request(
            self.group.coordinator_id, "offset_commit", handle, on_reply
        )

    def commit_sync(self, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        if self.group.consumer.subscription and (
            self.group.generation < 0 or self.group.state != STABLE
        ):
            if self.group.state in (PREPARING_REBALANCE, COMPLETING_REBALANCE) or (
                self.group.rejoin_needed and self.group.member_id
            ):
                raise RebalanceInProgressError(
                    "The group is rebalancing; poll() to finish joining, then commit again."
                )
            raise CommitFailedError()
        deadline = self.group.now_ms + int(self.group.consumer.config["default.api.timeout.ms"])
        while True:
            error = self._blocking(lambda done: self.send_commit(offsets, done), deadline)
            if not error:
                return
            if error in ("ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID"):
                raise CommitFailedError()
            if error == "REBALANCE_IN_PROGRESS":
                raise RebalanceInProgressError(
                    "The group started rebalancing; poll() to rejoin, then commit again."
                )
            if error == "FENCED_INSTANCE_ID":
                raise FencedInstanceIdError()
            if error not in (*COORDINATOR_ERRORS, REQUEST_TIMED_OUT):
                raise error_for_name(error)(f"Committing offsets failed with {error}.")
            if self.group.now_ms >= deadline:
                raise KafkaTimeoutError(
                    "Timeout of default.api.timeout.ms expired before committing offsets."
                )
            self.group.ctx.run_until(
                lambda: False,
                min(deadline, self.group.now_ms + self.group.retry_backoff_ms),
            )

    def _blocking(self, send: Callable[[Callable[[Any], None]], None], deadline: int) -> Any:
        """Find the coordinator if needed, send one request and wait for its answer."""
        if self.group.coordinator_id is None:
            self.group._find_coordinator()
            self.group.ctx.run_until(lambda: self.group.coordinator_id is not None, deadline)
            if self.group.coordinator_id is None:
                raise KafkaTimeoutError("Timed out waiting to find the group coordinator.")
        answer: list[Any] = []
        send(answer.append)
        self.group.ctx.run_until(lambda: bool(answer), deadline)
        if not answer:
            raise KafkaTimeoutError("Timed out waiting for the group coordinator.")
        return answer[0]

    def _send_offset_fetch(self, tps: list[TopicPartition], done: Callable[[Any], None]) -> None:
        if self.group.coordinator_id is None:
            self.group._find_coordinator()
            done(("COORDINATOR_NOT_AVAILABLE", {}))
            return
        group_id = self.group.group_id

        def handle(broker: Broker, reply: Callable[[object], None]) -> None:
            group_coordinator_of(broker).offsets.handle_offset_fetch(group_id, list(tps), reply)

        def on_reply(response: object) -> None:
            if not isinstance(response, tuple):
                response = ("COORDINATOR_NOT_AVAILABLE", {})
            if response[0] in COORDINATOR_ERRORS:
                self.group._coordinator_unknown()
            done(response)

        self.group.consumer.send_request(
            self.group.coordinator_id, "offset_fetch", handle, on_reply
        )

    def fetch_committed_sync(self, tp: TopicPartition) -> int | None:
        deadline = self.group.now_ms + int(self.group.consumer.config["default.api.timeout.ms"])
        while True:
            error, offsets = self._blocking(
                lambda done: self._send_offset_fetch([tp], done), deadline
            )
            if not error:
                offset = int(offsets.get(tp, -1))
                return None if offset < 0 else offset
            if self.group.now_ms >= deadline:
                raise KafkaTimeoutError(
                    "Timeout of default.api.timeout.ms expired fetching committed offsets."
                )
            self.group.ctx.run_until(
                lambda: False,
                min(deadline, self.group.now_ms + self.group.retry_backoff_ms),
            )

    def fetch_committed_position(self, tp: TopicPartition) -> bool:
        """Start (or finish) fetching the committed offset for an assigned partition; False
        when nothing is committed, so the consumer applies auto.offset.reset."""
        if tp in self.group.no_committed:
            self.group.no_committed.discard(tp)
            return False
        if tp in self.group.committed_in_flight:
            return True
        if self.group.coordinator_id is None:
            self.group._find_coordinator()
            return True
        consumer = self.group.consumer
        wanted = [
            t
            for t in sorted(consumer.assigned)
            if t not in consumer.positions
            and t not in self.group.committed_in_flight
            and t not in consumer.resets_in_flight
        ]
        if tp not in wanted:
            wanted.append(tp)
        self.group.committed_in_flight.update(wanted)

        def done(response: Any) -> None:
            self.group.committed_in_flight.difference_update(wanted)
            error, offsets = response
            if not error:
                for t in wanted:
                    if t not in consumer.assigned or t in consumer.positions:
                        continue
                    offset = int(offsets.get(t, -1))
                    if offset >= 0:
                        consumer.positions[t] = offset
                        self.group._emit(
                            "offset_fetched", topic=t.topic, partition=t.partition, offset=offset
                        )
                    else:
                        self.group.no_committed.add(t)
                self.group._poke()
            else:
                self.group.ctx.scheduler.call_later(self.group.retry_backoff_ms, self.group._poke)

        self._send_offset_fetch(wanted, done)
        return True
