"""The room's socket: the shared stage of the workshop's cluster plus the room's own frames.

It reuses the sandbox consumer's parsing, rate limit and fan-out (one cluster group; the host
renders each state version once for every socket) and adds, on every message, the role check:
the role comes from the session and the workshop row, never from the message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from webapp.consumers import BadMessage, ClusterConsumer, TokenBucket, viewing_keepalive
from webapp.engine_host import client as host_client
from webapp.engine_host import fanout
from webapp.engine_host.host import viewers_group
from webapp.workshops import pushes, services
from webapp.workshops.models import Participant, Poll, Workshop
from webapp.workshops.stage import StageView, stage_view

logger = logging.getLogger(__name__)

ROOM_TYPES = ("vote", "participate", "poll_push", "poll_close", "poll_reveal", "participation")
INSTRUCTOR_ONLY = frozenset({"poll_push", "poll_close", "poll_reveal", "participation"})


def room_group(workshop_id: int) -> str:
    return f"dojo.workshop.{workshop_id}"


def learners_group(workshop_id: int) -> str:
    """The room's learners' sockets only: their participation controls."""
    return f"dojo.workshop.{workshop_id}.learners"


# -- the poll's histogram: aggregated, pushed at most DOJO_WORKSHOP_HISTOGRAM_HZ a second -------

_pending: set[asyncio.Task[None]] = set()


def histogram_html(workshop: Workshop) -> str:
    poll = services.current_poll(workshop)
    context: dict[str, Any] = {"poll": poll, "bars": []}
    if poll is not None and poll.kind == Poll.Kind.NUMBER:
        revealed = poll.state == Poll.State.REVEALED
        votes = list(poll.votes.values_list("value", "correct"))
        values = [float(v) for v, _ in votes if v is not None]
        buckets = services.number_buckets(values, key=poll.answer_value if revealed else None)
        context["total"] = len(values)
        context["bars"] = _bars([(b.label, b.count, b.holds_key) for b in buckets], len(values))
        if revealed:
            context["within"] = sum(1 for _, correct in votes if correct)
    elif poll is not None:
        counts = services.histogram(poll)
        revealed = poll.state == Poll.State.REVEALED
        context["total"] = sum(counts)
        context["bars"] = _bars(
            [
                (label, count, revealed and i == poll.answer)
                for i, (label, count) in enumerate(zip(poll.choices, counts, strict=True))
            ],
            sum(counts),
        )
    return render_to_string("workshops/fragments/histogram.html", context)


def _bars(rows: list[tuple[str, int, bool]], total: int) -> list[dict[str, Any]]:
    return [
        {
            "label": label,
            "count": count,
            "percent": round(100 * count / (total or 1)),
            "correct": correct,
        }
        for label, count, correct in rows
    ]


def poll_html(workshop: Workshop) -> str:
    return render_to_string(
        "workshops/fragments/poll.html", {"poll": services.current_poll(workshop)}
    )


def participate_html(workshop: Workshop, participant: Participant | None) -> str:
    """The learner's participation controls: only what `offered_commands` gives them now.
    Without a participant, as every learner has it right after the instructor changed the
    participation or the room's cluster (nobody has a consumer yet)."""
    offered = services.offered_commands(workshop, "learner", participant or Participant())
    return render_to_string(
        "workshops/fragments/participate.html",
        {"workshop": workshop, "participant": participant, "offered": offered},
    )


def room_html(workshop: Workshop) -> str:
    """Everything of the room that is not the cluster: prompt, poll, histogram, leaderboard."""
    workshop.refresh_from_db()
    return (
        render_to_string("workshops/fragments/prompt.html", {"workshop": workshop})
        + poll_html(workshop)
        + histogram_html(workshop)
        + leaderboard_html(workshop)
    )


# A socket that joins gets the room's current frame (prompt, poll, histogram, leaderboard):
# rendered once for the sockets joining together, while no room message came in meanwhile
# (every change of the room is pushed to its group, so a new message means a new frame) and
# for at most ROOM_FRAME_REUSE_S. Before, each of a few hundred sockets joining together
# rendered it (six queries and four templates) on the process's one database thread, and the
# last ones waited past Daphne's 5 s handshake limit.
ROOM_FRAME_REUSE_S = 2.0


class _RoomFrame:
    __slots__ = ("at", "generation", "loop", "task")

    def __init__(
        self, at: float, generation: tuple[int, int] | None, task: asyncio.Task[str]
    ) -> None:
        self.at, self.generation, self.task = at, generation, task
        self.loop = asyncio.get_running_loop()


