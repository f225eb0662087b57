"""Celery tasks: thin wrappers over plain functions."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from webapp.models import LiveCluster


@shared_task(name="webapp.worker_ping")
def worker_ping(note: str = "") -> dict[str, Any]:
    """Prove a worker is there: returns where it ran."""
    return {"pid": os.getpid(), "hostname": socket.gethostname(), "note": note}


def live_clusters_delete_idle(*, max_idle_days: float) -> int:
    """Delete sandboxes nobody touched for `max_idle_days`; a workshop room's clusters go
    with their room (`workshops_delete_idle`), never on their own."""
    from webapp.workshops.models import RoomCluster, Workshop

    cutoff = timezone.now() - timedelta(days=max_idle_days)
    _, per_model = (
        LiveCluster.objects.filter(kind=LiveCluster.Kind.SANDBOX, last_active_at__lt=cutoff)
        .exclude(pk__in=RoomCluster.objects.values("cluster_id"))
        .exclude(pk__in=Workshop.objects.values("cluster_id"))
        .delete()
    )
    return per_model.get(LiveCluster._meta.label, 0)


def idle_sweep(*, sandbox_idle_days: float, room_idle_days: float) -> dict[str, int]:
    """Idle rooms first (their clusters with them), then idle sandboxes."""
    from webapp.workshops.services import workshops_delete_idle

    rooms = workshops_delete_idle(max_idle_days=room_idle_days)
    sandboxes = live_clusters_delete_idle(max_idle_days=sandbox_idle_days)
    return {"rooms": rooms, "sandboxes": sandboxes}


@shared_task(name="webapp.delete_idle_sandboxes")
def delete_idle_sandboxes(max_idle_days: float = 30.0) -> int:
    """Delete sandboxes (and their command logs) nobody touched for `max_idle_days`."""
    return live_clusters_delete_idle(max_idle_days=max_idle_days)


@shared_task(name="webapp.delete_idle")
def delete_idle() -> dict[str, int]:
    """The periodic sweep (CELERY_BEAT_SCHEDULE): idle rooms and sandboxes, with the ages the
    settings give (KAFKA_DOJO_ROOM_IDLE_DAYS, KAFKA_DOJO_SANDBOX_IDLE_DAYS)."""
    from django.conf import settings

    return idle_sweep(
        sandbox_idle_days=float(settings.DOJO_SANDBOX_IDLE_DAYS),
        room_idle_days=float(settings.DOJO_ROOM_IDLE_DAYS),
    )


@shared_task(name="webapp.stress_experiment")
def stress_experiment(
    run_id: str | None = None,
    config: dict[str, Any] | None = None,
    runs: int = 200,
    base_seed: int = 0,
) -> dict[str, Any]:
    """ "Stress it": the experiment of a `StressRun` row (progress written to the row), or, with
    no row, of the given config (the report is the task's result)."""
    from lessons.scenarios import stress
    from webapp import experiments

    if run_id is not None:
        return experiments.stress_run_execute(run_id=run_id)
    return stress.stress_experiment(
        stress.StressConfig.from_dict(config or {}), runs=runs, base_seed=base_seed
    )
