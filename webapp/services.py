"""Writes of the web layer: creating sandboxes with their first commands."""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.db import transaction

from engine import Cluster
from engine.errors import KafkaError
from webapp.engine_host import store
from webapp.models import LiveCluster

logger = logging.getLogger(__name__)

SANDBOX_BROKERS = 3
SANDBOX_TOPIC = "orders"
SANDBOX_PARTITIONS = 3
SANDBOX_CONSUMER = "reader"
SANDBOX_CONSUMER_POLL_MS = 500


@functools.cache
def replication_factor_supported(brokers: int) -> int:
    """RF=brokers if the engine replicates yet (checked through describe_topic), else 1."""
    try:
        cluster = Cluster(brokers=brokers, seed=0)
        cluster.create_topic("probe", partitions=1, replication_factor=brokers)
        replicas = cluster.describe_topic("probe").partitions[0].replicas
    except (KafkaError, NotImplementedError, TypeError, ValueError) as error:
        logger.warning("engine refused RF=%d (%s); sandboxes use RF=1", brokers, error)
        return 1
    return brokers if len(replicas) == brokers else 1


def sandbox_setup_commands(*, brokers: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "create_topic",
            "name": SANDBOX_TOPIC,
            "partitions": SANDBOX_PARTITIONS,
            "replication_factor": replication_factor_supported(brokers),
        },
        {
            "type": "add_consumer",
            "name": SANDBOX_CONSUMER,
            "topic": SANDBOX_TOPIC,
            "poll_interval_ms": SANDBOX_CONSUMER_POLL_MS,
            "max_records": 1,
        },
    ]


def sandbox_create(*, session_key: str = "", seed: int | None = None) -> LiveCluster:
    """A new 3-broker sandbox whose log starts with its topic and its running consumer."""
    with transaction.atomic():
        cluster = LiveCluster(
            kind=LiveCluster.Kind.SANDBOX,
            brokers=SANDBOX_BROKERS,
            owner_session_key=session_key,
        )
        if seed is not None:
            cluster.seed = seed
        cluster.save()
        for seq, payload in enumerate(sandbox_setup_commands(brokers=cluster.brokers), start=1):
            store.cluster_command_append(
                cluster_id=cluster.id, seq=seq, payload=payload, logical_time_ms=0
            )
    return cluster


def lesson_cluster_create(*, compiled: Any, session_key: str = "") -> LiveCluster:
    """A live cluster for a lesson: the lesson scenario's cluster, then its topics and setup
    commands at t=0 (the same payloads the walk-through applies)."""
    spec = compiled.scenario.cluster
    with transaction.atomic():
        cluster = LiveCluster(
            kind=LiveCluster.Kind.SANDBOX,
            seed=spec.seed,
            brokers=spec.brokers,
            controllers=spec.controllers,
            engine_config=dict(spec.config or {}),
            owner_session_key=session_key,
        )
        cluster.save()
        for seq, payload in enumerate(compiled.setup_payloads(), start=1):
            store.cluster_command_append(
                cluster_id=cluster.id, seq=seq, payload=payload, logical_time_ms=0
            )
    return cluster
