"""Live clusters and their command logs: a cluster is its seed plus its ordered commands."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import models

CLUSTER_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def new_cluster_id() -> str:
    """A short unguessable id for URLs such as /sandbox/<id>/."""
    return "".join(secrets.choice(CLUSTER_ID_ALPHABET) for _ in range(12))


def new_seed() -> int:
    return secrets.randbelow(2**31)


class LiveCluster(models.Model):
    """One simulated Kafka cluster that a page shows live (today: a learner's sandbox)."""

    class Kind(models.TextChoices):
        SANDBOX = "sandbox", "Sandbox"

    id = models.CharField(primary_key=True, max_length=16, default=new_cluster_id, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SANDBOX)
    seed = models.BigIntegerField(default=new_seed)
    brokers = models.PositiveSmallIntegerField(default=3)
    controllers = models.PositiveSmallIntegerField(default=3)
    engine_config = models.JSONField(default=dict, blank=True)
    owner_session_key = models.CharField(max_length=40, blank=True, db_index=True)
    speed = models.FloatField(default=1.0)
    paused = models.BooleanField(default=False)
    # The sandbox's Kafka listeners (its button): open again, on the same ports when they are
    # free, whenever its host starts, so bootstrap.servers survives a restart.
    kafka_listeners = models.BooleanField(default=False)
    kafka_listener_ports = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_active_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} (seed {self.seed})"

    def get_absolute_url(self) -> str:
        return f"/sandbox/{self.id}/"


class ClusterCommand(models.Model):
    """One entry of a cluster's command log, written before the host applies it."""

    cluster = models.ForeignKey(LiveCluster, on_delete=models.CASCADE, related_name="commands")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=32)
    payload = models.JSONField()
    logical_time_ms = models.BigIntegerField()
    client_id = models.CharField(max_length=64, blank=True, default="")
    client_seq = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cluster", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "seq"], name="cluster_command_seq_unique"),
            models.UniqueConstraint(
                fields=["cluster", "client_id", "client_seq"],
                condition=models.Q(client_seq__isnull=False),
                name="cluster_command_client_seq_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id}#{self.seq} {self.kind} @{self.logical_time_ms}ms"

    def as_log_entry(self) -> dict[str, Any]:
        return dict(self.payload)


class SharedState(models.Model):
    """A cluster state saved for a share link whose log is too long for the URL itself."""

    id = models.CharField(primary_key=True, max_length=16, default=new_cluster_id, editable=False)
    seed = models.BigIntegerField()
    brokers = models.PositiveSmallIntegerField()
    controllers = models.PositiveSmallIntegerField()
    engine_config = models.JSONField(default=dict, blank=True)
    commands = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"shared state {self.id} ({len(self.commands)} commands)"


class StressRun(models.Model):
    """One "Stress it" experiment: many seeded fault schedules against one configuration."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.CharField(primary_key=True, max_length=16, default=new_cluster_id, editable=False)
    cluster = models.ForeignKey(
        LiveCluster, on_delete=models.CASCADE, related_name="stress_runs", null=True, blank=True
    )
    config = models.JSONField(default=dict)
    runs = models.PositiveIntegerField()
    base_seed = models.BigIntegerField(default=new_seed)
    done = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"stress run {self.id} ({self.done}/{self.runs}, {self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.runs) if self.runs else 0
