"""Lag over time and produce / consume rates, sampled on the cluster clock; and a state
version renders once however many sockets watch it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from lessons.scenarios.runtime import ClusterRuntime
from tests.web.support import sandbox_runtime
from webapp import charts, services
from webapp.engine_host import render
from webapp.engine_host.host import host_group

PRODUCE = {"type": "produce", "topic": "orders", "key": "k", "value": "v", "count": 20}


def a_runtime() -> ClusterRuntime:
    runtime, _ = sandbox_runtime(seed=3)
    return runtime


def test_samples_follow_the_cluster_clock_and_stay_bounded() -> None:
    runtime, history = a_runtime(), charts.MetricsHistory(every_ms=500)
    history.observe(runtime)
    for _ in range(30):
        runtime.advance(100)
        history.observe(runtime)
    assert [s.time_ms for s in history.samples] == list(range(0, 3_001, 500))
    for _ in range(1_000):
        runtime.advance(500)
        history.observe(runtime)
    assert len(history.samples) == charts.MAX_SAMPLES


def test_lag_rises_when_records_arrive_faster_than_the_consumer_reads() -> None:
    runtime, history = a_runtime(), charts.MetricsHistory(every_ms=500)
    for _ in range(4):
        runtime.apply(PRODUCE)
        for _ in range(10):
            runtime.advance(100)
            history.observe(runtime)
    last = history.samples[-1]
    assert last.produced["orders"] == 80
    assert last.lag["consumer reader"] > 40  # it reads one record per 500 ms
    context = charts.charts_context(history)
    topic = context["topics"][0]
    assert topic["name"] == "orders" and topic["produce_rate"] > 0
    assert topic["consume_rate"] > 0
    html = history.render()
    assert 'id="charts"' in html and "<polyline" in html
    assert "Lag of consumer reader" in html


def test_charts_render_once_per_sample() -> None:
    runtime, history = a_runtime(), charts.MetricsHistory(every_ms=500)
    history.observe(runtime)
    first = history.render()
    assert history.render() is first  # no new sample: the same string, not a new render
    runtime.apply(PRODUCE)
    runtime.advance(500)
    history.observe(runtime)
    assert history.render() is not first


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_state_version_renders_once_however_many_sockets_watch(
    host_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders = 0
    real = render.render_fragments

    def counting(*args: Any, **kwargs: Any) -> dict[str, str]:
        nonlocal renders
        renders += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(render, "render_fragments", counting)
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    await host.command({"type": "pause"})
    layer = get_channel_layer()
    sockets = [await layer.new_channel() for _ in range(25)]
    for channel in sockets:
        await layer.group_add(f"dojo.cluster.{sandbox.id}", channel)
        await layer.group_send(host_group(sandbox.id), {"type": "host.join", "reply_to": channel})
    await asyncio.sleep(0.5)  # joins settle (the viewer count is part of the state)
    for channel in sockets:  # drain what the joins produced
        while True:
            try:
                await asyncio.wait_for(layer.receive(channel), 0.05)
            except TimeoutError:
                break

    renders_before, version_before = renders, host.published.version
    await host.command(PRODUCE)
    await asyncio.sleep(0.5)

    new_versions = host.published.version - version_before
    assert new_versions >= 1
    assert renders - renders_before == new_versions  # once per version, not per socket
    for channel in sockets:  # ...and every socket got every version, up to the last
        received = []
        while not received or received[-1] < host.published.version:
            message = await asyncio.wait_for(layer.receive(channel), 1)
            assert message["type"] == "cluster.state"
            received.append(message["version"])
        assert received == list(range(version_before + 1, host.published.version + 1))


def test_the_render_benchmark_runs_and_reports_a_ratio_to_its_baseline() -> None:
    from webapp import bench_render

    results = bench_render.main(["--repeat", "1"])
    assert results["brokers"] == 9 and results["partitions"] == 200
    assert results["render_ms"] > 0 and results["ratio"] > 0
