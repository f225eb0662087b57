"""What a state version sends: the stage and records panel part by part, and, for a workshop
room's cluster, only the fragments a room page has a slot for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer
from django.contrib.auth import get_user_model

from engine.partitioner import partition_for_key
from lessons.scenarios import ClusterSpec
from tests.web.support import sandbox_runtime
from webapp.engine_host import host as host_module
from webapp.engine_host import store
from webapp.engine_host.host import ClusterHost, HostSettings
from webapp.engine_host.leases import LocalLeaseStore
from webapp.engine_host.render import ROOM_FRAGMENTS, element_end, render_fragments

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# Every page a room's socket feeds: the learner's, the instructor's and the presenter's.
ROOM_PAGES = ("workshops/room.html", "workshops/control.html", "workshops/present.html")
ROOM_INCLUDES = ("workshops/stage.html", "workshops/stage_below.html", "workshops/room_panels.html")
OPENING = re.compile(r'<(\w+)\b[^>]*?\bid="([^"]+)"')


def a_host(*, room: bool = False) -> ClusterHost:
    runtime, log = sandbox_runtime(seed=5)
    stored = store.StoredCluster(
        spec=ClusterSpec(seed=5, brokers=3),
        commands=log,
        next_seq=len(log) + 1,
        client_seqs={},
        speed=1.0,
        paused=False,
        room=room,
    )
    return ClusterHost(
        cluster_id="c-diffs",
        runtime=runtime,
        stored=stored,
        layer=InMemoryChannelLayer(),
        leases=LocalLeaseStore(),
        # Time labels are re-sent on their own schedule: not within these tests.
        settings=HostSettings(room_time_label_refresh_s=3600.0),
    )


@pytest.fixture(autouse=True)
def no_time_label_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_module, "TIME_LABEL_REFRESH_S", 3600.0)


def top_level(html: str) -> list[tuple[str, str]]:
    """The top-level elements of a frame, as (id, element), the way htmx swaps them."""
    found = []
    at = 0
    while (match := OPENING.search(html, at)) is not None:
        assert not html[at : match.start()].strip(), html[at : match.start()][:200]
        end = element_end(html, match.start(), match.group(1))
        found.append((match.group(2), html[match.start() : end]))
        at = end
    assert not html[at:].strip()
    return found


def swap(page: str, element_id: str, element: str) -> str:
    """What htmx's out-of-band swap does: the element with this id is replaced."""
    match = re.search(rf'<(\w+)\b[^>]*?\bid="{re.escape(element_id)}"', page)
    assert match is not None, f"the page has no #{element_id} to swap"
    end = element_end(page, match.start(), match.group(1))
    return page[: match.start()] + element + page[end:]


def sent_ids(update: dict[str, Any]) -> list[str]:
    return [element_id for element_id, _ in top_level(update["html"])][1:]  # after the marker


def test_a_record_sends_only_the_stage_parts_and_partitions_it_changed() -> None:
    host = a_host()
    host._publish()
    # The stage producer exists (its box makes the picture taller) and the group settled.
    host.runtime.apply({"type": "produce", "topic": "orders", "key": "k0", "value": "v"})
    host.runtime.advance(2_000)
    host._publish()
    partition = partition_for_key(b"k1", 3)
    host.runtime.apply({"type": "produce", "topic": "orders", "key": "k1", "value": "v"})
    host.runtime.advance(500)
    update = host._publish()
    assert update is not None
    ids = sent_ids(update)
    # orders-N is row N of the stage, one part per replica (stage-row-N-bB); the leader's
    # tape got the record, the followers' fetch it later.
    leader = host.runtime.cluster.describe_topic("orders").partitions[partition].leader
    assert f"stage-row-{partition}-b{leader}" in ids
    assert f"partition-orders-{partition}" in ids
    others = {p for p in range(3) if p != partition}
    assert not [i for i in ids if i.startswith(tuple(f"stage-row-{p}-" for p in others))]
    assert not {f"partition-orders-{p}" for p in others} & set(ids)
    # Neither whole fragment, and the brokers and controllers (unchanged) are not sent again.
    assert "stage" not in ids and "topics" not in ids and "stage-nodes" not in ids
    stage_bytes = sum(len(e) for i, e in top_level(update["html"]) if i.startswith("stage-"))
    assert stage_bytes < len(host.published.fragments["stage"]) / 2


