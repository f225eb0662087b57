"""What a room of hundreds of sockets needs of the server: a joining socket's room frame
rendered once for the sockets joining together, host sends bounded per process (redis-py's
pool refuses past its size), keepalives spread over the interval, and the leaderboard cut in
the database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer

from tests.web.test_fanout import FakeSink
from webapp import consumers as cluster_consumers
from webapp.engine_host import client as host_client
from webapp.engine_host import fanout
from webapp.workshops import consumers, services
from webapp.workshops.models import Participant, Poll, Vote


class FakeWorkshop:
    def __init__(self, pk: int) -> None:
        self.pk = pk


@pytest.mark.django_db
@pytest.mark.asyncio
async def test_sockets_joining_together_share_one_room_frame_until_the_room_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    renders: list[int] = []

    def room_html(workshop: Any) -> str:
        renders.append(workshop.pk)
        return f"<div>room {workshop.pk} #{len(renders)}</div>"

    monkeypatch.setattr(consumers, "room_html", room_html)
    consumers._room_frames.clear()
    workshop = FakeWorkshop(7)
    group = consumers.room_group(7)
    sink = FakeSink("socket-room", version=None)
    await fanout.subscribe(group, sink, {})

    frames = await asyncio.gather(*(consumers.room_frame(workshop) for _ in range(40)))
    assert renders == [7] and set(frames) == {"<div>room 7 #1</div>"}

    # A room message (the instructor pushed a poll, say) came: the next socket renders anew.
    layer = get_channel_layer()
    await layer.group_send(group, {"type": "room.html", "html": "<div>poll</div>"})
    for _ in range(200):
        if sink.texts:
            break
        await asyncio.sleep(0.01)
    assert sink.texts == ["<div>poll</div>"]
    assert await consumers.room_frame(workshop) == "<div>room 7 #2</div>"
    assert await consumers.room_frame(workshop) == "<div>room 7 #2</div>"

    # Older than ROOM_FRAME_REUSE_S: rendered again, whatever the relay saw.
    consumers._room_frames[7].at -= consumers.ROOM_FRAME_REUSE_S + 1
    assert await consumers.room_frame(workshop) == "<div>room 7 #3</div>"
    await fanout.unsubscribe(group, sink)
    # No relay in this process (no socket of the room here): nothing is reused.
    assert await consumers.room_frame(workshop) == "<div>room 7 #4</div>"
    assert renders == [7, 7, 7, 7]


@pytest.mark.django_db
@pytest.mark.asyncio
async def test_a_failed_room_frame_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def room_html(workshop: Any) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return "<div>ok</div>"

    monkeypatch.setattr(consumers, "room_html", room_html)
    consumers._room_frames.clear()
    sink = FakeSink("socket-fail", version=None)
    await fanout.subscribe(consumers.room_group(8), sink, {})
    with pytest.raises(RuntimeError):
        await consumers.room_frame(FakeWorkshop(8))
    assert await consumers.room_frame(FakeWorkshop(8)) == "<div>ok</div>"
    await fanout.unsubscribe(consumers.room_group(8), sink)


@pytest.mark.asyncio
async def test_host_sends_of_one_process_are_bounded_and_none_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = peak = 0
    delivered: list[int] = []

    async def slow_send(cluster_id: str, message: dict[str, Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        delivered.append(message["n"])

    monkeypatch.setattr(host_client, "_host_send", slow_send)
    await asyncio.gather(*(host_client.host_send("c", {"n": n}) for n in range(300)))
    assert sorted(delivered) == list(range(300))
    assert peak == host_client.HOST_SEND_CONCURRENCY


@pytest.mark.asyncio
async def test_keepalives_start_at_a_random_point_of_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[float] = []
    sent: list[dict[str, Any]] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise asyncio.CancelledError

    async def fake_send(cluster_id: str, message: dict[str, Any]) -> None:
        sent.append(message)

    socket = cluster_consumers.ClusterConsumer()
    socket.cluster_id = "c1"
    socket.channel_name = "specific.x!y"
    monkeypatch.setattr(cluster_consumers.random, "uniform", lambda a, b: 0.37)
    monkeypatch.setattr(cluster_consumers.asyncio, "sleep", fake_sleep)
    monkeypatch.setattr(cluster_consumers.host_client, "host_send", fake_send)
    with pytest.raises(asyncio.CancelledError):
        await socket._keep_watching()
    interval = cluster_consumers.VIEWER_KEEPALIVE_S
    assert sleeps == [pytest.approx(0.37 * interval), interval, interval]
    assert sent == [{"type": "host.viewing", "reply_to": "specific.x!y"}] * 2


@pytest.mark.django_db
def test_the_leaderboard_limit_is_the_top_of_the_whole_board() -> None:
    from tests.web.test_workshops import make_instructor

    workshop = services.workshop_create(owner=make_instructor(), title="Board")
    people = [Participant.objects.create(workshop=workshop, name=f"p{i}") for i in range(15)]
    poll = Poll.objects.create(
        workshop=workshop, question="?", choices=["a", "b"], answer=1, state=Poll.State.REVEALED
    )
    for person in people[5:8]:
        Vote.objects.create(poll=poll, participant=person, choice=1, correct=True)
    whole = services.leaderboard(workshop)
    top = services.leaderboard(workshop, limit=4)
    assert len(whole) == 15 and top == whole[:4]
    assert [row["name"] for row in top[:3]] == ["p5", "p6", "p7"]


def test_the_room_benchmark_spreads_viewers_over_client_processes() -> None:
    """scripts/bench/room.py --clients 2: the viewers live in two client processes, every one
    sees every command's version, and each process's CPU is reported (no timing asserted)."""
    from tests.web.support import room_bench

    result = room_bench("--clients", "2")
    assert result["viewers"] == 4 and sum(result["errors"].values()) == 0
    assert result["command_to_each_viewer_ms"]["n"] == 4 * result["commands"]
    assert result["client_processes"] == 3 and len(result["client_cpu_percent"]) == 3
    assert result["connect_ms"]["n"] == 4
    (server,) = result["server_processes"].values()
    assert server["rss_mb"]["start"] and server["cpu_wait_percent"] is not None
    assert result["server_rss_mb"]["every_10_s"]
