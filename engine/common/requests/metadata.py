"""Metadata (what a client learns of topics and leaders) and DescribeCluster."""

from __future__ import annotations

from dataclasses import dataclass

from engine.common.requests import ApiKey, Request, Response


@dataclass(frozen=True, slots=True)
class MetadataRequest(Request):
    api_key = ApiKey.METADATA
    # None asks for every topic (Kafka's null topics).
    topics: tuple[str, ...] | None
    allow_auto_topic_creation: bool = True


@dataclass(frozen=True, slots=True)
class MetadataResponsePartition:
    partition_index: int
    leader_id: int
    leader_epoch: int
    replica_nodes: tuple[int, ...]
    isr_nodes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MetadataResponseTopic(Response):
    name: str
    error: str = ""
    partitions: tuple[MetadataResponsePartition, ...] = ()
    is_internal: bool = False


@dataclass(frozen=True, slots=True)
class MetadataResponse(Response):
    topics: tuple[MetadataResponseTopic, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class DescribeClusterRequest(Request):
    api_key = ApiKey.DESCRIBE_CLUSTER


@dataclass(frozen=True, slots=True)
class DescribeClusterBroker:
    broker_id: int
    host: str
    port: int
    rack: str | None = None
    # Not in Kafka's response: whether the controller has the broker fenced or alive.
    fenced: bool = False


@dataclass(frozen=True, slots=True)
class DescribeClusterResponse(Response):
    cluster_id: str
    controller_id: int
    brokers: tuple[DescribeClusterBroker, ...]
    error: str = ""
    error_message: str | None = None
