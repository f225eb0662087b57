"""Workshop rules as plain functions: creating rooms, joining, roles, polls, the leaderboard.

Every function here runs synchronously against the database (the consumer and views wrap them);
none trusts the browser: roles come from the session and the workshop row, never a message.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from lessons.catalogue import get_catalogue
from lessons.scenarios import COMMANDS, Limits, commands_for, validate
from lessons.scenarios.commands import errors_text
from webapp import services as sandbox_services
from webapp.models import LiveCluster
from webapp.workshops.models import Participant, Poll, RoomCluster, Vote, Workshop

MAX_NAME_LENGTH = 40


class JoinRefused(Exception):
    """Why a learner could not join (the text is shown to them)."""


class Forbidden(Exception):
    """A message the sender's role may not send; the consumer answers with an error frame."""


def session_key_for(workshop: Workshop) -> str:
    return f"workshop-{workshop.pk}"


def workshop_create(*, owner: Any, title: str, lesson_id: str = "") -> Workshop:
    """A new room on a fresh shared cluster (the sandbox's three brokers and topic)."""
    if lesson_id and get_catalogue().lesson(lesson_id) is None:
        raise ValueError(f"No lesson {lesson_id!r}.")
    with transaction.atomic():
        cluster = sandbox_services.sandbox_create()
        for _ in range(5):  # a clash of six-letter codes is rare; retry a few times
            try:
                with transaction.atomic():
                    workshop = Workshop.objects.create(
                        owner=owner,
                        title=title.strip()[:120] or "Workshop",
                        lesson_id=lesson_id,
                        cluster=cluster,
                        topic=sandbox_services.SANDBOX_TOPIC,
                        group_id="room",
                    )
                    RoomCluster.objects.create(workshop=workshop, cluster=cluster)
                    return workshop
            except IntegrityError:
                continue
    raise RuntimeError("Could not find a free join code.")


def is_workshop_cluster(cluster_id: str) -> bool:
    """A cluster some room shows or showed: reached only through that room's socket."""
    return (
        RoomCluster.objects.filter(cluster_id=cluster_id).exists()
        or Workshop.objects.filter(cluster_id=cluster_id).exists()
    )


def workshops_delete_idle(*, max_idle_days: float) -> int:
    """Delete rooms nobody touched for `max_idle_days` (neither the room nor its cluster's
    log), with their participants, polls, exports and every cluster they showed."""
    cutoff = timezone.now() - timedelta(days=max_idle_days)
    idle = Workshop.objects.filter(last_active_at__lt=cutoff, cluster__last_active_at__lt=cutoff)
    deleted = 0
    for workshop in idle:
        with transaction.atomic():
            cluster_ids = {
                workshop.cluster_id,
                *workshop.room_clusters.values_list("cluster_id", flat=True),
            }
            workshop.delete()
            LiveCluster.objects.filter(pk__in=cluster_ids).delete()
            deleted += 1
    return deleted


# -- joining -------------------------------------------------------------------------------------


def join_allowed(client_key: str) -> bool:
    """At most DOJO_WORKSHOP_JOINS_PER_MINUTE join attempts a minute from one client."""
    limit = int(settings.DOJO_WORKSHOP_JOINS_PER_MINUTE)
    key = f"workshop-join:{client_key}"
    cache.add(key, 0, timeout=60)
    try:
        attempts = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=60)
        attempts = 1
    return attempts <= limit


def clean_name(raw: str) -> str:
    name = " ".join(str(raw or "").split())
    if not name:
        raise JoinRefused("Type a display name.")
    if len(name) > MAX_NAME_LENGTH:
        raise JoinRefused(f"A display name is at most {MAX_NAME_LENGTH} characters.")
    if any(not ch.isprintable() for ch in name):
        raise JoinRefused("A display name cannot contain control characters.")
    return name


def participant_for_token(workshop: Workshop, token: str | None) -> Participant | None:
    if not token:
        return None
    return Participant.objects.filter(workshop=workshop, token=token).first()


