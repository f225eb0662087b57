"""Incremental fetch sessions (KIP-227) in the listener, with raw Fetch v12 frames."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader

from webapp.kafka_listener import codec
from webapp.kafka_listener.fetch_sessions import FetchSessions
from webapp.kafka_listener.server import ClusterListeners


class AnsweringGateway:
    """Records each request and answers it with `answer(request)` through the listeners."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.listeners: ClusterListeners | None = None
        self.high_watermark = {0: 5, 1: 5}

    async def submit(self, connection: int, broker_id: int, request: dict[str, Any]) -> None:
        self.requests.append(request)
        parts = []
        for p in request["partitions"]:
            hw = self.high_watermark[p["partition"]]
            parts.append(
                {
                    "topic": p["topic"],
                    "partition": p["partition"],
                    "error": "",
                    "high_watermark": hw,
                    "last_stable_offset": hw,
                    "log_start_offset": 0,
                    "aborted": [],
                    "batches": [],
                }
            )
        assert self.listeners is not None
        self.listeners.deliver(connection, request["correlation_id"], {"partitions": parts})


def fetch_frame(
    correlation: int, session: int, epoch: int, parts: list[int], forget: list[int]
) -> bytes:
    schema = load_request_schema(1, 12)
    body = codec.build(
        schema,
        {
            "replica_id": -1,
            "max_wait": 0,
            "min_bytes": 1,
            "max_bytes": 1 << 20,
            "session_id": session,
            "session_epoch": epoch,
            "topics": [
                {
                    "topic": "t",
                    "partitions": [
                        {"partition": p, "fetch_offset": 5, "partition_max_bytes": 1 << 16}
                        for p in parts
                    ],
                }
            ]
            if parts
            else [],
            "forgotten_topics_data": [{"topic": "t", "partitions": forget}] if forget else [],
        },
    )
    return codec.encode_request(codec.Header(1, 12, correlation, "session-test"), body)


def read_response(sock: socket.socket) -> dict[str, Any]:
    size = struct.unpack(">i", _exactly(sock, 4))[0]
    frame = _exactly(sock, size)
    decoded, _ = entity_reader(load_response_schema(1, 12))(frame, 5)
    return dict(codec.plain(decoded))


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


def partitions_of(response: dict[str, Any]) -> list[int]:
    return [p["partition_index"] for t in response["responses"] for p in t["partitions"]]


@pytest.mark.asyncio
async def test_a_session_answers_only_what_changed_and_checks_ids_and_epochs() -> None:
    gateway = AnsweringGateway()
    listeners = ClusterListeners(gateway, cluster_id="sessions")
    gateway.listeners = listeners
    await listeners.sync({1: True})

    def exchange(sock: socket.socket, frame: bytes) -> dict[str, Any]:
        sock.sendall(frame)
        return read_response(sock)

    try:
        sock = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", listeners.ports[1]))
        with sock:
            full = await asyncio.to_thread(exchange, sock, fetch_frame(1, 0, 0, [0, 1], []))
            session = full["session_id"]
            assert session != 0 and partitions_of(full) == [0, 1]
            # Nothing changed: the incremental answer is empty, but the engine still read both.
            same = await asyncio.to_thread(exchange, sock, fetch_frame(2, session, 1, [], []))
            assert (same["session_id"], partitions_of(same)) == (session, [])
            assert [p["partition"] for p in gateway.requests[-1]["partitions"]] == [0, 1]
            # Partition 1's high watermark moved: only it is answered.
            gateway.high_watermark[1] = 9
            moved = await asyncio.to_thread(exchange, sock, fetch_frame(3, session, 2, [], []))
            assert partitions_of(moved) == [1]
            # Forget partition 0: the engine is no longer asked for it.
            await asyncio.to_thread(exchange, sock, fetch_frame(4, session, 3, [], [0]))
            assert [p["partition"] for p in gateway.requests[-1]["partitions"]] == [1]
            # A wrong epoch, an unknown id: errors answered without reaching the engine.
            asked = len(gateway.requests)
            stale = await asyncio.to_thread(exchange, sock, fetch_frame(5, session, 1, [], []))
            assert stale["error_code"] == 71  # INVALID_FETCH_SESSION_EPOCH
            unknown = await asyncio.to_thread(exchange, sock, fetch_frame(6, 12345, 1, [], []))
            assert unknown["error_code"] == 70  # FETCH_SESSION_ID_NOT_FOUND
            assert len(gateway.requests) == asked
            # The final epoch closes the session and fetches sessionless.
            final = await asyncio.to_thread(exchange, sock, fetch_frame(7, session, -1, [0], []))
            assert (final["session_id"], partitions_of(final)) == (0, [0])
            gone = await asyncio.to_thread(exchange, sock, fetch_frame(8, session, 4, [], []))
            assert gone["error_code"] == 70
    finally:
        await listeners.close()