_room_frames: dict[int, _RoomFrame] = {}


async def room_frame(workshop: Workshop) -> str:
    """`room_html` for a socket that joins, shared with the others joining meanwhile."""
    loop = asyncio.get_running_loop()
    generation = fanout.generation(room_group(workshop.pk))
    kept = _room_frames.get(workshop.pk)
    if (
        kept is None
        or kept.loop is not loop
        or generation is None
        or kept.generation != generation
        or loop.time() - kept.at > ROOM_FRAME_REUSE_S
        or (kept.task.done() and (kept.task.cancelled() or kept.task.exception() is not None))
    ):
        now = loop.time()
        for pk in [pk for pk, old in _room_frames.items() if now - old.at > ROOM_FRAME_REUSE_S]:
            del _room_frames[pk]  # rooms nobody joined lately keep nothing here
        task = loop.create_task(database_sync_to_async(room_html)(workshop))
        kept = _room_frames[workshop.pk] = _RoomFrame(now, generation, task)
    return await asyncio.shield(kept.task)


async def push_room(workshop_id: int, *, participation: bool = False) -> None:
    from channels.layers import get_channel_layer

    workshop = await Workshop.objects.select_related("cluster").aget(pk=workshop_id)
    html = await database_sync_to_async(room_html)(workshop)
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(room_group(workshop_id), {"type": "room.html", "html": html})
    if participation:  # every learner's controls as they all are now: nobody has a consumer
        html = await database_sync_to_async(participate_html)(workshop, None)
        await layer.group_send(learners_group(workshop_id), {"type": "room.html", "html": html})


async def _room_send(workshop_id: int, message: dict[str, Any]) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(room_group(workshop_id), message)


# Reveals being played, kept referenced until they finish (they outlive the socket that
# started them: the instructor may reload meanwhile).
_plays: set[asyncio.Task[None]] = set()
PLAY_SLACK_S = 30.0


def _start_play(workshop_id: int, poll: Poll) -> None:
    task = asyncio.get_running_loop().create_task(
        play_and_reveal(workshop_id, poll.pk, str(poll.cluster_id), list(poll.playback))
    )
    _plays.add(task)
    task.add_done_callback(_plays.discard)


def play_wait_s(commands: list[dict[str, Any]]) -> float:
    """How long the asker waits for a play's answer: four times the scenario's own time and
    some slack (the room's clock may run slower than 1x)."""
    run_s = sum(int(c.get("ms", 0)) for c in commands if c.get("type") == "advance") / 1000
    return 4 * run_s + PLAY_SLACK_S


async def play_and_reveal(
    workshop_id: int, poll_id: int, cluster_id: str, commands: list[dict[str, Any]]
) -> None:
    """Play a drill poll's steps on the room's cluster, then reveal the engine's answer. The
    play is tagged with the poll: when it finishes with nobody waiting here any more (this
    process restarted, or the wait ran out: a paused clock), the host's `play_finished`
    reveals it all the same (`reveal_played`), so a poll is never revealed before its play
    ended. Only a play the host refused or that failed here is revealed at once."""
    try:
        frame = await host_client.host_request(
            cluster_id,
            {"type": "host.play", "commands": commands, "tag": play_tag(workshop_id, poll_id)},
            timeout_s=play_wait_s(commands),
        )
    except Exception:
        logger.exception("room %s: playing poll %s failed; revealing", workshop_id, poll_id)
    else:
        if frame is None:
            logger.info("room %s: poll %s still playing; the host reveals it", workshop_id, poll_id)
            return
    if await database_sync_to_async(services.poll_reveal_done)(poll_id=poll_id):
        await push_room(workshop_id)


def play_tag(workshop_id: int, poll_id: int) -> dict[str, Any]:
    return {"workshop": workshop_id, "poll": poll_id}


async def reveal_played(sender: Any, *, cluster_id: str, tag: Any, **_: Any) -> None:
    """The host finished a play (webapp/engine_host/signals.py): a room's drill poll is
    revealed, once, and the room sees the answer (wired in webapp/workshops/apps.py)."""
    if not isinstance(tag, dict) or not {"workshop", "poll"} <= tag.keys():
        return
    if await database_sync_to_async(services.poll_reveal_done)(poll_id=int(tag["poll"])):
        await push_room(int(tag["workshop"]))


def schedule_histogram(
    workshop_id: int, slot: pushes.PushSlot | None = None, layer: Any = None
) -> None:
    """Coalesce votes: at most one histogram push per interval per room, whatever the vote rate
    and however many processes take the votes (the room's push slot, webapp/workshops/pushes)."""
    _schedule_push(workshop_id, histogram_html, slot or pushes.push_slot("histogram"), layer)


