"""The leader side of replica fetching: the part of Kafka's `ReplicaManager.fetchMessages` that
answers a follower's fetch (epoch checks, divergence, `updateFollowerFetchState`, reading the log).

The broker's requests are dispatched by `engine.server.kafka_apis`; this module owns what a leader
sends its followers. The fetch response shape lives in `engine.common.requests.fetch`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.common.records import RecordBatch, TopicPartition
from engine.common.requests.fetch import (
    FetchPartitionData,
    FetchResponse,
    FollowerFetchPartition,
    FollowerFetchRequest,
)

__all__ = ["FetchPartitionData", "FollowerFetchPartition", "ReplicaManager", "read_batches"]
from engine.server.delayed_fetch import ParkedFetch
from engine.server.fetch_session import (
    FETCH_SESSION_ID_NOT_FOUND,
    FINAL_EPOCH,
    INITIAL_EPOCH,
    INVALID_FETCH_SESSION_EPOCH,
    CachedPartition,
    FetchSession,
    next_epoch,
)

if TYPE_CHECKING:
    from engine.server.broker import Broker
    from engine.server.partition import Partition

Reply = Callable[[object], None]


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

    def handle_follower_fetch(self, request: FollowerFetchRequest, reply: Reply) -> None:
        """A follower's Fetch: sessionless (epoch -1), or in a fetch session (KIP-227): a full
        fetch that opens one (epoch 0) or an incremental fetch in a known one."""
        broker = self.broker
        cache = broker.fetch_sessions
        follower_id = request.replica_id
        epoch = request.session_epoch
        if epoch == FINAL_EPOCH:
            if request.session_id:
                cache.remove(request.session_id)
            self.handle_replica_fetch(
                follower_id,
                list(request.partitions),
                lambda response: reply(FetchResponse(response)),  # type: ignore[arg-type]
            )
            return
        broker.purgatory.supersede_follower(follower_id)
        if epoch == INITIAL_EPOCH:
            if request.session_id:
                cache.remove(request.session_id)
            session = cache.create(follower_id, request.partitions, broker.ctx.scheduler.now_ms)
            self._serve_session(session, True, reply)
            return
        found = cache.sessions.get(request.session_id)
        if found is None or found.replica_id != follower_id:
            reply(FetchResponse({}, FETCH_SESSION_ID_NOT_FOUND))
            return
        if found.epoch != epoch:
            reply(FetchResponse({}, INVALID_FETCH_SESSION_EPOCH))
            return
        cached = found.partitions
        for tp in request.forgotten:
            cached.pop(tp, None)
        for ask in request.partitions:
            entry = cached.get(ask.tp)
            if entry is None:
                cached[ask.tp] = CachedPartition(ask)
            else:
                entry.ask = ask
                entry.quiet = False
        found.epoch = next_epoch(epoch)
        found.last_used_ms = broker.ctx.scheduler.now_ms
        self._serve_session(found, False, reply)

    def _serve_session(self, session: FetchSession, full: bool, reply: Reply) -> None:
        """Answer a session's fetch now if it has news, or park it until it has (as
        `handle_replica_fetch` does for a sessionless one)."""
        broker = self.broker
        purgatory = broker.purgatory
        cached = session.partitions

        def send(read: tuple[dict[TopicPartition, FetchPartitionData], bool]) -> None:
            response = read[0]
            for tp, data in response.items():
                entry = cached.get(tp)
                if entry is not None:
                    entry.high_watermark = data.high_watermark
                    entry.log_start_offset = data.log_start_offset
                    entry.last_stable_offset = data.last_stable_offset
            reply(FetchResponse(response, "", session.id))

        first, behind = self.read_session(session, full)
        if any(data.batches or data.error or data.diverging_epoch for data in first.values()):
            send((first, behind))
            return
        partitions = broker.partitions
        me = broker.id

        def ready() -> bool:
            # The session's partitions and asks stay as they are while the fetch waits: only
            # the follower's next fetch changes them, and that one supersedes this.
            get = partitions.get
            for tp, entry in cached.items():
                partition = get(tp)
                if (
                    partition is None
                    or partition.leader_id != me
                    or partition.log.log_end_offset > entry.ask.fetch_offset
                ):
                    return True
            return False

        parked = ParkedFetch(
            [],
            ready,
            lambda: send(self.read_session(session, full)),
            broker.ctx.scheduler.now_ms,
            None,
            follower_id=session.replica_id,
            watch=cached,
        )
        purgatory.park(parked)
        if behind:
            wait = int(broker.config["replica.fetch.wait.max.ms"])
            parked.timer = broker.ctx.scheduler.call_later(wait, lambda: purgatory.respond(parked))

    def read_session(
        self, session: FetchSession, full: bool
    ) -> tuple[dict[TopicPartition, FetchPartitionData], bool]:
        """Read every partition of the session, in session order, as `read_for_follower` does;
        a quiet partition whose leader-side state has not moved is not read again, only the
        follower's fetch times are stamped (what the read would change). Returns the partitions
        to answer for (all of them for a full fetch) and whether the follower is behind on a
        high watermark it could already have (R7)."""
        broker = self.broker
        partitions = broker.partitions
        follower_id = session.replica_id
        now = broker.ctx.scheduler.now_ms
        replica_states = broker.replica_states
        response: dict[TopicPartition, FetchPartitionData] = {}
        behind = False
        for tp, entry in session.partitions.items():
            if entry.quiet and not full:
                partition = entry.partition
                state = entry.state
                assert partition is not None and state is not None
                log = partition.log
                end = entry.log_end_offset
                if (
                    log.log_end_offset == end
                    and log.high_watermark == end
                    and log.log_start_offset == entry.log_start_offset
                    and (
                        # No replica on this broker changed since the last look: the partition
                        # is still here, led here, in the same epoch, ISR and follower state.
                        entry.replica_states == replica_states
                        or self._still_led_as(partition, entry, follower_id, replica_states)
                    )
                ):
                    # What update_follower_fetch does for a follower at the log end.
                    if now > state.last_caught_up_ms:
                        state.last_caught_up_ms = now
                    state.last_fetch_ms = now
                    continue
                entry.quiet = False
            ask = entry.ask
            data = self.read_for_follower(follower_id, ask)
            clamped_hw = min(data.high_watermark, ask.fetch_offset)
            if ask.high_watermark < clamped_hw:
                behind = True
            news = bool(data.error or data.batches or data.diverging_epoch is not None)
            if (
                full
                or news
                or ask.high_watermark != clamped_hw
                or data.high_watermark != entry.high_watermark
                or data.log_start_offset != entry.log_start_offset
                or data.last_stable_offset != entry.last_stable_offset
            ):
                response[tp] = data
                continue
            partition = partitions.get(tp)
            if partition is None:
                continue
            log = partition.log
            end = log.log_end_offset
            follower = partition.followers.get(follower_id)
            if (
                follower is not None
                and ask.fetch_offset == end
                and log.high_watermark == end
                and follower_id in partition.isr
                and follower.log_end_offset == end
                and follower.last_fetch_leader_log_end_offset == end
            ):
                entry.quiet = True
                entry.partition = partition
                entry.state = follower
                entry.leader_epoch = partition.leader_epoch
                entry.isr = partition.isr
                entry.log_end_offset = end
                entry.replica_states = replica_states
        return response, behind

    def _still_led_as(
        self, partition: Partition, entry: CachedPartition, follower_id: int, replica_states: int
    ) -> bool:
        """Whether a quiet partition's replica state is as it was when it went quiet (then
        remembered as seen at `replica_states`)."""
        broker = self.broker
        if (
            broker.partitions.get(partition.tp) is partition
            and partition.leader_id == broker.id
            and partition.leader_epoch == entry.leader_epoch
            and partition.isr is entry.isr
            and partition.followers.get(follower_id) is entry.state
        ):
            entry.replica_states = replica_states
            return True
        return False

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
            watched,
            ready,
            lambda: reply(build()),
            broker.ctx.scheduler.now_ms,
            None,
            follower_id=follower_id,
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
        broker = self.broker
        partition = broker.partitions.get(ask.tp)
        if partition is None or partition.leader_id != broker.id:
            return FetchPartitionData(error="NOT_LEADER_OR_FOLLOWER")
        leader_epoch = partition.leader_epoch
        if ask.current_leader_epoch < leader_epoch:
            return FetchPartitionData(error="FENCED_LEADER_EPOCH")
        if ask.current_leader_epoch > leader_epoch:
            return FetchPartitionData(error="UNKNOWN_LEADER_EPOCH")
        log = partition.log
        fetch_offset = ask.fetch_offset
        if ask.last_fetched_epoch >= 0:
            epoch, end = log.end_offset_for_epoch(ask.last_fetched_epoch)
            if epoch != ask.last_fetched_epoch or end < fetch_offset:
                return FetchPartitionData(
                    high_watermark=log.high_watermark,
                    log_start_offset=log.log_start_offset,
                    diverging_epoch=(epoch, end),
                )
        if fetch_offset > log.log_end_offset:
            return FetchPartitionData(
                high_watermark=log.high_watermark,
                log_start_offset=log.log_start_offset,
                diverging_epoch=(log.latest_epoch(), log.log_end_offset),
            )
        partition.update_follower_fetch(follower_id, fetch_offset)
        log_end = log.log_end_offset
        start = max(fetch_offset, log.log_start_offset)
        # A follower at the log end is sent no batches (what read_batches finds there).
        batches = (
            read_batches(log, start, log_end, int(broker.config["replica.fetch.max.bytes"]))
            if start < log_end
            else []
        )
        return FetchPartitionData(
            high_watermark=log.high_watermark,
            last_stable_offset=log.last_stable_offset,
            log_start_offset=log.log_start_offset,
            batches=batches,
        )
