"""The engine's hot paths as they were written before they were made cheap: the references that
`test_cost_paths` checks the fast paths against (same results, same order, same random draws)."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from random import Random
from typing import Any

from engine.sim.clock import Timer


class ReferenceScheduler:
    """The scheduler before inlining: call_later through call_at, one run_until loop that checks
    the stop condition after every timer."""

    def __init__(self) -> None:
        self.now_ms = 0
        self._heap: list[tuple[int, int, Timer]] = []
        self._sequence = 0
        self.executed = 0

    def call_at(self, due_ms: int, action: Callable[[], None]) -> Timer:
        timer = Timer(max(due_ms, self.now_ms), action)
        self._sequence += 1
        heapq.heappush(self._heap, (timer.due_ms, self._sequence, timer))
        return timer

    def call_later(self, delay_ms: int, action: Callable[[], None]) -> Timer:
        return self.call_at(self.now_ms + max(0, delay_ms), action)

    def run_until(self, until_ms: int, stop: Callable[[], bool] | None = None) -> bool:
        heap = self._heap
        if stop is not None and stop():
            return True
        while heap and heap[0][0] <= until_ms:
            due_ms, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            self.now_ms = due_ms
            self.executed += 1
            timer.action()
            if stop is not None and stop():
                return True
        if until_ms > self.now_ms:
            self.now_ms = until_ms
        return False


def reference_delay(rng: Random, latency_ms: int, jitter_ms: int) -> int:
    """The network's delay before the exact draw: latency plus randint(0, jitter)."""
    if jitter_ms <= 0:
        return latency_ms
    return latency_ms + rng.randint(0, jitter_ms)


def reference_high_watermark(partition: Any) -> int | None:
    """What `Partition.maybe_increment_high_watermark` sets the HW to (None: it leaves it), as
    the loop over every follower computed it before the fast path at the log end."""
    if not partition.is_leader or partition.is_under_min_isr():
        return None
    broker = partition.broker
    now = broker.now_ms
    log = partition.log
    leader_end = log.log_end_offset
    max_lag = int(broker.config["replica.lag.time.max.ms"])
    maximal = partition.maximal_isr
    new_hw = leader_end
    for state in partition.followers.values():
        if state.log_end_offset >= new_hw:
            continue
        waits = state.broker_id in maximal or (
            state.is_caught_up(leader_end, now, max_lag)
            and broker.is_broker_eligible(state.broker_id)
        )
        if waits:
            new_hw = max(state.log_end_offset, 0)
    clamped = min(max(new_hw, log.log_start_offset), log.log_end_offset)
    return clamped if clamped > log.high_watermark else None


def reference_first_unstable_offset(producer_state: Any) -> int | None:
    offsets = [
        e.current_txn_first_offset
        for e in producer_state.producers.values()
        if e.current_txn_first_offset is not None
    ]
    return min(offsets) if offsets else None
