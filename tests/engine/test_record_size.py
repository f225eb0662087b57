"""Record and batch sizes in Kafka's message format v2.

Varint cases are Kafka's `ByteUtilsTest` encodings; record sizes are counted by hand from the
format (KIP-98) and checked against a small writer of that format kept in this file.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.common.record_size import (
    MAX_RECORD_OVERHEAD,
    RECORD_BATCH_OVERHEAD,
    batch_size_in_bytes,
    estimate_size_in_bytes_upper_bound,
    record_size_in_bytes,
    utf8_length,
    varint_size,
    varlong_size,
)
from engine.common.records import Record

# --- an independent writer of the v2 format -----------------------------------------------


def _write_unsigned_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _write_varint(value: int) -> bytes:
    return _write_unsigned_varint(((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def _write_varlong(value: int) -> bytes:
    return _write_unsigned_varint(((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def _write_bytes(data: bytes | None) -> bytes:
    return _write_varint(-1) if data is None else _write_varint(len(data)) + data


def _write_record(
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
) -> bytes:
    body = bytes([0])  # attributes
    body += _write_varlong(timestamp_delta) + _write_varint(offset_delta)
    body += _write_bytes(key) + _write_bytes(value) + _write_varint(len(headers))
    for header_key, header_value in headers:
        body += _write_bytes(header_key.encode("utf-8")) + _write_bytes(header_value)
    return _write_varint(len(body)) + body


def _batch_header_size() -> int:
    # baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8, crc uint32,
    # attributes int16, lastOffsetDelta int32, baseTimestamp int64, maxTimestamp int64,
    # producerId int64, producerEpoch int16, baseSequence int32, records count int32.
    return 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4


# --- varints -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded_length"),
    [
        (0, 1), (-1, 1), (1, 1), (63, 1), (-64, 1),
        (64, 2), (-65, 2), (8191, 2), (-8192, 2),
        (8192, 3), (-8193, 3), (1048575, 3), (-1048576, 3),
        (1048576, 4), (-1048577, 4), (134217727, 4), (-134217728, 4),
        (134217728, 5), (-134217729, 5), (2**31 - 1, 5), (-(2**31), 5),
    ],
)  # fmt: skip
def test_varint_sizes_match_kafkas_byte_utils_encodings(value: int, encoded_length: int) -> None:
    assert varint_size(value) == encoded_length == len(_write_varint(value))


@pytest.mark.parametrize(
    ("value", "encoded_length"),
    [
        (0, 1), (-1, 1), (63, 1), (-64, 1), (64, 2), (8192, 3), (1048576, 4),
        (134217728, 5), (2**31 - 1, 5), (-(2**31), 5),
        (17179869183, 5), (-17179869184, 5), (17179869184, 6), (-17179869185, 6),
        (2199023255551, 6), (2199023255552, 7), (281474976710655, 7), (281474976710656, 8),
        (36028797018963967, 8), (36028797018963968, 9), (4611686018427387903, 9),
        (-4611686018427387904, 9), (4611686018427387904, 10), (-4611686018427387905, 10),
        (2**63 - 1, 10), (-(2**63), 10),
    ],
)  # fmt: skip
def test_varlong_sizes_match_kafkas_byte_utils_encodings(value: int, encoded_length: int) -> None:
    assert varlong_size(value) == encoded_length == len(_write_varlong(value))


def test_varints_refuse_values_outside_their_java_type() -> None:
    with pytest.raises(ValueError):
        varint_size(2**31)
    with pytest.raises(ValueError):
        varlong_size(-(2**63) - 1)


# --- records and batches -------------------------------------------------------------------


def test_a_record_with_a_one_byte_key_and_value_takes_nine_bytes() -> None:
    # length 1 + attributes 1 + timestamp delta 1 + offset delta 1 + key 1+1 + value 1+1
    # + header count 1: a body of 8 bytes behind a one-byte length.
    assert record_size_in_bytes(0, 0, b"k", b"v", []) == 9


def test_a_null_key_and_a_null_value_take_one_byte_each() -> None:
    assert record_size_in_bytes(0, 0, None, None, []) == 7
    assert record_size_in_bytes(0, 0, b"", b"", []) == 7


def test_deltas_grow_with_the_record_position_and_age_in_the_batch() -> None:
    base = record_size_in_bytes(0, 0, b"k", b"v", [])
    assert record_size_in_bytes(64, 0, b"k", b"v", []) == base + 1
    assert record_size_in_bytes(0, 30_000, b"k", b"v", []) == base + 2


def test_headers_count_their_utf8_key_and_their_value() -> None:
    plain = record_size_in_bytes(0, 0, b"k", b"v", [])
    assert record_size_in_bytes(0, 0, b"k", b"v", [("trace", b"abc")]) == plain + 1 + 5 + 1 + 3
    assert record_size_in_bytes(0, 0, b"k", b"v", [("é", None)]) == plain + 1 + 2 + 1


def test_sixty_four_headers_need_a_two_byte_count() -> None:
    headers: list[tuple[str, bytes | None]] = [("h", None)] * 64
    per_header = 1 + 1 + 1  # key length, "h", null value
    body = 5 + 2 + 64 * per_header  # fixed fields and nulls, count 64 (zig-zag 128), headers
    assert record_size_in_bytes(0, 0, None, None, headers) == 2 + body  # 199 needs two bytes


def test_a_large_value_needs_a_wider_length_prefix() -> None:
    value = b"x" * 1_000_000
    # value length 1_000_000 needs a 3-byte varint; the record body then needs a 3-byte length.
    assert record_size_in_bytes(0, 0, None, value, []) == 3 + 1 + 1 + 1 + 1 + 3 + 1_000_000 + 1


def test_batch_size_of_kafkas_default_record_batch_test_records() -> None:
    # Kafka's DefaultRecordBatchTest.testSizeInBytes, counted by hand:
    # 15 + 14 (timestamp delta 30000: 3 bytes) + 12 + 32 (two headers) behind a 61-byte header.
    ts = 1_700_000_000_000
    headers: tuple[tuple[str, bytes | None], ...] = (("foo", b"value"), ("bar", None))
    records = [
        Record(0, ts, b"key", b"value"),
        Record(1, ts + 30_000, None, b"value"),
        Record(2, ts + 60_000, b"key", None),
        Record(3, ts + 60_000, b"key", b"value", headers),
    ]
    assert batch_size_in_bytes(records) == 61 + 15 + 14 + 12 + 32 == 134


def test_a_batch_of_one_small_record_is_seventy_bytes() -> None:
    assert RECORD_BATCH_OVERHEAD == _batch_header_size() == 61
    assert batch_size_in_bytes([Record(500, 123, b"k", b"v")]) == 70


def test_batch_deltas_start_at_its_base_offset() -> None:
    records = [Record(10, 0, b"k", b"v"), Record(11, 0, b"k", b"v")]
    assert batch_size_in_bytes(records) == 61 + 9 + 9
    assert batch_size_in_bytes(records, base_offset=0) == 61 + 9 + 9
    assert batch_size_in_bytes(records, base_offset=-100) == 61 + 10 + 10


def test_an_empty_batch_has_no_size() -> None:
    assert batch_size_in_bytes([]) == 0


def test_the_producers_upper_bound_counts_fixed_fields_at_their_widest() -> None:
    # 61 batch header + 21 widest fixed record fields + key 1+1 + value 1+1 + header count 1
    assert MAX_RECORD_OVERHEAD == 21
    assert estimate_size_in_bytes_upper_bound(b"k", b"v") == 87
    assert (
        estimate_size_in_bytes_upper_bound(None, None, [("h", b"12")])
        == 61 + 21 + 1 + 1 + 1 + 2 + 3
    )


def test_utf8_length_counts_bytes_not_characters() -> None:
    assert [utf8_length(s) for s in ("abc", "é", "日本", "🎉")] == [3, 2, 6, 4]


_headers = st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=20)), max_size=4)


@given(
    offset_delta=st.integers(min_value=0, max_value=2**31 - 1),
    timestamp_delta=st.integers(min_value=-(2**40), max_value=2**40),
    key=st.none() | st.binary(max_size=300),
    value=st.none() | st.binary(max_size=300),
    headers=_headers,
)
def test_record_size_equals_the_length_of_the_encoded_record(
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
) -> None:
    encoded = _write_record(offset_delta, timestamp_delta, key, value, headers)
    assert record_size_in_bytes(offset_delta, timestamp_delta, key, value, headers) == len(encoded)


@given(
    key=st.none() | st.binary(max_size=300),
    value=st.none() | st.binary(max_size=300),
    headers=_headers,
)
def test_the_upper_bound_is_never_below_a_one_record_batch(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]]
) -> None:
    batch = batch_size_in_bytes([Record(0, 0, key, value, tuple(headers))])
    assert batch <= estimate_size_in_bytes_upper_bound(key, value, headers)