@pytest.mark.asyncio
async def test_a_stopped_broker_forgets_its_sessions() -> None:
    gateway = AnsweringGateway()
    listeners = ClusterListeners(gateway, cluster_id="sessions-restart")
    gateway.listeners = listeners
    await listeners.sync({1: True})

    def exchange(frame: bytes) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", listeners.ports[1])) as sock:
            sock.sendall(frame)
            return read_response(sock)

    try:
        session = (await asyncio.to_thread(exchange, fetch_frame(1, 0, 0, [0], [])))["session_id"]
        await listeners.sync({1: False})
        await listeners.sync({1: True})
        again = await asyncio.to_thread(exchange, fetch_frame(2, session, 1, [], []))
        assert again["error_code"] == 70
    finally:
        await listeners.close()


def test_partitions_that_returned_records_rotate_to_the_end_of_the_session() -> None:
    sessions = FetchSessions()

    def part(p: int) -> dict[str, Any]:
        return {"topic": "t", "partition": p, "fetch_offset": 0, "partition_max_bytes": 10}

    def answer(p: int, batches: list[Any]) -> dict[str, Any]:
        return {
            "topic": "t",
            "partition": p,
            "error": "",
            "high_watermark": 3,
            "last_stable_offset": 3,
            "log_start_offset": 0,
            "batches": batches,
        }

    first = sessions.prepare(0, 0, [part(0), part(1), part(2)], [])
    assert first.session is not None
    sessions.answer(first, {"partitions": [answer(0, []), answer(1, []), answer(2, [])]})
    second = sessions.prepare(first.session.id, 1, [], [])
    assert [p["partition"] for p in second.partitions or []] == [0, 1, 2]
    shown = sessions.answer(second, {"partitions": [answer(0, [{}]), answer(1, []), answer(2, [])]})
    assert [p["partition"] for p in shown["partitions"]] == [0]
    third = sessions.prepare(first.session.id, 2, [], [])
    assert [p["partition"] for p in third.partitions or []] == [1, 2, 0]
    # An error is answered, and the partition is answered again on the next fetch.
    failed = {**answer(1, []), "error": "NOT_LEADER_OR_FOLLOWER"}
    shown = sessions.answer(third, {"partitions": [failed, answer(2, []), answer(0, [])]})
    assert [p["partition"] for p in shown["partitions"]] == [1]
    fourth = sessions.prepare(first.session.id, 3, [], [])
    shown = sessions.answer(fourth, {"partitions": [answer(1, []), answer(2, []), answer(0, [])]})
    assert [p["partition"] for p in shown["partitions"]] == [1]


def test_a_full_cache_serves_new_fetches_sessionless() -> None:
    sessions = FetchSessions(slots=1)
    part = {"topic": "t", "partition": 0, "fetch_offset": 0, "partition_max_bytes": 10}
    assert sessions.prepare(0, 0, [part], []).response_session_id != 0
    refused = sessions.prepare(0, 0, [part], [])
    assert (refused.response_session_id, refused.partitions) == (0, [part])
