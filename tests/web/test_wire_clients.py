"""Real Kafka clients against a live sandbox's loopback listeners (the Kafka wire front door)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async

from webapp import services
from webapp.engine_host.host import ClusterHost

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def wired_host(registry: Any) -> ClusterHost:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await registry.ensure(sandbox.id)
    assert host is not None
    await host.enable_wire()
    return host


def produce_with_keys(bootstrap: str) -> list[Any]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    futures = [
        producer.send("orders", key=f"user-{i}".encode(), value=f"v{i}".encode()) for i in range(20)
    ]
    producer.flush(timeout=30)
    metadata = [f.get(timeout=30) for f in futures]
    producer.close(timeout=5)
    return metadata


async def test_kafka_python_produces_with_keys(host_registry: Any) -> None:
    logging.getLogger("kafka").setLevel(logging.DEBUG)
    host = await wired_host(host_registry)
    metadata = await asyncio.to_thread(produce_with_keys, host.wire.bootstrap_servers())
    from engine.partitioner import partition_for_key

    assert [m.partition for m in metadata] == [
        partition_for_key(f"user-{i}".encode(), 3) for i in range(20)
    ]
