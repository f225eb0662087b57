"""One replica of one partition on one broker: Kafka's `Partition` and `Replica`.

On the leader it tracks every follower's log end and when it last caught up, keeps the high
watermark (R4), shrinks and expands the ISR through the controller (R5, R6), and holds acks=all
produce requests until the high watermark covers them (R1, R3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.common.metadata import NO_LEADER, PartitionRegistration
from engine.common.records import TopicPartition
from engine.storage.log import UnifiedLog
from engine.storage.producer_state import ProducerStateManager

if TYPE_CHECKING:
    from engine.server.broker import Broker


@dataclass(slots=True)
class FollowerState:
    """The leader's view of a follower (Kafka's `ReplicaState`)."""

    broker_id: int
    log_end_offset: int = -1
    last_caught_up_ms: int = 0
    last_fetch_ms: int = 0
    last_fetch_leader_log_end_offset: int = 0

    def is_caught_up(self, leader_log_end_offset: int, now_ms: int, max_lag_ms: int) -> bool:
        """R5: at the leader's log end, or there within the last replica.lag.time.max.ms."""
        return (
            self.log_end_offset == leader_log_end_offset
            or now_ms - self.last_caught_up_ms <= max_lag_ms
        )


@dataclass(slots=True)
class DelayedProduce:
    """An acks=all produce waiting for the high watermark (Kafka's `DelayedProduce`)."""

    required_offset: int
    complete: Callable[[str], None]
    deadline_ms: int
    done: bool = False


