"""Where a producer sends a record: murmur2 for keys, the uniform sticky partitioner otherwise.

Mirrors Kafka's `Utils.murmur2`, `BuiltInPartitioner` (KIP-794, Kafka 3.3+) and, for lessons,
the pre-2.4 round-robin of `DefaultPartitioner`. An explicit partition in `send()` wins over all
of these; that choice belongs to the producer.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from random import Random

_MASK_32 = 0xFFFFFFFF
_MURMUR2_SEED = 0x9747B28C
_MURMUR2_M = 0x5BD1E995
_MURMUR2_R = 24


def _to_signed_32(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


def _to_positive(value: int) -> int:
    """Kafka's `Utils.toPositive`: clear the sign bit of a 32-bit int (not `abs`)."""
    return value & 0x7FFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2`: a signed 32-bit hash, bit-exact with the Java client."""
    length = len(data)
    h = (_MURMUR2_SEED ^ length) & _MASK_32
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _MURMUR2_M) & _MASK_32
        k ^= k >> _MURMUR2_R
        k = (k * _MURMUR2_M) & _MASK_32
        h = (h * _MURMUR2_M) & _MASK_32
        h ^= k
    tail = length & ~3
    remaining = length % 4
    # Java's switch falls through from case 3 to case 1.
    if remaining == 3:
        h ^= data[tail + 2] << 16
    if remaining >= 2:
        h ^= data[tail + 1] << 8
    if remaining >= 1:
        h ^= data[tail]
        h = (h * _MURMUR2_M) & _MASK_32
    h ^= h >> 13
    h = (h * _MURMUR2_M) & _MASK_32
    h ^= h >> 15
    return _to_signed_32(h)


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """`BuiltInPartitioner.partitionForKey`: over all partitions, with a leader or not."""
    if num_partitions < 1:
        raise ValueError(f"num_partitions must be at least 1, got {num_partitions}")
    return _to_positive(murmur2(key)) % num_partitions


def legacy_round_robin_partition(
    counter: int, num_partitions: int, available_partitions: Sequence[int] = ()
) -> int:
    """How clients before Kafka 2.4 placed a record without a key: the next partition in turn.

    `counter` is the producer's per-topic counter (Kafka started it at a random int and added one
    per record); like `DefaultPartitioner` it cycles over partitions with a leader when any has one.
    """
    if num_partitions < 1:
        raise ValueError(f"num_partitions must be at least 1, got {num_partitions}")
    # Java's counter is an int that wraps, so only its low 31 bits count after toPositive.
    position = _to_positive(counter)
    if available_partitions:
        return available_partitions[position % len(available_partitions)]
    return position % num_partitions


class _PartitionLoadStats:
    """A cumulative frequency table: partitions with shorter queues are picked more often."""

    __slots__ = ("cumulative_frequencies", "partition_ids")

    def __init__(self, cumulative_frequencies: list[int], partition_ids: list[int]) -> None:
        self.cumulative_frequencies = cumulative_frequencies
        self.partition_ids = partition_ids


class BuiltInPartitioner:
    """Kafka 3.3+'s uniform sticky partitioner for records without a key (KIP-794).

    One instance per topic per producer. Records stick to one partition until at least
    `sticky_batch_size` (the producer's `batch.size`) bytes went to it, then a new partition is
    drawn at random among those with a leader. The producer calls `peek_current_partition` before
    appending a record and `update_partition_info` after, as `RecordAccumulator.append` does;
    before the append it also calls `update_partition_info(0, ..., enable_switch=True)` once
    every batch of the partition is full (`partitionChanged`), so the switch happens before a
    record would open a new batch there. The bytes counted are what each append grew the
    partition's batches by, a new batch's header included.
    """

    def __init__(self, topic: str, sticky_batch_size: int, rng: Random) -> None:
        if sticky_batch_size < 1:
            raise ValueError(f"sticky_batch_size must be >= 1 but got {sticky_batch_size}")
        self.topic = topic
        self.sticky_batch_size = sticky_batch_size
        self._rng = rng
        self._current_partition: int | None = None
        self._produced_bytes = 0
        self._load_stats: _PartitionLoadStats | None = None

    @property
    def current_partition(self) -> int | None:
        """The sticky partition, or None before the first record."""
        return self._current_partition

    @property
    def produced_bytes(self) -> int:
        """Bytes appended to the current sticky partition since it was chosen."""
        return self._produced_bytes

    def _random_partition(self) -> int:
        # Kafka: Utils.toPositive(ThreadLocalRandom.current().nextInt()), uniform over 31 bits.
        return self._rng.getrandbits(31)

    def _next_partition(self, num_partitions: int, available_partitions: Sequence[int]) -> int:
        random_value = self._random_partition()
        stats = self._load_stats
        if stats is None:
            if available_partitions:
                return available_partitions[random_value % len(available_partitions)]
            # No partition has a leader: pick among all, the batch waits for one to come back.
            return random_value % num_partitions
        weighted = random_value % stats.cumulative_frequencies[-1]
        # The first entry strictly greater than `weighted`, as Kafka's binarySearch + 1 finds.
        index = bisect.bisect_right(stats.cumulative_frequencies, weighted)
        return stats.partition_ids[index]

    def peek_current_partition(
        self, num_partitions: int, available_partitions: Sequence[int]
    ) -> int:
        """The sticky partition, chosen now if there is none yet (`peekCurrentPartitionInfo`)."""
        if self._current_partition is None:
            if num_partitions < 1:
                raise ValueError(f"num_partitions must be at least 1, got {num_partitions}")
            self._current_partition = self._next_partition(num_partitions, available_partitions)
            self._produced_bytes = 0
        return self._current_partition

    def update_partition_info(
        self,
        appended_bytes: int,
        num_partitions: int,
        available_partitions: Sequence[int],
        enable_switch: bool = True,
    ) -> None:
        """Count bytes appended to the sticky partition and switch when enough went to it.

        `enable_switch` is what `RecordAccumulator` passes: true only when the partition's last
        batch is full, so switching waits for a batch boundary, but never beyond twice the size.
        """
        if self._current_partition is None:
            return
        self._produced_bytes += appended_bytes
        enough = self._produced_bytes >= self.sticky_batch_size and enable_switch
        if enough or self._produced_bytes >= self.sticky_batch_size * 2:
            self._current_partition = self._next_partition(num_partitions, available_partitions)
            self._produced_bytes = 0

    def update_partition_load_stats(
        self,
        queue_sizes: Sequence[int] | None,
        partition_ids: Sequence[int],
        length: int | None = None,
    ) -> None:
        """Adaptive partitioning (`partitioner.adaptive.partitioning.enable`, on by default).

        `queue_sizes[i]` is the number of batches queued for partition `partition_ids[i]`, for
        partitions with a leader, as `RecordAccumulator.partitionReady` collects them; `length`
        (default: all) leaves out trailing entries for partitions that
        `partitioner.availability.timeout.ms` excluded. None turns weighting off.
        """
        if length is None:
            length = len(queue_sizes) if queue_sizes is not None else 0
        # Fewer than two partitions, or nothing to choose from: plain uniform choice.
        if queue_sizes is None or length < 1 or len(queue_sizes) < 2:
            self._load_stats = None
            return
        sizes = list(queue_sizes[:length])
        all_equal = all(size == sizes[0] for size in sizes)
        if all_equal and length == len(queue_sizes):
            self._load_stats = None
            return
        max_size_plus_one = max(sizes) + 1
        cumulative: list[int] = []
        running = 0
        for size in sizes:
            running += max_size_plus_one - size
            cumulative.append(running)
        self._load_stats = _PartitionLoadStats(cumulative, list(partition_ids[:length]))

    def load_stats_range_end(self) -> int | None:
        """The sum of all weights, or None without load stats (Kafka's test-only accessor)."""
        return None if self._load_stats is None else self._load_stats.cumulative_frequencies[-1]
