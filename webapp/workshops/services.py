"""Workshop rules as plain functions: creating rooms, joining, roles, polls, the leaderboard.

Every function here runs synchronously against the database (the consumer and views wrap them);
none trusts the browser: roles come from the session and the workshop row, never a message.
"""

from __future__ import annotations

import csv
import io
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from lessons.catalogue import get_catalogue
from lessons.scenarios import Limits, commands_for, validate
from lessons.scenarios.commands import CommandSpec, errors_text
from webapp import services as sandbox_services
from webapp.models import LiveCluster
from webapp.workshops.models import (
    Participant,
    Poll,
    RoomCluster,
    Vote,
    Workshop,
    format_number,
)

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
    return viewer_and_participant(workshop, user=user, session=session)[0]


def viewer_and_participant(
    workshop: Workshop, *, user: Any, session: Mapping[str, Any]
) -> tuple[Viewer | None, Participant | None]:
    """Who this is, and a learner's participant row (read once)."""
    signed_in = user is not None and getattr(user, "is_authenticated", False)
    if signed_in and user.is_staff and workshop.owner_id == user.pk:
        return Viewer("instructor"), None
    participant = participant_for_token(workshop, session.get(session_key_for(workshop)))
    if participant is not None:
        return Viewer("learner", participant.pk), participant
    return None, None


def offered_commands(
    workshop: Workshop, role: str, participant: Participant | None = None
) -> dict[str, CommandSpec]:
    """The cluster commands `role` may send in this room now, from the command table: what the
    room's pages offer (stage buttons, forms, the learner's participation controls) and what
    `cluster_command_for` accepts, one list for both. The instructor has every command of the
    table's instructor role but the console; a learner has at most their own part of the
    handed-out participation (add their consumer, or remove it once added; produce with their
    own key); the presenter's screen only watches."""
    if role == "instructor":
        return {name: spec for name, spec in commands_for(role).items() if name != "console"}
    if role != "learner" or participant is None:
        return {}
    allowed = commands_for(role)
    mode = workshop.participation
    if mode == Workshop.Participation.CONSUMERS:
        name = "app_control" if participant.consumer_app_id else "add_group_consumer"
    elif mode == Workshop.Participation.PRODUCERS:
        name = "produce"
    else:
        return {}
    return {name: allowed[name]} if name in allowed else {}


