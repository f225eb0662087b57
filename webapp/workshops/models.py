"""A workshop room, its participants (no account: a browser token), its polls and votes."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from webapp.models import LiveCluster

# No 0/O, 1/l/I: a code read off a projector is typed without guessing.
JOIN_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 6


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Workshop(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class Participation(models.TextChoices):
        WATCH = "watch", "Learners watch"
        CONSUMERS = "consumers", "Each learner adds a consumer to the room's group"
        PRODUCERS = "producers", "Each learner produces with their own key"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workshops"
    )
    title = models.CharField(max_length=120)
    lesson_id = models.CharField(max_length=64, blank=True, default="")
    code = models.CharField(max_length=12, unique=True, default=new_join_code)
    cluster = models.OneToOneField(LiveCluster, on_delete=models.PROTECT, related_name="workshop")
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    participation = models.CharField(
        max_length=12, choices=Participation.choices, default=Participation.WATCH
    )
    # The room's shared consumer group and topic when participation is handed out.
    group_id = models.CharField(max_length=64, default="room")
    topic = models.CharField(max_length=64, default="orders")
    prompt = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_active_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"workshop {self.code} ({self.title})"

    def get_absolute_url(self) -> str:
        return f"/w/{self.code}/"


class RoomCluster(models.Model):
    """Every cluster a room has shown (its first, and one per drill poll it ran): the room's
    alone, never reachable as a sandbox, removed with the room."""

    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="room_clusters")
    cluster = models.OneToOneField(LiveCluster, on_delete=models.CASCADE, related_name="room")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"cluster {self.cluster_id} of {self.workshop_id}"


class Participant(models.Model):
    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="participants")
    name = models.CharField(max_length=40)
    token = models.CharField(max_length=64, unique=True, default=new_token)
    # The learner's own consumer / producer key once participation is handed out.
    consumer_app_id = models.CharField(max_length=64, blank=True, default="")
    joined_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.UniqueConstraint(fields=["workshop", "name"], name="participant_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} in {self.workshop_id}"

    @property
    def producer_key(self) -> str:
        return f"learner-{self.pk}"


class Poll(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        RUNNING = "running", "Running the scenario"  # a drill poll's reveal plays its steps
        REVEALED = "revealed", "Revealed"

    class Kind(models.TextChoices):
        CHOICE = "choice", "Pick one of the choices"
        NUMBER = "number", "Type a number"

    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="polls")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.CHOICE)
    question = models.CharField(max_length=1000)
    choices = models.JSONField()  # list of labels (empty for a number poll)
    answer = models.PositiveSmallIntegerField()  # index into choices
    # A number poll's key (the engine's run or the drill's formula) and how near counts.
    answer_value = models.FloatField(null=True, blank=True)
    tolerance_absolute = models.FloatField(default=0)
    tolerance_relative = models.FloatField(default=0)
    unit = models.CharField(max_length=40, blank=True, default="")
    explain = models.TextField(blank=True, default="")
    source = models.CharField(max_length=100, blank=True, default="")  # "lesson-id#step"
    # A poll from a predict drill (lessons/drills): the drill, the cluster its scenario runs on
    # for the room, and the scenario's steps that the reveal plays on it (a command log tail).
    drill_id = models.CharField(max_length=100, blank=True, default="")
    cluster = models.ForeignKey(
        LiveCluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    playback = models.JSONField(default=list, blank=True)
    observed = models.TextField(blank=True, default="")  # what the engine's run gave
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"poll {self.pk} of {self.workshop_id}: {self.question[:40]}"

    @property
    def answer_label(self) -> str:
        if self.kind == Poll.Kind.NUMBER:
            if self.answer_value is None:
                return ""
            return " ".join(filter(None, (format_number(self.answer_value), self.unit)))
        return str(self.choices[self.answer]) if 0 <= self.answer < len(self.choices) else ""

    @property
    def tolerance_label(self) -> str:
        parts = []
        if self.tolerance_absolute:
            parts.append(f"±{format_number(self.tolerance_absolute)}")
        if self.tolerance_relative:
            parts.append(f"±{format_number(self.tolerance_relative * 100)}%")
        return " or ".join(parts) if parts else "exact"

    def is_correct(self, *, choice: int | None = None, value: float | None = None) -> bool:
        """Whether an answer is right: the key's choice, or a number within the tolerance."""
        if self.kind == Poll.Kind.NUMBER:
            from lessons.drills.grading import within

            if value is None or self.answer_value is None:
                return False
            return within(
                value,
                self.answer_value,
                absolute=self.tolerance_absolute,
                relative=self.tolerance_relative,
            )
        return choice is not None and choice == self.answer


def format_number(value: float) -> str:
    """A number as a learner would write it: 12,500 or 1.75 (never 12500.0)."""
    from lessons.drills.numbers import fmt

    return fmt(value)


class Vote(models.Model):
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="votes")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="votes")
    choice = models.PositiveSmallIntegerField(default=0)  # a choice poll's answer
    value = models.FloatField(null=True, blank=True)  # a number poll's answer
    correct = models.BooleanField(default=False)  # against the poll's key, when it was cast
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["poll", "participant"], name="vote_once_per_poll")
        ]

    def __str__(self) -> str:
        return f"vote {self.choice} on poll {self.poll_id}"


class ResultsExport(models.Model):
    """One CSV export of a workshop's results, built by a Celery task that writes progress."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="exports")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    csv = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"export {self.pk} of {self.workshop_id} ({self.status})"

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0