class Partition:
    def __init__(self, broker: Broker, tp: TopicPartition, config: dict[str, Any]) -> None:
        self.broker = broker
        self.tp = tp
        self.config = config
        self.log = UnifiedLog(
            tp.topic, tp.partition, config, broker.ctx.scheduler.now_ms, broker.emit_log_event
        )
        self.producer_state = ProducerStateManager()
        self.log.first_unstable_offset = self.producer_state.first_unstable_offset
        self.registration: PartitionRegistration | None = None
        self.leader_id = NO_LEADER
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.isr: tuple[int, ...] = ()
        self.pending_isr: tuple[int, ...] | None = None
        self.followers: dict[int, FollowerState] = {}
        self.delayed_produces: list[DelayedProduce] = []

    @property
    def is_leader(self) -> bool:
        return self.leader_id == self.broker.id

    @property
    def replicas(self) -> tuple[int, ...]:
        return self.registration.replicas if self.registration else ()

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """The ISR used for the high watermark: pending additions count at once, pending
        removals only once committed (Kafka's `maximalIsr`)."""
        if self.pending_isr is None:
            return self.isr
        return tuple(sorted(set(self.isr) | set(self.pending_isr)))

    def effective_min_isr(self) -> int:
        return min(int(self.config["min.insync.replicas"]), len(self.replicas) or 1)

    def is_under_min_isr(self) -> bool:
        return len(self.isr) < self.effective_min_isr()

    # --- leadership changes ------------------------------------------------------------------

    def make_leader(self, registration: PartitionRegistration) -> None:
        self.broker.wake_isr_checks()
        self.broker.replica_states += 1
        new_epoch = registration.leader_epoch != self.leader_epoch or not self.is_leader
        self.registration = registration
        self.leader_id = registration.leader
        self.leader_epoch = registration.leader_epoch
        self.partition_epoch = registration.partition_epoch
        self.isr = registration.isr
        self.pending_isr = None
        now = self.broker.ctx.scheduler.now_ms
        # Kafka records where the new leader epoch starts, for followers' truncation (R8).
        self.log._assign_epoch(registration.leader_epoch, self.log.log_end_offset)
        if new_epoch:
            # A new leader starts with fresh follower states; it has not heard from them yet.
            self.followers = {
                replica: FollowerState(replica, last_caught_up_ms=now if replica in self.isr else 0)
                for replica in registration.replicas
                if replica != self.broker.id
            }
        self.maybe_increment_high_watermark()

    def make_follower(self, registration: PartitionRegistration) -> None:
        self.broker.wake_isr_checks()
        self.broker.replica_states += 1
        self.registration = registration
        self.leader_id = registration.leader
        self.leader_epoch = registration.leader_epoch
        self.partition_epoch = registration.partition_epoch
        self.isr = registration.isr
        self.pending_isr = None
        self.followers = {}
        self.fail_delayed_produces("NOT_LEADER_OR_FOLLOWER")

    def update_registration(self, registration: PartitionRegistration) -> None:
        """A partition change that kept the leader (an ISR change committed by the controller)."""
        self.broker.wake_isr_checks()
        self.broker.replica_states += 1
        self.registration = registration
        self.partition_epoch = registration.partition_epoch
        self.isr = registration.isr
        if self.pending_isr is not None and set(self.pending_isr) == set(registration.isr):
            self.pending_isr = None
        if self.is_leader:
            for replica in registration.replicas:
                if replica != self.broker.id and replica not in self.followers:
                    self.followers[replica] = FollowerState(replica)
            if len(self.followers) >= len(registration.replicas):  # a reassignment removed some
                self.followers = {
                    r: s for r, s in self.followers.items() if r in registration.replicas
                }
            if self.is_under_min_isr():
                # R3: appended, but the ISR fell below the minimum before the answer; since
                # 3.7 the HW cannot cover these records until the ISR recovers, so answer now.
                self.fail_delayed_produces("NOT_ENOUGH_REPLICAS_AFTER_APPEND")
            self.maybe_increment_high_watermark()

    # --- leader-side bookkeeping -------------------------------------------------------------

    def update_follower_fetch(self, follower_id: int, fetch_offset: int) -> None:
        state = self.followers.get(follower_id)
        if state is None:
            return
        now = self.broker.ctx.scheduler.now_ms
        leader_end = self.log.log_end_offset
        if fetch_offset >= leader_end:
            if now > state.last_caught_up_ms:
                state.last_caught_up_ms = now
        elif (
            fetch_offset >= state.last_fetch_leader_log_end_offset
            and state.last_fetch_ms > state.last_caught_up_ms
        ):
            state.last_caught_up_ms = state.last_fetch_ms
        state.log_end_offset = fetch_offset
        state.last_fetch_leader_log_end_offset = leader_end
        state.last_fetch_ms = now
        if self.pending_isr is None and follower_id not in self.isr:
            self.maybe_expand_isr(state)
        self.maybe_increment_high_watermark()

    def leader_epoch_start_offset(self) -> int:
        for entry in reversed(self.log.epoch_cache):
            if entry.epoch == self.leader_epoch:
                return entry.start_offset
        return self.log.log_end_offset

    def maybe_expand_isr(self, state: FollowerState) -> None:
        """R6: back into the ISR at the high watermark and the current epoch's start."""
        if self.pending_isr is not None or state.broker_id in self.isr:
            return
        if not self.broker.is_broker_eligible(state.broker_id):
            return
        if (
            state.log_end_offset >= self.log.high_watermark
            and state.log_end_offset >= self.leader_epoch_start_offset()
        ):
            self._propose_isr(tuple(sorted((*self.isr, state.broker_id))))

    def maybe_shrink_isr(self) -> None:
        if not self.is_leader or self.pending_isr is not None:
            return
        now = self.broker.ctx.scheduler.now_ms
        max_lag = int(self.broker.config["replica.lag.time.max.ms"])
        leader_end = self.log.log_end_offset
        out_of_sync = [
            replica
            for replica in self.isr
            if replica != self.broker.id
            and not self.followers.get(replica, FollowerState(replica)).is_caught_up(
                leader_end, now, max_lag
            )
        ]
        if out_of_sync:
            self._propose_isr(tuple(b for b in self.isr if b not in out_of_sync))

    def _propose_isr(self, new_isr: tuple[int, ...]) -> None:
        self.broker.wake_isr_checks()
        self.pending_isr = new_isr
        self.broker.send_alter_partition(self, new_isr)

    def on_alter_partition_response(
        self, error: str, registration: PartitionRegistration | None
    ) -> None:
        self.broker.wake_isr_checks()
        self.pending_isr = None
        if registration is None:
            return
        if not error and self.is_leader and registration.leader_epoch == self.leader_epoch:
            self.update_registration(registration)

    def maybe_increment_high_watermark(self) -> bool:
        """R4: min log end over the maximal ISR and caught-up eligible followers, and not at all
        while the ISR is below the effective minimum (Kafka 3.7+)."""
        broker = self.broker
        if self.leader_id != broker.id:
            return False
        registration = self.registration
        # is_under_min_isr(), inlined.
        if len(self.isr) < min(
            int(self.config["min.insync.replicas"]),
            (len(registration.replicas) if registration else 0) or 1,
        ):
            return False
        log = self.log
        leader_end = log.log_end_offset
        new_hw = leader_end
        if log.high_watermark >= leader_end:
            # Already at the log end: nothing can raise it, and the loop below only reads.
            return False
        maximal: tuple[int, ...] | None = None
        now = 0
        max_lag = 0
        for state in self.followers.values():
            if state.log_end_offset >= new_hw:
                continue
            if maximal is None:
                # Worked out once, for the first follower behind the leader.
                maximal = self.maximal_isr
                now = broker.ctx.scheduler.now_ms
                max_lag = int(broker.config["replica.lag.time.max.ms"])
            waits = state.broker_id in maximal or (
                state.is_caught_up(leader_end, now, max_lag)
                and broker.is_broker_eligible(state.broker_id)
            )
            if waits:
                new_hw = max(state.log_end_offset, 0)
        if log.maybe_increment_high_watermark(new_hw):
            self.on_high_watermark_changed()
            return True
        return False

    def on_high_watermark_changed(self) -> None:
        self.try_complete_delayed_produces()
        self.broker.on_high_watermark_changed(self)

    # --- acks=all ----------------------------------------------------------------------------

    def add_delayed_produce(self, delayed: DelayedProduce) -> None:
        self.delayed_produces.append(delayed)
        self.try_complete_delayed_produces()

    def check_enough_replicas_reach_offset(self, required_offset: int) -> str | None:
        """Kafka's `checkEnoughReplicasReachOffset`: None while still waiting."""
        if self.leader_id != self.broker.id:
            return "NOT_LEADER_OR_FOLLOWER"
        if self.log.high_watermark >= required_offset:
            if self.effective_min_isr() > len(self.maximal_isr):
                return "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
            return ""
        return None

    def try_complete_delayed_produces(self) -> None:
        if not self.delayed_produces:
            return
        still_waiting: list[DelayedProduce] = []
        for delayed in self.delayed_produces:
            if delayed.done:
                continue
            outcome = self.check_enough_replicas_reach_offset(delayed.required_offset)
            if outcome is None:
                still_waiting.append(delayed)
            else:
                delayed.done = True
                delayed.complete(outcome)
        self.delayed_produces = still_waiting

    def fail_delayed_produces(self, error: str) -> None:
        waiting, self.delayed_produces = self.delayed_produces, []
        for delayed in waiting:
            if not delayed.done:
                delayed.done = True
                delayed.complete(error)

    def expire_delayed_produce(self, delayed: DelayedProduce) -> None:
        if delayed.done:
            return
        delayed.done = True
        delayed.complete("REQUEST_TIMED_OUT")
        self.delayed_produces = [d for d in self.delayed_produces if not d.done]
