"""Kafka's byte sizes of records and record batches (message format v2, no compression).

Mirrors `DefaultRecord.sizeInBytes`, `DefaultRecordBatch.sizeInBytes` and
`AbstractRecords.estimateSizeInBytesUpperBound`, so that `segment.bytes`, `batch.size`,
`max.request.size` and `message.max.bytes` count the bytes a real cluster would.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.common.records import Record

# Batch header: base offset, length, leader epoch, magic, CRC, attributes, last offset delta,
# base timestamp, max timestamp, producer id, producer epoch, base sequence, record count.
RECORD_BATCH_OVERHEAD = 61
# A record's fixed fields at their widest: length (5), attributes (1), timestamp delta (10),
# offset delta (5) (`DefaultRecord.MAX_RECORD_OVERHEAD`).
MAX_RECORD_OVERHEAD = 21
# A null key, value or header value is written as the varint -1: one byte.
_NULL_VARINT_SIZE_BYTES = 1

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

Headers = Sequence[tuple[str, bytes | None]]


def _unsigned_varint_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def varint_size(value: int) -> int:
    """Bytes of a zig-zag encoded 32-bit varint (`ByteUtils.sizeOfVarint`)."""
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise ValueError(f"{value} does not fit in a 32-bit varint")
    return _unsigned_varint_size(((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def varlong_size(value: int) -> int:
    """Bytes of a zig-zag encoded 64-bit varlong (`ByteUtils.sizeOfVarlong`)."""
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"{value} does not fit in a 64-bit varlong")
    return _unsigned_varint_size(((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def utf8_length(text: str) -> int:
    """Bytes of `text` in UTF-8, as Kafka counts a header key (`Utils.utf8Length`)."""
    return len(text.encode("utf-8", "surrogatepass"))


def _size_of_key_value_headers(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    size = 0
    for data in (key, value):
        if data is None:
            size += _NULL_VARINT_SIZE_BYTES
        else:
            size += varint_size(len(data)) + len(data)
    size += varint_size(len(headers))
    for header_key, header_value in headers:
        header_key_size = utf8_length(header_key)
        size += varint_size(header_key_size) + header_key_size
        if header_value is None:
            size += _NULL_VARINT_SIZE_BYTES
        else:
            size += varint_size(len(header_value)) + len(header_value)
    return size


def record_size_in_bytes(
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers = (),
) -> int:
    """One record's bytes inside a batch, its leading length varint included."""
    body = 1  # attributes: one byte, unused in v2
    body += varint_size(offset_delta)
    body += varlong_size(timestamp_delta)
    body += _size_of_key_value_headers(key, value, headers)
    return body + varint_size(body)


def batch_size_in_bytes(records: Sequence[Record], base_offset: int | None = None) -> int:
    """A batch's bytes: header plus records, deltas taken from the first record (0 if empty).

    `base_offset` defaults to the first record's offset, as when a producer builds the batch.
    """
    if not records:
        return 0
    first = records[0]
    base = first.offset if base_offset is None else base_offset
    size = RECORD_BATCH_OVERHEAD
    for record in records:
        size += record_size_in_bytes(
            record.offset - base,
            record.timestamp - first.timestamp,
            record.key,
            record.value,
            record.headers,
        )
    return size


def estimate_size_in_bytes_upper_bound(
    key: bytes | None, value: bytes | None, headers: Headers = ()
) -> int:
    """The most bytes a batch holding just this record can take.

    What `KafkaProducer` checks against `max.request.size` (and `buffer.memory`) before it
    accepts a record, failing with RecordTooLargeError when it is larger.
    """
    return (
        RECORD_BATCH_OVERHEAD
        + MAX_RECORD_OVERHEAD
        + _size_of_key_value_headers(key, value, headers)
    )
