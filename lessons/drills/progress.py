"""A learner's drill progress in the database: attempts, FSRS review cards, answer-key cache,
carrying anonymous progress over to an account, and exporting it.

A learner is `Learner(user_id, session_key)`: signed-in learners are found by user, anonymous
ones by session key (rows with no user).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from lessons.drills import keys, scheduler
from lessons.drills.bank import Drill, default_bank
from lessons.drills.grading import Grade
from lessons.drills.models import AnswerKey, Attempt, QuizRound, ReviewCard
from lessons.drills.quiz import TopicMastery, mastery

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Learner:
    user_id: int | None
    session_key: str

    def q(self) -> Q:
        if self.user_id is not None:
            return Q(user_id=self.user_id)
        return Q(user__isnull=True, session_key=self.session_key)

    def fields(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "session_key": self.session_key}


# -- answer keys ---------------------------------------------------------------------------------


def _cache_id(drill: Drill, what_if: int | None) -> str:
    return drill.content_hash if what_if is None else f"{drill.content_hash}:w{what_if}"


def stored_key(drill: Drill, what_if: int | None = None) -> AnswerKey | None:
    return AnswerKey.objects.filter(content_hash=_cache_id(drill, what_if)).first()


def store_key(drill: Drill, computed: keys.ComputedKey, what_if: int | None = None) -> AnswerKey:
    row, _ = AnswerKey.objects.update_or_create(
        content_hash=_cache_id(drill, what_if),
        defaults={"drill_id": drill.id, "key": computed.key, "computed": computed.as_json()},
    )
    return row


def what_if_scenario(drill: Drill, index: int) -> dict[str, Any]:
    change = drill.body["what_if"][index]
    return keys.with_change(drill.body["scenario"], change["path"], change["value"])


def what_if_key(drill: Drill, index: int) -> AnswerKey:
    """The key of the drill's run with what-if `index` applied (cached like the drill's own)."""
    row = stored_key(drill, index)
    if row is None:
        computed = keys.compute_key(drill, scenario=what_if_scenario(drill, index))
        row = store_key(drill, computed, index)
    return row


def answer_key(drill: Drill) -> AnswerKey:
    """The cached key; computed now only on a cold cache (verify_drills and `./scripts/run`
    warm it, so serving normally never runs a scenario)."""
    row = stored_key(drill)
    if row is None:
        logger.warning("answer key of %s not cached: computing it now", drill.id)
        row = store_key(drill, keys.compute_key(drill))
    return row


# -- attempts and review -------------------------------------------------------------------------


@transaction.atomic
def record_attempt(
    learner: Learner,
    drill: Drill,
    result: Grade,
    answer: dict[str, Any],
    *,
    quiz: QuizRound | None = None,
    position: int | None = None,
    now: datetime | None = None,
) -> Attempt:
    """Save the attempt and move the drill's FSRS card (a miss brings it back soon)."""
    now = now or timezone.now()
    attempt = Attempt.objects.create(
        **learner.fields(),
        drill_id=drill.id,
        kind=drill.kind,
        topic=drill.topic,
        quiz=quiz,
        position=position,
        answer=answer,
        score=result.score,
        correct=result.correct,
        feedback=result.feedback,
    )
    card = ReviewCard.objects.filter(learner.q(), drill_id=drill.id).first()
    state, due = scheduler.review(
        card.card if card else None, score=result.score, correct=result.correct, now=now
    )
    if card is None:
        card = ReviewCard(**learner.fields(), drill_id=drill.id)
    card.card = state
    card.due = due
    card.reviews += 1
    card.lapses += 0 if result.correct else 1
    card.save()
    return attempt


def due_cards(learner: Learner, *, now: datetime | None = None) -> QuerySet[ReviewCard]:
    now = now or timezone.now()
    return ReviewCard.objects.filter(learner.q(), due__lte=now).order_by("due")


