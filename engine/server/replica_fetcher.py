"""The follower side of replication: Kafka's `ReplicaFetcherThread` (and the
`AbstractFetcherThread` it extends), one per broker, keeping a fetch in flight to each leader.

It asks each leader for what its followed partitions lack, appends what comes back, takes the
leader's high watermark and log start, truncates on a diverging epoch, and backs off after errors
or a lost connection. Kept apart from the broker so the follower's loop reads on its own."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from engine.common.records import TopicPartition
from engine.common.requests.fetch import (
    FetchPartitionData,
    FetchResponse,
    FollowerFetchPartition,
    FollowerFetchRequest,
)
from engine.server.fetch_session import (
    INITIAL_EPOCH,
    INVALID_SESSION_ID,
    FetchSessionHandler,
    next_epoch,
)
from engine.server.replica_manager import Reply
from engine.sim.clock import Timer
from engine.sim.network import DISCONNECTED, request

if TYPE_CHECKING:
    from engine.server.broker import Broker
    from engine.server.partition import Partition


class ReplicaFetcher:
    """The fetches one broker, as follower, has in flight to its leaders."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.fetching_from: set[int] = set()
        self.fetch_session: dict[int, int] = {}
        self.fetch_backoff: dict[int, Timer] = {}
        # The incremental fetch session with each leader (KIP-227).
        self.sessions: dict[int, FetchSessionHandler] = {}

    def stop(self) -> None:
        """The broker stopped: its fetches, sessions and pending retries are gone."""
        self.fetching_from.clear()
        self.sessions.clear()
        for timer in self.fetch_backoff.values():
            timer.cancel()
        self.fetch_backoff.clear()

    def ensure_fetching(self, leader_id: int, partitions_changed: bool = False) -> None:
        """Keep one fetch in flight to each leader; a changed set of partitions sends a new fetch
        that supersedes the one waiting at the leader."""
        broker = self.broker
        if leader_id == broker.id or not broker.alive:
            return
        if leader_id in self.fetch_backoff:
            return
        if leader_id in self.fetching_from and not partitions_changed:
            return
        self.send_replica_fetch(leader_id)

    def followed_from(self, leader_id: int) -> list[Partition]:
        return [
            p
            for p in self.broker.partitions.values()
            if not p.is_leader and p.leader_id == leader_id
        ]

    def send_replica_fetch(self, leader_id: int) -> None:
        broker = self.broker
        if not broker.alive:
            return
        handler = self.sessions.get(leader_id)
        if handler is None:
            handler = self.sessions[leader_id] = FetchSessionHandler()
        layout = broker.replica_layout
        full = handler.wants_full(layout)
        partitions = self.followed_from(leader_id) if full else handler.partitions
        if not partitions:
            return
        if not broker.ctx.network.reachable(broker.id, leader_id):
            # No route: the follower tries again when the network changes (Cluster heals it).
            self.fetching_from.discard(leader_id)
            return
        self.fetching_from.add(leader_id)
        if full:
            asks = [_ask(p) for p in partitions]
            handler.sent = {ask.tp: ask for ask in asks}
            handler.partitions = partitions
            handler.layout = layout
            handler.epoch = INITIAL_EPOCH
            fetch_request = FollowerFetchRequest(
                broker.id, tuple(asks), handler.session_id, INITIAL_EPOCH
            )
        else:
            # Incremental: only the partitions whose fetch state moved, in session order.
            sent = handler.sent
            changed: list[FollowerFetchPartition] = []
            if handler.touched:
                followed = broker.partitions
                for tp in handler.touched:
                    previous = sent.get(tp)
                    partition = followed.get(tp)
                    if previous is None or partition is None:
                        continue
                    ask = _ask(partition)
                    if ask != previous:
                        sent[tp] = ask
                        changed.append(ask)
                handler.touched.clear()
            fetch_request = FollowerFetchRequest(
                broker.id, tuple(changed), handler.session_id, handler.epoch
            )
            handler.epoch = next_epoch(handler.epoch)
        handler.in_flight = True
        leader = broker.ctx.nodes.broker_by_id(leader_id)
        incarnation = broker.incarnation
        session = self.fetch_session.get(leader_id, 0) + 1
        self.fetch_session[leader_id] = session
        finished = [False]

        def handle(reply: Reply) -> None:
            leader.handle_request(fetch_request, reply)

        def on_reply(response: object) -> None:
            if finished[0] or broker.incarnation != incarnation or not broker.alive:
                return
            finished[0] = True
            if self.fetch_session.get(leader_id) != session:
                return  # superseded by a newer fetch
            self.fetching_from.discard(leader_id)
            handler.in_flight = False
            if response is DISCONNECTED:
                handler.reset()
                self.backoff_fetch(leader_id)
                return
            assert isinstance(response, FetchResponse)
            if response.error:
                # FETCH_SESSION_ID_NOT_FOUND or INVALID_FETCH_SESSION_EPOCH: a full fetch now.
                handler.handle_error(response.error)
                self.send_replica_fetch(leader_id)
                return
            if fetch_request.session_epoch == INITIAL_EPOCH:
                handler.session_id = response.session_id
                handler.epoch = next_epoch(INITIAL_EPOCH)
                if handler.session_id == INVALID_SESSION_ID:
                    handler.reset(keep_session=False)
            handler.touched.update(dict.fromkeys(response.responses))
            self.process_replica_fetch(leader_id, response.responses)

        request(
            broker.ctx.network,
            broker.id,
            leader_id,
            fetch_request.kind(),
            lambda: leader.alive,
            handle,
            on_reply,
        )

    def connection_lost(self, leader_id: int) -> None:
        """The leader's process died or the route to it was cut: the fetch in flight is gone
        (a real follower sees its connection reset or time out) and it retries after backoff."""
        if leader_id not in self.fetching_from:
            return
        self.fetching_from.discard(leader_id)
        self.fetch_session[leader_id] = self.fetch_session.get(leader_id, 0) + 1
        handler = self.sessions.get(leader_id)
        if handler is not None:
            handler.in_flight = False
            handler.reset()
        self.backoff_fetch(leader_id)

    def backoff_fetch(self, leader_id: int) -> None:
        broker = self.broker
        backoff = int(broker.config["replica.fetch.backoff.ms"])
        incarnation = broker.incarnation

        def retry() -> None:
            self.fetch_backoff.pop(leader_id, None)
            if broker.incarnation == incarnation:
                self.ensure_fetching(leader_id)

        self.fetch_backoff[leader_id] = broker.ctx.scheduler.call_later(backoff, retry)

    def process_replica_fetch(
        self, leader_id: int, response: dict[TopicPartition, FetchPartitionData]
    ) -> None:
        broker = self.broker
        errors = False
        for tp, data in response.items():
            partition = broker.partitions.get(tp)
            if partition is None or partition.leader_id != leader_id or leader_id == broker.id:
                continue
            if data.error:
                errors = True
                continue
            log = partition.log
            if data.diverging_epoch is not None:
                self.truncate_on_divergence(partition, leader_id, data.diverging_epoch)
                continue
            if (
                data.batches
                and data.batches[0].base_offset > log.log_end_offset
                and log.log_end_offset < data.log_start_offset
            ):
                log.truncate_fully_and_start_at(data.log_start_offset, broker.ctx.scheduler.now_ms)
            for batch in data.batches:
                end = log.log_end_offset
                if batch.last_offset < end:
                    continue
                records = batch.records
                if records and records[0].offset >= end and batch.base_offset == records[0].offset:
                    # The whole batch is past the log end: the follower stores the leader's own
                    # batch object, as Kafka's follower stores the same bytes. A stored batch is
                    # never changed (a shorter one is a copy), so the replicas may share it.
                    copy = batch
                else:
                    kept = [r for r in records if r.offset >= end]
                    if not kept:
                        continue
                    copy = replace(batch, base_offset=kept[0].offset, records=kept)
                log.append(copy, broker.ctx.scheduler.now_ms)
                partition.producer_state.update(copy)
                broker.ctx.taps.on_follower_append(partition, copy)
            # R7: a follower's HW is the leader's, clamped to its own log end.
            if log.update_high_watermark(min(data.high_watermark, log.log_end_offset)):
                broker.ctx.taps.on_high_watermark_changed(partition)
            if data.log_start_offset > log.log_start_offset:
                log.maybe_increment_log_start_offset(
                    data.log_start_offset, "leader's log start offset"
                )
        if errors:
            self.backoff_fetch(leader_id)
        else:
            self.ensure_fetching(leader_id)

    def truncate_on_divergence(
        self, partition: Partition, leader_id: int, diverging: tuple[int, int]
    ) -> None:
        """R8: cut the log back to where it agrees with the new leader's epochs."""
        leader_epoch, leader_end = diverging
        log = partition.log
        follower_epoch, follower_end = log.end_offset_for_epoch(leader_epoch)
        if follower_epoch == leader_epoch:
            target = min(leader_end, follower_end)
        else:
            target = min(leader_end, follower_end) if follower_end >= 0 else leader_end
        target = (
            max(target, log.log_start_offset)
            if follower_end >= 0
            else min(leader_end, log.log_end_offset)
        )
        target = min(target, log.log_end_offset)
        removed = log.truncate_to(target)
        partition.producer_state.rebuild(list(log.iter_batches(log.log_start_offset)))
        if removed:
            broker = self.broker
            broker.ctx.emit(
                "log_truncated",
                {
                    "topic": partition.tp.topic,
                    "partition": partition.tp.partition,
                    "broker": broker.id,
                    "truncated_to": target,
                    "leader": leader_id,
                    "offsets": [r.offset for r in removed],
                    "records": len(removed),
                },
            )
            broker.ctx.taps.on_truncate(partition, removed)


def _ask(partition: Partition) -> FollowerFetchPartition:
    log = partition.log
    return FollowerFetchPartition(
        partition.tp,
        log.log_end_offset,
        log.latest_epoch(),
        partition.leader_epoch,
        log.high_watermark,
    )
