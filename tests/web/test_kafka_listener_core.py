"""The wire listener's Django-free core: record batches, ApiVersions, frames and limits."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import struct
from typing import Any

import pytest
from kio.schema.api_versions.v0.response import ApiVersionsResponse
from kio.serial import entity_reader

from webapp.kafka_listener import apis, codec
from webapp.kafka_listener import records as batches
from webapp.kafka_listener.server import ClusterListeners, ListenerLimits

STORED = {
    "base_offset": 40,
    "leader_epoch": 3,
    "producer_id": 1001,
    "producer_epoch": 0,
    "base_sequence": 7,
    "is_transactional": False,
    "max_timestamp": 1_700_000_000_123,
    "records": [
        {"offset": 40, "timestamp": 1_700_000_000_001, "key": b"k1", "value": b"v1", "headers": []},
        {
            "offset": 41,
            "timestamp": 1_700_000_000_123,
            "key": None,
            "value": b"v2",
            "headers": [["trace", b"abc"], ["empty", None]],
        },
    ],
}


def test_a_batch_written_for_fetch_reads_back_with_millisecond_timestamps_and_headers() -> None:
    raw = batches.encode_batch(STORED)
    [decoded] = batches.decode_batches(raw)
    assert (decoded.producer_id, decoded.producer_epoch, decoded.base_sequence) == (1001, 0, 7)
    assert decoded.records == [
        {k: r[k] for k in ("timestamp", "key", "value", "headers")} for r in STORED["records"]
    ]


def _with_body(raw: bytes, body: bytes, attributes: int) -> bytes:
    """The batch `raw` with its records section replaced and its CRC32C recomputed."""
    import crc32c

    header = bytearray(raw[: 17 + 4 + 40])
    struct.pack_into(">h", header, 21, attributes)
    covered = bytes(header[21:]) + body
    struct.pack_into(">i", header, 8, 4 + 1 + 4 + len(covered))
    struct.pack_into(">I", header, 17, crc32c.crc32c(covered))
    return bytes(header[:21]) + covered


def test_gzip_batches_are_read_and_other_codecs_refused_by_name() -> None:
    raw = batches.encode_batch(STORED)
    body = raw[61:]
    [decoded] = batches.decode_batches(_with_body(raw, gzip.compress(body), 1))
    assert [r["value"] for r in decoded.records] == [b"v1", b"v2"]
    for codec_id, name in ((2, "snappy"), (3, "lz4"), (4, "zstd")):
        with pytest.raises(batches.BatchError, match=name) as refused:
            batches.decode_batches(_with_body(raw, body, codec_id))
        assert refused.value.error == "UNSUPPORTED_COMPRESSION_TYPE"


def test_a_flipped_bit_fails_the_crc32c_check() -> None:
    raw = bytearray(batches.encode_batch(STORED))
    raw[-1] ^= 0x01
    with pytest.raises(batches.BatchError, match="CRC32C") as refused:
        batches.decode_batches(bytes(raw))
    assert refused.value.error == "CORRUPT_MESSAGE"


def test_api_versions_lists_the_advertised_ranges() -> None:
    frame = codec.encode_response(18, 0, 9, apis.api_versions_body("UNSUPPORTED_VERSION"))
    response, _ = entity_reader(ApiVersionsResponse)(frame, 8)
    ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert response.error_code.value == 35
    assert ranges[0] == (0, 11) and ranges[1] == (4, 12) and ranges[3] == (0, 12)
    assert ranges[22] == (0, 4) and ranges[8] == (2, 9) and ranges[9] == (1, 9)
    assert ranges[10] == (0, 4) and ranges[11] == (0, 8) and ranges[14] == (0, 5)
    assert ranges[18] == (0, 4) and ranges[2] == (1, 6)


class RecordingGateway:
    def __init__(self) -> None:
        self.requests: list[tuple[int, int, dict[str, Any]]] = []

    async def submit(self, connection: int, broker_id: int, request: dict[str, Any]) -> None:
        self.requests.append((connection, broker_id, request))


def _closed_without_answer(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        return sock.recv(16) == b""


@pytest.mark.asyncio
async def test_connections_over_the_cluster_limit_are_closed_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = RecordingGateway()
    listeners = ClusterListeners(
        gateway, cluster_id="limits", limits=ListenerLimits(max_connections=2)
    )
    await listeners.sync({1: True})
    port = listeners.ports[1]
    try:
        kept = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        for _ in range(50):
            if listeners.connection_count == 2:
                break
            await asyncio.sleep(0.02)
        with caplog.at_level(logging.WARNING):
            assert await asyncio.to_thread(_closed_without_answer, port)
        assert "at the limit of 2" in caplog.text
        assert listeners.connection_count == 2
        for sock in kept:
            sock.close()
        # Stopping the broker closes its socket; starting it reopens the same port.
        await listeners.sync({1: False})
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1)
        await listeners.sync({1: True})
        assert listeners.ports[1] == port
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        await listeners.close()
    assert gateway.requests == []


@pytest.mark.asyncio
async def test_requests_over_the_rate_wait_like_a_throttled_quota() -> None:
    from kio.schema.metadata.v8.request import MetadataRequest

    gateway = RecordingGateway()
    listeners = ClusterListeners(
        gateway, cluster_id="rate", limits=ListenerLimits(requests_per_second=20.0, burst=5)
    )
    await listeners.sync({1: True})
    body = MetadataRequest(
        topics=None,
        allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )
    frames = b"".join(
        codec.encode_request(codec.Header(3, 8, i, "rate-test"), body) for i in range(15)
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    with socket.create_connection(("127.0.0.1", listeners.ports[1])) as sock:
        sock.sendall(frames)
        while len(gateway.requests) < 15 and loop.time() - started < 5:
            await asyncio.sleep(0.01)
    elapsed = loop.time() - started
    await listeners.close()
    assert [r[2]["correlation_id"] for r in gateway.requests] == list(range(15))
    # 5 at once (the burst), the other 10 at 20 a second: about half a second.
    assert elapsed >= 0.45


ENGINE_ANSWERS: dict[int, dict[str, Any]] = {
    0: {
        "partitions": [
            {"topic": "t", "partition": 0, "error": "", "base_offset": 4, "log_start_offset": 0}
        ]
    },
    1: {
        "partitions": [
            {
                "topic": "t",
                "partition": 0,
                "error": "",
                "high_watermark": 2,
                "last_stable_offset": 2,
                "log_start_offset": 0,
                "aborted": [],
                "batches": [STORED],
            }
        ]
    },
    2: {
        "partitions": [
            {
                "topic": "t",
                "partition": 0,
                "error": "",
                "offset": 5,
                "timestamp": -1,
                "leader_epoch": 1,
            }
        ]
    },
    3: {
        "brokers": [1, 2],
        "controller_id": 1,
        "topics": [
            {
                "name": "t",
                "error": "",
                "internal": False,
                "partitions": [
                    {
                        "partition": 0,
                        "error": "",
                        "leader": 1,
                        "leader_epoch": 2,
                        "replicas": [1, 2],
                        "isr": [1, 2],
                    }
                ],
            }
        ],
    },
    8: {"partitions": [{"topic": "t", "partition": 0, "error": ""}]},
    9: {"error": "", "partitions": [{"topic": "t", "partition": 0, "offset": 3}]},
    10: {"error": "", "node_id": 2},
    11: {
        "error": "",
        "generation": 1,
        "protocol": "range",
        "leader": "m",
        "member_id": "m",
        "members": [
            {
                "member_id": "m",
                "group_instance_id": None,
                "metadata": apis.encode_subscription(["t"]),
            }
        ],
    },
    12: {"error": "REBALANCE_IN_PROGRESS"},
    13: {"error": "", "members": [{"member_id": "m", "group_instance_id": None, "error": ""}]},
    14: {"error": "", "partitions": [["t", 0], ["t", 1]]},
    15: {
        "groups": [
            {
                "group_id": "g",
                "error": "",
                "state": "Stable",
                "protocol_type": "consumer",
                "protocol": "range",
                "members": [
                    {
                        "member_id": "m",
                        "group_instance_id": None,
                        "client_id": "c",
                        "metadata": None,
                        "partitions": [["t", 0]],
                    }
                ],
            }
        ]
    },
    16: {"error": "", "groups": [{"group_id": "g", "state": "Stable"}]},
    19: {"topics": [{"name": "t", "error": "TOPIC_ALREADY_EXISTS", "message": "exists"}]},
    22: {"error": "", "producer_id": 1001, "epoch": 0},
    23: {
        "partitions": [
            {"topic": "t", "partition": 0, "error": "", "leader_epoch": 1, "end_offset": 9}
        ]
    },
    24: {"partitions": [{"topic": "t", "partition": 0, "error": ""}]},
    25: {"error": "CONCURRENT_TRANSACTIONS"},
    26: {"error": ""},
    28: {"partitions": [{"topic": "t", "partition": 0, "error": ""}]},
    20: {"responses": [{"name": "t", "error": "", "message": None}]},
    32: {
        "results": [
            {
                "resource_type": 2,
                "resource_name": "t",
                "error": "",
                "message": None,
                "configs": [
                    {
                        "name": "retention.ms",
                        "value": "1000",
                        "read_only": False,
                        "source": 1,
                        "type": 5,
                    }
                ],
            }
        ]
    },
    37: {"results": [{"name": "t", "error": "INVALID_PARTITIONS", "message": "smaller"}]},
    42: {"results": [{"group_id": "g", "error": "NON_EMPTY_GROUP"}]},
    43: {
        "error": "",
        "partitions": [{"topic": "t", "partition": 0, "error": "", "message": None}],
    },
    44: {"responses": [{"resource_type": 2, "resource_name": "t", "error": "", "message": None}]},
    47: {"error": "", "partitions": [{"topic": "t", "partition": 0, "error": ""}]},
    55: {
        "error": "",
        "message": None,
        "leader_id": 3000,
        "leader_epoch": 1,
        "high_watermark": 40,
        "voters": [{"replica_id": 3000, "log_end_offset": 40}],
        "observers": [{"replica_id": 1, "log_end_offset": 40}],
    },
    60: {"error": "", "controller_id": 1, "brokers": [{"broker_id": 2, "fenced": False}]},
}


# The engine's answer to a request of the regrouped versions (see WIRE_REQUESTS_FROM).
ENGINE_ANSWERS_FROM: dict[tuple[int, int], dict[str, Any]] = {
    (9, 8): {"groups": [{"group_id": "g", **ENGINE_ANSWERS[9]}]},
    (10, 4): {"coordinators": [{"key": "g", **ENGINE_ANSWERS[10]}]},
}


def engine_answer(key: int, version: int) -> dict[str, Any]:
    chosen = ENGINE_ANSWERS[key]
    for (api, first), answer in sorted(ENGINE_ANSWERS_FROM.items()):
        if api == key and version >= first:
            chosen = answer
    return chosen


def test_every_advertised_version_of_every_answer_encodes_and_reads_back() -> None:
    from kio.index import load_response_schema

    where = apis.Addresses("127.0.0.1", {1: 9001, 2: 9002}, "dojo-test")
    checked = 0
    for key, (_, low, high) in sorted(apis.SUPPORTED.items()):
        if key == apis.API_VERSIONS:
            continue
        for version in range(max(low, 3 if key == 0 else low), high + 1):
            body = apis.to_wire(key, version, engine_answer(key, version), where)
            frame = codec.encode_response(key, version, 77, body)
            schema = load_response_schema(key, version)
            offset = 8 + (1 if schema.__flexible__ else 0)
            decoded, used = entity_reader(schema)(frame, offset)
            assert offset + used == len(frame), (key, version)
            assert struct.unpack_from(">i", frame, 4) == (77,)
            answer = codec.plain(decoded)
            if key == 10:  # the coordinator's address, in either layout
                found = answer["coordinators"][0] if version >= 4 else answer
                assert (found["node_id"], found["port"]) == (2, 9002), version
            if key == 9:
                group = answer["groups"][0] if version >= 8 else answer
                [topic] = group["topics"]
                assert topic["partitions"][0]["committed_offset"] == 3, version
            if key == 60:
                assert [(b["broker_id"], b["port"]) for b in answer["brokers"]] == [(2, 9002)]
            if key == 32:
                [config] = answer["results"][0]["configs"]
                assert (config["name"], config["value"]) == ("retention.ms", "1000")
            if key == 3:
                assert answer["brokers"][1]["port"] == 9002
                assert answer["topics"][0]["partitions"][0]["leader_id"] == 1
            checked += 1
    assert checked == 151  # 29 APIs; Produce from v3 (v0-v2 are refused)


WIRE_REQUESTS: dict[int, dict[str, Any]] = {
    0: {
        "acks": -1,
        "timeout": 1000,
        "topic_data": [
            {"name": "t", "partition_data": [{"index": 0, "records": batches.encode_batch(STORED)}]}
        ],
    },
    1: {
        "max_wait": 500,
        "min_bytes": 1,
        "max_bytes": 1000,
        "topics": [
            {
                "topic": "t",
                "partitions": [{"partition": 0, "fetch_offset": 3, "partition_max_bytes": 100}],
            }
        ],
    },
    2: {
        "replica_id": -1,
        "topics": [{"name": "t", "partitions": [{"partition_index": 0, "timestamp": -2}]}],
    },
    3: {"topics": [{"name": "t"}], "allow_auto_topic_creation": False},
    8: {
        "group_id": "g",
        "generation_id_or_member_epoch": 1,
        "member_id": "m",
        "topics": [
            {
                "name": "t",
                "partitions": [
                    {"partition_index": 0, "committed_offset": 5, "committed_metadata": ""}
                ],
            }
        ],
    },
    9: {"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]},
    10: {"key": "g", "key_type": 0},
    11: {
        "group_id": "g",
        "session_timeout": 10000,
        "rebalance_timeout": 30000,
        "member_id": "",
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": apis.encode_subscription(["t"])}],
    },
    12: {"group_id": "g", "generation_id": 1, "member_id": "m"},
    13: {"group_id": "g", "member_id": "m", "members": [{"member_id": "m"}]},
    14: {
        "group_id": "g",
        "generation_id": 1,
        "member_id": "m",
        "assignments": [{"member_id": "m", "assignment": apis.encode_assignment([["t", 0]])}],
    },
    15: {"groups": ["g"]},
    16: {},
    19: {
        "topics": [
            {
                "name": "t",
                "num_partitions": 3,
                "replication_factor": 1,
                "assignments": [],
                "configs": [],
            }
        ],
        "timeout": 1000,
    },
    22: {"transactional_id": None, "transaction_timeout": 60000},
    23: {
        "topics": [
            {
                "topic": "t",
                "partitions": [{"partition": 0, "current_leader_epoch": 2, "leader_epoch": 1}],
            }
        ]
    },
    24: {
        "v3_and_below_transactional_id": "tx",
        "v3_and_below_producer_id": 9,
        "v3_and_below_producer_epoch": 1,
        "v3_and_below_topics": [{"name": "t", "partitions": [0, 2]}],
    },
    25: {"transactional_id": "tx", "producer_id": 9, "producer_epoch": 1, "group_id": "g"},
    26: {"transactional_id": "tx", "producer_id": 9, "producer_epoch": 1, "committed": True},
    28: {
        "transactional_id": "tx",
        "group_id": "g",
        "producer_id": 9,
        "producer_epoch": 1,
        "topics": [
            {
                "name": "t",
                "partitions": [
                    {"partition_index": 1, "committed_offset": 8, "committed_metadata": ""}
                ],
            }
        ],
    },
    20: {"topic_names": ["t"], "timeout": 1000},
    32: {
        "resources": [{"resource_type": 2, "resource_name": "t", "configuration_keys": None}],
        "include_synonyms": False,
    },
    37: {"topics": [{"name": "t", "count": 6, "assignments": None}], "timeout": 1000},
    42: {"groups_names": ["g"]},
    43: {
        "election_type": 0,
        "topic_partitions": [{"topic": "t", "partitions": [0]}],
        "timeout": 1000,
    },
    44: {
        "resources": [
            {
                "resource_type": 2,
                "resource_name": "t",
                "configs": [{"name": "retention.ms", "config_operation": 0, "value": "9"}],
            }
        ],
        "validate_only": False,
    },
    47: {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]},
    55: {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]},
    60: {"include_cluster_authorized_operations": False},
}
# Fields renamed or regrouped at a version: (api key, first version) -> the request's fields.
WIRE_REQUESTS_FROM: dict[tuple[int, int], dict[str, Any]] = {
    (9, 8): {"groups": [{"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]}]},
    (10, 4): {"key_type": 0, "coordinator_keys": ["g"]},
    (20, 6): {"topics": [{"name": "t", "topic_id": None}], "timeout": 1000},
}


def wire_request(key: int, version: int) -> dict[str, Any]:
    chosen = WIRE_REQUESTS[key]
    for (api, first), fields in sorted(WIRE_REQUESTS_FROM.items()):
        if api == key and version >= first:
            chosen = fields
    return chosen


EXPECTED = {
    0: lambda r: r["partitions"][0]["batch"]["records"][1]["headers"][0] == ["trace", b"abc"],
    1: lambda r: r["partitions"][0]["fetch_offset"] == 3 and r["max_wait_ms"] == 500,
    2: lambda r: r["partitions"] == [{"topic": "t", "partition": 0, "timestamp": -2}],
    3: lambda r: r["topics"] == ["t"],
    8: lambda r: r["offsets"] == [["t", 0, 5]],
    9: lambda r: r.get("partitions", r.get("groups", [{}])[0].get("partitions")) == [["t", 0]],
    10: lambda r: r.get("key", r.get("keys", [None])[0]) == "g",
    11: lambda r: r["topics"] == ["t"] and r["session_timeout_ms"] == 10000,
    12: lambda r: r["member_id"] == "m" and r["generation"] == 1,
    13: lambda r: [m["member_id"] for m in r["members"]] == ["m"],
    14: lambda r: r["assignments"] == [{"member_id": "m", "partitions": [["t", 0]]}],
    15: lambda r: r["groups"] == ["g"],
    16: lambda r: r["api"] == "list_groups",
    19: lambda r: r["topics"][0]["num_partitions"] == 3,
    22: lambda r: r["transactional_id"] is None,
    23: lambda r: r["partitions"][0]["leader_epoch"] == 1,
    24: lambda r: r["partitions"] == [["t", 0], ["t", 2]] and r["producer_id"] == 9,
    25: lambda r: r["group_id"] == "g",
    26: lambda r: r["committed"] is True,
    28: lambda r: r["offsets"] == [["t", 1, 8]],
    20: lambda r: r["topics"] == ["t"],
    32: lambda r: r["resources"] == [{"resource_type": 2, "resource_name": "t", "keys": None}],
    37: lambda r: r["topics"] == [{"name": "t", "count": 6}],
    42: lambda r: r["groups"] == ["g"],
    43: lambda r: r["partitions"] == [["t", 0]] and r["election_type"] == 0,
    44: lambda r: (
        r["resources"][0]["configs"] == [{"name": "retention.ms", "operation": 0, "value": "9"}]
    ),
    47: lambda r: r["partitions"] == [["t", 0]] and r["group_id"] == "g",
    55: lambda r: r["partitions"] == [["__cluster_metadata", 0]],
    60: lambda r: r["include_fenced"] is False,
}


def test_every_advertised_version_of_every_request_decodes_into_the_engine_vocabulary() -> None:
    from kio.index import load_request_schema

    checked = 0
    for key, (name, low, high) in sorted(apis.SUPPORTED.items()):
        if key == apis.API_VERSIONS:
            continue
        for version in range(max(low, 3 if key == 0 else low), high + 1):
            schema = load_request_schema(key, version)
            body = codec.build(schema, wire_request(key, version))
            frame = codec.encode_request(codec.Header(key, version, 5, "table"), body)
            request = codec.decode_request(frame[4:])
            assert request.header == codec.Header(key, version, 5, "table")
            engine = apis.to_engine(key, version, request.body).request
            assert engine["api"] == name
            assert EXPECTED[key](engine), (key, version, engine)
            checked += 1
    assert checked == 151


def test_the_timeline_lists_what_a_real_client_changed_not_its_polls() -> None:
    from webapp.timeline import _command_label

    def wire(api: str) -> dict[str, Any]:
        request = {"api": api, "client_id": "billing-app"}
        return {"type": "wire_request", "connection": 3, "broker_id": 2, "request": request}

    assert _command_label(wire("produce")) == "billing-app: produce via broker 2"
    assert _command_label(wire("offset_commit")) == "billing-app: offset commit via broker 2"
    assert _command_label(wire("fetch")) is None
    assert _command_label(wire("heartbeat")) is None
    assert _command_label(wire("metadata")) is None


@pytest.mark.asyncio
async def test_the_wire_benchmark_runs_without_django_and_its_log_replays(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scripts.bench import wire

    await wire.run(100, 0.5)
    out = capsys.readouterr().out
    assert "replay gives an equal snapshot: True" in out
    assert "produced (acks=all, RF=3)" in out


def _with_unknown_tag(raw: bytes, at: int) -> bytes:
    """`raw` with tag 9 (3 bytes, unknown to every schema) added to the empty tagged-field
    section whose count byte sits at `at`."""
    assert raw[at] == 0
    return raw[:at] + b"\x01\x09\x03abc" + raw[at + 1 :]


def test_unknown_tagged_fields_are_skipped_as_kafka_skips_them() -> None:
    from kio.index import load_request_schema

    schema = load_request_schema(3, 12)
    body = codec.build(schema, {"topics": [{"name": "orders"}], "allow_auto_topic_creation": True})
    clean = codec.encode_request(codec.Header(3, 12, 4, "newer-client"), body)[4:]
    header_tags = 10 + len("newer-client")
    # In the header, in a topic (before the request's two booleans and its own tag count), and
    # at the end of the request.
    framed = _with_unknown_tag(clean, len(clean) - 1)
    framed = _with_unknown_tag(framed, len(clean) - 4)
    framed = _with_unknown_tag(framed, header_tags)
    assert len(framed) == len(clean) + 3 * 5
    with pytest.raises(Exception, match="tag"):  # kio alone refuses them
        entity_reader(schema)(framed, header_tags + 6)
    request = codec.decode_request(framed)
    assert request.body == codec.decode_request(clean).body
    assert apis.to_engine(3, 12, request.body).request["topics"] == ["orders"]
    # A tagged field whose size runs past the frame is still a bad frame.
    broken = framed[:-2]
    with pytest.raises(codec.FrameError):
        codec.decode_request(broken)
