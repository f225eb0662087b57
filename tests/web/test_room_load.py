"""What a room of hundreds of sockets needs of the server: a joining socket's room frame
rendered once for the sockets joining together, host sends bounded per process (redis-py's
pool refuses past its size), one keepalive per process and interval naming all its sockets,
and the leaderboard cut in the database."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from tests.web.test_fanout import FakeSink
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
async def test_one_keepalive_per_process_names_all_its_sockets_of_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A room of N sockets in one process costs the host one keepalive per interval, not N;
    the first comes at a random point of the interval, and a socket that has not joined the
    host yet (or left the relay) is not named."""
    sleeps: list[float] = []
    said: list[list[str]] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 4:
            raise asyncio.CancelledError
        await real_sleep(0)

    async def keepalive(channels: list[str]) -> None:
        said.append(sorted(channels))

    monkeypatch.setattr(fanout.random, "uniform", lambda a, b: 0.37)
    relay = fanout.Relay("dojo.cluster.c1", keepalive)
    sinks = [FakeSink(f"specific.x!{i}", 0) for i in range(5)]
    for sink in sinks:
        relay.members[sink.channel_name] = fanout.Member(sink, None)
    sinks[4].joined = False  # type: ignore[attr-defined]
    monkeypatch.setattr(fanout.asyncio, "sleep", fake_sleep)
    with pytest.raises(asyncio.CancelledError):
        await relay._keep_alive()
    interval = fanout.KEEPALIVE_S
    assert sleeps == [pytest.approx(0.37 * interval), interval, interval, interval]
    assert said == [[f"specific.x!{i}" for i in range(4)]] * 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_process_keeps_its_room_sockets_counted_with_one_message_per_interval(
    monkeypatch: pytest.MonkeyPatch, host_registry: Any
) -> None:
    """Three room sockets of one process: every keepalive interval the host gets one
    `host.viewing` naming all three (before: three messages, one per socket), and all stay
    counted past the host's time-to-live."""
    from channels.testing import WebsocketCommunicator

    from tests.web.test_workshops import make_instructor
    from webapp.asgi import application

    monkeypatch.setattr(fanout, "KEEPALIVE_S", 0.2)
    workshop = await database_sync_to_async(services.workshop_create)(
        owner=await database_sync_to_async(make_instructor)(), title="Keepalive"
    )
    host = await host_registry.ensure(workshop.cluster_id)
    assert host is not None
    host.settings.viewer_ttl_seconds = 0.7
    seen: list[dict[str, Any]] = []
    handle = host.handle

    async def spy(message: dict[str, Any]) -> None:
        if message.get("type") == "host.viewing":
            seen.append(message)
        await handle(message)

    monkeypatch.setattr(host, "handle", spy)
    sockets = []
    for i in range(3):
        cookie = await database_sync_to_async(_learner_cookie)(workshop, f"learner {i}")
        socket = WebsocketCommunicator(
            application, f"/ws/workshops/{workshop.code}/", [*ORIGIN, (b"cookie", cookie)]
        )
        connected, _ = await socket.connect()
        assert connected
        sockets.append(socket)
    try:
        await asyncio.sleep(2.0)
        assert len(host.viewers) == 3  # past the time-to-live: still counted
        assert 3 <= len(seen) <= 12  # one a 0.2 s interval (after a random first wait)
        assert all(sorted(m["viewers"]) == sorted(host.viewers) for m in seen[1:])
    finally:
        for socket in sockets:
            await socket.disconnect()


ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


def _learner_cookie(workshop: Any, name: str) -> bytes:
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore

    participant = Participant.objects.create(workshop=workshop, name=name)
    session = SessionStore()
    session[services.session_key_for(workshop)] = participant.token
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


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


def test_the_room_benchmark_watches_memory_after_the_last_command() -> None:
    """scripts/bench/room.py --watch: the viewers stay connected after the last command while
    the servers' memory is sampled every 10 s (at 0 and 10 s of a 12 s watch); nobody is cut
    off and every command's version still reached every viewer."""
    from tests.web.support import room_bench

    result = room_bench("--watch", "12")
    assert sum(result["errors"].values()) == 0
    watched = result["server_rss_mb"]["watch_every_10_s"]
    assert len(watched) == 2 and all(isinstance(mb, float) and mb > 0 for mb in watched)
    assert result["server_rss_mb"]["growth"]["watch_mb"] == round(watched[1] - watched[0], 1)
    assert result["command_to_each_viewer_ms"]["n"] == 4 * result["commands"]
    assert not room_bench()["server_rss_mb"]["watch_every_10_s"]


def test_the_room_benchmark_says_how_much_memory_grew_late_and_per_command() -> None:
    """scripts/bench/room.py's memory summary: growth over the acting phase's second half (from
    the middle sample to the last), per command acted in that time, and over the watch."""
    from scripts.bench.ws_viewers import memory_growth

    # 7 samples 10 s apart (60 s), 120 commands: the second half is samples 3 to 6 (one sample
    # missing), 30 s and 60 commands.
    found = memory_growth([100.0, 103.0, 104.0, 104.5, None, 105.0, 105.5], 120, [105.5, 105.6])
    assert found == {
        "second_half_mb": 1.0,
        "second_half_kb_per_command": round(1024 * 1.0 / 60, 2),
        "watch_mb": 0.1,
    }
    assert memory_growth([100.0, 101.0], 10, []) == {
        "second_half_mb": None,
        "second_half_kb_per_command": None,
        "watch_mb": None,
    }


def test_the_room_memory_benchmark_breaks_memory_down() -> None:
    """scripts/bench/room_memory.py --breakdown: per 10 s sample, malloc's memory in use and
    held free, SQLite's in use and pymalloc's blocks, next to the resident memory."""
    from tests.web.support import bench_output

    out = bench_output("scripts.bench.room_memory", "--seconds", "3", "--breakdown")
    result = json.loads(out.strip().splitlines()[-1])
    samples = len(result["rss_mb_every_10_s"])
    assert samples >= 1
    for key in ("malloc_in_use_mb", "malloc_free_held_mb", "sqlite_in_use_mb"):
        assert len(result[key]) == samples and all(mb >= 0 for mb in result[key]), key
    assert result["malloc_in_use_mb"][-1] > 1  # a Django process holds megabytes
    assert all(blocks > 10 for blocks in result["python_blocks_k"])


def test_the_checkpoint_memory_benchmark_compares_with_a_store_that_keeps_nothing() -> None:
    """scripts/bench/checkpoint_memory.py: a room's host driven in cluster time, bytes kept per
    record with the checkpoints and without them (the host keeps its own when on, none off)."""
    from tests.web.support import bench_output

    out = bench_output(
        "scripts.bench.checkpoint_memory", "--minutes", "1", "--skip", "0.5", "--top", "2"
    )
    on, off = (
        json.loads(line.split(": ", 1)[1]) for line in out.splitlines() if line.startswith("checkp")
    )
    assert on["records_measured"] == off["records_measured"] == 60
    assert on["checkpoints_kept_by_the_host"] > 0 and on["checkpoints_kept_in_all"] > 0
    assert off["checkpoints_kept_by_the_host"] == off["checkpoints_kept_in_all"] == 0
    assert on["bytes_per_record"] > 0 and off["bytes_per_record"] > 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["checkpoints_bytes_per_record"] == round(
        on["bytes_per_record"] - off["bytes_per_record"], 1
    )
