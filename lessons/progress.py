"""Each learner's progress through the lessons: reads and writes (Django ORM).

A learner is anonymous until they sign in: `learner_token(session)` keeps a random token in
the session (it survives the session key change at sign-in). Signing in or up claims the
token's progress for the account (`progress_claim`, connected to `user_logged_in`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from lessons.models import LessonProgress

SESSION_LEARNER = "lessons_learner"


def learner_token(session: Any) -> str:
    token = session.get(SESSION_LEARNER)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(18)
        session[SESSION_LEARNER] = token
    return token


def _owned(*, learner: str, user: Any) -> Q:
    query = Q(learner=learner)
    if user is not None and getattr(user, "is_authenticated", False):
        query |= Q(user=user)
    return query


def progress_by_lesson(*, learner: str, user: Any = None) -> dict[str, LessonProgress]:
    """The learner's progress rows by lesson id (their account's rows included)."""
    rows: dict[str, LessonProgress] = {}
    for row in LessonProgress.objects.filter(_owned(learner=learner, user=user)):
        best = rows.get(row.lesson_id)
        if best is None or (row.completed, row.step) > (best.completed, best.step):
            rows[row.lesson_id] = row
    return rows


def progress_get(*, learner: str, user: Any, lesson_id: str) -> LessonProgress | None:
    return progress_by_lesson(learner=learner, user=user).get(lesson_id)


def progress_start(*, learner: str, user: Any, lesson_id: str, cluster_id: str) -> LessonProgress:
    """A fresh start of the lesson on a new cluster (a restart keeps nothing of the old one)."""
    signed_in = user if getattr(user, "is_authenticated", False) else None
    row, _ = LessonProgress.objects.update_or_create(
        learner=learner,
        lesson_id=lesson_id,
        defaults={
            "user": signed_in,
            "cluster_id": cluster_id,
            "step": 0,
            "steps": {},
            "completed_at": None,
        },
    )
    return row


def progress_step_record(
    *,
    row: LessonProgress,
    step: int,
    since: list[int] | None = None,
    previous: Mapping[str, Any] | None = None,
    step_count: int,
) -> LessonProgress:
    """Move to `step` (step_count means the recap); keep where it started and what the
    previous step's goal reached."""
    steps = dict(row.steps or {})
    if previous and isinstance(previous.get("step"), int):
        entry = dict(steps.get(str(previous["step"]), {}))
        if previous.get("done"):
            entry["done_ms"] = previous.get("done_ms")
        steps[str(previous["step"])] = entry
    if since is not None and step < step_count:
        entry = dict(steps.get(str(step), {}))
        entry["since"] = list(since)
        steps[str(step)] = entry
    row.steps = steps
    row.step = max(0, min(step, step_count))
    if row.step >= step_count and all(
        steps.get(str(i), {}).get("done_ms") is not None for i in range(step_count)
    ):
        row.completed_at = row.completed_at or timezone.now()
    row.save(update_fields=["steps", "step", "completed_at", "updated_at"])
    return row


def progress_answer(*, row: LessonProgress, step: int, kind: str, choice: int) -> LessonProgress:
    """The learner's committed answer to a predict or quiz question (first answer kept)."""
    steps = dict(row.steps or {})
    entry = dict(steps.get(str(step), {}))
    entry.setdefault(kind, choice)
    steps[str(step)] = entry
    row.steps = steps
    row.save(update_fields=["steps", "updated_at"])
    return row


def progress_claim(*, learner: str, user: Any) -> int:
    """Attach an anonymous learner's progress to the account that just signed in; returns
    how many rows it claimed."""
    with transaction.atomic():
        return LessonProgress.objects.filter(learner=learner, user__isnull=True).update(user=user)


def on_user_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is None:
        return
    token = session.get(SESSION_LEARNER)
    if isinstance(token, str) and token:
        progress_claim(learner=token, user=user)
