"""The wire codec: Kafka request and response frames through `kio`, behind one small adapter.

kio's entities are generated from Kafka's JSON message schemas, one frozen dataclass per API
version. This module frames and unframes them (a 4-byte size, the request header v1 or v2, the
body), and builds a response entity of any version from a plain nested dict: fields this
version lacks are dropped, fields it has but the dict does not name keep the schema's default.
Nothing else in the listener imports kio's serializers, so switching codec library is one file.
"""

from __future__ import annotations

import datetime
import enum
import functools
import io
import struct
import types
import typing
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.serial import entity_reader, entity_writer

MAX_FRAME_BYTES = 8 * 1024 * 1024


class FrameError(Exception):
    """A frame this listener cannot read: the connection that sent it is closed."""


@dataclass(frozen=True, slots=True)
class Header:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


@dataclass(frozen=True, slots=True)
class Request:
    header: Header
    body: Any  # a kio request entity


def peek_header(frame: bytes) -> Header:
    """API key, version and correlation id: the fixed first 8 bytes of every request header
    (read before the body, so an unsupported version can still be answered)."""
    if len(frame) < 10:
        raise FrameError(f"a {len(frame)}-byte frame is shorter than any request header")
    api_key, version, correlation = struct.unpack_from(">hhi", frame, 0)
    (length,) = struct.unpack_from(">h", frame, 8)
    client_id = None
    if length >= 0:
        if 10 + length > len(frame):
            raise FrameError("the client id runs past the end of the frame")
        client_id = frame[10 : 10 + length].decode("utf-8", "replace")
    return Header(api_key, version, correlation, client_id)


def decode_request(frame: bytes) -> Request:
    """The header and the body of one request frame (without its size prefix)."""
    header = peek_header(frame)
    try:
        schema = load_request_schema(header.api_key, header.api_version)
    except Exception as error:
        raise FrameError(
            f"no schema for API key {header.api_key} version {header.api_version}"
        ) from error
    header_schema = RequestHeaderV2 if schema.__flexible__ else RequestHeaderV1
    try:
        _, offset = entity_reader(header_schema)(frame, 0)
        body, used = entity_reader(schema)(frame, offset)
    except Exception as error:
        if not schema.__flexible__:
            raise FrameError(f"{schema.__name__} v{header.api_version}: {error}") from error
        # kio's reader refuses tagged fields its schema does not name; Kafka skips them
        # (KIP-482: a newer client may add tagged fields to an existing version). Strip them
        # and read again.
        try:
            frame = strip_unknown_tags(schema, frame)
            _, offset = entity_reader(header_schema)(frame, 0)
            body, used = entity_reader(schema)(frame, offset)
        except Exception as again:
            raise FrameError(f"{schema.__name__} v{header.api_version}: {again}") from error
    if offset + used != len(frame):
        raise FrameError(
            f"{schema.__name__} v{header.api_version}: {len(frame) - offset - used} bytes "
            "left over after the request body"
        )
    return Request(header, body)


# --- unknown tagged fields ---------------------------------------------------------------------

