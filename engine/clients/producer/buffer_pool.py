"""Kafka's producer `BufferPool`: the `buffer.memory` bytes a producer may hold in unsent batches.

The `RecordAccumulator` takes a buffer from the pool for every new batch (`batch.size`, or more
for a record larger than that) and gives it back once the batch is acknowledged or has failed.
When the pool cannot cover a new batch, `send()` waits for brokers to acknowledge earlier
batches, up to `max.block.ms`, and then fails with `BufferExhaustedException`.

Kafka keeps freed `batch.size` buffers on a free list and the rest as "non-pooled" memory; a
request is served from both, so the bytes available are the same either way. The pool here
keeps both figures, so the numbers match Kafka's `buffer-available-bytes` metric.
"""

from __future__ import annotations

from collections.abc import Callable


class BufferPool:
    __slots__ = ("total_memory", "poolable_size", "_free", "_non_pooled", "_waiters")

    def __init__(self, total_memory: int, poolable_size: int) -> None:
        self.total_memory = total_memory
        self.poolable_size = poolable_size
        self._free = 0  # freed buffers of exactly poolable_size bytes (Kafka's free list)
        self._non_pooled = total_memory
        self._waiters: list[Callable[[], object]] = []

    @property
    def available_memory(self) -> int:
        """Bytes a new batch could take now (Kafka's `availableMemory()`)."""
        return self._non_pooled + self._free * self.poolable_size

    @property
    def allocated_memory(self) -> int:
        """Bytes held by batches not yet acknowledged or failed."""
        return self.total_memory - self.available_memory

    def check_size(self, size: int) -> None:
        """Kafka's `allocate` refuses a buffer the whole pool could never hold."""
        if size > self.total_memory:
            raise ValueError(
                f"Attempt to allocate {size} bytes, but there is a hard limit of "
                f"{self.total_memory} on memory allocations."
            )

    def try_allocate(self, size: int) -> bool:
        """Take `size` bytes if the pool has them now; False means the caller must wait."""
        self.check_size(size)
        if size == self.poolable_size and self._free:
            self._free -= 1
            return True
        if self.available_memory < size:
            return False
        # Kafka's freeUp: release pooled buffers until the non-pooled memory covers the request.
        while self._non_pooled < size and self._free:
            self._free -= 1
            self._non_pooled += self.poolable_size
        self._non_pooled -= size
        return True

    def deallocate(self, size: int) -> None:
        """Return a batch's buffer; a waiting `send()` is told at once."""
        if size <= 0:
            return
        if size == self.poolable_size:
            self._free += 1
        else:
            self._non_pooled += size
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                waiter()

    def wait_for_memory(self, waiter: Callable[[], object]) -> None:
        """Call `waiter` once, the next time a buffer comes back."""
        self._waiters.append(waiter)