def upcoming_cards(learner: Learner, *, now: datetime | None = None) -> QuerySet[ReviewCard]:
    now = now or timezone.now()
    return ReviewCard.objects.filter(learner.q(), due__gt=now).order_by("due")


def overall_mastery(learner: Learner) -> list[TopicMastery]:
    """Per topic: the mean of each drill's latest score."""
    latest: dict[str, tuple[str, float]] = {}
    for attempt in Attempt.objects.filter(learner.q()).order_by("created_at", "id"):
        latest[attempt.drill_id] = (attempt.topic, attempt.score)
    return mastery(latest.values())


# -- carrying anonymous progress over to an account ----------------------------------------------


def _claimable_models() -> list[type[Model]]:
    """Every installed model that keeps progress by session key with a nullable user: ours and
    any other app's (the lessons' progress), found by their fields, so no app imports another."""
    found = []
    for model in apps.get_models():
        names = {f.name for f in model._meta.get_fields()}
        if {"session_key", "user"} <= names and model._meta.get_field("user").null:
            found.append(model)
    return found


@transaction.atomic
def claim_session(session_key: str, user: Any) -> dict[str, int]:
    """Move a session's anonymous rows to `user`. A review card the user already has for the
    same drill wins over the anonymous one (the account's history is the longer one)."""
    moved: dict[str, int] = {}
    if not session_key:
        return moved
    owned = set(ReviewCard.objects.filter(user=user).values_list("drill_id", flat=True))
    ReviewCard.objects.filter(
        user__isnull=True, session_key=session_key, drill_id__in=owned
    ).delete()
    for model in _claimable_models():
        count = model._default_manager.filter(  # type: ignore[attr-defined]
            user__isnull=True, session_key=session_key
        ).update(user=user)
        if count:
            moved[model._meta.label] = count
    # Lesson progress is keyed by its own session token (lessons.progress): the lessons app
    # claims it on Django's `user_logged_in` signal, which login() sends.
    return moved


# -- export --------------------------------------------------------------------------------------


def export_rows(
    learner: Learner, *, lesson_rows: list[dict[str, Any]] | None = None
) -> dict[str, list[dict[str, Any]]]:
    bank = default_bank()
    attempts = [
        {
            "time": a.created_at.isoformat(),
            "drill": a.drill_id,
            "title": (d.title if (d := bank.get(a.drill_id)) else ""),
            "kind": a.kind,
            "topic": a.topic,
            "score": round(a.score, 3),
            "correct": a.correct,
            "answer": a.answer,
            "quiz": str(a.quiz_id) if a.quiz_id else "",
        }
        for a in Attempt.objects.filter(learner.q()).order_by("created_at", "id")
    ]
    cards = [
        {
            "drill": c.drill_id,
            "due": c.due.isoformat(),
            "reviews": c.reviews,
            "lapses": c.lapses,
            "stability": c.card.get("stability"),
            "difficulty": c.card.get("difficulty"),
        }
        for c in ReviewCard.objects.filter(learner.q()).order_by("due")
    ]
    result = {"attempts": attempts, "review_cards": cards}
    if lesson_rows is not None:
        result["lessons"] = lesson_rows
    for model in _claimable_models():
        if model._meta.app_label == "drills":
            continue
        rows = model._default_manager.filter(learner.q())  # type: ignore[attr-defined]
        result[model._meta.label] = [
            {
                f.name: _plain(getattr(row, f.attname))
                for f in model._meta.concrete_fields
                if f.name not in ("user", "session_key")
            }
            for row in rows
        ]
    return result


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def export_csv(learner: Learner) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time", "drill", "title", "kind", "topic", "score", "correct", "quiz"])
    for row in export_rows(learner)["attempts"]:
        writer.writerow(
            [
                row[k]
                for k in ("time", "drill", "title", "kind", "topic", "score", "correct", "quiz")
            ]
        )
    return out.getvalue()
