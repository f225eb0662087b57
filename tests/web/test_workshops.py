"""Workshops: joining and rejoining, roles checked on every message, room isolation, polls,
the histogram's bounded rate, fork and the CSV export."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from webapp.asgi import application
from webapp.models import ClusterCommand, LiveCluster
from webapp.workshops import consumers as room_consumers
from webapp.workshops import services
from webapp.workshops.models import (
    Participant,
    Poll,
    ResultsExport,
    Vote,
    Workshop,
)
from webapp.workshops.models import (
    format_number as fmt,
)
from webapp.workshops.tasks import export_execute

LESSON = "replication-isr"  # has a predict question


def make_instructor(name: str = "teacher") -> Any:
    return get_user_model().objects.create_user(name, password="pw-long-enough-1", is_staff=True)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def joined(workshop: Workshop, name: str) -> Client:
    client = Client()
    response = client.post(f"/w/{workshop.code}/", {"name": name})
    assert response.status_code == 302
    return client


# -- HTTP ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_instructor_opens_a_room_and_sees_code_qr_and_control() -> None:
    teacher = make_instructor()
    client = signed_in(teacher)
    response = client.post("/workshops/", {"title": "ISR day", "lesson": LESSON})
    workshop = Workshop.objects.get()
    assert (
        response.status_code == 302
        and response["Location"] == f"/workshops/{workshop.code}/control/"
    )
    control = client.get(f"/workshops/{workshop.code}/control/").content.decode()
    assert workshop.code in control and "Push:" in control
    qr = client.get(f"/workshops/{workshop.code}/qr.svg")
    assert qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content
    assert b'xmlns="http://www.w3.org/2000/svg"' in qr.content  # else an <img> shows nothing
    present = client.get(f"/workshops/{workshop.code}/present/").content.decode()
    assert f"/w/{workshop.code}/" in present


@pytest.mark.django_db
def test_workshop_pages_need_a_staff_login_and_the_owner() -> None:
    assert Client().get("/workshops/").status_code == 302
    owner, other = make_instructor("a"), make_instructor("b")
    workshop = services.workshop_create(owner=owner, title="t")
    assert signed_in(other).get(f"/workshops/{workshop.code}/control/").status_code == 404
    learner = get_user_model().objects.create_user("c", password="x", is_staff=False)
    assert signed_in(learner).get("/workshops/").status_code == 302


@pytest.mark.django_db
def test_rejoin_from_the_same_browser_keeps_name_and_score() -> None:
    workshop = services.workshop_create(owner=make_instructor(), title="t", lesson_id=LESSON)
    browser = joined(workshop, "Ada")
    participant = Participant.objects.get(name="Ada")
    poll = services.poll_push(
        workshop=workshop, source=services.lesson_predict_questions(LESSON)[0]["source"]
    )
    services.vote(participant_id=participant.pk, choice=poll.answer)
    services.poll_set_state(workshop=workshop, state=Poll.State.REVEALED)
    # The learner leaves and comes back: same session cookie, no name asked, same score.
    page = browser.get(f"/w/{workshop.code}/").content.decode()
    assert "Ada" in page and 'name="name"' not in page
    browser.post(f"/w/{workshop.code}/", {"name": "Someone else"})
    assert list(workshop.participants.values_list("name", flat=True)) == ["Ada"]
    assert services.leaderboard(workshop)[0] == {
        "name": "Ada",
        "score": 1,
        "answered": 1,
        "polls": 1,
        "id": participant.pk,
    }


@pytest.mark.django_db
def test_join_refuses_taken_names_full_rooms_and_too_many_attempts(settings: Any) -> None:
    workshop = services.workshop_create(owner=make_instructor(), title="t")
    joined(workshop, "Ada")
    taken = Client().post(f"/w/{workshop.code}/", {"name": "ada"})
    assert taken.status_code == 400 and b"already has that name" in taken.content
    settings.DOJO_WORKSHOP_MAX_PARTICIPANTS = 1
    full = Client().post(f"/w/{workshop.code}/", {"name": "Bob"})
    assert full.status_code == 400 and b"full" in full.content
    settings.DOJO_WORKSHOP_JOINS_PER_MINUTE = 3
    statuses = [
        Client().post(f"/w/{workshop.code}/", {"name": f"x{i}"}).status_code for i in range(3)
    ]
    assert statuses[-1] == 429


@pytest.mark.django_db
def test_names_are_escaped_on_every_page() -> None:
    teacher = make_instructor()
    workshop = services.workshop_create(owner=teacher, title="<b>t</b>")
    browser = joined(workshop, "<script>alert(1)</script>")
    page = browser.get(f"/w/{workshop.code}/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    html = room_consumers.room_html(workshop)
    assert "<script>alert" not in html


@pytest.mark.django_db
def test_the_shared_cluster_is_not_reachable_through_sandbox_urls() -> None:
    workshop = services.workshop_create(owner=make_instructor(), title="t")
    client = Client()
    assert client.get(f"/sandbox/{workshop.cluster_id}/").status_code == 403
    response = client.post(
        f"/sandbox/{workshop.cluster_id}/produce/", {"topic": "orders", "value": "x", "count": 1}
    )
    assert response.status_code == 403
    assert client.post(f"/sandbox/{workshop.cluster_id}/fork/", {"t": 0}).status_code == 403


@pytest.mark.django_db
def test_export_writes_progress_and_a_csv_of_the_results() -> None:
    teacher = make_instructor()
    workshop = services.workshop_create(owner=teacher, title="t", lesson_id=LESSON)
    for name in ("Ada", "=cmd()"):
        joined(workshop, name)
    poll = services.poll_push(
        workshop=workshop, source=services.lesson_predict_questions(LESSON)[0]["source"]
    )
    ada = Participant.objects.get(name="Ada")
    services.vote(participant_id=ada.pk, choice=poll.answer)
    services.poll_set_state(workshop=workshop, state=Poll.State.REVEALED)
    export = ResultsExport.objects.create(workshop=workshop)
    assert export_execute(export_id=export.pk) == 2
    export.refresh_from_db()
    assert export.status == "done" and export.percent == 100
    lines = export.csv.splitlines()
    assert lines[0].startswith("name,correct,revealed polls,")
    assert lines[1].startswith(f"Ada,1,1,{poll.choices[poll.answer]}")
    assert lines[2].startswith("'=cmd(),0,1")  # a formula-looking name stays text
    csv = signed_in(teacher).get(f"/workshops/{workshop.code}/export/{export.pk}/csv")
    assert csv["Content-Type"].startswith("text/csv") and csv.content.decode() == export.csv
    other = signed_in(make_instructor("other"))
    assert other.get(f"/workshops/{workshop.code}/export/{export.pk}/csv").status_code == 404


# -- the room socket ----------------------------------------------------------------------------

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


def cookie_header(client: Client) -> list[tuple[bytes, bytes]]:
    cookies = "; ".join(f"{k}={v.value}" for k, v in client.cookies.items())
    return [*ORIGIN, (b"cookie", cookies.encode())]


async def room_socket(workshop: Workshop, client: Client | None) -> WebsocketCommunicator:
    headers = cookie_header(client) if client is not None else ORIGIN
    socket = WebsocketCommunicator(application, f"/ws/workshops/{workshop.code}/", headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


async def frame_of(socket: WebsocketCommunicator, kind: str, timeout: float = 10) -> dict[str, Any]:
    async def until() -> dict[str, Any]:
        while True:
            text = await socket.receive_from(timeout=timeout)
            if text.startswith("{"):
                frame = json.loads(text)
                if frame.get("type") == kind:
                    return frame

    return await asyncio.wait_for(until(), timeout)


async def html_with(socket: WebsocketCommunicator, needle: str, timeout: float = 10) -> str:
    async def until() -> str:
        while True:
            text = await socket.receive_from(timeout=timeout)
            if needle in text:
                return text

    return await asyncio.wait_for(until(), timeout)


async def ack_and_html(
    socket: WebsocketCommunicator, needle: str, timeout: float = 10
) -> tuple[dict[str, Any], str]:
    """A command's ack and the first frame holding `needle`, in whichever order they come: the
    version that shows a command may reach the socket before the ack does (on a loaded machine
    it does), and `frame_of` would pass that version over."""

    async def until() -> tuple[dict[str, Any], str]:
        ack: dict[str, Any] | None = None
        html: str | None = None
        while ack is None or html is None:
            text = await socket.receive_from(timeout=timeout)
            if text.startswith("{"):
                frame = json.loads(text)
                if frame.get("type") == "ack":
                    ack = frame
            elif html is None and needle in text:
                html = text
        return ack, html

    return await asyncio.wait_for(until(), timeout)


def room_of_two() -> tuple[Workshop, Client, Client, Client]:
    teacher = make_instructor()
    workshop = services.workshop_create(owner=teacher, title="t", lesson_id=LESSON)
    return workshop, signed_in(teacher), joined(workshop, "Ada"), joined(workshop, "Bob")


def logged_kinds(cluster_id: str) -> list[str]:
    return list(ClusterCommand.objects.filter(cluster_id=cluster_id).values_list("kind", flat=True))


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_only_the_instructor_changes_the_cluster_a_forged_learner_command_is_refused(
    host_registry: Any,
) -> None:
    workshop, teacher, ada, _ = await sync_to_async(room_of_two)()
    before = await sync_to_async(logged_kinds)(workshop.cluster_id)
    learner = await room_socket(workshop, ada)
    for forged in (
        {"type": "stop_broker", "seq": 1, "broker_id": 1},
        {"type": "produce", "seq": 2, "topic": "orders", "value": "x", "count": 1},
        {"type": "poll_reveal", "seq": 3},
        {"type": "advance", "seq": 4, "ms": 100000},
        {"type": "participate", "seq": 5, "value": "x"},  # participation not handed out
    ):
        await learner.send_json_to(forged)
        frame = await frame_of(learner, "error")
        assert frame["code"] == "forbidden", forged
    assert await sync_to_async(logged_kinds)(workshop.cluster_id) == before

    instructor = await room_socket(workshop, teacher)
    await instructor.send_json_to({"type": "stop_broker", "seq": 1, "broker_id": 1})
    assert (await frame_of(instructor, "ack"))["seq"] == 1
    # The host logs the time that ran (an `advance`) before a command; the command is what counts.
    after = [
        kind for kind in await sync_to_async(logged_kinds)(workshop.cluster_id) if kind != "advance"
    ]
    assert after == [*(kind for kind in before if kind != "advance"), "stop_broker"]
    await learner.disconnect()
    await instructor.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_no_socket_reaches_a_room_or_cluster_it_does_not_belong_to(
    host_registry: Any,
) -> None:
    workshop, _, ada, _ = await sync_to_async(room_of_two)()
    other = await sync_to_async(services.workshop_create)(
        owner=await sync_to_async(make_instructor)("other"), title="other"
    )
    for path, headers in (
        (f"/ws/workshops/{other.code}/", cookie_header(ada)),  # Ada is not in that room
        (f"/ws/workshops/{workshop.code}/", ORIGIN),  # nobody: no session
        (f"/ws/clusters/{workshop.cluster_id}/", cookie_header(ada)),  # around the room
    ):
        socket = WebsocketCommunicator(application, path, headers)
        connected, code = await socket.connect()
        assert not connected and code == 4403, path


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_handed_out_participation_gives_each_learner_one_consumer_of_the_room_group(
    host_registry: Any,
) -> None:
    workshop, teacher, ada, bob = await sync_to_async(room_of_two)()
    instructor = await room_socket(workshop, teacher)
    await instructor.send_json_to(
        {"type": "participation", "seq": 1, "mode": "consumers", "prompt": "Join the group"}
    )
    await frame_of(instructor, "ack")
    learner = await room_socket(workshop, ada)
    # Whatever group the message names, the server uses the room's.
    await learner.send_json_to({"type": "participate", "seq": 1, "group": "mine", "topic": "x"})
    assert (await frame_of(learner, "ack"))["seq"] == 1
    await learner.send_json_to({"type": "participate", "seq": 2})
    assert (await frame_of(learner, "error"))["code"] == "forbidden"  # one consumer each
    rows = await sync_to_async(list)(
        ClusterCommand.objects.filter(cluster_id=workshop.cluster_id, kind="add_group_consumer")
    )
    assert [(r.payload["group"], r.payload["topic"]) for r in rows] == [("room", "orders")]

    await instructor.send_json_to({"type": "participation", "seq": 2, "mode": "producers"})
    await frame_of(instructor, "ack")
    other = await room_socket(workshop, bob)
    await other.send_json_to({"type": "participate", "seq": 1, "value": "hi", "key": "forged"})
    await frame_of(other, "ack")
    produce = await sync_to_async(
        ClusterCommand.objects.filter(cluster_id=workshop.cluster_id, kind="produce").last
    )()
    bob_row = await Participant.objects.aget(name="Bob")
    assert produce.payload["key"] == bob_row.producer_key and produce.payload["value"] == "hi"
    for socket in (instructor, learner, other):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_poll_flow_push_vote_histogram_at_a_bounded_rate_reveal_leaderboard(
    host_registry: Any, settings: Any
) -> None:
    settings.DOJO_WORKSHOP_HISTOGRAM_HZ = 2.0
    workshop, teacher, ada, bob = await sync_to_async(room_of_two)()
    source = services.lesson_predict_questions(LESSON)[0]["source"]
    instructor = await room_socket(workshop, teacher)
    await instructor.send_json_to({"type": "poll_push", "seq": 1, "source": source})
    await frame_of(instructor, "ack")
    poll = await Poll.objects.aget()
    learners = [await room_socket(workshop, ada), await room_socket(workshop, bob)]
    # Many answers in a burst (changing minds): one vote row each, few histogram messages.
    for i in range(10):
        for n, socket in enumerate(learners):
            choice = poll.answer if n == 0 else (poll.answer + 1) % len(poll.choices)
            await socket.send_json_to(
                {"type": "vote", "seq": 100 + i, "choice": choice if i == 9 else (i % 2)}
            )
            await frame_of(socket, "ack")
    histogram = await html_with(instructor, "<h2>Answers (2)</h2>")
    assert histogram.count('data-role="count">1<') == 2
    await asyncio.sleep(0.8)
    messages = 0
    while not await instructor.receive_nothing(timeout=0.1):
        if 'id="ws-histogram"' in await instructor.receive_from():
            messages += 1
    assert messages <= 1  # 20 votes within well under a second: at most two pushes in all
    await instructor.send_json_to({"type": "poll_reveal", "seq": 2})
    revealed = await html_with(instructor, 'class="correct"')
    assert "Ada · 1/1" in revealed and "Bob · 0/1" in revealed
    for socket in (instructor, *learners):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
def test_fork_copies_the_shared_cluster_into_a_private_sandbox() -> None:
    workshop, teacher, ada, _ = room_of_two()
    from webapp.engine_host import store

    store.cluster_command_append(
        cluster_id=workshop.cluster_id,
        seq=len(store.cluster_load(cluster_id=workshop.cluster_id).commands) + 1,
        payload={"type": "stop_broker", "broker_id": 2},
        logical_time_ms=0,
    )
    response = ada.post(f"/w/{workshop.code}/fork/")
    assert response.status_code == 302
    fork_id = response["Location"].split("/")[2]
    assert fork_id != workshop.cluster_id
    page = ada.get(response["Location"]).content.decode()  # the fork says where it came from
    assert "Taken home from the workshop room" in page and workshop.code in page
    assert "Taken home" not in Client().get(response["Location"]).content.decode()
    fork = LiveCluster.objects.get(pk=fork_id)
    assert "stop_broker" in logged_kinds(fork.id)
    assert not services.is_workshop_cluster(fork.id)
    assert Client().post(f"/w/{workshop.code}/fork/").status_code == 403


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_switching_participation_off_stops_every_learners_consumer(
    host_registry: Any,
) -> None:
    workshop, teacher, ada, bob = await sync_to_async(room_of_two)()
    instructor = await room_socket(workshop, teacher)
    await instructor.send_json_to({"type": "participation", "seq": 1, "mode": "consumers"})
    await frame_of(instructor, "ack")
    learners = [await room_socket(workshop, ada), await room_socket(workshop, bob)]
    for socket in learners:
        await socket.send_json_to({"type": "participate", "seq": 1})
        assert (await frame_of(socket, "ack"))["app_id"] in (1, 2)
    apps = sorted(
        int(a)
        for a in await sync_to_async(list)(
            Participant.objects.values_list("consumer_app_id", flat=True)
        )
    )
    assert apps == [1, 2]

    await instructor.send_json_to({"type": "participation", "seq": 2, "mode": "watch"})
    await frame_of(instructor, "ack")
    stops = await sync_to_async(list)(
        ClusterCommand.objects.filter(cluster_id=workshop.cluster_id, kind="app_control")
    )
    assert sorted((r.payload["app_id"], r.payload["action"]) for r in stops) == [
        (1, "stop"),
        (2, "stop"),
    ]
    assert not await Participant.objects.exclude(consumer_app_id="").aexists()
    # Off means off: the learners' own commands are refused again.
    for socket in learners:
        await socket.send_json_to({"type": "participate", "seq": 2, "value": "x"})
        assert (await frame_of(socket, "error"))["code"] == "forbidden"

    await instructor.send_json_to({"type": "participation", "seq": 3, "mode": "producers"})
    await frame_of(instructor, "ack")
    await learners[0].send_json_to({"type": "participate", "seq": 3, "value": "mine"})
    await frame_of(learners[0], "ack")
    await instructor.send_json_to({"type": "participation", "seq": 4, "mode": "watch"})
    await frame_of(instructor, "ack")
    await learners[0].send_json_to({"type": "participate", "seq": 4, "value": "again"})
    assert (await frame_of(learners[0], "error"))["code"] == "forbidden"
    produced = await sync_to_async(list)(
        ClusterCommand.objects.filter(cluster_id=workshop.cluster_id, kind="produce")
    )
    assert [r.payload["value"] for r in produced] == ["mine"]  # a producer per message: none left
    for socket in (instructor, *learners):
        await socket.disconnect()


# -- idle rooms and sandboxes -------------------------------------------------------------------


def _age(workshop: Workshop | None, cluster_ids: list[str], days: float) -> None:
    from datetime import timedelta

    from django.utils import timezone

    then = timezone.now() - timedelta(days=days)
    if workshop is not None:
        Workshop.objects.filter(pk=workshop.pk).update(last_active_at=then)
    LiveCluster.objects.filter(pk__in=cluster_ids).update(last_active_at=then)


@pytest.mark.django_db
def test_the_sweep_removes_idle_rooms_with_their_clusters_and_idle_sandboxes_only() -> None:
    from webapp import services as sandbox_services
    from webapp.tasks import idle_sweep

    teacher = make_instructor()
    idle_room = services.workshop_create(owner=teacher, title="old")
    busy_room = services.workshop_create(owner=teacher, title="new")
    idle_sandbox = sandbox_services.sandbox_create()
    fresh_sandbox = sandbox_services.sandbox_create()
    joined(idle_room, "Ada")
    _age(idle_room, [idle_room.cluster_id, idle_sandbox.id], days=40)
    # A room whose row is old but whose cluster is in use is not idle; nor is its cluster a
    # sandbox the sandbox sweep may take.
    _age(busy_room, [], days=40)
    assert idle_sweep(sandbox_idle_days=30, room_idle_days=2) == {"rooms": 1, "sandboxes": 1}
    assert list(Workshop.objects.values_list("pk", flat=True)) == [busy_room.pk]
    assert set(LiveCluster.objects.values_list("pk", flat=True)) == {
        busy_room.cluster_id,
        fresh_sandbox.id,
    }
    assert not Participant.objects.exists()
    _age(None, [busy_room.cluster_id], days=40)
    Workshop.objects.filter(pk=busy_room.pk).update(
        last_active_at=LiveCluster.objects.get(pk=busy_room.cluster_id).created_at
    )
    # The room's cluster idle for the sandbox age while the room is fresh: kept with its room.
    assert idle_sweep(sandbox_idle_days=30, room_idle_days=100) == {"rooms": 0, "sandboxes": 0}
    assert LiveCluster.objects.filter(pk=busy_room.cluster_id).exists()


def test_the_periodic_sweep_is_on_the_beat_schedule() -> None:
    from django.conf import settings

    from webapp.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["delete-idle-rooms-and-sandboxes"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    assert float(entry["schedule"]) == float(settings.DOJO_IDLE_SWEEP_SECONDS)


SWEEP_SETUP = """
import django, json
django.setup()
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from webapp import services as sandbox_services
from webapp.models import LiveCluster
from webapp.workshops import services
from webapp.workshops.models import Workshop
teacher = get_user_model().objects.create_user("t", password="pw-long-enough-1", is_staff=True)
room = services.workshop_create(owner=teacher, title="old")
idle = sandbox_services.sandbox_create()
fresh = sandbox_services.sandbox_create()
then = timezone.now() - timedelta(days=40)
Workshop.objects.filter(pk=room.pk).update(last_active_at=then)
LiveCluster.objects.filter(pk__in=[room.cluster_id, idle.id]).update(last_active_at=then)
print(json.dumps({"fresh": fresh.id}))
"""


def test_the_embedded_worker_runs_the_sweep_on_its_own_schedule(tmp_path: Any) -> None:
    """`celery worker -B` as ./scripts/run starts it, with the sweep every second: idle rooms
    and sandboxes go without any beat process or server."""
    import sqlite3
    import subprocess
    import sys
    import time

    from tests.web.support import ROOT, celery_worker_process, migrate, server_env

    env = server_env(tmp_path, without_celery=True) | {"KAFKA_DOJO_IDLE_SWEEP_SECONDS": "1"}
    migrate(env)
    done = subprocess.run(
        [sys.executable, "-c", SWEEP_SETUP],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    fresh = json.loads(done.stdout.strip().splitlines()[-1])["fresh"]

    def left() -> tuple[list[str], int]:
        with sqlite3.connect(tmp_path / "db.sqlite3", timeout=20) as db:
            clusters = [row[0] for row in db.execute("select id from webapp_livecluster")]
            rooms = db.execute("select count(*) from workshops_workshop").fetchone()[0]
        return clusters, rooms

    assert len(left()[0]) == 3
    with celery_worker_process(env, tmp_path / "worker.log"):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and left() != ([fresh], 0):
            time.sleep(0.5)
    assert left() == ([fresh], 0), (tmp_path / "worker.log").read_text()[-3000:]


# -- polls from the drills ----------------------------------------------------------------------

DRILL = "null-keys-sticky"  # a predict drill: 12 keyless records, how many partitions get them


def room_replay(cluster_id: str) -> Any:
    """The room cluster's runtime rebuilt from its command log alone."""
    from lessons.scenarios import ClusterRuntime
    from webapp.engine_host import store

    stored = store.cluster_load(cluster_id=cluster_id)
    runtime = ClusterRuntime(stored.spec)
    for payload in stored.commands:
        runtime.apply(payload)
    return runtime, stored.commands


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_drill_poll_runs_its_scenario_on_the_shared_cluster_then_reveals_the_engines_key(
    host_registry: Any,
) -> None:
    from lessons.drills import keys, progress
    from lessons.drills.bank import default_bank
    from lessons.scenarios import read_probe
    from webapp.drills_stage import scenario_log
    from webapp.engine_host import fanout
    from webapp.engine_host.host import viewers_group

    drill = default_bank().get(DRILL)
    assert drill is not None
    engine_key = (await sync_to_async(progress.answer_key)(drill)).key
    workshop, teacher, ada, bob = await sync_to_async(room_of_two)()
    first_cluster = workshop.cluster_id
    instructor = await room_socket(workshop, teacher)
    learners = [await room_socket(workshop, ada), await room_socket(workshop, bob)]
    await instructor.send_json_to({"type": "poll_push", "seq": 1, "source": f"drill:{DRILL}"})
    await frame_of(instructor, "ack")
    poll = await Poll.objects.aget()
    room = await Workshop.objects.aget(pk=workshop.pk)
    # The room moved to a cluster built like the drill's scenario, paused before its steps.
    assert room.cluster_id == poll.cluster_id != first_cluster
    assert poll.drill_id == DRILL and poll.choices == [c.text for c in drill.choices]
    assert poll.answer == [c.id for c in drill.choices].index(engine_key)
    for cluster_id in (first_cluster, room.cluster_id):  # both stay the room's alone
        assert await sync_to_async(services.is_workshop_cluster)(cluster_id)
    for _ in range(100):  # every socket follows the room to the new cluster
        if fanout.local_members(viewers_group(room.cluster_id)) == 3:
            break
        await asyncio.sleep(0.05)
    assert fanout.local_members(viewers_group(room.cluster_id)) == 3
    assert fanout.local_members(viewers_group(first_cluster)) == 0
    await html_with(learners[0], "logs")  # the drill's topic is on the learner's stage

    wrong = (poll.answer + 1) % len(poll.choices)
    for socket, choice in zip(learners, (poll.answer, wrong), strict=True):
        await socket.send_json_to({"type": "vote", "seq": 10, "choice": choice})
        await frame_of(socket, "ack")
    await instructor.send_json_to({"type": "poll_reveal", "seq": 2})
    running = await html_with(learners[1], 'data-role="running"')
    assert 'class="correct"' not in running  # no answer while the scenario runs
    assert (await Poll.objects.aget()).state == Poll.State.RUNNING
    revealed = await html_with(learners[1], 'data-role="answer"', timeout=60)
    assert "computed by the engine" in revealed and "Ada · 1/1" in revealed
    assert "Bob · 0/1" in revealed

    # The room's cluster ran the whole scenario: its log holds the drill's steps, and the
    # answer read off the room's own run is the engine's key.
    runtime, logged = await sync_to_async(room_replay)(room.cluster_id)
    _, scenario = scenario_log(dict(drill.body["scenario"]), source=DRILL)
    steps = [c["type"] for c in scenario if c["type"] != "advance"]
    assert [c["type"] for c in logged if c["type"] != "advance"] == steps
    end_ms = (await sync_to_async(progress.answer_key)(drill)).computed["end_ms"]
    assert runtime.now_ms >= end_ms
    spec = drill.body["key"]
    observed = [read_probe(runtime, spec["probe"], dict(a)) for a in spec["args"]]
    assert keys.choose(drill, keys.reduce_value(spec.get("reduce"), observed)) == engine_key
    board = await sync_to_async(services.leaderboard)(room)
    assert [(r["name"], r["score"], r["polls"]) for r in board] == [("Ada", 1, 1), ("Bob", 0, 1)]
    for socket in (instructor, *learners):
        await socket.disconnect()


