"""Celery tasks really run in the embedded mode: a worker on the filesystem broker, no server."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.utils import timezone

from webapp import services
from webapp.models import ClusterCommand, LiveCluster
from webapp.tasks import live_clusters_delete_idle


def test_a_task_runs_in_a_separate_worker_process(embedded_worker: Celery, tmp_path: Path) -> None:
    result = embedded_worker.send_task("webapp.worker_ping", args=["hello"])
    try:
        answer = result.get(timeout=60)
    except Exception:
        print((tmp_path / "worker.log").read_text())
        raise
    assert answer["note"] == "hello"
    assert answer["pid"] != os.getpid()


@pytest.mark.django_db
def test_idle_sandboxes_are_deleted_with_their_logs() -> None:
    idle = services.sandbox_create()
    fresh = services.sandbox_create()
    LiveCluster.objects.filter(pk=idle.pk).update(
        last_active_at=timezone.now() - timedelta(days=40)
    )
    assert live_clusters_delete_idle(max_idle_days=30) == 1
    assert list(LiveCluster.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not ClusterCommand.objects.filter(cluster_id=idle.pk).exists()
