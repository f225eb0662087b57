"""Fuzzing the doors: the socket's parser, the share-link decoder and the forms. Bad input is
always a clear refusal (never another exception, never a 500, never a traceback in the log),
and the server keeps serving afterwards."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import zlib
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.support import json_frame, receive_json_frame
from webapp import consumers, services, timeline
from webapp.asgi import application
from webapp.models import LiveCluster

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "type",
    "seq",
    "client",
    "topic",
    "key",
    "value",
    "count",
    "broker_id",
    "speed",
    "ms",
    "rate",
    "app_id",
    "group",
    "isolate",
    "to",
    "total",
    "name",
    "partitions",
]
TYPES = list(consumers.MESSAGE_TYPES) + ["engine", "advance", "nothing", ""]


def good_token() -> str:
    return timeline.share_token_encode(
        spec=timeline.ClusterSpec(seed=3),
        commands=[*services.sandbox_setup_commands(brokers=3), {"type": "advance", "ms": 500}],
    )


def token_of(document: Any) -> str:
    raw = json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")
    return "v1." + base64.urlsafe_b64encode(zlib.compress(raw)).decode().rstrip("=")


messages = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda kind, fields: json.dumps({"type": kind, **fields}),
        st.sampled_from(TYPES),
        st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6),
    ),
)


@given(messages)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_the_socket_parser_only_ever_refuses_with_a_reason(text: str) -> None:
    try:
        message = consumers.parse_message(text)
    except consumers.BadMessage as bad:
        assert bad.code and bad.message
        return
    json.dumps(message)  # what passes the door is plain, encodable JSON


@given(
    st.one_of(
        st.text(max_size=200).map(lambda t: "v1." + t),
        st.binary(max_size=300).map(
            lambda b: "v1." + base64.urlsafe_b64encode(b).decode().rstrip("=")
        ),
        st.binary(max_size=300).map(
            lambda b: "v1." + base64.urlsafe_b64encode(zlib.compress(b)).decode().rstrip("=")
        ),
        st.builds(
            lambda log, seed, brokers: token_of(
                {"seed": seed, "brokers": brokers, "controllers": 3, "config": {}, "log": log}
            ),
            st.lists(
                st.builds(
                    lambda kind, fields: {"type": kind, **fields},
                    st.sampled_from(TYPES),
                    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=5),
                ),
                max_size=6,
            ),
            JSON_VALUES,
            JSON_VALUES,
        ),
        st.tuples(st.integers(0, 200), st.integers(0, 63)).map(
            lambda cut: (
                (t := good_token())[: len(t) - cut[0] % len(t)] + "-_Aa0"[cut[1] % 5] * (cut[1] % 3)
            )
        ),
    )
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_share_decoder_only_ever_refuses_with_a_reason(token: str) -> None:
    try:
        timeline.share_token_decode(token)
    except timeline.ShareError as error:
        assert str(error)


@pytest.mark.django_db
def test_fuzzed_links_and_form_posts_never_answer_500(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rng = random.Random(20261201)
    client = Client()
    sandbox = services.sandbox_create()
    good = good_token()
    statuses = []
    for _ in range(120):
        cut = rng.randrange(0, len(good))
        mutated = list(good[:cut] if rng.random() < 0.5 else good)
        for _ in range(rng.randrange(0, 4)):
            if mutated:
                mutated[rng.randrange(len(mutated))] = rng.choice("AZaz09-_=%.")
        statuses.append(client.get(f"/s/{''.join(mutated)}/").status_code)
    for _ in range(120):
        data = {
            name: rng.choice(
                [
                    "",
                    "0",
                    "-1",
                    "1e400",
                    "9" * 30,
                    "orders",
                    "<b>x</b>",
                    "\x00",
                    "é" * 300,
                    "NaN",
                    "3",
                ]
            )
            for name in rng.sample(FIELDS, rng.randrange(1, 6))
        }
        statuses.append(client.post(f"/sandbox/{sandbox.id}/produce/", data).status_code)
    assert 500 not in statuses
    assert all(r.exc_info is None for r in caplog.records), "a traceback was logged"
    assert client.get("/").status_code == 200  # and the server keeps serving
    assert LiveCluster.objects.filter(pk=sandbox.id).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_fuzzed_socket_frames_are_each_answered_and_the_socket_keeps_serving(
    host_registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(7)
    sandbox = await database_sync_to_async(services.sandbox_create)()
    socket = WebsocketCommunicator(application, f"/ws/clusters/{sandbox.id}/", ORIGIN)
    connected, _ = await socket.connect()
    assert connected
    values: list[Any] = [
        None,
        True,
        -1,
        0,
        2**63,
        1e308,
        "",
        "orders",
        "\ud800",
        [1],
        {"a": 1},
        "x" * 500,
    ]
    frames = []
    for index in range(30):  # within the socket's burst, so none is rate limited
        body = {name: rng.choice(values) for name in rng.sample(FIELDS, rng.randrange(1, 7))}
        body["type"] = rng.choice(TYPES)
        text = json.dumps(body)
        if index % 5 == 0:
            text = text[: rng.randrange(len(text))]  # cut short
        frames.append(text)
    for text in frames:
        await socket.send_to(text_data=text)

    def is_resync(text: str) -> bool:  # answered with the whole state, not a JSON frame
        try:
            return json.loads(text).get("type") == "resync"
        except ValueError:
            return False

    expected = sum(1 for text in frames if not is_resync(text))
    answered = 0

    async def count_answers() -> None:
        nonlocal answered
        while answered < expected:
            frame = json_frame(await socket.receive_from(timeout=20))
            if frame is not None and frame.get("type") in ("ack", "error"):
                answered += 1

    await asyncio.wait_for(count_answers(), 30)
    assert answered == expected
    assert all(r.exc_info is None for r in caplog.records), "a traceback was logged"
    await socket.send_json_to(
        {
            "type": "produce",
            "seq": 99,
            "client": "fuzz-client-1",
            "topic": "orders",
            "value": "ok",
            "count": 1,
        }
    )
    assert (await receive_json_frame(socket, kind="ack", timeout_s=10))["seq"] == 99
    await socket.disconnect()
