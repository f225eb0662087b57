"""A consumer's fetch in an incremental fetch session (KIP-227), on the leader: Kafka's
`FetchManager.newContext` with its `FullFetchContext` and `IncrementalFetchContext` for a fetch
with no replica id.

A full fetch (epoch 0) opens a session holding every partition it lists, closing the session it
names, if any, and is answered for every partition. An incremental fetch (the session's id and
next epoch) lists only the partitions added or whose fetch offset moved and `forgotten` the ones
dropped; the fetch then waits and reads as the session's whole set of partitions would (the
broker's consumer fetch, `Broker.handle_consumer_fetch`), and is answered only for the partitions
with records, an error, or a high watermark, log start or last stable offset that changed since
the session last answered for them. An unknown session is answered FETCH_SESSION_ID_NOT_FOUND and
an epoch out of step INVALID_FETCH_SESSION_EPOCH, with no partitions, as Kafka does."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.common.records import TopicPartition
from engine.common.requests.fetch import (
    FETCH_SESSION_ID_NOT_FOUND,
    INITIAL_EPOCH,
    INVALID_FETCH_SESSION_EPOCH,
    INVALID_SESSION_ID,
    FetchPartitionData,
    FetchRequest,
    FetchResponse,
    next_epoch,
)
from engine.server.fetch_session import ConsumerFetchSession, ConsumerSessionPartition

if TYPE_CHECKING:
    from engine.server.broker import Broker

Reply = Callable[[object], None]


def handle_consumer_session_fetch(broker: Broker, request: FetchRequest, reply: Reply) -> None:
    cache = broker.consumer_fetch_sessions
    now = broker.now_ms
    session: ConsumerFetchSession | None
    if request.session_epoch == INITIAL_EPOCH:
        if request.session_id != INVALID_SESSION_ID:
            cache.remove(request.session_id)
        offsets = dict(request.fetch_offsets)
        session = cache.create(offsets, now)
        full = True
    else:
        session = cache.sessions.get(request.session_id)
        if session is None:
            reply(FetchResponse({}, FETCH_SESSION_ID_NOT_FOUND))
            return
        if session.epoch != request.session_epoch:
            reply(FetchResponse({}, INVALID_FETCH_SESSION_EPOCH))
            return
        cached = session.partitions
        for tp in request.forgotten:
            cached.pop(tp, None)
        for tp, offset in request.fetch_offsets.items():
            entry = cached.get(tp)
            if entry is None:
                cached[tp] = ConsumerSessionPartition(offset)
            else:
                entry.fetch_offset = offset
        session.epoch = next_epoch(session.epoch)
        cache.touch(session, now)
        offsets = {tp: entry.fetch_offset for tp, entry in cached.items()}
        full = False
    answered = session

    def respond(answer: object) -> None:
        response: dict[TopicPartition, FetchPartitionData] = answer  # type: ignore[assignment]
        if answered is None:
            # No slot for a session: a sessionless answer, and the consumer stays on full fetches.
            reply(FetchResponse(response, "", INVALID_SESSION_ID))
            return
        cached = answered.partitions
        out: dict[TopicPartition, FetchPartitionData] = {}
        for tp, data in response.items():
            entry = cached.get(tp)
            if entry is None:
                continue
            if (
                full
                or data.batches
                or data.error
                or data.high_watermark != entry.high_watermark
                or data.log_start_offset != entry.log_start_offset
                or data.last_stable_offset != entry.last_stable_offset
            ):
                entry.high_watermark = data.high_watermark
                entry.log_start_offset = data.log_start_offset
                entry.last_stable_offset = data.last_stable_offset
                out[tp] = data
        reply(FetchResponse(out, "", answered.id))

    broker.handle_consumer_fetch(
        offsets,
        request.isolation_level,
        request.max_wait_ms,
        request.partition_max_bytes,
        respond,
    )
