"""The producer's partitioners: murmur2 for keys, the uniform sticky partitioner without keys.

Hash values come from Kafka's `UtilsTest.testMurmur2` and from Kafka's own `Utils.murmur2`
run on the other inputs; the sticky cases translate Kafka's `BuiltInPartitionerTest`.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.partitioner import (
    BuiltInPartitioner,
    legacy_round_robin_partition,
    murmur2,
    partition_for_key,
)


class SequentialRandom(random.Random):
    """Draws 0, 1, 2, ... like the `SequentialPartitioner` of Kafka's BuiltInPartitionerTest."""

    def __init__(self) -> None:
        super().__init__(0)
        self.next_value = 0

    def getrandbits(self, k: int, /) -> int:
        value = self.next_value
        self.next_value += 1
        return value


# --- murmur2 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_kafkas_utils_test_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@pytest.mark.parametrize(
    ("hex_data", "expected"),
    [
        ("", 275646681),
        ("61", -1563381124),
        ("6162", 316155434),
        ("61626364", -1323649548),
        ("6162636465", 461995741),
        ("6b6579", -1079937367),
        ("6f72646572732d3432", 479277457),
        ("757365722d31", 1404122828),
        ("757365722d32", -324981792),
        ("c3a974c3a9", -2101193575),
        ("e697a5e69cace8aa9e", 1431860170),
        ("ff", -311467685),
        ("ff80", -442788720),
        ("ff807f", 968261134),
        ("ff807f00", -1059522114),
        ("ff807f00fe", -1958495739),
        ("ff807f00fe81", 2053657883),
        ("ff807f00fe81c3", 605892741),
    ],
)
def test_murmur2_matches_kafka_on_every_tail_length_and_on_bytes_above_0x7f(
    hex_data: str, expected: int
) -> None:
    assert murmur2(bytes.fromhex(hex_data)) == expected


def test_murmur2_returns_a_signed_32_bit_int() -> None:
    values = [murmur2(bytes([i]) * i) for i in range(64)]
    assert all(-(2**31) <= value < 2**31 for value in values)
    assert any(value < 0 for value in values)


# --- keyed records ---------------------------------------------------------------------------


def test_a_key_goes_to_murmur2_with_the_sign_bit_cleared_modulo_the_partition_count() -> None:
    # murmur2(b"21") = -973932308; clearing the sign bit (not abs) gives 1173551340.
    assert partition_for_key(b"21", 3) == 1173551340 % 3 == 0
    assert partition_for_key(b"21", 7) == 1173551340 % 7 == 3
    assert abs(-973932308) % 3 == 2  # what abs() would have picked instead
    assert partition_for_key(b"foobar", 6) == (-790332482 & 0x7FFFFFFF) % 6


def test_a_key_with_a_positive_hash_keeps_it_modulo_the_partition_count() -> None:
    assert partition_for_key(b"abc", 10) == 479470107 % 10


def test_the_same_key_lands_on_another_partition_when_partitions_are_added() -> None:
    assert partition_for_key(b"user-1", 3) != partition_for_key(b"user-1", 4)


def test_partition_for_key_refuses_a_topic_without_partitions() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        partition_for_key(b"k", 0)


@given(key=st.binary(max_size=64), num_partitions=st.integers(min_value=1, max_value=10_000))
def test_partition_for_key_is_in_range_and_deterministic(key: bytes, num_partitions: int) -> None:
    partition = partition_for_key(key, num_partitions)
    assert 0 <= partition < num_partitions
    assert partition == partition_for_key(key, num_partitions)
    assert partition == (murmur2(key) & 0x7FFFFFFF) % num_partitions


# --- the uniform sticky partitioner (KIP-794) --------------------------------------------------


def test_sticky_partition_holds_until_batch_size_bytes_then_switches() -> None:
    partitioner = BuiltInPartitioner("topicA", 3, SequentialRandom())
    first = partitioner.peek_current_partition(3, [0, 1, 2])
    partitioner.update_partition_info(1, 3, [0, 1, 2])
    assert partitioner.peek_current_partition(3, [0, 1, 2]) == first
    partitioner.update_partition_info(1, 3, [0, 1, 2])
    assert partitioner.peek_current_partition(3, [0, 1, 2]) == first
    partitioner.update_partition_info(1, 3, [0, 1, 2])
    assert partitioner.peek_current_partition(3, [0, 1, 2]) != first


def test_switching_works_with_a_single_partition() -> None:
    partitioner = BuiltInPartitioner("topicB", 1, SequentialRandom())
    for _ in range(10):
        assert partitioner.peek_current_partition(1, [0]) == 0
        partitioner.update_partition_info(1, 1, [0])


def test_sticky_partition_never_switches_before_batch_size_bytes() -> None:
    partitioner = BuiltInPartitioner("orders", 16384, random.Random(7))
    first = partitioner.peek_current_partition(6, range(6))
    for _ in range(16383):
        partitioner.update_partition_info(1, 6, range(6), enable_switch=True)
        assert partitioner.current_partition == first
    assert partitioner.produced_bytes == 16383


