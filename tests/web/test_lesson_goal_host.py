"""A lesson step's live goal on the engine host: set by `host.watch`, checked after every tick
and command, published as the `lesson-goal` fragment."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from lessons.catalogue import get_catalogue
from lessons.walkthrough import compile_lesson
from webapp import services
from webapp.engine_host import client as host_client


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_host_watches_a_goal_and_publishes_when_it_is_reached(host_registry: Any) -> None:
    lesson = get_catalogue().lesson("leader-failover")
    assert lesson is not None
    cluster = await database_sync_to_async(services.lesson_cluster_create)(
        compiled=compile_lesson(lesson)
    )
    host = await host_registry.ensure(cluster.id)
    assert host is not None
    host.paused = True  # the test runs the clock itself
    frame = await host_client.host_request(
        cluster.id, {"type": "host.watch", "lesson": lesson.id, "step": 0, "since": None}
    )
    assert frame is not None and frame["type"] == "ack", frame
    assert frame["status"]["done"] is False
    _, since_ms = frame["since"]

    kill = await host_client.host_request(
        cluster.id, {"type": "host.command", "command": {"type": "stop_broker", "broker_id": 1}}
    )
    assert kill is not None and kill["type"] == "ack", kill
    await host.advance_live(5_000)
    assert host.goal.done is False
    await host.advance_live(6_000)
    assert host.goal.done is True
    status = host.goal.status()
    assert 8_000 <= status["done_ms"] - since_ms <= 10_000
    host._publish()
    fragment = host.published.fragments["lesson-goal"]
    assert 'data-done="1"' in fragment and "Done at" in fragment
    assert "broker:1" in fragment  # what the stage highlights

    # Moving on reports the finished step's status and starts the next goal.
    second = await host_client.host_request(
        cluster.id, {"type": "host.watch", "lesson": lesson.id, "step": 1, "since": None}
    )
    assert second is not None and second["previous"]["done"] is True
    assert second["previous"]["step"] == 0 and second["status"]["step"] == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_watch_for_a_step_that_does_not_exist_is_refused(host_registry: Any) -> None:
    lesson = get_catalogue().lesson("leader-failover")
    assert lesson is not None
    cluster = await database_sync_to_async(services.lesson_cluster_create)(
        compiled=compile_lesson(lesson)
    )
    await host_registry.ensure(cluster.id)
    frame = await host_client.host_request(
        cluster.id, {"type": "host.watch", "lesson": lesson.id, "step": 9}
    )
    assert frame is not None and frame["type"] == "error"
    assert frame["message"] == "Lesson leader-failover has no step 9."
