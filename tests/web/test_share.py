"""Share links: a state travels as its seed and command log and opens in a new sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from lessons.scenarios.runtime import ClusterRuntime
from webapp import services, timeline
from webapp.engine_host import store
from webapp.models import LiveCluster, SharedState

PRODUCE = {"type": "produce", "topic": "orders", "key": "k", "value": "v", "count": 5}


def snapshot_of(cluster_id: str) -> dict[str, Any]:
    stored = store.cluster_load(cluster_id=cluster_id)
    return ClusterRuntime.replay(stored.spec, stored.commands).cluster.snapshot()


def busy_sandbox(produces: int = 2) -> LiveCluster:
    sandbox = services.sandbox_create()
    log: list[dict[str, Any]] = [{"type": "advance", "ms": 250}]
    for index in range(produces):
        log += [{**PRODUCE, "key": f"k{index}"}, {"type": "advance", "ms": 730}]
    log += [{"type": "stop_broker", "broker_id": 2}, {"type": "advance", "ms": 10_000}]
    for seq, payload in enumerate(log, start=3):
        store.cluster_command_append(
            cluster_id=sandbox.id, seq=seq, payload=payload, logical_time_ms=0
        )
    return sandbox


@pytest.mark.django_db
def test_a_share_token_opens_a_new_sandbox_in_the_identical_state() -> None:
    original = busy_sandbox()
    stored = store.cluster_load(cluster_id=original.id)
    token = timeline.share_token_encode(spec=stored.spec, commands=stored.commands)
    assert token.startswith("v1.") and all(c.isalnum() or c in "-_." for c in token)

    spec, commands = timeline.share_token_decode(token)
    opened = timeline.sandbox_from_log(spec=spec, commands=commands)

    assert opened.id != original.id and opened.paused
    assert store.cluster_load(cluster_id=opened.id).commands == stored.commands
    assert snapshot_of(opened.id) == snapshot_of(original.id)


@pytest.mark.django_db
def test_share_then_open_through_the_pages_restores_the_state(client: Client) -> None:
    original = busy_sandbox()
    page = client.post(f"/sandbox/{original.id}/share/")
    assert page.status_code == 200
    link = timeline.share_link_create(cluster_id=original.id)
    assert not link.saved and link.path in page.content.decode()

    response = client.get(link.path)
    assert response.status_code == 302
    opened = LiveCluster.objects.exclude(pk=original.pk).get()
    assert response["Location"] == f"/sandbox/{opened.id}/"
    assert snapshot_of(opened.id) == snapshot_of(original.id)


@pytest.mark.django_db
def test_a_long_log_is_saved_on_the_server_and_opens_the_same_state(client: Client) -> None:
    original = busy_sandbox(produces=40)
    assert timeline.share_link_create(cluster_id=original.id).path.startswith("/s/")
    link = timeline.share_link_create(cluster_id=original.id, max_token_chars=200)
    assert link.saved and link.path.startswith("/shared/")
    assert SharedState.objects.count() == 1

    response = client.get(link.path)
    assert response.status_code == 302
    opened = LiveCluster.objects.get(pk=response["Location"].split("/")[2])
    assert snapshot_of(opened.id) == snapshot_of(original.id)
    # both forms of the link open the same state
    stored = store.cluster_load(cluster_id=original.id)
    token = timeline.share_token_encode(spec=stored.spec, commands=stored.commands)
    by_token = client.get(f"/s/{token}/")
    assert snapshot_of(by_token["Location"].split("/")[2]) == snapshot_of(original.id)


@pytest.mark.django_db
def test_a_moment_of_the_past_can_be_shared() -> None:
    original = busy_sandbox()
    link = timeline.share_link_create(cluster_id=original.id, at_ms=1_000)
    spec, commands = timeline.share_token_decode(link.path.split("/")[2])
    stored = store.cluster_load(cluster_id=original.id)
    past, _ = timeline.replay_until(spec=stored.spec, commands=stored.commands, at_ms=1_000)
    assert ClusterRuntime.replay(spec, commands).cluster.snapshot() == past.cluster.snapshot()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "token",
    ["v1.not-base64!", "v2.abc", "v1." + "A" * 40, "nonsense"],
)
def test_a_damaged_share_link_says_why_and_makes_nothing(client: Client, token: str) -> None:
    response = client.get(f"/s/{token}/")
    assert response.status_code == 400
    assert "share link" in response.content.decode().lower()
    assert not LiveCluster.objects.exists()


def test_a_share_token_with_unknown_commands_or_endless_time_is_refused() -> None:
    from lessons.scenarios.runtime import ClusterSpec

    spec = ClusterSpec(seed=1)
    bad = timeline.share_token_encode(spec=spec, commands=[{"type": "drop_database"}])
    with pytest.raises(timeline.ShareError, match="unknown command"):
        timeline.share_token_decode(bad)
    endless = timeline.share_token_encode(spec=spec, commands=[{"type": "advance", "ms": 10**12}])
    with pytest.raises(timeline.ShareError, match="longer"):
        timeline.share_token_decode(endless)


# A share link made before the command table existed (every logged command, in the payload
# shapes the old forms and the sandbox setup wrote). It must keep opening.
OLD_TOKEN = (
    "v1.eNqVVNFu2zAM_JVBz15gOx0G5FeKQVBlJhEii4ZEtzWC_PsoWY6VpsmwpzgieTzySJ7Fm8cT-CB220podHtzELv"
    "zJX2TR2sXm0U2vJ6FUz2InUDfRUslBuXJkEE3u3kYrNEqPsi90oQ-PdM0xCjtQRFIwsFocanOolef0oNmNA5vqgWd3"
    "Rg-ojMDaRyBf1dW9uz0q64ZLgEULDK-6jrJxMPYc3TCj7Dtti483pXTkIwaR0eJ3gmmyG4MhBz586UVj3MMHruRESr"
    "BlMb0okxXAjYZ0I3W_g-Owx8xLiIpfWLmohEJKhbBJXjuXfzaPOlAINZDZmyfWfW9oVj7nlJTDx7Hgf-_GWuNO_CLC"
    "WiTZrn3co4h6NgYKCY-TAnd6NMknguQ4O9leKnr72VQwyC5gbt2HZOUfQZKLvOQJq9tUSoOcrZck_x-kOMBQOxVgVB"
    "4rWTCcaQOP1zpuC5Hcm7q5pbVav-3e-TwxX-Wg82vIk6itgYcBfFnnZ1l6aQD-kB_SmHZeARelfK9KKupliFdC7QYg"
    "JcwDKwYhDx-eRi0V-HIFO41ii-Z9rX77SOJ7yeOkP-C8lxaoCcDxbyAJO73_DNzyydiUFOfunJ7gtrvT1D7-AQtmQt"
    "AQlKWJ_ZmrIssMWw-Gb1xG-PC5PQmpw3PtsPyAs6pZb616_a35eLXxUZz_ek1mpmg57xngbGd2vLFAr_5ovgSCe5gH"
    "FzV2X6rDg9VAIjSNpe_Ih0L1w"
)


def test_a_share_link_made_before_the_command_table_still_opens() -> None:
    spec, log = timeline.share_token_decode(OLD_TOKEN)
    assert spec.seed == 21
    from lessons.scenarios import LOGGED_COMMANDS

    # Every command the table had then; `wire_request`, `console` and `transaction` came later.
    later = {"wire_request", "console", "transaction"}
    assert {payload["type"] for payload in log} == LOGGED_COMMANDS - later
    runtime = ClusterRuntime(spec)
    results = [(p["type"], runtime.apply(p)) for p in log]
    # Every command is understood; the only refusal is the engine's own, logged at the time.
    assert [(kind, r.error) for kind, r in results if not r.ok] == [
        ("reset_offsets", "GroupNotEmptyError")
    ]
    assert sorted(runtime.cluster.list_topics()) == ["__consumer_offsets", "orders", "payments"]
    assert ClusterRuntime.replay(spec, log).cluster.snapshot() == runtime.cluster.snapshot()


@pytest.mark.django_db
def test_a_saved_state_made_before_the_command_table_still_opens(client: Client) -> None:
    spec, log = timeline.share_token_decode(OLD_TOKEN)
    saved = SharedState.objects.create(seed=spec.seed, brokers=3, controllers=3, commands=log)
    response = client.get(f"/shared/{saved.pk}/")
    assert response.status_code == 302, response.content[:300]
    opened = LiveCluster.objects.get()
    assert snapshot_of(opened.id) == ClusterRuntime.replay(spec, log).cluster.snapshot()


def test_a_shared_command_with_a_bad_value_is_refused_by_the_table() -> None:
    from lessons.scenarios.runtime import ClusterSpec

    bad = timeline.share_token_encode(
        spec=ClusterSpec(seed=1),
        commands=[
            {"type": "create_topic", "name": "t", "partitions": 1000, "replication_factor": 1}
        ],
    )
    with pytest.raises(timeline.ShareError, match=r"Command 1 of the shared log \(create_topic\)"):
        timeline.share_token_decode(bad)
