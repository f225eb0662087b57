"""Kafka's heartbeat thread (`AbstractCoordinator.HeartbeatThread`) on the cluster clock: while
the consumer is neither closed nor crashed it heartbeats every `heartbeat.interval.ms`, and it
leaves the group when the application has not polled within `max.poll.interval.ms`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.clients.consumer.member_state import (
    COMPLETING_REBALANCE,
    COORDINATOR_ERRORS,
    STABLE,
    UNJOINED,
)
from engine.clients.network_client import REQUEST_TIMED_OUT
from engine.clients.network_client import group_coordinator_at as group_coordinator_of
from engine.errors import FencedInstanceIdError
from engine.sim.clock import Timer
from engine.sim.network import DISCONNECTED

if TYPE_CHECKING:
    from engine.clients.consumer.consumer_coordinator import ConsumerCoordinator
    from engine.server.broker import Broker


class HeartbeatThread:
    """`coordinator.heartbeat`: one consumer's background heartbeats."""

    def __init__(self, group: ConsumerCoordinator) -> None:
        self.group = group
        self.timer: Timer | None = None
        self.in_flight = False

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def ensure(self) -> None:
        if self.timer is None and self.group._active():
            self.timer = self.group.ctx.scheduler.call_later(
                self.group.heartbeat_interval_ms, self._tick
            )

    def _tick(self) -> None:
        """Kafka's heartbeat thread: runs on the cluster clock whether or not the app polls."""
        self.timer = None
        if not self.group._active():
            return
        if (
            self.group.generation >= 0
            and self.group.now_ms - self.group.last_poll_ms > self.group.max_poll_interval_ms
        ):
            self.group._emit("max_poll_interval_exceeded", last_poll_ms=self.group.last_poll_ms)
            self.group._maybe_leave("consumer poll timeout has expired (max.poll.interval.ms)")
        if self.group.coordinator_id is None and self.group.consumer.subscription:
            self.group._find_coordinator()
        elif (
            self.group.coordinator_id is not None
            and self.group.generation >= 0
            and self.group.member_id
            and self.group.state in (STABLE, COMPLETING_REBALANCE)
            and not self.in_flight
        ):
            self._send()
        # Nothing left to do once out of the group: poll() starts the thread again.
        if (
            self.group.member_id
            or self.group.state != UNJOINED
            or self.group.coordinator_id is None
        ):
            self.timer = self.group.ctx.scheduler.call_later(
                self.group.heartbeat_interval_ms, self._tick
            )

    def _send(self) -> None:
        assert self.group.coordinator_id is not None
        self.in_flight = True
        group_id, generation, member_id, instance_id = (
            self.group.group_id,
            self.group.generation,
            self.group.member_id,
            self.group.instance_id,
        )
        epoch = self.group.epoch

        def handle(broker: Broker, reply: Callable[[object], None]) -> None:
            group_coordinator_of(broker).handle_heartbeat(
                group_id, generation, member_id, instance_id, reply
            )

        def on_reply(response: object) -> None:
            self.in_flight = False
            if epoch != self.group.epoch:
                return
            if (
                response is DISCONNECTED
                or response == REQUEST_TIMED_OUT
                or response in COORDINATOR_ERRORS
            ):
                self.group._coordinator_unknown()
            elif response == "REBALANCE_IN_PROGRESS":
                self.group.rejoin_needed = True
                self.group._poke()
            elif response == "ILLEGAL_GENERATION":
                self.group._reset_generation(reset_member_id=False)
                self.group._poke()
            elif response == "UNKNOWN_MEMBER_ID":
                self.group._reset_generation(reset_member_id=True)
                self.group._poke()
            elif response == "FENCED_INSTANCE_ID":
                self.group._reset_generation(reset_member_id=True)
                self.group.rejoin_needed = False
                self.group.fatal = FencedInstanceIdError(
                    f"Another consumer with group.instance.id {self.group.instance_id!r} "
                    "took this member's place."
                )
                self.group._poke()

        self.group.consumer.send_request(self.group.coordinator_id, "heartbeat", handle, on_reply)
