"""Record batches, magic v2 (Kafka's `DefaultRecordBatch`), with CRC32C and gzip.

kio ships a record-batch reader and writer too, but it rounds record timestamps to whole seconds
and knows no compression, so batches are read and written here: the layout is Kafka's, the
checksum is CRC32C from the `crc32c` package, gzip is the standard library's. Snappy, LZ4 and
zstd batches are refused with UNSUPPORTED_COMPRESSION_TYPE (no codec package is installed).
"""

from __future__ import annotations

import gzip
import io
import struct
from dataclasses import dataclass, field
from typing import Any

import crc32c

MAGIC = 2
COMPRESSION_MASK = 0x07
TRANSACTIONAL_FLAG = 0x10
CONTROL_FLAG = 0x20
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
# baseOffset int64, batchLength int32: before the part batchLength counts.
_PREFIX = struct.Struct(">qi")
# partitionLeaderEpoch, magic, crc, attributes, lastOffsetDelta, baseTimestamp, maxTimestamp,
# producerId, producerEpoch, baseSequence, recordCount
_HEADER = struct.Struct(">ibIhiqqqhii")
_AFTER_CRC = 17  # bytes of the prefix and header before the CRC-covered part begins
MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024


class BatchError(Exception):
    """A batch the broker refuses; `error` is Kafka's protocol error name."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


@dataclass(slots=True)
class DecodedBatch:
    producer_id: int
    producer_epoch: int
    base_sequence: int
    is_transactional: bool
    is_control: bool
    compression: str
    records: list[dict[str, Any]] = field(default_factory=list)

    def engine_batch(self) -> dict[str, Any]:
        """The batch as the engine's remote-client vocabulary has it (JSON-safe, bytes aside)."""
        return {
            "producer_id": self.producer_id,
            "producer_epoch": self.producer_epoch,
            "base_sequence": self.base_sequence,
            "is_transactional": self.is_transactional,
            "records": self.records,
        }


# --- varints ---------------------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    result = 0
    while True:
        if pos >= len(data):
            raise BatchError("CORRUPT_MESSAGE", "a varint runs past the end of the record")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise BatchError("CORRUPT_MESSAGE", "a varint is longer than 10 bytes")
    return (result >> 1) ^ -(result & 1), pos


def _write_varint(out: bytearray, value: int) -> None:
    zigzag = (value << 1) ^ (value >> 63)
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _read_bytes(data: bytes, pos: int) -> tuple[bytes | None, int]:
    length, pos = _read_varint(data, pos)
    if length < 0:
        return None, pos
    if pos + length > len(data):
        raise BatchError("CORRUPT_MESSAGE", "a record field runs past the end of the record")
    return bytes(data[pos : pos + length]), pos + length


def _write_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        _write_varint(out, -1)
        return
    _write_varint(out, len(value))
    out += value


# --- reading (Produce) -----------------------------------------------------------------------


def decode_batches(data: bytes | None) -> list[DecodedBatch]:
    """Every batch in a Produce request's `records` field, checked as a leader checks them."""
    if not data:
        raise BatchError("INVALID_RECORD", "the produce request carries no record batch")
    batches = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < _PREFIX.size + _HEADER.size:
            raise BatchError("CORRUPT_MESSAGE", "a record batch is cut short")
        _, length = _PREFIX.unpack_from(data, pos)
        end = pos + _PREFIX.size + length
        if length < _HEADER.size or end > len(data):
            raise BatchError("CORRUPT_MESSAGE", "a record batch's length is wrong")
        batches.append(_decode_batch(data[pos:end]))
        pos = end
    return batches


def _decode_batch(data: bytes) -> DecodedBatch:
    (
        _epoch,
        magic,
        crc,
        attributes,
        _last_delta,
        base_timestamp,
        _max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        count,
    ) = _HEADER.unpack_from(data, _PREFIX.size)
    if magic != MAGIC:
        raise BatchError("UNSUPPORTED_FOR_MESSAGE_FORMAT", f"record batch magic {magic}, not 2")
    if crc32c.crc32c(data[_AFTER_CRC + 4 :]) != crc:
        raise BatchError("CORRUPT_MESSAGE", "the record batch's CRC32C does not match")
    codec = CODECS.get(attributes & COMPRESSION_MASK)
    body = data[_PREFIX.size + _HEADER.size :]
    if codec == "gzip":
        try:
            body = _gunzip(body)
        except (OSError, EOFError, ValueError) as error:
            message = f"the gzip data does not decompress: {error}"
            raise BatchError("CORRUPT_MESSAGE", message) from error
    elif codec != "none":
        raise BatchError(
            "UNSUPPORTED_COMPRESSION_TYPE",
            f"{codec or 'an unknown codec'} compression is not supported by this listener",
        )
    if count < 0 or count > len(body):
        raise BatchError("CORRUPT_MESSAGE", f"a record batch claims {count} records")
    records = []
    pos = 0
    for _ in range(count):
        record, pos = _decode_record(body, pos, base_timestamp)
        records.append(record)
    if pos != len(body):
        raise BatchError("CORRUPT_MESSAGE", "bytes are left over after the last record")
    return DecodedBatch(
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        is_transactional=bool(attributes & TRANSACTIONAL_FLAG),
        is_control=bool(attributes & CONTROL_FLAG),
        compression=codec,
        records=records,
    )


