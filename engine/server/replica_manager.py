"""The leader side of replica fetching: the part of Kafka's `ReplicaManager.fetchMessages` that
answers a follower's fetch (epoch checks, divergence, `updateFollowerFetchState`, reading the log).

The broker's request handlers stay in `engine.server.broker`; this module owns what a leader sends
its followers, and the fetch response shape shared with consumer fetches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.common.records import RecordBatch, TopicPartition
from engine.server.delayed_fetch import ParkedFetch

if TYPE_CHECKING:
    from engine.server.broker import Broker

Reply = Callable[[object], None]


@dataclass(slots=True)
class FetchPartitionData:
    error: str = ""
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    batches: list[RecordBatch] = field(default_factory=list)
    diverging_epoch: tuple[int, int] | None = None
    aborted: list[tuple[int, int]] = field(default_factory=list)


@dataclass(slots=True)
class FollowerFetchPartition:
    tp: TopicPartition
    fetch_offset: int
    last_fetched_epoch: int
    current_leader_epoch: int
    high_watermark: int = -1


def read_batches(log: Any, start: int, end: int, max_bytes: int) -> list[RecordBatch]:
    """Whole batches from `start` up to `end`, at least one even when it exceeds `max_bytes`."""
    out: list[RecordBatch] = []
    total = 0
    for batch in log.iter_batches(start, end):
        if batch.base_offset >= end:
            break
        if out and total + batch.size > max_bytes:
            break
        out.append(batch)
        total += batch.size
    return out


class ReplicaManager:
    """Serves followers' fetches from the leader replicas on one broker."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def handle_replica_fetch(
        self, follower_id: int, asks: list[FollowerFetchPartition], reply: Reply
    ) -> None:
        broker = self.broker
        purgatory = broker.purgatory
        purgatory.supersede_follower(follower_id)

        def build() -> dict[TopicPartition, FetchPartitionData]:
            response: dict[TopicPartition, FetchPartitionData] = {}
            for ask in asks:
                response[ask.tp] = self.read_for_follower(follower_id, ask)
            return response

        first = build()
        if any(data.batches or data.error or data.diverging_epoch for data in first.values()):
            reply(first)
            return
        watched = [ask.tp for ask in asks]
        ends = {ask.tp: ask.fetch_offset for ask in asks}

        def ready() -> bool:
            for tp in watched:
                partition = broker.partitions.get(tp)
                if (
                    partition is None
                    or not partition.is_leader
                    or partition.log.log_end_offset > ends[tp]
                ):
                    return True
            return False

        parked = ParkedFetch(
            watched, ready, lambda: reply(build()), broker.now_ms, None, follower_id=follower_id
        )
        purgatory.park(parked)
        # A follower behind on the high watermark learns it with the next response, at the
        # latest replica.fetch.wait.max.ms from now (R7).
        if any(
            ask.high_watermark < min(data.high_watermark, ask.fetch_offset)
            for ask, data in zip(asks, first.values(), strict=True)
        ):
            wait = int(broker.config["replica.fetch.wait.max.ms"])
            parked.timer = broker.ctx.scheduler.call_later(wait, lambda: purgatory.respond(parked))

    def read_for_follower(
        self, follower_id: int, ask: FollowerFetchPartition
    ) -> FetchPartitionData:
        partition = self.broker.partitions.get(ask.tp)
        if partition is None or not partition.is_leader:
            return FetchPartitionData(error="NOT_LEADER_OR_FOLLOWER")
        if ask.current_leader_epoch < partition.leader_epoch:
            return FetchPartitionData(error="FENCED_LEADER_EPOCH")
        if ask.current_leader_epoch > partition.leader_epoch:
            return FetchPartitionData(error="UNKNOWN_LEADER_EPOCH")
        log = partition.log
        if ask.last_fetched_epoch >= 0:
            epoch, end = log.end_offset_for_epoch(ask.last_fetched_epoch)
            if epoch != ask.last_fetched_epoch or end < ask.fetch_offset:
                return FetchPartitionData(
                    high_watermark=log.high_watermark,
                    log_start_offset=log.log_start_offset,
                    diverging_epoch=(epoch, end),
                )
        if ask.fetch_offset > log.log_end_offset:
            return FetchPartitionData(
                high_watermark=log.high_watermark,
                log_start_offset=log.log_start_offset,
                diverging_epoch=(log.latest_epoch(), log.log_end_offset),
            )
        fetch_offset = max(ask.fetch_offset, log.log_start_offset)
        partition.update_follower_fetch(follower_id, ask.fetch_offset)
        batches = read_batches(
            log,
            fetch_offset,
            log.log_end_offset,
            int(self.broker.config["replica.fetch.max.bytes"]),
        )
        return FetchPartitionData(
            high_watermark=log.high_watermark,
            last_stable_offset=log.last_stable_offset,
            log_start_offset=log.log_start_offset,
            batches=batches,
        )
