"""Fetches parked at a leader until there is data for them: Kafka's `DelayedFetch` waiting in the
fetch purgatory (`DelayedOperationPurgatory`).

A consumer or follower fetch that finds nothing new does not get an empty answer at once; it
waits here, keyed by its partitions, until an append, a high-watermark move or a leadership change
makes it ready, or its wait runs out. Kept apart from the broker so the waiting rules live in one
place."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.common.records import TopicPartition
from engine.sim.clock import Timer

if TYPE_CHECKING:
    from engine.server.broker import Broker
    from engine.server.partition import Partition


@dataclass(slots=True)
class ParkedFetch:
    """A fetch waiting at the leader for data (Kafka's `DelayedFetch`)."""

    tps: list[TopicPartition]
    ready: Callable[[], bool]
    respond: Callable[[], None]
    parked_ms: int
    max_wait_ms: int | None
    timer: Timer | None = None
    done: bool = False
    follower_id: int | None = None
    # A follower's fetch in a session (KIP-227) watches its session's partitions in place
    # (`watch`, the session's own mapping) instead of being listed under each of them; the
    # partitions the broker forgot while it waited (a topic deleted) no longer wake it.
    watch: Collection[TopicPartition] | None = None
    forgotten: set[TopicPartition] = field(default_factory=set)
    # The order fetches were parked in: the order they are woken in.
    seq: int = 0

    def parked_with(self, tp: TopicPartition) -> bool:
        """Whether `tp` was one of the partitions this fetch was parked with."""
        return tp in (self.tps if self.watch is None else self.watch)


class FetchPurgatory:
    """The fetches parked on one broker: by partition, and (for followers) by follower. A
    follower's fetch in a session is found through its follower alone (a broker has one fetch
    parked per follower at most): parking it or answering it costs the same however many
    partitions the session holds."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.parked: dict[TopicPartition, list[ParkedFetch]] = {}
        self.parked_followers: dict[int, ParkedFetch] = {}
        # The parked follower fetches in a session (a subset of parked_followers' values).
        self.in_sessions: dict[int, ParkedFetch] = {}
        self._seq = 0

    def stop(self) -> None:
        """The broker stopped: every parked fetch is dropped without an answer."""
        for waiting in [*self.parked.values(), self.in_sessions.values()]:
            for parked in waiting:
                parked.done = True
                if parked.timer:
                    parked.timer.cancel()
        self.parked.clear()
        self.parked_followers.clear()
        self.in_sessions.clear()

    def forget_partition(self, tp: TopicPartition) -> None:
        self.parked.pop(tp, None)
        for parked in self.in_sessions.values():
            if tp in parked.watch:  # type: ignore[operator]
                parked.forgotten.add(tp)

    def waiting_on(self, tp: TopicPartition) -> list[ParkedFetch]:
        """The fetches `tp` can wake, in the order they were parked."""
        waiting = self.parked.get(tp)
        sessions = self.in_sessions
        if not sessions:
            return list(waiting) if waiting else []
        found = [
            parked
            for parked in sessions.values()
            if tp in parked.watch and tp not in parked.forgotten  # type: ignore[operator]
        ]
        if not found:
            return list(waiting) if waiting else []
        if waiting:
            found.extend(waiting)
            found.sort(key=_park_order)
        elif len(found) > 1:
            found.sort(key=_park_order)
        return found

    def park(self, parked: ParkedFetch) -> None:
        if parked.follower_id is not None:
            self.broker.wake_isr_checks()
        self._seq += 1
        parked.seq = self._seq
        if parked.watch is None:
            for tp in parked.tps:
                self.parked.setdefault(tp, []).append(parked)
        if parked.follower_id is not None:
            self.parked_followers[parked.follower_id] = parked
            if parked.watch is not None:
                self.in_sessions[parked.follower_id] = parked
        if parked.max_wait_ms is not None:
            parked.timer = self.broker.ctx.scheduler.call_later(
                parked.max_wait_ms, lambda: self.respond(parked)
            )

    def supersede_follower(self, follower_id: int) -> None:
        """A newer fetch from the same follower supersedes the one waiting here."""
        self.broker.wake_isr_checks()
        superseded = self.parked_followers.pop(follower_id, None)
        if superseded is not None and not superseded.done:
            superseded.done = True
            if superseded.timer is not None:
                superseded.timer.cancel()
            self.unlink(superseded)

    def respond(self, parked: ParkedFetch) -> None:
        if parked.done:
            return
        if parked.follower_id is not None:
            self.broker.wake_isr_checks()
        parked.done = True
        if parked.timer is not None:
            parked.timer.cancel()
        self.unlink(parked)
        if self.broker.alive:
            parked.respond()

    def unlink(self, parked: ParkedFetch) -> None:
        follower_id = parked.follower_id
        if follower_id is not None:
            if self.parked_followers.get(follower_id) is parked:
                del self.parked_followers[follower_id]
            if self.in_sessions.get(follower_id) is parked:
                del self.in_sessions[follower_id]
        if parked.watch is not None:
            return
        for tp in parked.tps:
            waiting = self.parked.get(tp)
            if waiting is not None:
                waiting[:] = [p for p in waiting if not p.done]
                if not waiting:
                    del self.parked[tp]

    def wake(self, tp: TopicPartition) -> None:
        for parked in self.waiting_on(tp):
            if not parked.done and parked.ready():
                self.respond(parked)

    def on_high_watermark_changed(self, partition: Partition) -> None:
        for parked in self.waiting_on(partition.tp):
            if parked.done:
                continue
            if parked.ready():
                self.respond(parked)
            elif parked.max_wait_ms is None and parked.timer is None:
                # A follower learns a new high watermark with its next fetch response, at the
                # latest replica.fetch.wait.max.ms after it asked.
                wait = int(self.broker.config["replica.fetch.wait.max.ms"])
                parked.timer = self.broker.ctx.scheduler.call_at(
                    parked.parked_ms + wait, self._responder(parked)
                )

    def _responder(self, parked: ParkedFetch) -> Callable[[], None]:
        return lambda: self.respond(parked)

    def refresh_followers(self, partition: Partition) -> None:
        """A follower whose fetch waits here at the log end would, in Kafka, re-fetch every
        replica.fetch.wait.max.ms; while it can still reach us, count it as caught up now."""
        broker = self.broker
        waiting = self.waiting_on(partition.tp)
        # Walked as Kafka's purgatory list was walked while answering from it: an answer drops
        # the answered fetches from the list in place, and the walk goes on at the next index.
        index = 0
        while index < len(waiting):
            parked = waiting[index]
            index += 1
            follower = parked.follower_id
            if follower is None or parked.done:
                continue
            state = partition.followers.get(follower)
            if state is None:
                continue
            node = broker.ctx.nodes.broker_by_id(follower)
            if node.alive and broker.ctx.network.reachable(follower, broker.id):
                if state.log_end_offset >= partition.log.log_end_offset:
                    state.last_caught_up_ms = broker.ctx.scheduler.now_ms
                    state.last_fetch_ms = broker.ctx.scheduler.now_ms
            else:
                self.respond(parked)
                waiting = [p for p in waiting if not p.done]


def _park_order(parked: ParkedFetch) -> int:
    return parked.seq