def test_switch_waits_for_a_full_batch_but_not_beyond_twice_batch_size() -> None:
    partitioner = BuiltInPartitioner("orders", 100, random.Random(1))
    partitioner.peek_current_partition(1, [0])
    partitioner.update_partition_info(150, 1, [0], enable_switch=False)
    assert partitioner.produced_bytes == 150
    partitioner.update_partition_info(49, 1, [0], enable_switch=False)
    assert partitioner.produced_bytes == 199
    partitioner.update_partition_info(1, 1, [0], enable_switch=False)
    assert partitioner.produced_bytes == 0


def test_switch_happens_at_batch_size_once_the_batch_is_full() -> None:
    partitioner = BuiltInPartitioner("orders", 100, random.Random(1))
    partitioner.peek_current_partition(1, [0])
    partitioner.update_partition_info(99, 1, [0], enable_switch=True)
    assert partitioner.produced_bytes == 99
    partitioner.update_partition_info(1, 1, [0], enable_switch=True)
    assert partitioner.produced_bytes == 0


def test_only_partitions_with_a_leader_are_chosen() -> None:
    partitioner = BuiltInPartitioner("topicA", 1, random.Random(3))
    chosen = set()
    for _ in range(100):
        chosen.add(partitioner.peek_current_partition(3, [0, 2]))
        partitioner.update_partition_info(1, 3, [0, 2])
    assert chosen == {0, 2}


def test_the_only_available_partition_is_always_chosen() -> None:
    partitioner = BuiltInPartitioner("topicB", 1, random.Random(3))
    for _ in range(100):
        assert partitioner.peek_current_partition(2, [1]) == 1
        partitioner.update_partition_info(1, 2, [1])


def test_without_any_leader_a_partition_is_still_chosen_among_all() -> None:
    partitioner = BuiltInPartitioner("topicC", 1, random.Random(3))
    assert partitioner.peek_current_partition(1, []) == 0
    partitioner.update_partition_info(1, 1, [])
    assert partitioner.peek_current_partition(1, []) == 0
    spread = BuiltInPartitioner("topicD", 1, random.Random(3))
    chosen = set()
    for _ in range(200):
        chosen.add(spread.peek_current_partition(4, []))
        spread.update_partition_info(1, 4, [])
    assert chosen == {0, 1, 2, 3}


def test_an_update_before_any_peek_is_ignored() -> None:
    partitioner = BuiltInPartitioner("t", 1, random.Random(0))
    partitioner.update_partition_info(1000, 3, [0, 1, 2])
    assert partitioner.current_partition is None
    assert partitioner.produced_bytes == 0


def test_sticky_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        BuiltInPartitioner("topicA", 0, random.Random(0))
    BuiltInPartitioner("topicA", 1, random.Random(0))


def _sticky_sequence(rng: random.Random, records: int) -> list[int]:
    partitioner = BuiltInPartitioner("t", 100, rng)
    chosen = []
    for _ in range(records):
        chosen.append(partitioner.peek_current_partition(12, range(12)))
        partitioner.update_partition_info(60, 12, range(12))
    return chosen


def test_choices_come_only_from_the_given_rng() -> None:
    random.seed(1)
    first = _sticky_sequence(random.Random(42), 200)
    random.seed(2)
    second = _sticky_sequence(random.Random(42), 200)
    assert first == second
    assert len(set(first)) > 1


def test_adaptive_partitioning_picks_partitions_inversely_to_their_queue_sizes() -> None:
    queue_sizes = [5, 0, 3, 0, 1]
    partitioner = BuiltInPartitioner("topicA", 1, SequentialRandom())
    partitioner.update_partition_load_stats(queue_sizes, [0, 1, 2, 3, 4])
    range_end = partitioner.load_stats_range_end()
    assert range_end == sum(6 - size for size in queue_sizes)
    frequencies = [0] * 5
    for _ in range(range_end * 2):
        frequencies[partitioner.peek_current_partition(5, range(5))] += 1
        partitioner.update_partition_info(1, 5, range(5))
    assert frequencies == [(6 - size) * 2 for size in queue_sizes]


def test_equal_queue_sizes_turn_adaptive_partitioning_off() -> None:
    partitioner = BuiltInPartitioner("t", 1, random.Random(0))
    partitioner.update_partition_load_stats([2, 2, 2], [0, 1, 2])
    assert partitioner.load_stats_range_end() is None
    partitioner.update_partition_load_stats([2, 2, 2], [0, 1, 2], length=2)
    assert partitioner.load_stats_range_end() == 2
    partitioner.update_partition_load_stats([4], [0])
    assert partitioner.load_stats_range_end() is None
    partitioner.update_partition_load_stats(None, [])
    assert partitioner.load_stats_range_end() is None


# --- before Kafka 2.4 --------------------------------------------------------------------------


def test_before_kafka_2_4_records_without_key_went_round_robin() -> None:
    assert [legacy_round_robin_partition(n, 3) for n in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_legacy_round_robin_cycles_over_partitions_with_a_leader() -> None:
    assert [legacy_round_robin_partition(n, 4, [1, 3]) for n in range(4)] == [1, 3, 1, 3]


def test_legacy_counter_wraps_like_a_java_int() -> None:
    # Java's toPositive(-1) is 0x7fffffff, not 1.
    assert legacy_round_robin_partition(-1, 10) == 0x7FFFFFFF % 10
    assert legacy_round_robin_partition(2**32 + 5, 10) == 5
