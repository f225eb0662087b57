"""Incremental fetch sessions (KIP-227): Kafka's `FetchSession`/`FetchSessionCache` on the
leader and `FetchSessionHandler` on the follower.

A follower's first fetch to a leader is a full one (session id 0, epoch 0): it lists every
partition it follows there, and the leader answers with a new session id. Each later fetch is
incremental (that session id, the next epoch): it carries only the partitions whose fetch state
moved (fetch offset, last fetched epoch, leader epoch, the follower's high watermark), and the
leader answers only for the partitions that have records, an error, a diverging epoch, or a high
watermark, log start or last stable offset that changed since it last answered for them. An
unknown session id (FETCH_SESSION_ID_NOT_FOUND, say the leader restarted) or an epoch out of step
(INVALID_FETCH_SESSION_EPOCH) is answered with that error, and the follower falls back to a full
fetch at once, as Kafka's fetcher does.

The leader keeps, per session and partition, what the follower last asked and what it was last
told. A partition is "quiet" for a session when the follower is in the ISR at the leader's log
end, the high watermark is there too and the follower knows it: a read then returns nothing and
changes nothing but the follower's last fetch and caught-up times. The leader does not read quiet
partitions again while their leader-side state (log end, high watermark, log start, epoch, ISR)
stays as it was; it only stamps those two times. So the high-watermark and ISR work happens per
change, not per partition per fetch.

Differences from Kafka, on purpose: session ids come from a counter (Kafka draws them at
random; a counter keeps runs reproducible without touching the cluster's random source), and a
follower's new full fetch replaces its previous session at the leader instead of waiting for the
cache to evict it (the simulation has no cache-size pressure to model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.common.records import TopicPartition
from engine.common.requests.fetch import (
    FETCH_SESSION_ID_NOT_FOUND,
    FINAL_EPOCH,
    INITIAL_EPOCH,
    INVALID_FETCH_SESSION_EPOCH,
    INVALID_SESSION_ID,
    FollowerFetchPartition,
    next_epoch,
)

if TYPE_CHECKING:
    from engine.server.partition import FollowerState, Partition

__all__ = [
    "FETCH_SESSION_ID_NOT_FOUND",
    "FINAL_EPOCH",
    "INITIAL_EPOCH",
    "INVALID_FETCH_SESSION_EPOCH",
    "INVALID_SESSION_ID",
    "CachedPartition",
    "ConsumerFetchSession",
    "ConsumerFetchSessionCache",
    "ConsumerSessionPartition",
    "FetchSession",
    "FetchSessionCache",
    "FetchSessionHandler",
    "next_epoch",
]

# Kafka's max.incremental.fetch.session.cache.slots default: the consumer sessions one broker
# keeps; and how long a session must have been idle before a new one may evict it (Kafka's
# FetchSessionCache evictionMs).
CONSUMER_SESSION_SLOTS = 1000
CONSUMER_SESSION_EVICTION_MS = 120_000


@dataclass(slots=True)
class CachedPartition:
    """One partition of a session on the leader (Kafka's `CachedPartition`): the follower's last
    ask, what the follower was last told, and, while the partition is quiet, the leader-side
    state it was quiet in."""

    ask: FollowerFetchPartition
    high_watermark: int = -2
    log_start_offset: int = -2
    last_stable_offset: int = -2
    quiet: bool = False
    partition: Partition | None = None
    state: FollowerState | None = None
    leader_epoch: int = -1
    isr: tuple[int, ...] = ()
    log_end_offset: int = -1
    # The broker's `replica_states` count when the partition's replica state (its place in the
    # broker, leader, epoch, ISR, follower states) was last seen as it was when it went quiet.
    replica_states: int = -1


@dataclass(slots=True)
class FetchSession:
    """A follower's session on the leader (Kafka's `FetchSession`)."""

    id: int
    replica_id: int
    epoch: int
    partitions: dict[TopicPartition, CachedPartition]
    created_ms: int
    last_used_ms: int


class FetchSessionCache:
    """The sessions one leader holds (Kafka's `FetchSessionCache`)."""

    def __init__(self) -> None:
        self.sessions: dict[int, FetchSession] = {}
        self.next_id = 1

    def clear(self) -> None:
        """The broker stopped: its sessions are gone (followers get FETCH_SESSION_ID_NOT_FOUND)."""
        self.sessions.clear()

    def create(
        self, replica_id: int, asks: tuple[FollowerFetchPartition, ...], now_ms: int
    ) -> FetchSession:
        for session_id in [s.id for s in self.sessions.values() if s.replica_id == replica_id]:
            del self.sessions[session_id]
        session_id = self.next_id
        self.next_id += 1
        session = FetchSession(
            session_id,
            replica_id,
            next_epoch(INITIAL_EPOCH),
            {ask.tp: CachedPartition(ask) for ask in asks},
            now_ms,
            now_ms,
        )
        self.sessions[session_id] = session
        return session

    def remove(self, session_id: int) -> None:
        self.sessions.pop(session_id, None)


@dataclass(slots=True)
class FetchSessionHandler:
    """The follower's side of its session with one leader (Kafka's `FetchSessionHandler`)."""

    session_id: int = INVALID_SESSION_ID
    epoch: int = INITIAL_EPOCH
    # What the leader's session holds: the partitions and their last asks, in session order.
    sent: dict[TopicPartition, FollowerFetchPartition] = field(default_factory=dict)
    partitions: list[Partition] = field(default_factory=list)
    # The broker's replica layout the session's partition list was taken from.
    layout: int = -1
    # Partitions whose fetch state may have moved since the last request.
    touched: dict[TopicPartition, None] = field(default_factory=dict)
    # A request was sent and its answer not yet handled.
    in_flight: bool = False

    def reset(self, keep_session: bool = True) -> None:
        """The next fetch is a full one: closing the existing session (Kafka's
        `nextCloseExisting`) or, without `keep_session`, asking for a new one."""
        if not keep_session:
            self.session_id = INVALID_SESSION_ID
        self.epoch = INITIAL_EPOCH
        self.sent = {}
        self.partitions = []
        self.touched.clear()

    def wants_full(self, layout: int) -> bool:
        """A full fetch when there is no session yet, the followed partitions changed, or the
        answer to the previous request will not be handled (it was superseded or lost)."""
        return (
            self.session_id == INVALID_SESSION_ID
            or self.epoch == INITIAL_EPOCH
            or self.layout != layout
            or self.in_flight
        )

    def handle_error(self, error: str) -> None:
        """Kafka's `handleResponse` on a top-level error: a session the leader does not know is
        forgotten, any other error closes the existing session with the next full fetch."""
        self.reset(keep_session=error != FETCH_SESSION_ID_NOT_FOUND)


@dataclass(slots=True)
class ConsumerSessionPartition:
    """One partition of a consumer's session on the leader: the consumer's fetch offset and what
    it was last told (-2: nothing yet)."""

    fetch_offset: int
    high_watermark: int = -2
    log_start_offset: int = -2
    last_stable_offset: int = -2


@dataclass(slots=True)
class ConsumerFetchSession:
    """A consumer's session on the leader (Kafka's `FetchSession` for a replica id of -1)."""

    id: int
    epoch: int
    partitions: dict[TopicPartition, ConsumerSessionPartition]
    last_used_ms: int


class ConsumerFetchSessionCache:
    """The consumers' sessions one broker holds, least recently used first (Kafka's
    `FetchSessionCache`, bounded by max.incremental.fetch.session.cache.slots: when it is full a
    new session evicts the least recently used one idle for CONSUMER_SESSION_EVICTION_MS, or, with
    none to evict, the fetch is answered without a session and the consumer stays on full
    fetches). Its ids are its own: follower sessions keep the ids they had."""

    def __init__(self, slots: int = CONSUMER_SESSION_SLOTS) -> None:
        self.sessions: dict[int, ConsumerFetchSession] = {}
        self.slots = slots
        self.next_id = 1

    def clear(self) -> None:
        self.sessions.clear()

    def create(
        self, offsets: dict[TopicPartition, int], now_ms: int
    ) -> ConsumerFetchSession | None:
        sessions = self.sessions
        if len(sessions) >= self.slots:
            oldest = next(iter(sessions.values()))
            if now_ms - oldest.last_used_ms < CONSUMER_SESSION_EVICTION_MS:
                return None
            del sessions[oldest.id]
        session = ConsumerFetchSession(
            self.next_id,
            next_epoch(INITIAL_EPOCH),
            {tp: ConsumerSessionPartition(offset) for tp, offset in offsets.items()},
            now_ms,
        )
        self.next_id += 1
        sessions[session.id] = session
        return session

    def touch(self, session: ConsumerFetchSession, now_ms: int) -> None:
        """Used now: the session moves to the most recently used end."""
        session.last_used_ms = now_ms
        del self.sessions[session.id]
        self.sessions[session.id] = session

    def remove(self, session_id: int) -> None:
        self.sessions.pop(session_id, None)