NUMBER_DRILL = "leader-failover-time"  # predict, a number: when the partition gets a new leader


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_number_drill_poll_takes_numbers_buckets_them_and_reveals_the_engines_number(
    host_registry: Any,
) -> None:
    from lessons.drills import progress
    from lessons.drills.bank import default_bank

    drill = default_bank().get(NUMBER_DRILL)
    assert drill is not None and drill.question_type == "number"
    engine_key = (await sync_to_async(progress.answer_key)(drill)).key
    workshop, teacher, ada, bob = await sync_to_async(room_of_two)()
    listed = {q["source"]: q for q in await sync_to_async(services.drill_questions)()}
    assert listed[f"drill:{NUMBER_DRILL}"]["answer"] == "number"
    instructor = await room_socket(workshop, teacher)
    learners = [await room_socket(workshop, ada), await room_socket(workshop, bob)]
    await instructor.send_json_to(
        {"type": "poll_push", "seq": 1, "source": f"drill:{NUMBER_DRILL}"}
    )
    await frame_of(instructor, "ack")
    poll = await Poll.objects.aget()
    assert poll.kind == Poll.Kind.NUMBER and poll.choices == [] and poll.playback
    assert poll.answer_value == float(engine_key) and poll.tolerance_absolute == 2000
    await html_with(learners[0], 'inputmode="decimal"')  # a number box, not buttons

    # Bad numbers are refused and save nothing; a learner's typed number is fine.
    for bad in ("", "soon", "1e400", True):
        await learners[0].send_json_to({"type": "vote", "seq": 5, "value": bad})
        assert (await frame_of(learners[0], "error"))["code"] == "invalid", bad
    assert await Vote.objects.acount() == 0
    near = f"{int(engine_key) + 1500:,}"  # within ±2,000 ms, written with a digit group
    far = str(int(engine_key) + 6000)
    for socket, value in zip(learners, (near, far), strict=True):
        await socket.send_json_to({"type": "vote", "seq": 10, "value": value})
        await frame_of(socket, "ack")
    histogram = await html_with(instructor, "<h2>Answers (2)</h2>")
    assert 'class="correct"' not in histogram  # the bars never hint at the key before the reveal
    await instructor.send_json_to({"type": "poll_reveal", "seq": 2})
    revealed = await html_with(learners[1], 'data-role="answer"', timeout=60)
    assert "computed by the engine" in revealed and "Ada · 1/1" in revealed
    assert "Bob · 0/1" in revealed and 'data-role="within">1 of 2' in revealed

    # The number the room was told is the one the room's own run gives: the first new leader
    # of the drill's topic after the kill, read off the cluster rebuilt from its log.
    room = await Workshop.objects.aget(pk=workshop.pk)
    runtime, _ = await sync_to_async(room_replay)(room.cluster_id)
    elected = [
        e.time_ms
        for e in runtime.cluster.events
        if e.kind == "leader_elected" and e.data.get("topic") == "orders" and e.time_ms > 1000
    ]
    assert elected and elected[0] == engine_key
    assert f"<strong>{fmt(engine_key)}" in revealed
    for socket in (instructor, *learners):
        await socket.disconnect()


