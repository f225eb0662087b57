"""Lesson steps done with a real Kafka client: every snippet in the lessons runs here, against
the lesson cluster's live listeners, and must reach the step's goal (the walk-through checks
the same goal through the engine with the step's show_me)."""

from __future__ import annotations

import asyncio
import html
import shutil
import subprocess
import sys
from typing import Any

import pytest
from channels.db import database_sync_to_async

from lessons.catalogue import BOOTSTRAP_PLACEHOLDER, Lesson, get_catalogue
from lessons.walkthrough import compile_lesson, watch_start
from webapp import services

pytestmark = pytest.mark.django_db(transaction=True)


def real_client_snippets() -> list[tuple[str, int, int]]:
    found = []
    for lesson in get_catalogue().lessons:
        for step in lesson.steps:
            if step.real_client is not None:
                for i, _ in enumerate(step.real_client.snippets):
                    found.append((lesson.id, step.index, i))
    return found


SNIPPETS = real_client_snippets()


def test_the_lessons_have_real_client_steps() -> None:
    assert ("keys-and-ordering", 2, 0) in SNIPPETS
    languages = {
        get_catalogue().lesson(lid).steps[s].real_client.snippets[i].language  # type: ignore[union-attr]
        for lid, s, i in SNIPPETS
    }
    assert languages == {"python", "shell"}


def run_snippet(language: str, code: str) -> subprocess.CompletedProcess[str]:
    if language == "python":
        command = [sys.executable, "-c", code]
    else:
        assert shutil.which("kcat"), "kcat is installed by scripts/test (Debian package kcat)"
        command = ["bash", "-eo", "pipefail", "-c", code]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


async def lesson_host_at_step(registry: Any, lesson: Lesson, step_index: int) -> Any:
    """A live host of a fresh lesson cluster, the steps before `step_index` done with Show me."""
    compiled = compile_lesson(lesson)
    cluster = await database_sync_to_async(services.lesson_cluster_create)(compiled=compiled)
    host = await registry.ensure(cluster.id)
    assert host is not None
    for plan in compiled.steps[:step_index]:
        for _, payload in plan.show_me:
            frame = await host.command(dict(payload))
            assert frame.get("type") == "ack", frame
        await host.advance_live(2000)
    return host


@pytest.mark.asyncio
@pytest.mark.parametrize(("lesson_id", "step_index", "snippet_index"), SNIPPETS)
async def test_each_snippet_reaches_its_steps_goal_over_the_wire(
    host_registry: Any, lesson_id: str, step_index: int, snippet_index: int
) -> None:
    lesson = get_catalogue().lesson(lesson_id)
    assert lesson is not None
    step = lesson.steps[step_index]
    assert step.real_client is not None
    snippet = step.real_client.snippets[snippet_index]
    host = await lesson_host_at_step(host_registry, lesson, step_index)
    watch = watch_start(lesson, step_index, host.runtime)
    assert not watch.check(host.runtime)  # not done before the client runs
    await host.enable_wire()
    code = snippet.code.replace(BOOTSTRAP_PLACEHOLDER, host.wire.bootstrap_servers())
    result = await asyncio.to_thread(run_snippet, snippet.language, code)
    assert result.returncode == 0, result.stderr[-2000:]
    done = False
    for _ in range(40):
        async with host.lock:
            done = watch.check(host.runtime)
        if done:
            break
        await host.advance_live(250)
    assert done, watch.status()
    # The client's requests are in the log: the lesson cluster replays to the same place.
    assert any(c["client_id"] for c in host.runtime.cluster.remote.snapshot())


@pytest.mark.asyncio
async def test_the_lesson_page_shows_the_snippet_with_the_clusters_addresses(
    host_registry: Any,
) -> None:
    from django.test import AsyncClient

    client = AsyncClient()
    page = await client.get("/lessons/keys-and-ordering/")
    assert page.status_code == 200
    assert b'data-role="real-client"' in page.content
    assert b'data-role="real-client-snippet"' not in page.content  # listeners still closed
    cluster_id = page.context["sandbox"].id
    host = await host_registry.ensure(cluster_id)
    assert host is not None
    opened = await client.post(
        f"/sandbox/{cluster_id}/kafka/",
        {"action": "open", "next": "/lessons/keys-and-ordering/"},
    )
    assert opened.status_code == 302 and opened["Location"] == "/lessons/keys-and-ordering/"
    page = await client.get("/lessons/keys-and-ordering/")
    bootstrap = host.wire.bootstrap_servers()
    text = html.unescape(page.content.decode())
    assert f'bootstrap_servers="{bootstrap}"' in text
    assert f"kcat -b {bootstrap} -P -t orders" in text
    # A redirect elsewhere is refused (open redirects).
    away = await client.post(
        f"/sandbox/{cluster_id}/kafka/", {"action": "open", "next": "https://example.com/"}
    )
    assert away["Location"] == f"/sandbox/{cluster_id}/"
