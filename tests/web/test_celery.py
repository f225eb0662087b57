"""Celery tasks really run in the embedded mode: a worker on the filesystem broker, no server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.utils import timezone

from webapp import config, services
from webapp.models import ClusterCommand, LiveCluster
from webapp.tasks import live_clusters_delete_idle

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def embedded_worker(tmp_path: Path) -> Iterator[Celery]:
    """A real `celery -A webapp worker` process and a client app on the same folders."""
    celery_conf = config.celery_settings({}, data_dir=tmp_path)
    for folder in config.celery_dirs(celery_conf):
        folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "CELERY_"))}
    env |= {"KAFKA_DOJO_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "webapp",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = Celery("test-client")
    client.conf.update(
        broker_url=celery_conf["CELERY_BROKER_URL"],
        result_backend=celery_conf["CELERY_RESULT_BACKEND"],
        broker_transport_options=celery_conf["CELERY_BROKER_TRANSPORT_OPTIONS"],
    )
    try:
        yield client
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()


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
