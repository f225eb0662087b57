"""Cluster helpers shared by the engine tests (each file picks its own seed)."""

from __future__ import annotations

from typing import Any

from engine import Cluster


def replicated(
    config: dict[str, Any] | None = None,
    *,
    seed: int,
    brokers: int = 3,
    rf: int = 3,
    partitions: int = 1,
    broker_config: dict[str, Any] | None = None,
) -> Cluster:
    """A cluster with one topic "t" of `partitions` partitions, replication factor `rf`."""
    cluster = Cluster(brokers=brokers, seed=seed, config=broker_config)
    cluster.create_topic("t", partitions, rf, config)
    return cluster


def partition(cluster: Cluster, number: int = 0) -> Any:
    """The description of partition `number` of topic "t"."""
    return cluster.describe_topic("t").partitions[number]


def events(cluster: Cluster, kind: str, since: int = 0, **match: Any) -> list[dict[str, Any]]:
    """The data of the cluster's `kind` events from index `since`, whose data has `match`."""
    return [
        e.data
        for e in cluster.events[since:]
        if e.kind == kind and all(e.data.get(k) == v for k, v in match.items())
    ]