_FIXED = {"bool": 1, "int8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8}
_FIXED.update({"float64": 8, "uuid": 16})
_VARIABLE = frozenset({"string", "bytes", "records"})


def strip_unknown_tags(schema: type[Any], frame: bytes) -> bytes:
    """`frame` (a flexible request, header v2) without the tagged fields its schema does not
    know: the header's tagged fields (v2 names none) and every struct's unknown tags go."""
    (length,) = struct.unpack_from(">h", frame, 8)
    pos = 10 + max(length, 0)
    out = bytearray(frame[:pos])
    pos = _copy_tags(frame, pos, out, {})
    end = _copy_entity(schema, frame, pos, out)
    if end != len(frame):
        raise FrameError(f"{len(frame) - end} bytes left over after the request body")
    return bytes(out)


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise FrameError("a varint runs past the end of the frame")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise FrameError("a varint longer than 5 bytes")


def _put_uvarint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


@functools.cache
def _layout(cls: type[Any]) -> tuple[list[Any], dict[int, Any]]:
    from kio.serial._introspect import classify_field, get_field_tag, is_optional

    plain_fields: list[Any] = []
    tagged: dict[int, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        kind = classify_field(f)
        hint = hints[f.name]
        entry = (f.metadata.get("kafka_type"), kind, is_optional(f) or _nullable_struct(hint))
        tag = get_field_tag(f)
        if tag is None:
            plain_fields.append(entry)
        else:
            tagged[int(tag)] = entry
    return plain_fields, tagged


def _nullable_struct(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in (
        typing.get_args(hint)
    )


def _copy_entity(cls: type[Any], data: bytes, pos: int, out: bytearray) -> int:
    plain_fields, tagged = _layout(cls)
    for kafka_type, kind, optional in plain_fields:
        pos = _copy_field(kafka_type, kind, optional, data, pos, out)
    return _copy_tags(data, pos, out, tagged)


def _copy_field(
    kafka_type: str | None, kind: Any, optional: bool, data: bytes, pos: int, out: bytearray
) -> int:
    if kind.is_array:
        count, after = _uvarint(data, pos)
        out += data[pos:after]
        pos = after
        for _ in range(max(count - 1, 0)):
            pos = _copy_one(kafka_type, kind, False, data, pos, out)
        return pos
    return _copy_one(kafka_type, kind, optional, data, pos, out)


def _copy_one(
    kafka_type: str | None, kind: Any, optional: bool, data: bytes, pos: int, out: bytearray
) -> int:
    if is_dataclass(kind.type_):
        if optional:  # a nullable struct: an int8 marker, -1 for null
            marker = data[pos : pos + 1]
            out += marker
            pos += 1
            if marker == b"\xff":
                return pos
        return _copy_entity(kind.type_, data, pos, out)
    if kafka_type in _FIXED:
        end = pos + _FIXED[kafka_type]
    elif kafka_type in _VARIABLE:
        size, start = _uvarint(data, pos)
        end = start + max(size - 1, 0)
    else:
        raise FrameError(f"no reader for a field of type {kafka_type!r}")
    if end > len(data):
        raise FrameError("a field runs past the end of the frame")
    out += data[pos:end]
    return end


def _copy_tags(data: bytes, pos: int, out: bytearray, known: dict[int, Any]) -> int:
    count, pos = _uvarint(data, pos)
    kept: list[tuple[int, bytes]] = []
    previous = -1
    for _ in range(count):
        tag, pos = _uvarint(data, pos)
        size, pos = _uvarint(data, pos)
        if tag <= previous:
            raise FrameError("tagged fields out of order")
        previous = tag
        payload = data[pos : pos + size]
        if len(payload) != size:
            raise FrameError("a tagged field runs past the end of the frame")
        pos += size
        if tag in known:
            kafka_type, kind, optional = known[tag]
            inner = bytearray()
            used = _copy_field(kafka_type, kind, optional, payload, 0, inner)
            if used != size:
                raise FrameError(f"tagged field {tag} holds {size - used} bytes too many")
            kept.append((tag, bytes(inner)))
    _put_uvarint(out, len(kept))
    for tag, payload in kept:
        _put_uvarint(out, tag)
        _put_uvarint(out, len(payload))
        out += payload
    return pos


def response_class(api_key: int, version: int) -> type[Any]:
    return load_response_schema(api_key, version)


def encode_response(api_key: int, version: int, correlation_id: int, body: dict[str, Any]) -> bytes:
    """A framed response (size prefix included) of `api_key`/`version` built from `body`."""
    cls = response_class(api_key, version)
    entity = build(cls, body)
    out = io.BytesIO()
    out.write(struct.pack(">i", correlation_id))
    # ApiVersions answers always use response header v0 (no tagged fields), so a client that
    # sent a version the broker does not know can still read the answer (KIP-511).
    if cls.__flexible__ and api_key != 18:
        out.write(b"\x00")  # response header v1: an empty tagged-field section
    entity_writer(cls)(out, entity)
    payload = out.getvalue()
    return struct.pack(">i", len(payload)) + payload


def encode_request(header: Header, body: Any) -> bytes:
    """A framed request: used by tests to send well-formed and deliberately broken frames."""
    schema = type(body)
    header_schema = RequestHeaderV2 if schema.__flexible__ else RequestHeaderV1
    out = io.BytesIO()
    entity_writer(header_schema)(
        out,
        header_schema(
            request_api_key=header.api_key,
            request_api_version=header.api_version,
            correlation_id=header.correlation_id,
            client_id=header.client_id,
        ),
    )
    entity_writer(schema)(out, body)
    payload = out.getvalue()
    return struct.pack(">i", len(payload)) + payload


# --- building entities from plain dicts ------------------------------------------------------


@functools.cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(hint: Any) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            return others[0]
    return hint


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    hint = _strip_optional(hint)
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        return tuple(_convert(item, v) for v in value)
    if isinstance(hint, type):
        if is_dataclass(hint):
            return value if isinstance(value, hint) else build(hint, value)
        if issubclass(hint, ErrorCode):
            return value if isinstance(value, ErrorCode) else ErrorCode(int(value))
        if issubclass(hint, enum.Enum):
            return hint(value)
        if issubclass(hint, datetime.timedelta):
            return value if isinstance(value, datetime.timedelta) else _timedelta(value)
        if issubclass(hint, bool):
            return bool(value)
        if issubclass(hint, int) and not isinstance(value, int):
            return int(value)
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:
        return _convert(supertype, value)
    return value


def _timedelta(ms: Any) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=int(ms))


def build(cls: type[Any], data: dict[str, Any]) -> Any:
    """An entity of `cls` from `data`; keys `cls` does not have are ignored."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name])
        elif f.default is MISSING and f.default_factory is MISSING:
            kwargs[f.name] = _zero(hints[f.name])
    return cls(**kwargs)


def _zero(hint: Any) -> Any:
    """The value a field takes when the response builder did not name it (and the schema has
    no default): empty, zero, or null as the field's type allows."""
    if type(None) in typing.get_args(hint):
        return None
    hint = _strip_optional(hint)
    if typing.get_origin(hint) is tuple:
        return ()
    if isinstance(hint, type):
        if issubclass(hint, ErrorCode):
            return ErrorCode.none
        if issubclass(hint, datetime.timedelta):
            return datetime.timedelta(0)
        if issubclass(hint, bool):
            return False
        if issubclass(hint, int):
            return hint(0)
        if issubclass(hint, str):
            return hint("")
        if issubclass(hint, bytes):
            return b""
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:
        return _zero(supertype)
    raise TypeError(f"no zero value for {hint!r}")


def plain(entity: Any) -> Any:
    """A kio entity as nested dicts and lists (for logs and tests)."""
    if is_dataclass(entity) and not isinstance(entity, type):
        return {f.name: plain(getattr(entity, f.name)) for f in fields(entity)}
    if isinstance(entity, tuple):
        return [plain(v) for v in entity]
    if isinstance(entity, ErrorCode):
        return int(entity.value)
    if isinstance(entity, datetime.timedelta):
        return int(entity.total_seconds() * 1000)
    return entity


def error_code(name: str) -> ErrorCode:
    """Kafka's protocol error for an engine error name ("" is no error)."""
    if not name:
        return ErrorCode.none
    member = ErrorCode.__members__.get(name.lower())
    if member is None:
        return ErrorCode.unknown_server_error
    return member