@pytest.mark.django_db
def test_number_and_pick_drills_become_polls_whose_key_is_the_drills_own() -> None:
    from lessons.drills import grading
    from lessons.drills.bank import default_bank

    teacher = make_instructor()
    workshop = services.workshop_create(owner=teacher, title="t")
    ada = services.join(workshop=workshop, name="Ada", token=None)
    bank = default_bank()
    kinds = [q["kind"] for q in services.drill_questions()]
    assert set(kinds) == {"predict", "number", "pick"}
    assert kinds == sorted(kinds, key=services.POLL_KINDS.index)  # one group each in the list
    number = next(d for d in bank if d.kind == "number")
    poll = services.poll_push(workshop=workshop, source=f"drill:{number.id}")
    assert poll.kind == Poll.Kind.NUMBER and not poll.playback and poll.cluster_id is None
    assert "{" not in poll.question  # the parameters are filled in
    services.vote(participant_id=ada.pk, value=str(poll.answer_value))
    vote = Vote.objects.get(poll=poll)
    expected = grading.grade_number(
        str(poll.answer_value), float(poll.answer_value or 0), **number.tolerance
    )
    assert vote.correct is expected.correct is True

    pick = next(d for d in bank if d.kind == "pick")
    poll = services.poll_push(workshop=workshop, source=f"drill:{pick.id}")
    assert poll.choices == [c.text for c in pick.choices]
    assert poll.answer_label == next(c.text for c in pick.choices if c.id == pick.body["answer"])
    wrong = (poll.answer + 1) % len(poll.choices)
    services.vote(participant_id=ada.pk, choice=wrong)
    assert not Vote.objects.get(poll=poll).correct
    with pytest.raises(ValueError):
        services.poll_push(workshop=workshop, source="drill:no-such-drill")
    explain = next(d for d in bank if d.kind == "explain")
    with pytest.raises(ValueError):
        services.poll_push(workshop=workshop, source=f"drill:{explain.id}")