def _gunzip(body: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
        out = stream.read(MAX_DECOMPRESSED_BYTES + 1)
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise ValueError("more than 16 MiB once decompressed")
    return out


def _decode_record(body: bytes, pos: int, base_timestamp: int) -> tuple[dict[str, Any], int]:
    length, pos = _read_varint(body, pos)
    end = pos + length
    if length < 1 or end > len(body):
        raise BatchError("CORRUPT_MESSAGE", "a record's length is wrong")
    pos += 1  # attributes, unused in v2
    timestamp_delta, pos = _read_varint(body, pos)
    _offset_delta, pos = _read_varint(body, pos)
    key, pos = _read_bytes(body, pos)
    value, pos = _read_bytes(body, pos)
    header_count, pos = _read_varint(body, pos)
    if header_count < 0 or header_count > length:
        raise BatchError("CORRUPT_MESSAGE", "a record claims a wrong number of headers")
    headers = []
    for _ in range(header_count):
        header_key, pos = _read_bytes(body, pos)
        header_value, pos = _read_bytes(body, pos)
        if header_key is None:
            raise BatchError("CORRUPT_MESSAGE", "a record header has no key")
        headers.append([header_key.decode("utf-8", "replace"), header_value])
    if pos != end:
        raise BatchError("CORRUPT_MESSAGE", "a record's fields do not add up to its length")
    return {
        "timestamp": base_timestamp + timestamp_delta,
        "key": key,
        "value": value,
        "headers": headers,
    }, end


# --- writing (Fetch) -------------------------------------------------------------------------


def encode_batch(batch: dict[str, Any]) -> bytes:
    """One stored batch (the engine's view of it) as Kafka writes it to a fetch response."""
    records = batch["records"]
    base_offset = int(batch["base_offset"])
    base_timestamp = int(records[0]["timestamp"]) if records else -1
    body = bytearray()
    for record in records:
        inner = bytearray(b"\x00")
        _write_varint(inner, int(record["timestamp"]) - base_timestamp)
        _write_varint(inner, int(record["offset"]) - base_offset)
        _write_bytes(inner, record["key"])
        _write_bytes(inner, record["value"])
        _write_varint(inner, len(record["headers"]))
        for header_key, header_value in record["headers"]:
            _write_bytes(inner, str(header_key).encode())
            _write_bytes(inner, header_value)
        _write_varint(body, len(inner))
        body += inner
    attributes = 0
    if batch.get("is_transactional"):
        attributes |= TRANSACTIONAL_FLAG
    if batch.get("is_control"):
        attributes |= CONTROL_FLAG
    last_delta = int(records[-1]["offset"]) - base_offset if records else 0
    max_timestamp = max((int(r["timestamp"]) for r in records), default=-1)
    header_after_crc = struct.pack(
        ">hiqqqhii",
        attributes,
        last_delta,
        base_timestamp,
        max(max_timestamp, int(batch.get("max_timestamp", -1))),
        int(batch.get("producer_id", -1)),
        int(batch.get("producer_epoch", -1)),
        int(batch.get("base_sequence", -1)),
        len(records),
    )
    covered = header_after_crc + bytes(body)
    crc = crc32c.crc32c(covered)
    length = 4 + 1 + 4 + len(covered)  # leader epoch, magic, crc, then the covered part
    return (
        _PREFIX.pack(base_offset, length)
        + struct.pack(">ibI", int(batch.get("leader_epoch", -1)), MAGIC, crc)
        + covered
    )


def control_record(control_type: str | None, offset: int, timestamp: int) -> dict[str, Any]:
    """A transaction marker's record: key (version 0, type), value (version 0, epoch 0)."""
    kind = 1 if control_type == "COMMIT" else 0
    return {
        "offset": offset,
        "timestamp": timestamp,
        "key": struct.pack(">hh", 0, kind),
        "value": struct.pack(">hi", 0, 0),
        "headers": [],
    }