def cluster_command_for(
    workshop: Workshop, viewer: Viewer, kind: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The cluster command this viewer's message stands for, checked against
    `offered_commands` every time; raises Forbidden, or ValueError with the validation errors."""
    limits = Limits(brokers=workshop.cluster.brokers, controllers=workshop.cluster.controllers)
    if viewer.role == "instructor":
        spec = offered_commands(workshop, viewer.role).get(kind)
        if spec is None:
            raise Forbidden(f"{kind!r} is not a command an instructor sends on the stage.")
        payload, errors = validate(spec, data, runtime_limits=limits)
        offered_types: set[str] = {kind}
    elif viewer.role == "learner":
        if kind != "participate":
            raise Forbidden("Only the instructor changes the room's cluster.")
        participant = Participant.objects.get(pk=viewer.participant_id)
        offered = offered_commands(workshop, viewer.role, participant)
        payload, errors = _participation_command(workshop, participant, data, limits, offered)
        offered_types = set(offered)
    else:
        raise Forbidden("This screen only watches the room.")
    if errors:
        raise ValueError(errors_text(errors))
    if payload["type"] not in offered_types:
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
    workshop: Workshop,
    participant: Participant,
    data: Mapping[str, Any],
    limits: Limits,
    offered: Mapping[str, CommandSpec],
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A learner's own part: one consumer in the room's group (added, then removed), or
    produce with their own key. The group, topic, key and app are the server's, whatever the
    message says."""
    mode = workshop.participation
    if mode == Workshop.Participation.CONSUMERS:
        if data.get("action") == "remove":
            if "app_control" not in offered or not participant.consumer_app_id.isdigit():
                raise Forbidden("You have no consumer in the room's group to remove.")
            return validate(
                offered["app_control"],
                {"app_id": int(participant.consumer_app_id), "action": "stop"},
                runtime_limits=limits,
            )
        if "add_group_consumer" not in offered:
            raise Forbidden("You already have a consumer in the room's group.")
        payload, errors = validate(
            offered["add_group_consumer"],
            {"group": workshop.group_id, "topic": workshop.topic},
            runtime_limits=limits,
        )
        if not errors:  # reserved now; the host's ack names the app (participant_consumer_set)
            participant.consumer_app_id = PENDING_APP
            participant.save(update_fields=["consumer_app_id"])
        return payload, errors
    if mode == Workshop.Participation.PRODUCERS and "produce" in offered:
        return validate(
            offered["produce"],
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
# Drill kinds a room can answer in a poll: one choice, or one number. (`explain` and `design`
# are free text graded by the learner against a model answer, `order` a full ranking: none has
# one answer a histogram can show.)
POLL_KINDS = ("predict", "number", "pick")


def _pollable(drill: Any) -> bool:
    return drill.kind in POLL_KINDS


def drill_questions() -> list[dict[str, Any]]:
    """The drills a room can be polled on (lessons/drills): predict drills (choice or number;
    the key is the engine's run of the drill's scenario, played on the room's cluster at the
    reveal), number drills (the key is the drill's formula over one draw of its parameters)
    and pick drills (one choice)."""
    from lessons.drills.bank import default_bank

    return [
        {
            "source": DRILL_SOURCE + d.id,
            "title": d.title,
            "question": d.prompt,
            "lesson": d.lesson,
            "kind": d.kind,
            "answer": "number" if _number_drill(d) else "choice",
        }
        for d in sorted(
            (d for d in default_bank() if _pollable(d)), key=lambda d: POLL_KINDS.index(d.kind)
        )
    ]


def _number_drill(drill: Any) -> bool:
    return drill.kind == "number" or (drill.kind == "predict" and drill.question_type == "number")


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
    """A poll from a drill. A predict drill moves the room to a fresh cluster built like the
    drill's scenario (its topics and setup done, clock paused), so learners predict from what
    they see; the reveal plays the scenario's steps on it, and the answer is the engine's key
    (a choice, or a number with the drill's tolerance). A number drill asks one draw of its
    parameters, keyed by its formula; a pick drill asks its choices."""
    from lessons.drills.bank import default_bank

    drill = default_bank().get(drill_id)
    if drill is None or not _pollable(drill):
        raise ValueError(f"No drill {drill_id!r} to poll on.")
    if drill.kind == "predict":
        return _poll_push_predict(workshop, drill)
    fields: dict[str, Any] = {
        "workshop": workshop,
        "explain": drill.explanation,
        "source": DRILL_SOURCE + drill.id,
        "drill_id": drill.id,
    }
    if drill.kind == "number":
        instance = drill.number_instance(secrets.randbelow(2**31))
        tolerance = drill.tolerance
        fields.update(
            kind=Poll.Kind.NUMBER,
            question=instance["prompt"].strip(),
            choices=[],
            answer=0,
            answer_value=float(instance["key"]),
            tolerance_absolute=tolerance["absolute"],
            tolerance_relative=tolerance["relative"],
            unit=instance["unit"],
            explain=" ".join(filter(None, (instance["solution"].strip(), drill.explanation))),
        )
    else:  # pick: the drill's own key, as its page grades it
        ids = [c.id for c in drill.choices]
        fields.update(
            question=drill.prompt.strip(),
            choices=[c.text for c in drill.choices],
            answer=ids.index(str(drill.body["answer"])),
        )
    with transaction.atomic():
        workshop.polls.filter(state=Poll.State.OPEN).update(state=Poll.State.CLOSED)
        return Poll.objects.create(**fields)


def _poll_push_predict(workshop: Workshop, drill: Any) -> Poll:
    from lessons.drills import progress
    from webapp import timeline

    key = progress.answer_key(drill)
    fields: dict[str, Any]
    if drill.question_type == "number":
        if isinstance(key.key, bool) or not isinstance(key.key, int | float):
            raise ValueError(f"The engine's answer to {drill.id!r} is not a number.")
        tolerance = drill.tolerance
        fields = {
            "kind": Poll.Kind.NUMBER,
            "choices": [],
            "answer": 0,
            "answer_value": float(key.key),
            "tolerance_absolute": tolerance["absolute"],
            "tolerance_relative": tolerance["relative"],
            "unit": str(drill.body["question"].get("unit", "")),
        }
    else:
        ids = [c.id for c in drill.choices]
        if key.key not in ids:
            raise ValueError(f"The engine's answer to {drill.id!r} is not one of its choices.")
        fields = {"choices": [c.text for c in drill.choices], "answer": ids.index(key.key)}
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
            question=drill.prompt.strip(),
            explain=drill.explanation,
            source=DRILL_SOURCE + drill.id,
            drill_id=drill.id,
            cluster=cluster,
            playback=steps,
            observed="" if observed is None else _observed_text(observed),
            **fields,
        )


def _observed_text(observed: Any) -> str:
    if isinstance(observed, float | int) and not isinstance(observed, bool):
        return format_number(observed)
    return str(observed)


def current_poll(workshop: Workshop) -> Poll | None:
    return workshop.polls.order_by("-created_at", "-pk").first()


def vote(*, participant_id: int, choice: Any = None, value: Any = None) -> Poll:
    """Save (or change) the learner's answer to the open poll: a choice's index, or a number
    (typed as a learner writes it: 12,500 is fine). Whether it is right is kept with it."""
    from lessons.drills.grading import AnswerError, parse_number

    participant = Participant.objects.select_related("workshop").get(pk=participant_id)
    poll = current_poll(participant.workshop)
    if poll is None or poll.state != Poll.State.OPEN:
        raise ValueError("No question is open right now.")
    if poll.kind == Poll.Kind.NUMBER:
        raw = value if value is not None else choice
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise ValueError("Type a number.")
        try:
            number = float(raw) if isinstance(raw, int | float) else parse_number(raw)
        except AnswerError as error:
            raise ValueError(f"Type a number: {error}.") from None
        if not math.isfinite(number) or abs(number) > MAX_POLL_NUMBER:
            raise ValueError("Type a number between -10^15 and 10^15.")
        defaults: dict[str, Any] = {
            "choice": 0,
            "value": number,
            "correct": poll.is_correct(value=number),
        }
    else:
        if isinstance(choice, bool) or not isinstance(choice, int | str):
            raise ValueError("Pick one of the answers.")
        try:
            index = int(choice)
        except ValueError:
            raise ValueError("Pick one of the answers.") from None
        if not 0 <= index < len(poll.choices):
            raise ValueError("Pick one of the answers.")
        defaults = {"choice": index, "value": None, "correct": poll.is_correct(choice=index)}
    Vote.objects.update_or_create(poll=poll, participant=participant, defaults=defaults)
    return poll


MAX_POLL_NUMBER = 1e15


def histogram(poll: Poll) -> list[int]:
    """A choice poll's answers: how many picked each choice."""
    counts = [0] * len(poll.choices)
    for row in poll.votes.values("choice").annotate(n=Count("id")):
        if 0 <= row["choice"] < len(counts):
            counts[row["choice"]] = row["n"]
    return counts


@dataclass(frozen=True)
class Bucket:
    low: float  # included
    high: float  # excluded (the last bucket includes it)
    count: int
    label: str
    holds_key: bool = False


MAX_BUCKETS = 8


def _nice_step(raw: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at least `raw`."""
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw - 1e-12 * power:
            return float(factor * power)
    return float(10 * power)


def number_buckets(values: list[float], *, key: float | None = None) -> list[Bucket]:
    """A number poll's answers as at most MAX_BUCKETS bars of one round width (1, 2 or 5 times
    a power of ten, whole numbers when every answer is whole), from the answers alone: the key
    (given only once revealed) marks its bar and never shapes the bars. Answers far outside the
    rest (beyond 3 interquartile ranges) count in an open "below" / "above" bar, so one wild
    guess does not squash everyone else into a single bar."""
    if not values:
        return []
    ordered = sorted(values)
    low, high = ordered[0], ordered[-1]
    below: list[float] = []
    above: list[float] = []
    if len(ordered) >= 4:
        q1, q3 = ordered[len(ordered) // 4], ordered[(3 * len(ordered)) // 4]
        spread = q3 - q1
        if spread > 0:
            low_fence, high_fence = q1 - 3 * spread, q3 + 3 * spread
            below = [v for v in ordered if v < low_fence]
            above = [v for v in ordered if v > high_fence]
            inside = [v for v in ordered if low_fence <= v <= high_fence]
            low, high = inside[0], inside[-1]
    whole = all(float(v).is_integer() for v in ordered)
    fmt = format_number
    bars: list[Bucket] = []
    if below:
        edge = low
        bars.append(
            Bucket(float("-inf"), edge, len(below), f"below {fmt(edge)}", _holds(key, None, edge))
        )
    if high == low:
        bars.append(Bucket(low, low, sum(1 for v in ordered if v == low), fmt(low), key == low))
    else:
        bins = min(MAX_BUCKETS, max(2, math.ceil(math.sqrt(len(ordered)))))
        step = _nice_step((high - low) / bins)
        if whole:
            step = max(1.0, round(step))
        start = math.floor(low / step) * step
        edges = [start]
        while edges[-1] + step <= high:
            edges.append(edges[-1] + step)
        for i, edge in enumerate(edges):
            top = edge + step
            last = i == len(edges) - 1
            count = sum(1 for v in ordered if edge <= v < top or (last and v == top))
            if whole and step == 1:
                label = fmt(edge)
            elif whole:
                label = f"{fmt(edge)}–{fmt(top - 1)}"
            else:
                label = f"{fmt(edge)} to {fmt(top)}"
            holds = key is not None and (edge <= key < top)
            bars.append(Bucket(edge, top, count, label, holds))
    if above:
        edge = high
        bars.append(
            Bucket(edge, float("inf"), len(above), f"above {fmt(edge)}", _holds(key, edge, None))
        )
    return bars


def _holds(key: float | None, low: float | None, high: float | None) -> bool:
    if key is None:
        return False
    return (low is None or key > low) and (high is None or key < high)


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


def poll_reveal_done(*, poll_id: int) -> bool:
    """A running drill poll's play is over: revealed now (False: it was not running)."""
    changed = Poll.objects.filter(pk=poll_id, state=Poll.State.RUNNING).update(
        state=Poll.State.REVEALED
    )
    return changed > 0


def leaderboard(workshop: Workshop, limit: int | None = None) -> list[dict[str, Any]]:
    """Participants by correct predictions on revealed polls (ties: who joined first); the
    first `limit` of them when given (the database sorts and cuts: a room's page shows ten of
    hundreds, and every socket that joins renders it)."""
    revealed = workshop.polls.filter(state=Poll.State.REVEALED)
    total = revealed.count()
    rows = workshop.participants.annotate(
        score=Count("votes", filter=Q(votes__poll__in=revealed) & Q(votes__correct=True)),
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
    votes = {(v.participant_id, v.poll_id): v for v in Vote.objects.filter(poll__in=polls)}
    rows = []
    for entry in leaderboard(workshop):
        row = [entry["name"], str(entry["score"]), str(entry["polls"])]
        for poll in polls:
            cast = votes.get((entry["id"], poll.pk))
            row.append("" if cast is None else answer_text(poll, cast))
        rows.append(row)
    return rows


def answer_text(poll: Poll, cast: Vote) -> str:
    if poll.kind == Poll.Kind.NUMBER:
        return "" if cast.value is None else format_number(cast.value)
    return str(poll.choices[cast.choice]) if 0 <= cast.choice < len(poll.choices) else ""


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