def join(*, workshop: Workshop, name: str, token: str | None) -> Participant:
    """The participant of this browser (same token: same name and score), or a new one."""
    existing = participant_for_token(workshop, token)
    if existing is not None:
        existing.save(update_fields=["last_seen_at"])
        return existing
    if workshop.state != Workshop.State.OPEN:
        raise JoinRefused("This workshop is closed.")
    name = clean_name(name)
    with transaction.atomic():
        if workshop.participants.count() >= int(settings.DOJO_WORKSHOP_MAX_PARTICIPANTS):
            raise JoinRefused("This room is full.")
        if workshop.participants.filter(name__iexact=name).exists():
            raise JoinRefused("Someone in the room already has that name: pick another.")
        try:
            with transaction.atomic():
                return Participant.objects.create(workshop=workshop, name=name)
        except IntegrityError:
            raise JoinRefused("Someone in the room already has that name: pick another.") from None


# -- roles ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Who is on the other end of a socket or a request, decided on the server."""

    role: str  # "instructor", "learner" or "presenter"
    participant_id: int | None = None


def viewer_for(workshop: Workshop, *, user: Any, session: Mapping[str, Any]) -> Viewer | None:
    signed_in = user is not None and getattr(user, "is_authenticated", False)
    if signed_in and user.is_staff and workshop.owner_id == user.pk:
        return Viewer("instructor")
    participant = participant_for_token(workshop, session.get(session_key_for(workshop)))
    if participant is not None:
        return Viewer("learner", participant.pk)
    return None


def cluster_command_for(
    workshop: Workshop, viewer: Viewer, kind: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The cluster command this viewer's message stands for, checked against the command
    table's roles every time; raises Forbidden, or ValueError with the validation errors."""
    limits = Limits(brokers=workshop.cluster.brokers, controllers=workshop.cluster.controllers)
    if viewer.role == "instructor":
        spec = commands_for("instructor").get(kind)
        if spec is None or kind == "console":
            raise Forbidden(f"{kind!r} is not a command an instructor sends on the stage.")
        payload, errors = validate(spec, data, runtime_limits=limits)
    elif viewer.role == "learner":
        if kind != "participate":
            raise Forbidden("Only the instructor changes the room's cluster.")
        payload, errors = _participation_command(workshop, viewer, data, limits)
    else:
        raise Forbidden("This screen only watches the room.")
    if errors:
        raise ValueError(errors_text(errors))
    if payload["type"] not in commands_for(viewer.role):
        raise Forbidden(f"{payload['type']!r} is not yours to send.")
    return payload


PENDING_APP = "pending"


def participant_consumer_set(*, participant_id: int, app_id: int | None) -> None:
    """Record the learner's consumer app as the host numbered it (None: it did not start)."""
    Participant.objects.filter(pk=participant_id).update(
        consumer_app_id="" if app_id is None else str(app_id)
    )


def participation_consumers_take(workshop: Workshop) -> list[int]:
    """The learners' consumer apps of the room, forgotten now: the caller stops them on the
    cluster (participation switched off, or away from consumers)."""
    with transaction.atomic():
        rows = workshop.participants.exclude(consumer_app_id="").select_for_update()
        apps = [int(p.consumer_app_id) for p in rows if p.consumer_app_id.isdigit()]
        rows.update(consumer_app_id="")
    return sorted(apps)


def _participation_command(
    workshop: Workshop, viewer: Viewer, data: Mapping[str, Any], limits: Limits
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A learner's own part: one consumer in the room's group, or produce with their own key.
    The group, topic and key are the server's, whatever the message says."""
    participant = Participant.objects.get(pk=viewer.participant_id)
    mode = workshop.participation
    if mode == Workshop.Participation.CONSUMERS:
        if participant.consumer_app_id:
            raise Forbidden("You already have a consumer in the room's group.")
        payload, errors = validate(
            COMMANDS["add_group_consumer"],
            {"group": workshop.group_id, "topic": workshop.topic},
            runtime_limits=limits,
        )
        if not errors:  # reserved now; the host's ack names the app (participant_consumer_set)
            participant.consumer_app_id = PENDING_APP
            participant.save(update_fields=["consumer_app_id"])
        return payload, errors
    if mode == Workshop.Participation.PRODUCERS:
        return validate(
            COMMANDS["produce"],
            {
                "topic": workshop.topic,
                "key": participant.producer_key,
                "value": data.get("value", ""),
                "count": 1,
            },
            runtime_limits=limits,
        )
    raise Forbidden("The instructor has not handed out participation.")


# -- polls ---------------------------------------------------------------------------------------


def lesson_predict_questions(lesson_id: str) -> list[dict[str, Any]]:
    """The predict-the-outcome questions of a lesson, as poll drafts."""
    lesson = get_catalogue().lesson(lesson_id) if lesson_id else None
    if lesson is None:
        return []
    drafts = []
    for step in lesson.steps:
        predict = step.predict
        if predict is None:
            continue
        values = [choice.value for choice in predict.choices]
        drafts.append(
            {
                "source": f"{lesson.id}#{step.index}",
                "title": step.title,
                "question": predict.question,
                "choices": [choice.label for choice in predict.choices],
                "answer": values.index(predict.answer),
                "explain": predict.explain,
            }
        )
    return drafts


def poll_push(*, workshop: Workshop, source: str) -> Poll:
    """Open the poll of a lesson question or a predict drill (closing any open one)."""
    if source.startswith(DRILL_SOURCE):
        return poll_push_drill(workshop=workshop, drill_id=source[len(DRILL_SOURCE) :])
    drafts = {d["source"]: d for d in lesson_predict_questions(workshop.lesson_id)}
    draft = drafts.get(source)
    if draft is None:
        raise ValueError(f"No question {source!r} in this workshop's lesson.")
    with transaction.atomic():
        workshop.polls.filter(state=Poll.State.OPEN).update(state=Poll.State.CLOSED)
        return Poll.objects.create(
            workshop=workshop,
            question=draft["question"],
            choices=draft["choices"],
            answer=draft["answer"],
            explain=draft["explain"],
            source=source,
        )


DRILL_SOURCE = "drill:"


def drill_questions() -> list[dict[str, Any]]:
    """The predict drills a room can be polled on (lessons/drills): choice questions whose
    answer key the engine computes by running the drill's scenario."""
    from lessons.drills.bank import default_bank

    return [
        {"source": DRILL_SOURCE + d.id, "title": d.title, "question": d.prompt, "lesson": d.lesson}
        for d in default_bank()
        if d.kind == "predict" and d.question_type == "choice"
    ]


def _drill_run(drill: Any) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]], int]:
    """The drill's scenario as a command log split where its steps begin: (cluster spec, the
    topics and setup, the steps to play, the time the engine's run ends)."""
    from lessons.drills import progress
    from lessons.scenarios import ClusterRuntime, load_scenario
    from webapp.drills_stage import scenario_log

    raw = dict(drill.body["scenario"])
    where = f"{drill.source}#{drill.id}"
    scenario = load_scenario(raw, source=where)
    spec, commands = scenario_log(raw, source=where)
    start = len(scenario.topics) + len(scenario.setup)
    setup, steps = commands[:start], commands[start:]
    # The runner may run on after the last step; the room's run ends where the key was read.
    end_ms = int(progress.answer_key(drill).computed.get("end_ms") or 0)
    runtime = ClusterRuntime(spec)
    for payload in commands:
        runtime.apply(payload)
    if end_ms > runtime.now_ms:
        steps.append({"type": "advance", "ms": end_ms - runtime.now_ms})
    return spec, setup, steps, end_ms