def leaderboard_html(workshop: Workshop) -> str:
    return render_to_string(
        "workshops/fragments/leaderboard.html",
        {"board": services.leaderboard(workshop, limit=10)},
    )


def schedule_leaderboard(
    workshop_id: int, slot: pushes.PushSlot | None = None, layer: Any = None
) -> None:
    """A learner joined: the room's leaderboard lists them (score 0) at the next push, one push
    per interval per room however many join together."""
    _schedule_push(workshop_id, leaderboard_html, slot or pushes.push_slot("leaderboard"), layer)


def _schedule_push(
    workshop_id: int, render: Callable[[Workshop], str], slot: pushes.PushSlot, layer: Any
) -> None:
    task = asyncio.get_running_loop().create_task(_pushes(workshop_id, render, slot, layer))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _pushes(
    workshop_id: int, render: Callable[[Workshop], str], slot: pushes.PushSlot, layer: Any
) -> None:
    from channels.layers import get_channel_layer

    try:
        if not await slot.claim(workshop_id):
            return  # the holder (maybe another process) pushes this change too
        layer = layer or get_channel_layer()
        assert layer is not None
        while True:
            await asyncio.sleep(1.0 / float(settings.DOJO_WORKSHOP_HISTOGRAM_HZ))
            await slot.begin(workshop_id)
            workshop = await Workshop.objects.aget(pk=workshop_id)
            html = await database_sync_to_async(render)(workshop)
            await layer.group_send(room_group(workshop_id), {"type": "room.html", "html": html})
            if not await slot.again(workshop_id):
                return
    except Exception:
        logger.exception("room %s: the %s push failed", workshop_id, render.__name__)


@dataclass
class _Joining:
    workshop: Workshop | None = None
    viewer: services.Viewer | None = None
    view: StageView | None = None  # the stage as the viewer's role shows it
    participate: str = ""  # a learner's own participation controls
    new_learner: bool = False  # joined just now: the room's leaderboard is to list them


# A learner's socket that connects this soon after their join is their first: the room's
# leaderboard (pushed at a bounded rate) is to list them; a rejoin later is already listed.
JOIN_LEADERBOARD_WINDOW = timedelta(seconds=60)


def _room_and_viewer(code: str, *, user: Any, session: Any) -> _Joining:
    """The room of a code, who the socket is and what it is offered, in one trip to the
    database thread (a room's sockets connect together, and every trip waits behind the
    others')."""
    workshop = Workshop.objects.select_related("cluster").filter(code=code).first()
    if workshop is None:
        return _Joining()
    viewer, participant = services.viewer_and_participant(workshop, user=user, session=session)
    if viewer is None:
        return _Joining(workshop)
    offered = services.offered_commands(workshop, viewer.role, participant)
    return _Joining(
        workshop,
        viewer,
        stage_view(offered),
        participate_html(workshop, participant) if participant is not None else "",
        participant is not None
        and timezone.now() - participant.joined_at < JOIN_LEADERBOARD_WINDOW,
    )


