"""Lessons: the catalogue entry model and each learner's progress (content lives in data files)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Lesson(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "slug"]

    def __str__(self) -> str:
        return self.title


class LessonProgress(models.Model):
    """One learner's progress through one lesson.

    A learner is anonymous at first: `learner` is a random token kept in their session (it
    survives the session key change at sign-in). `user` is set when they sign in or sign up,
    so the progress is kept with the account.
    """

    learner = models.CharField(max_length=40, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="lesson_progress",
    )
    lesson_id = models.SlugField(max_length=80)
    # The live cluster the lesson runs on (an id of webapp's LiveCluster; no foreign key, since
    # the lessons app sits below the web app).
    cluster_id = models.CharField(max_length=16, blank=True, default="")
    step = models.PositiveSmallIntegerField(default=0)
    # Per step index (as text): {"since": event index, "done_ms": cluster time or null,
    # "predicted": the learner's choice, "quiz": chosen index}
    steps = models.JSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["lesson_id"]
        constraints = [
            models.UniqueConstraint(fields=["learner", "lesson_id"], name="lesson_progress_unique")
        ]

    def __str__(self) -> str:
        return f"{self.learner} {self.lesson_id} step {self.step}"

    @property
    def completed(self) -> bool:
        return self.completed_at is not None