def poll_push_drill(*, workshop: Workshop, drill_id: str) -> Poll:
    """A poll from a predict drill: the room moves to a fresh cluster built like the drill's
    scenario (its topics and setup done, clock paused), so learners predict from what they see;
    the reveal plays the scenario's steps on it. The answer is the engine's key."""
    from lessons.drills import progress
    from lessons.drills.bank import default_bank
    from webapp import timeline

    drill = default_bank().get(drill_id)
    if drill is None or drill.kind != "predict" or drill.question_type != "choice":
        raise ValueError(f"No predict drill {drill_id!r} with choices to poll on.")
    key = progress.answer_key(drill)
    choices = drill.choices
    ids = [c.id for c in choices]
    if key.key not in ids:
        raise ValueError(f"The engine's answer to {drill_id!r} is not one of its choices.")
    spec, setup, steps, _ = _drill_run(drill)
    with transaction.atomic():
        cluster = timeline.sandbox_from_log(spec=spec, commands=setup, paused=True)
        RoomCluster.objects.create(workshop=workshop, cluster=cluster)
        workshop.polls.filter(state=Poll.State.OPEN).update(state=Poll.State.CLOSED)
        workshop.cluster = cluster
        workshop.save(update_fields=["cluster", "last_active_at"])
        # The learners' consumers were apps of the cluster the room left.
        workshop.participants.update(consumer_app_id="")
        observed = key.computed.get("observed")
        return Poll.objects.create(
            workshop=workshop,
            question=drill.prompt,
            choices=[c.text for c in choices],
            answer=ids.index(key.key),
            explain=drill.explanation,
            source=DRILL_SOURCE + drill.id,
            drill_id=drill.id,
            cluster=cluster,
            playback=steps,
            observed="" if observed is None else str(observed),
        )