class WorkshopConsumer(ClusterConsumer):
    workshop: Workshop
    viewer: services.Viewer | None

    async def connect(self) -> None:
        code = str(self.scope["url_route"]["kwargs"]["code"])
        self.joined = False
        self.version = None
        self.default_client = "ws-" + code
        rate = float(settings.DOJO_WS_MESSAGES_PER_SECOND)
        self.bucket = TokenBucket(rate=rate, burst=rate * 2)
        joining = await database_sync_to_async(_room_and_viewer)(
            code, user=self.scope.get("user"), session=self.scope.get("session") or {}
        )
        workshop, viewer = joining.workshop, joining.viewer
        if workshop is None or viewer is None:
            await self.close(code=4403)
            return
        self.workshop = workshop
        self.viewer = viewer
        self.view = joining.view
        self.cluster_id = workshop.cluster_id
        self.brokers, self.controllers = workshop.cluster.brokers, workshop.cluster.controllers
        self.default_client = f"{viewer.role}-{viewer.participant_id or 'x'}-{code}"
        await self.accept()
        # The stage's versions and the room's frames both come through the process's relays.
        await fanout.subscribe(
            viewers_group(self.cluster_id),
            self,
            self.scope,
            self.view,
            keepalive=viewing_keepalive(self.cluster_id),
        )
        await fanout.subscribe(room_group(workshop.pk), self, self.scope)
        if viewer.role == "learner":
            await fanout.subscribe(learners_group(workshop.pk), self, self.scope)
        await host_client.host_send(
            self.cluster_id, {"type": "host.join", "reply_to": self.channel_name}
        )
        # Counted by the host while the process's relay names it (as a sandbox socket).
        self.joined = True
        await self.send(text_data=await room_frame(workshop) + joining.participate)
        if joining.new_learner:
            schedule_leaderboard(workshop.pk)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "workshop", None) is not None:  # idempotent, as the cluster's
            await fanout.unsubscribe(room_group(self.workshop.pk), self)
            await fanout.unsubscribe(learners_group(self.workshop.pk), self)
        await super().disconnect(code)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        assert self.viewer is not None
        if kind == "resync":
            await super()._dispatch(message)
            return
        seq = message.get("seq") if isinstance(message.get("seq"), int) else None
        if kind in ROOM_TYPES:
            await self._room_message(str(kind), message, seq)
            return
        if not isinstance(kind, str):
            raise BadMessage("unknown_type", 'A message needs a "type".')
        data = {k: v for k, v in message.items() if k not in ("type", "seq", "client")}
        if any(not isinstance(v, str | int | float) or isinstance(v, bool) for v in data.values()):
            raise BadMessage("invalid", "Field values must be strings or numbers.")
        try:
            command = await database_sync_to_async(services.cluster_command_for)(
                self.workshop, self.viewer, kind, data
            )
        except services.Forbidden as error:
            raise BadMessage("forbidden", str(error)) from None
        except ValueError as error:
            raise BadMessage("invalid", str(error)) from None
        await self._to_host(command, seq)

    async def _to_host(self, command: dict[str, Any], seq: int | None) -> None:
        if seq is None or seq < 1:
            raise BadMessage("bad_seq", 'Every command needs "seq", a whole number from 1 up.')
        await host_client.host_send(
            self.cluster_id,
            {
                "type": "host.command",
                "reply_to": self.channel_name,
                "client": self.default_client,
                "seq": seq,
                "command": command,
            },
        )

    async def _host_request(
        self, command: dict[str, Any], seq: int | None
    ) -> dict[str, Any] | None:
        """A command whose answer this consumer reads before the browser gets it."""
        if seq is None or seq < 1:
            raise BadMessage("bad_seq", 'Every command needs "seq", a whole number from 1 up.')
        return await host_client.host_request(
            self.cluster_id,
            {"type": "host.command", "client": self.default_client, "seq": seq, "command": command},
        )

    async def _stop_learner_consumers(self, workshop: Workshop) -> None:
        """Participation switched away from consumers: every learner's consumer app closes
        (it leaves the room's group, which rebalances), on the cluster the room shows."""
        apps = await database_sync_to_async(services.participation_consumers_take)(workshop)
        for app_id in apps:
            frame = await host_client.host_request(
                workshop.cluster_id,
                {
                    "type": "host.command",
                    "command": {"type": "app_control", "app_id": app_id, "action": "stop"},
                },
            )
            if not frame or frame.get("type") != "ack":
                logger.warning("room %s: app %s did not stop: %r", workshop.code, app_id, frame)

    async def _room_message(self, kind: str, message: dict[str, Any], seq: int | None) -> None:
        assert self.viewer is not None
        if kind in INSTRUCTOR_ONLY and self.viewer.role != "instructor":
            raise BadMessage("forbidden", "Only the instructor runs the room.")
        wid = self.workshop.pk
        if kind == "participate":
            if self.viewer.role != "learner":
                raise BadMessage("forbidden", "Only a learner joins in.")
            workshop = await Workshop.objects.select_related("cluster").aget(pk=wid)
            try:
                command = await database_sync_to_async(services.cluster_command_for)(
                    workshop, self.viewer, "participate", message
                )
            except services.Forbidden as error:
                raise BadMessage("forbidden", str(error)) from None
            except ValueError as error:
                raise BadMessage("invalid", str(error)) from None
            if command["type"] not in ("add_group_consumer", "app_control"):
                await self._to_host(command, seq)
                return
            # The learner's own consumer: the host's ack names the app, kept so that switching
            # participation off stops it (and that its owner may remove it).
            frame = await self._host_request(command, seq)
            acked = bool(frame and frame.get("type") == "ack")
            if command["type"] == "add_group_consumer":
                app_id = frame.get("app_id") if frame and acked else None
            else:  # removed: gone when acked, else still theirs
                app_id = None if acked else int(command["app_id"])
            await database_sync_to_async(services.participant_consumer_set)(
                participant_id=self.viewer.participant_id, app_id=app_id
            )
            await self._send_frame(frame or {"type": "error", "code": "busy", "seq": seq})
            await self._send_participate()
            return
        if kind == "vote":
            if self.viewer.role != "learner" or self.viewer.participant_id is None:
                raise BadMessage("forbidden", "Only a learner answers a poll.")
            try:
                await database_sync_to_async(services.vote)(
                    participant_id=self.viewer.participant_id,
                    choice=message.get("choice"),
                    value=message.get("value"),
                )
            except ValueError as error:
                raise BadMessage("invalid", str(error)) from None
            schedule_histogram(wid)
            await self._send_frame({"type": "ack", "seq": seq, "message": "Answer saved."})
            return
        workshop = await Workshop.objects.aget(pk=wid)
        try:
            if kind == "poll_push":
                poll = await database_sync_to_async(services.poll_push)(
                    workshop=workshop, source=str(message.get("source", ""))
                )
                if poll.cluster_id and poll.cluster_id != self.cluster_id:
                    # A drill poll moved the room to the drill's cluster: every socket follows.
                    await _room_send(wid, {"type": "room.cluster", "cluster": poll.cluster_id})
            elif kind == "poll_close":
                await database_sync_to_async(services.poll_set_state)(
                    workshop=workshop, state=Poll.State.CLOSED
                )
            elif kind == "poll_reveal":
                poll = await database_sync_to_async(services.poll_reveal)(workshop=workshop)
                if poll.state == Poll.State.RUNNING:
                    # A drill poll: the room watches the scenario's steps play on the stage,
                    # then sees the engine's answer.
                    _start_play(workshop.pk, poll)
            elif kind == "participation":
                mode = str(message.get("mode", ""))
                if mode not in Workshop.Participation.values:
                    raise ValueError(
                        "Participation is one of: " + ", ".join(Workshop.Participation.values)
                    )
                workshop.participation = mode
                workshop.prompt = str(message.get("prompt", workshop.prompt))[:500]
                await workshop.asave(update_fields=["participation", "prompt", "last_active_at"])
                if mode != Workshop.Participation.CONSUMERS:
                    await self._stop_learner_consumers(workshop)
        except ValueError as error:
            raise BadMessage("invalid", str(error)) from None
        # Participation changed (or a drill poll moved the room, forgetting the learners'
        # consumers): every learner's controls change with it.
        await push_room(wid, participation=kind in ("participation", "poll_push"))
        await self._send_frame({"type": "ack", "seq": seq, "message": "Done."})

    async def _send_participate(self) -> None:
        assert self.viewer is not None

        def render() -> str:
            workshop = Workshop.objects.get(pk=self.workshop.pk)
            participant = Participant.objects.get(pk=self.viewer.participant_id)
            return participate_html(workshop, participant)

        await self.send(text_data=await database_sync_to_async(render)())

    # -- the stage as this role sees it ---------------------------------------------------------

    def _shown(self, html: str) -> str:
        view = getattr(self, "view", None)
        return html if view is None else view(html)

    async def cluster_full(self, event: dict[str, Any]) -> None:
        await super().cluster_full({**event, "html": self._shown(str(event["html"]))})

    async def cluster_state(self, event: dict[str, Any]) -> None:
        await super().cluster_state({**event, "html": self._shown(str(event["html"]))})

    # -- from the room group ------------------------------------------------------------------

    async def relay_event(self, event: dict[str, Any]) -> None:
        """The room moved to another cluster (a drill poll): watch that one from now on."""
        if event.get("type") != "room.cluster":
            await super().relay_event(event)
            return
        new = str(event.get("cluster", ""))
        if not new or new == self.cluster_id:
            return
        old = self.cluster_id
        await fanout.unsubscribe(viewers_group(old), self)
        try:
            await host_client.host_send(old, {"type": "host.leave", "reply_to": self.channel_name})
        except Exception:
            logger.warning("room socket %s: could not leave %s", self.channel_name, old)
        self.workshop = await Workshop.objects.select_related("cluster").aget(pk=self.workshop.pk)
        self.cluster_id = self.workshop.cluster_id
        self.brokers = self.workshop.cluster.brokers
        self.controllers = self.workshop.cluster.controllers
        self.version = None  # the new host's full state comes next
        await fanout.subscribe(
            viewers_group(self.cluster_id),
            self,
            self.scope,
            self.view,
            keepalive=viewing_keepalive(self.cluster_id),
        )
        await host_client.host_send(
            self.cluster_id, {"type": "host.join", "reply_to": self.channel_name}
        )

    async def room_html(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["html"])
