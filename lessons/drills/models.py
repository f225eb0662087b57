"""What a learner did with drills: attempts, review cards, quiz rounds; and cached answer keys.

A learner is a user or, before signing up, a session key: every row has a nullable `user` and
the `session_key` it was made under; signing up moves a session's rows to the user
(`lessons.drills.progress.claim_session`).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class AnswerKey(models.Model):
    """A predict drill's key as the engine computed it, cached by the drill's content hash."""

    content_hash = models.CharField(max_length=64, primary_key=True)
    drill_id = models.CharField(max_length=64, db_index=True)
    key = models.JSONField()
    computed = models.JSONField(default=dict)  # observed value, moment time, run time
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.drill_id} -> {self.key!r}"


class QuizRound(models.Model):
    class Mode(models.TextChoices):
        QUIZ = "quiz", "Quiz"
        MOCK = "mock", "Mock interview"
        REVIEW = "review", "Review"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    session_key = models.CharField(max_length=40, blank=True, db_index=True)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.QUIZ)
    topics = models.JSONField(default=list)
    drill_ids = models.JSONField(default=list)
    seeds = models.JSONField(default=list)  # per item: the seed of a number drill's parameters
    time_limit_s = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.mode} {self.id}"


class Attempt(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    session_key = models.CharField(max_length=40, blank=True, db_index=True)
    drill_id = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=16)
    topic = models.CharField(max_length=32)
    quiz = models.ForeignKey(
        QuizRound, null=True, blank=True, on_delete=models.CASCADE, related_name="attempts"
    )
    position = models.PositiveIntegerField(null=True, blank=True)  # index in the quiz
    answer = models.JSONField(default=dict)
    score = models.FloatField()
    correct = models.BooleanField()
    feedback = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.drill_id}: {self.score:.2f}"


class ReviewCard(models.Model):
    """One FSRS card per learner and drill (`card` is fsrs's `Card.to_dict()`)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    session_key = models.CharField(max_length=40, blank=True, db_index=True)
    drill_id = models.CharField(max_length=64)
    card = models.JSONField()
    due = models.DateTimeField(db_index=True)
    reviews = models.PositiveIntegerField(default=0)
    lapses = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "drill_id"],
                condition=models.Q(user__isnull=False),
                name="drills_one_card_per_user_drill",
            ),
            models.UniqueConstraint(
                fields=["session_key", "drill_id"],
                condition=models.Q(user__isnull=True),
                name="drills_one_card_per_session_drill",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.drill_id} due {self.due:%Y-%m-%d %H:%M}"
