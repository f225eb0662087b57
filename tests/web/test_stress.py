""" "Stress it": seeded fault schedules against one configuration, judged by the checker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from celery import Celery

from engine import Cluster
from lessons.scenarios import stress
from lessons.scenarios.runtime import ClusterRuntime
from webapp import experiments, services, timeline
from webapp.engine_host import store
from webapp.models import StressRun

ACKS_1 = stress.StressConfig(topic_config={"min.insync.replicas": 1}, producer_config={"acks": "1"})
ACKS_ALL = stress.StressConfig(
    topic_config={"min.insync.replicas": 2}, producer_config={"acks": "all"}
)


def test_acks_1_loses_acknowledged_records_under_faults() -> None:
    report = stress.stress_experiment(ACKS_1, runs=3, base_seed=2)
    assert report["runs"] == 3
    assert report["totals"]["lost"] > 0
    assert report["failing_count"] >= 1
    assert 1 <= report["runs_with"]["lost"] <= report["failing_count"]
    assert report["runs_with"]["aborted_read"] == 0
    first = report["failing_runs"][0]
    assert first["first"]["time_ms"] > 0 and first["faults"]


def test_acks_all_with_min_insync_2_loses_nothing() -> None:
    report = stress.stress_experiment(ACKS_ALL, runs=3, base_seed=2)
    assert report["acknowledged"] > 100
    assert report["totals"] == {"lost": 0, "duplicated": 0, "reordered": 0, "aborted_read": 0}


def test_a_run_is_a_pure_function_of_its_seed_and_its_engine_log_replays_it() -> None:
    one = stress.stress_cluster(ACKS_1, 1234)
    again = stress.stress_cluster(ACKS_1, 1234)
    assert one.snapshot() == again.snapshot()
    assert Cluster.from_log(one.export_log()).snapshot() == one.snapshot()


def test_progress_is_reported_for_every_run() -> None:
    seen: list[tuple[int, int]] = []
    stress.stress_experiment(
        ACKS_ALL, runs=2, base_seed=3, on_progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(1, 2), (2, 2)]


def test_one_run_costs_a_few_hundred_ms_at_most() -> None:
    start = time.perf_counter()
    stress.stress_experiment(ACKS_1, runs=3, base_seed=2)
    per_run = (time.perf_counter() - start) / 3
    assert per_run < 0.6, f"{per_run * 1000:.0f} ms per run"


@pytest.mark.django_db
def test_the_stage_configuration_is_what_gets_stressed() -> None:
    sandbox = services.sandbox_create()
    config = experiments.stress_config_for_cluster(
        cluster_id=sandbox.id, acks="1", min_insync_replicas=2
    )
    assert (config.brokers, config.topic, config.partitions) == (3, "orders", 3)
    assert config.producer_config["acks"] == "1"
    assert config.topic_config["min.insync.replicas"] == 2


@pytest.mark.django_db
def test_a_failing_run_opens_on_the_stage_at_its_first_anomaly() -> None:
    sandbox = services.sandbox_create()
    run = experiments.stress_run_create(cluster_id=sandbox.id, config=ACKS_1, runs=3, base_seed=2)
    report = experiments.stress_run_execute(run_id=run.id)
    run.refresh_from_db()
    assert run.status == StressRun.Status.DONE and run.done == 3
    html = experiments.stress_runs_fragment(cluster_id=sandbox.id)
    assert "acknowledged records lost" in html and f"/stress/{run.id}/open/" in html

    failing = report["failing_runs"][0]
    opened, at_ms = experiments.stress_run_open(run_id=run.id, index=failing["index"])
    # At or after the checker's time: the first moment the anomaly can be seen on the stage.
    assert at_ms == experiments.anomaly_visible_ms(ACKS_1, failing["seed"], failing["first"])
    assert at_ms >= failing["first"]["time_ms"]
    stored = store.cluster_load(cluster_id=opened.id)
    assert stored.spec.seed == failing["seed"]
    whole = ClusterRuntime.replay(stored.spec, stored.commands).cluster
    assert whole.snapshot() == stress.stress_cluster(ACKS_1, failing["seed"]).snapshot()
    past, _ = timeline.replay_until(spec=stored.spec, commands=stored.commands, at_ms=at_ms)
    assert past.now_ms == at_ms


def test_the_celery_task_runs_the_experiment_in_a_worker(
    embedded_worker: Celery, tmp_path: Path
) -> None:
    lossy = embedded_worker.send_task(
        "webapp.stress_experiment",
        kwargs={"config": ACKS_1.to_dict(), "runs": 3, "base_seed": 2},
    )
    safe = embedded_worker.send_task(
        "webapp.stress_experiment",
        kwargs={"config": ACKS_ALL.to_dict(), "runs": 3, "base_seed": 2},
    )
    try:
        lossy_report, safe_report = lossy.get(timeout=120), safe.get(timeout=120)
    except Exception:
        print((tmp_path / "worker.log").read_text())
        raise
    assert lossy_report["totals"]["lost"] > 0
    assert safe_report["totals"]["lost"] == 0
    assert lossy_report == stress.stress_experiment(ACKS_1, runs=3, base_seed=2)
