"""Every malformed share link is a 400 with a reason, never a 500; shared logs are checked as
live commands are, and their replay work is budgeted before anything runs."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import pytest
from django.test import Client

from webapp import timeline
from webapp.models import LiveCluster, SharedState
from webapp.services import sandbox_setup_commands

pytestmark = pytest.mark.django_db

SETUP = sandbox_setup_commands(brokers=3)


def document(log: list[Any] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"seed": 7, "brokers": 3, "controllers": 3, "config": {}}
    body["log"] = list(SETUP) + list(log or [])
    body.update(fields)
    return body


def token_of(raw: str | bytes) -> str:
    packed = zlib.compress(raw.encode() if isinstance(raw, str) else raw, 9)
    return "v1." + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def token(log: list[Any] | None = None, **fields: Any) -> str:
    return token_of(json.dumps(document(log, **fields)))


def produce(**fields: Any) -> dict[str, Any]:
    return {"type": "produce", "topic": "orders", "key": "k", "value": "v", "count": 1, **fields}


def assert_refused(client: Client, link: str, caplog: pytest.LogCaptureFixture) -> str:
    response = client.get(f"/s/{link}/")
    text = response.content.decode()
    assert response.status_code == 400, (link[:80], response.status_code, text[:300])
    assert not LiveCluster.objects.exists()
    assert all(r.exc_info is None for r in caplog.records), "a traceback was logged"
    return text


GOOD = token()

MALFORMED = {
    "unknown config key": token(config={"no.such.key": 1}),
    "invalid config value": token(config={"min.insync.replicas": "many"}),
    "Infinity ms": token_of(
        json.dumps(document()).replace('"log": [', '"log": [{"type": "advance", "ms": Infinity}, ')
    ),
    "4301-digit seed": token_of(
        json.dumps(document()).replace('"seed": 7', '"seed": ' + "9" * 4301)
    ),
    "5000-deep nesting": token_of(
        json.dumps(document()).replace('"config": {}', '"config": ' + "[" * 5000 + "]" * 5000)
    ),
    "lone surrogate": token(log=[produce(key="\ud800")]),
    "seed is a bool": token(seed=True),
    "brokers is a float": token(brokers=3.5),
    "seed is text": token(seed="7"),
    "rate 1e9": token(
        log=[{"type": "start_producer", "topic": "orders", "rate": 1e9, "acks": "all"}]
    ),
    "count 1e9": token(log=[produce(count=10**9)]),
    "broker 99": token(log=[{"type": "stop_broker", "broker_id": 99}]),
    "HTML group name": token(
        log=[{"type": "add_group_consumer", "group": "<b>x</b>", "topic": "orders"}]
    ),
    "server-only command": token(log=[{"type": "engine", "entry": {"op": "cluster.delete_all"}}]),
    "clock command": token(log=[{"type": "speed", "speed": 20}]),
    "negative advance": token(log=[{"type": "advance", "ms": -5}]),
    "not JSON": token_of(b"\xff\xfe not json"),
    "JSON list": token_of("[1, 2]"),
    "trailing bytes after the stream": GOOD + "AAAA",
    "characters outside base64": GOOD[:20] + "%" + GOOD[21:],
    "one character": "v1.A",
    "empty": "v1.",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_share_link_is_a_400(
    client: Client, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    assert_refused(client, MALFORMED[name], caplog)


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 8])
def test_a_link_cut_short_is_refused_not_opened(
    client: Client, caplog: pytest.LogCaptureFixture, cut: int
) -> None:
    text = assert_refused(client, GOOD[:-cut], caplog)
    assert "copy the whole link" in text or "damaged" in text


def test_the_whole_link_still_opens(client: Client) -> None:
    response = client.get(f"/s/{GOOD}/")
    assert response.status_code == 302
    assert LiveCluster.objects.count() == 1


def test_replay_work_over_the_budget_is_refused_before_it_runs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    six_hours_idle = token(log=[{"type": "advance", "ms": 6 * 3600 * 1000}])
    text = assert_refused(client, six_hours_idle, caplog)
    assert "of work to rebuild" in text
    apps = [
        {"type": "start_producer", "topic": "orders", "rate": 200.0, "acks": "all"}
        for _ in range(10)
    ]
    busy = token(log=[*apps, {"type": "advance", "ms": 10 * 60 * 1000}])
    assert "of work to rebuild" in assert_refused(client, busy, caplog)


def test_a_share_link_within_the_budget_opens(client: Client) -> None:
    log = [
        {"type": "start_producer", "topic": "orders", "rate": 5.0, "acks": "all"},
        {"type": "advance", "ms": 20_000},
        produce(count=3),
    ]
    assert timeline.replay_cost_s(document(log)["log"]) < timeline.REPLAY_BUDGET_S
    response = client.get(f"/s/{token(log=log)}/")
    assert response.status_code == 302


def test_a_saved_state_is_checked_like_a_link(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    shared = SharedState.objects.create(
        seed=1,
        brokers=3,
        controllers=3,
        engine_config={},
        commands=[*SETUP, {"type": "stop_broker", "broker_id": 42}],
    )
    response = client.get(f"/shared/{shared.id}/")
    assert response.status_code == 400
    assert "There is no broker 42" in response.content.decode()
    assert not LiveCluster.objects.exists()