@pytest.mark.parametrize(
    ("values", "labels"),
    [
        ([], []),
        ([7, 7, 7], ["7"]),
        ([1, 2, 2, 3], ["1", "2", "3"]),
        (
            [9000, 9500, 10000, 10100, 11000, 12000],
            ["9,000–9,999", "10,000–10,999", "11,000–11,999", "12,000–12,999"],
        ),
        ([0.5, 0.75, 1.0, 1.25], ["0.5 to 1", "1 to 1.5"]),
        # One wild guess goes to its own open bar instead of squashing the rest into one.
        ([10, 11, 12, 12, 13, 14, 10**9], ["10–11", "12–13", "14–15", "above 14"]),
    ],
)
def test_number_answers_fall_into_round_buckets(values: list[float], labels: list[str]) -> None:
    buckets = services.number_buckets([float(v) for v in values])
    assert [b.label for b in buckets] == labels
    assert sum(b.count for b in buckets) == len(values)
    assert len(buckets) <= services.MAX_BUCKETS + 2
    if values:  # the key marks the bar it falls in, and never changes the bars
        marked = services.number_buckets([float(v) for v in values], key=float(values[0]))
        assert [b.label for b in marked] == labels
        assert sum(b.holds_key for b in marked) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_reveal_is_in_the_log_so_a_host_killed_mid_play_plays_on_to_the_same_state(
    host_registry: Any,
) -> None:
    from lessons.drills import progress
    from lessons.drills.bank import default_bank
    from webapp.engine_host import store

    drill = default_bank().get(NUMBER_DRILL)
    assert drill is not None
    key = await sync_to_async(progress.answer_key)(drill)
    workshop, teacher, ada, _ = await sync_to_async(room_of_two)()
    instructor = await room_socket(workshop, teacher)
    learner = await room_socket(workshop, ada)
    await instructor.send_json_to(
        {"type": "poll_push", "seq": 1, "source": f"drill:{NUMBER_DRILL}"}
    )
    await frame_of(instructor, "ack")
    room = await Workshop.objects.aget(pk=workshop.pk)
    await learner.send_json_to({"type": "vote", "seq": 1, "value": str(key.key)})
    await frame_of(learner, "ack")
    await instructor.send_json_to({"type": "poll_reveal", "seq": 3})
    await html_with(learner, 'data-role="running"')

    # The play is in the log before the clock plays it: each command with its cluster time.
    host = host_registry.hosts[room.cluster_id]
    for _ in range(200):  # the room shows "running" as the play request leaves for the host
        stored = await sync_to_async(store.cluster_load)(cluster_id=room.cluster_id)
        if stored.playback is not None:
            break
        await asyncio.sleep(0.02)
    assert stored.playback is not None and stored.playback["applied"] == 0
    (kill,) = stored.playback["plan"]
    assert kill["command"]["type"] == "stop_broker"
    assert store.PLAY_KIND not in [c["type"] for c in stored.commands]  # never replayed
    while host.runtime.now_ms < kill["at_ms"] - 700:  # part-way to the step (at 1x), not at it
        await asyncio.sleep(0.01)
    assert host._play_applied == 0
    # kill -9 (no await since the check): the host's tasks die where they stand; nothing is
    # flushed or released.
    for task in host._tasks:
        task.cancel()
    host.running = False
    host_registry._forget(host)
    await asyncio.sleep(0.2)

    restarted = await host_registry.ensure(room.cluster_id)
    assert restarted is not None and restarted is not host
    await instructor.send_json_to({"type": "speed", "seq": 4, "speed": 5})  # the rest, faster
    await frame_of(instructor, "ack")
    revealed = await html_with(learner, 'data-role="answer"', timeout=60)
    assert "Ada · 1/1" in revealed

    # The log holds the whole scenario once, and the room's cluster rebuilt from it is the
    # engine's own run: the new leader comes at the time the drill's key says.
    runtime, logged = await sync_to_async(room_replay)(room.cluster_id)
    assert [c["type"] for c in logged if c["type"] != "advance"].count("stop_broker") == 1
    assert runtime.now_ms >= key.computed["end_ms"]
    elected = [
        e.time_ms
        for e in runtime.cluster.events
        if e.kind == "leader_elected" and e.data.get("topic") == "orders" and e.time_ms > 1000
    ]
    assert elected[0] == key.key
    after = await sync_to_async(store.cluster_load)(cluster_id=room.cluster_id)
    assert after.playback is not None and after.playback["applied"] == 1

    # A fork after the reveal holds it too.
    response = await sync_to_async(ada.post)(f"/w/{workshop.code}/fork/")
    assert response.status_code == 302
    fork_runtime, fork_log = await sync_to_async(room_replay)(response["Location"].split("/")[2])
    assert "stop_broker" in [c["type"] for c in fork_log]
    assert fork_runtime.now_ms >= key.computed["end_ms"]
    assert fork_runtime.cluster.describe_topic("orders").partitions[0].leader != 2
    for socket in (instructor, learner):
        await socket.disconnect()


