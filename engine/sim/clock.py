"""The cluster's logical clock: one heap of `(time, sequence, timer)`, as in SimPy's core.

Nothing in the engine reads the wall clock; every delay is a timer on this heap, and the
sequence number breaks ties so that two runs with the same calls do the same things in the
same order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from heapq import heappop, heappush

# A mask: each time the count of timers made is a multiple of COMPACT_EVERY + 1 (1,024), the
# heap is checked for cancelled timers to drop (`Scheduler.compact`).
COMPACT_EVERY = 1023


class Timer:
    """A scheduled action; `cancel()` makes it a no-op (it leaves the heap when its time comes,
    or earlier when the scheduler compacts its heap)."""

    __slots__ = ("action", "cancelled", "due_ms")

    def __init__(self, due_ms: int, action: Callable[[], None]) -> None:
        self.due_ms = due_ms
        self.action = action
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        # A cancelled timer never runs; dropping its action now frees what the action holds
        # (a request's callbacks and batches, say) instead of keeping it until the timer's time.
        self.action = _never_run


def _never_run() -> None:
    """The action of a cancelled timer (never called: the scheduler skips cancelled timers)."""


class Scheduler:
    def __init__(self) -> None:
        self.now_ms = 0
        self._heap: list[tuple[int, int, Timer]] = []
        self._sequence = 0
        # How many timers have run: what a fast-forward costs, independent of machine speed.
        self.executed = 0

    def call_at(self, due_ms: int, action: Callable[[], None]) -> Timer:
        now = self.now_ms
        timer = Timer(due_ms if due_ms > now else now, action)
        self._sequence = sequence = self._sequence + 1
        heappush(self._heap, (timer.due_ms, sequence, timer))
        if not sequence & COMPACT_EVERY:
            self.compact()
        return timer

    def call_later(self, delay_ms: int, action: Callable[[], None]) -> Timer:
        # call_at(now + max(0, delay)), inlined: the commonest way a timer is made.
        timer = Timer(self.now_ms + delay_ms if delay_ms > 0 else self.now_ms, action)
        self._sequence = sequence = self._sequence + 1
        heappush(self._heap, (timer.due_ms, sequence, timer))
        if not sequence & COMPACT_EVERY:
            self.compact()
        return timer

    def compact(self) -> None:
        """Drop cancelled timers from the heap once they are most of it (a request's timeout
        is cancelled when its answer comes, but stays on the heap until its time otherwise).
        The heap keeps its order: timers run by (due time, sequence), and both are unique."""
        heap = self._heap
        live = [entry for entry in heap if not entry[2].cancelled]
        if len(live) * 2 < len(heap):
            heap[:] = live  # in place: a run_until in progress holds this list
            heapq.heapify(heap)

    def next_due_ms(self) -> int | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_until(self, until_ms: int, stop: Callable[[], bool] | None = None) -> bool:
        """Run every timer due at or before `until_ms`, in order.

        With `stop`, return True as soon as it holds after a timer ran (the clock then stays at
        that timer's time); otherwise the clock ends at `until_ms` and the result is False.
        """
        heap = self._heap
        pop = heappop
        if stop is None:
            # The same loop without the stop condition, checked per timer otherwise.
            while heap and heap[0][0] <= until_ms:
                due_ms, _, timer = pop(heap)
                if timer.cancelled:
                    continue
                self.now_ms = due_ms
                self.executed += 1
                timer.action()
        else:
            if stop():
                return True
            while heap and heap[0][0] <= until_ms:
                due_ms, _, timer = pop(heap)
                if timer.cancelled:
                    continue
                self.now_ms = due_ms
                self.executed += 1
                timer.action()
                if stop():
                    return True
        if until_ms > self.now_ms:
            self.now_ms = until_ms
        return False

    @property
    def pending(self) -> int:
        return sum(1 for _, _, timer in self._heap if not timer.cancelled)