def test_a_page_joined_from_the_diffs_equals_a_full_render() -> None:
    host = a_host(room=True)
    host._publish()
    page = host.published.full_html
    steps: list[dict[str, Any]] = [
        {"type": "produce", "topic": "orders", "key": "k1", "value": "a", "count": 3},
        {"type": "produce", "topic": "orders", "key": "k2", "value": "b"},
        {"type": "stop_broker", "broker_id": 2},
        {"type": "create_topic", "name": "payments", "partitions": 2, "replication_factor": 2},
        {"type": "produce", "topic": "payments", "key": "p", "value": "c"},
        {"type": "start_broker", "broker_id": 2},
    ]
    parts_sent = 0
    for command in steps:
        assert host.runtime.apply(command).ok, command
        for _ in range(3):
            host.runtime.advance(700)
            update = host._publish()
            if update is None:
                continue
            for element_id, element in top_level(update["html"]):
                page = swap(page, element_id, element)
            parts_sent += sum(1 for i in sent_ids(update) if i.startswith(("stage-", "partition-")))
            # What a viewer holds is what a viewer joining now gets, byte for byte.
            assert re.sub(r'<div id="state-version"[^>]*>', "", page) == re.sub(
                r'<div id="state-version"[^>]*>', "", host.published.full_html
            )
    assert parts_sent > 0  # the diffs above really were made of parts
    # Paused, every label is current: the joined page equals a fresh render of the runtime.
    host.paused = True
    update = host._publish()
    assert update is not None
    for element_id, element in top_level(update["html"]):
        page = swap(page, element_id, element)
    fresh = render_fragments(host.runtime, host._clock_view(), only=ROOM_FRAGMENTS)
    held = dict(top_level(re.sub(r'<div id="state-version"[^>]*></div>', "", page)))
    assert {key: held[key] for key in fresh} == {key: html.strip() for key, html in fresh.items()}


def room_page_slots() -> set[str]:
    slots: set[str] = set()
    for name in ROOM_PAGES + ROOM_INCLUDES:
        slots |= set(re.findall(r'\bid="([\w-]+)"', (TEMPLATES / name).read_text()))
    return slots


def test_a_room_host_renders_no_fragment_without_a_slot() -> None:
    slots = room_page_slots()
    room, sandbox = a_host(room=True), a_host()
    for host in (room, sandbox):
        host.runtime.apply({"type": "produce", "topic": "orders", "key": "k", "value": "v"})
        host.runtime.advance(1_000)
        host._publish()
    sent = {element_id for element_id, _ in top_level(room.published.full_html)}
    assert sent <= slots, sorted(sent - slots)
    assert set(ROOM_FRAGMENTS) <= sent  # and every slot the room pages have is filled
    # A sandbox's page has the panels a room's has not (its metrics, sends, Kafka clients).
    sandbox_sent = {element_id for element_id, _ in top_level(sandbox.published.full_html)}
    assert {"metrics", "sends", "charts", "kafka-clients"} <= sandbox_sent - slots


@pytest.mark.django_db
def test_the_store_marks_a_workshop_room_cluster_and_not_a_sandbox() -> None:
    from webapp import services as sandbox_services
    from webapp.workshops import services

    owner = get_user_model().objects.create_user("t", password="pw-long-enough-1", is_staff=True)
    workshop = services.workshop_create(owner=owner, title="t")
    sandbox = sandbox_services.sandbox_create()
    assert store.cluster_load(cluster_id=workshop.cluster_id).room is True
    assert store.cluster_load(cluster_id=sandbox.id).room is False