EVIL = "<img src=x onerror=alert(1)>"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_names_titles_prompts_and_learners_values_are_escaped_for_every_viewer(
    host_registry: Any,
) -> None:
    teacher_user = await sync_to_async(make_instructor)()
    workshop = await sync_to_async(services.workshop_create)(owner=teacher_user, title=EVIL)
    teacher = await sync_to_async(signed_in)(teacher_user)
    ada = await sync_to_async(joined)(workshop, EVIL)
    for client, path in (
        (teacher, f"/workshops/{workshop.code}/control/"),
        (teacher, f"/workshops/{workshop.code}/present/"),
        (teacher, "/workshops/"),
        (ada, f"/w/{workshop.code}/"),
    ):
        page = (await sync_to_async(client.get)(path)).content.decode()
        assert EVIL not in page and "&lt;img src=x onerror=alert(1)&gt;" in page, path

    instructor = await room_socket(workshop, teacher)
    await instructor.send_json_to(
        {"type": "participation", "seq": 1, "mode": "producers", "prompt": EVIL}
    )
    await frame_of(instructor, "ack")
    learner = await room_socket(workshop, ada)
    await learner.send_json_to({"type": "participate", "seq": 1, "value": EVIL})
    await frame_of(learner, "ack")
    # The record with the learner's value reaches the stage of every viewer, as text.
    texts: list[str] = []
    for _ in range(200):
        text = await instructor.receive_from(timeout=10)
        texts.append(text)
        if "onerror=alert(1)&gt;" in text and 'id="topics"' in text:
            break
    assert any("onerror=alert(1)&gt;" in t for t in texts)
    assert not any(EVIL in t for t in texts)
    board = await sync_to_async(room_consumers.room_html)(workshop)
    assert EVIL not in board and "&lt;img" in board
    for socket in (instructor, learner):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_learners_who_join_appear_on_the_leaderboard_in_one_bounded_push(
    host_registry: Any, settings: Any
) -> None:
    settings.DOJO_WORKSHOP_HISTOGRAM_HZ = 2.0
    teacher = await sync_to_async(make_instructor)()
    workshop = await sync_to_async(services.workshop_create)(
        owner=teacher, title="t", lesson_id=LESSON
    )
    instructor = await room_socket(workshop, await sync_to_async(signed_in)(teacher))
    first = await html_with(instructor, 'id="ws-leaderboard"')
    assert "Nobody yet." in first
    names = [f"Learner{i}" for i in range(6)]
    clients, learners = [], []
    for name in names:  # six join together: their pages' sockets connect within a second
        clients.append(await sync_to_async(joined)(workshop, name))
        learners.append(await room_socket(workshop, clients[-1]))
    board = await html_with(instructor, "Learner5 · 0/0")
    assert "Nobody yet." not in board
    assert all(f"{name} · 0/0" in board for name in names)
    await asyncio.sleep(1.2)
    pushes = 1
    while not await instructor.receive_nothing(timeout=0.1):
        if 'id="ws-leaderboard"' in await instructor.receive_from():
            pushes += 1
    assert pushes <= 2  # coalesced: not one leaderboard push per learner
    # A learner rejoining long after their join is already listed: no push for it.
    await sync_to_async(Participant.objects.update)(
        joined_at=timezone.now() - room_consumers.JOIN_LEADERBOARD_WINDOW
    )
    await learners[0].disconnect()
    learners[0] = await room_socket(workshop, clients[0])
    await asyncio.sleep(1.2)
    while not await instructor.receive_nothing(timeout=0.1):
        assert 'id="ws-leaderboard"' not in await instructor.receive_from()
    for socket in (instructor, *learners):
        await socket.disconnect()