def current_poll(workshop: Workshop) -> Poll | None:
    return workshop.polls.order_by("-created_at", "-pk").first()


def vote(*, participant_id: int, choice: Any) -> Poll:
    participant = Participant.objects.select_related("workshop").get(pk=participant_id)
    poll = current_poll(participant.workshop)
    if poll is None or poll.state != Poll.State.OPEN:
        raise ValueError("No question is open right now.")
    if isinstance(choice, bool) or not isinstance(choice, int | str):
        raise ValueError("Pick one of the answers.")
    try:
        index = int(choice)
    except ValueError:
        raise ValueError("Pick one of the answers.") from None
    if not 0 <= index < len(poll.choices):
        raise ValueError("Pick one of the answers.")
    Vote.objects.update_or_create(poll=poll, participant=participant, defaults={"choice": index})
    return poll


def histogram(poll: Poll) -> list[int]:
    counts = [0] * len(poll.choices)
    for row in poll.votes.values("choice").annotate(n=Count("id")):
        if 0 <= row["choice"] < len(counts):
            counts[row["choice"]] = row["n"]
    return counts


def poll_set_state(*, workshop: Workshop, state: str) -> Poll:
    poll = current_poll(workshop)
    if poll is None:
        raise ValueError("No poll to change.")
    poll.state = state
    poll.save(update_fields=["state"])
    return poll


def poll_reveal(*, workshop: Workshop) -> Poll:
    """Reveal the current poll. A drill poll still to be played on the room's cluster goes to
    RUNNING (its steps play, then `poll_reveal_done`); revealing a running one again skips to
    the answer."""
    poll = current_poll(workshop)
    if poll is None:
        raise ValueError("No poll to change.")
    playable = (
        poll.drill_id
        and poll.playback
        and poll.cluster_id == workshop.cluster_id
        and poll.state in (Poll.State.OPEN, Poll.State.CLOSED)
    )
    poll.state = Poll.State.RUNNING if playable else Poll.State.REVEALED
    poll.save(update_fields=["state"])
    return poll


def poll_reveal_done(*, poll_id: int) -> None:
    Poll.objects.filter(pk=poll_id, state=Poll.State.RUNNING).update(state=Poll.State.REVEALED)


def leaderboard(workshop: Workshop, limit: int | None = None) -> list[dict[str, Any]]:
    """Participants by correct predictions on revealed polls (ties: who joined first); the
    first `limit` of them when given (the database sorts and cuts: a room's page shows ten of
    hundreds, and every socket that joins renders it)."""
    revealed = workshop.polls.filter(state=Poll.State.REVEALED)
    total = revealed.count()
    rows = workshop.participants.annotate(
        score=Count(
            "votes",
            filter=Q(votes__poll__in=revealed) & Q(votes__choice=F("votes__poll__answer")),
        ),
        answered=Count("votes", filter=Q(votes__poll__in=revealed)),
    ).order_by("-score", "joined_at", "pk")
    if limit is not None:
        rows = rows[:limit]
    return [
        {"name": p.name, "score": p.score, "answered": p.answered, "polls": total, "id": p.pk}
        for p in rows
    ]


def results_rows(workshop: Workshop) -> list[list[str]]:
    polls = list(workshop.polls.filter(state=Poll.State.REVEALED).order_by("created_at", "pk"))
    votes = {(v.participant_id, v.poll_id): v.choice for v in Vote.objects.filter(poll__in=polls)}
    rows = []
    for entry in leaderboard(workshop):
        row = [entry["name"], str(entry["score"]), str(entry["polls"])]
        for poll in polls:
            choice = votes.get((entry["id"], poll.pk))
            row.append("" if choice is None else poll.choices[choice])
        rows.append(row)
    return rows


def results_header(workshop: Workshop) -> list[str]:
    polls = workshop.polls.filter(state=Poll.State.REVEALED).order_by("created_at", "pk")
    return ["name", "correct", "revealed polls", *[p.question for p in polls]]


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        # A cell starting with = + - @ is a formula in a spreadsheet: keep it text.
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row])
    return out.getvalue()
