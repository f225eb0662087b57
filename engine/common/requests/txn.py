"""The transaction APIs: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit,
EndTxn, and the coordinator's WriteTxnMarkers to partition leaders."""

from __future__ import annotations

from dataclasses import dataclass

from engine.common.records import TopicPartition
from engine.common.requests import ApiKey, Request, Response


@dataclass(frozen=True, slots=True)
class InitProducerIdRequest(Request):
    """Without a transactional id any broker allocates an id (an idempotent producer); with
    one the transaction coordinator answers, bumping the epoch of (producer_id,
    producer_epoch) when those are given (KIP-360)."""

    api_key = ApiKey.INIT_PRODUCER_ID
    transactional_id: str | None
    transaction_timeout_ms: int = -1
    producer_id: int = -1
    producer_epoch: int = -1


@dataclass(frozen=True, slots=True)
class InitProducerIdResponse(Response):
    error: str
    producer_id: int = -1
    producer_epoch: int = -1


@dataclass(frozen=True, slots=True)
class AddPartitionsToTxnRequest(Request):
    api_key = ApiKey.ADD_PARTITIONS_TO_TXN
    transactional_id: str
    producer_id: int
    producer_epoch: int
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class AddPartitionsToTxnResponse(Response):
    error: str


@dataclass(frozen=True, slots=True)
class AddOffsetsToTxnRequest(Request):
    api_key = ApiKey.ADD_OFFSETS_TO_TXN
    transactional_id: str
    producer_id: int
    producer_epoch: int
    group_id: str


@dataclass(frozen=True, slots=True)
class AddOffsetsToTxnResponse(Response):
    error: str


@dataclass(frozen=True, slots=True)
class TxnOffsetCommitRequest(Request):
    api_key = ApiKey.TXN_OFFSET_COMMIT
    transactional_id: str
    group_id: str
    producer_id: int
    producer_epoch: int
    generation_id: int
    member_id: str
    group_instance_id: str | None
    offsets: dict[TopicPartition, int]


@dataclass(frozen=True, slots=True)
class TxnOffsetCommitResponse(Response):
    error: str


@dataclass(frozen=True, slots=True)
class EndTxnRequest(Request):
    api_key = ApiKey.END_TXN
    transactional_id: str
    producer_id: int
    producer_epoch: int
    committed: bool


@dataclass(frozen=True, slots=True)
class EndTxnResponse(Response):
    error: str


@dataclass(frozen=True, slots=True)
class WriteTxnMarkersRequest(Request):
    """One marker (COMMIT or ABORT) for one partition, from the transaction coordinator."""

    api_key = ApiKey.WRITE_TXN_MARKERS
    producer_id: int
    producer_epoch: int
    transaction_result: bool
    tp: TopicPartition
    coordinator_epoch: int = -1


@dataclass(frozen=True, slots=True)
class WriteTxnMarkersResponse(Response):
    error: str
