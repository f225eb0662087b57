"""The console over HTTP: POST /sandbox/<id>/console/ with `line` answers text/plain with what the
tool prints; every line is a logged command, so the log replays to the same cluster."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from lessons.scenarios import ClusterRuntime
from webapp import services
from webapp.models import ClusterCommand

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
B = "--bootstrap-server localhost:9092"


async def _console(client: AsyncClient, sandbox_id: str, line: str) -> Any:
    return await client.post(f"/sandbox/{sandbox_id}/console/", {"line": line})


async def test_a_line_answers_text_plain_and_is_logged_and_replays(host_registry: Any) -> None:
    sandbox = await sync_to_async(services.sandbox_create)()
    client = AsyncClient()
    created = await _console(
        client, sandbox.id, f"kafka-topics.sh {B} --create --topic payments --partitions 2"
    )
    assert created.status_code == 200
    assert created["Content-Type"] == "text/plain; charset=utf-8"
    assert created.content.decode() == "Created topic payments.\n"
    assert (created["X-Console-Prompt"], created["X-Console-Running"]) == ('"$ "', "no")
    # The learner types the next line a moment later: by then the brokers' metadata has the
    # topic (the tools read it through the Admin client, one network hop after the controller).
    host = await host_registry.ensure(sandbox.id)
    host.paused = True
    await host.advance_live(100)

    described = await _console(
        client, sandbox.id, f"kafka-topics.sh {B} --describe --topic payments"
    )
    text = described.content.decode()
    assert text.startswith("Topic: payments\tTopicId: ")
    assert "\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: \n" in text

    refused = await _console(
        client, sandbox.id, f"kafka-topics.sh {B} --under-replicated-partitions"
    )
    assert refused.status_code == 200  # the tool ran; its answer is the usage error
    assert refused.content.decode().startswith("Command must include exactly one action")

    produced = await _console(
        client, sandbox.id, f"kafka-console-producer.sh {B} --topic payments\nfirst\nsecond"
    )
    assert produced.content.decode() == ""
    consumed = await _console(
        client,
        sandbox.id,
        f"kafka-console-consumer.sh {B} --topic payments --from-beginning --timeout-ms 5000",
    )
    lines = consumed.content.decode().splitlines()
    assert sorted(lines[:2]) == ["first", "second"]
    assert lines[-1] == "Processed a total of 2 messages"

    logged = await sync_to_async(
        lambda: list(
            ClusterCommand.objects.filter(cluster=sandbox, kind="console")
            .order_by("seq")
            .values_list("payload", flat=True)
        )
    )()
    assert [p["line"].split()[0] for p in logged] == [
        "kafka-topics.sh",
        "kafka-topics.sh",
        "kafka-topics.sh",
        "kafka-console-producer.sh",
        "kafka-console-consumer.sh",
    ]
    host = host_registry.hosts[sandbox.id]
    async with host.lock:
        await host._flush_advance_locked()
        live = host.runtime.cluster.snapshot()
    log = await sync_to_async(
        lambda: [c.payload for c in ClusterCommand.objects.filter(cluster=sandbox).order_by("seq")]
    )()
    assert ClusterRuntime.replay(host.runtime.spec, log).cluster.snapshot() == live


async def test_completion_data_and_csrf(host_registry: Any) -> None:
    sandbox = await sync_to_async(services.sandbox_create)()
    data = (await AsyncClient().get(f"/sandbox/{sandbox.id}/console/?complete=1")).json()
    assert "kafka-topics.sh" in data["tools"]
    assert data["topics"] == ["orders"]
    assert {"name": "--describe", "arg": False} in data["options"]["kafka-topics.sh"]
    guarded = AsyncClient(enforce_csrf_checks=True)
    response = await guarded.post(f"/sandbox/{sandbox.id}/console/", {"line": "kafka-topics.sh"})
    assert response.status_code == 403


async def test_a_missing_line_is_refused_and_logs_nothing(host_registry: Any) -> None:
    sandbox = await sync_to_async(services.sandbox_create)()
    response = await AsyncClient().post(f"/sandbox/{sandbox.id}/console/", {})
    assert response.status_code == 400
    assert response.content.decode() == "line: Type a command line.\n"
    count = await sync_to_async(
        ClusterCommand.objects.filter(cluster=sandbox, kind="console").count
    )()
    assert count == 0
