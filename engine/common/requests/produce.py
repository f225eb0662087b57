"""Produce: a producer's batches for the partitions one broker leads."""

from __future__ import annotations

from dataclasses import dataclass

from engine.common.records import RecordBatch, TopicPartition
from engine.common.requests import ApiKey, Request, Response


@dataclass(frozen=True, slots=True)
class ProducePartitionData:
    tp: TopicPartition
    records: RecordBatch


@dataclass(frozen=True, slots=True)
class ProduceRequest(Request):
    api_key = ApiKey.PRODUCE
    acks: int
    timeout_ms: int
    partition_data: tuple[ProducePartitionData, ...]
    transactional_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProducePartitionResponse(Response):
    tp: TopicPartition
    error: str
    base_offset: int
    log_start_offset: int


@dataclass(frozen=True, slots=True)
class ProduceResponse(Response):
    # In the order of the request's partition_data.
    responses: tuple[ProducePartitionResponse, ...]
    error: str = ""
