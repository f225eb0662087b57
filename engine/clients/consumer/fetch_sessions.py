"""The consumer's side of its incremental fetch sessions (KIP-227): Kafka's `FetchSessionHandler`
as the consumer's `Fetcher` uses it, one per broker it fetches from.

The first fetch to a broker is a full one (session id 0, epoch 0) listing every partition the
consumer fetches there; the broker answers with a session id. Each later fetch is incremental
(that id, the next epoch): it lists only the partitions added to the session or whose fetch offset
moved, and names as forgotten the ones the consumer no longer fetches there (a rebalance moved
them away, their leader moved, they are paused or still have records buffered); the broker
answers only for the partitions with something new. A top-level error ends the session as Kafka's
`handleResponse` does: FETCH_SESSION_ID_NOT_FOUND (the broker restarted, say) forgets it,
INVALID_FETCH_SESSION_EPOCH or a lost answer (`handle_error`) closes it with the next, full,
fetch."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.common.records import TopicPartition
from engine.common.requests.fetch import (
    FETCH_SESSION_ID_NOT_FOUND,
    INITIAL_EPOCH,
    INVALID_SESSION_ID,
    FetchResponse,
    next_epoch,
)


@dataclass(frozen=True, slots=True)
class FetchSessionRequest:
    """What one fetch carries for its session: the partitions to send, the ones to forget, the
    session id and epoch."""

    offsets: dict[TopicPartition, int]
    forgotten: tuple[TopicPartition, ...]
    session_id: int
    epoch: int

    @property
    def full(self) -> bool:
        return self.epoch == INITIAL_EPOCH


@dataclass(slots=True)
class FetchSessionHandler:
    session_id: int = INVALID_SESSION_ID
    epoch: int = INITIAL_EPOCH
    # The partitions the broker's session holds, with the fetch offset it last heard for each.
    partitions: dict[TopicPartition, int] = field(default_factory=dict)

    def build(self, offsets: dict[TopicPartition, int]) -> FetchSessionRequest:
        """The next fetch for `offsets` (the partitions to fetch from this broker now, in
        order); the session then holds exactly those (Kafka's `FetchSessionHandler.Builder`)."""
        previous = self.partitions
        self.partitions = dict(offsets)
        if self.session_id == INVALID_SESSION_ID or self.epoch == INITIAL_EPOCH:
            return FetchSessionRequest(dict(offsets), (), self.session_id, INITIAL_EPOCH)
        changed = {tp: offset for tp, offset in offsets.items() if previous.get(tp) != offset}
        forgotten = tuple(tp for tp in previous if tp not in offsets)
        return FetchSessionRequest(changed, forgotten, self.session_id, self.epoch)

    def handle_response(self, sent: FetchSessionRequest, response: FetchResponse) -> bool:
        """Kafka's `handleResponse`: False when the answer carries a top-level error."""
        if response.error:
            if response.error == FETCH_SESSION_ID_NOT_FOUND:
                self.session_id = INVALID_SESSION_ID
            self.epoch = INITIAL_EPOCH
            return False
        if sent.full:
            self.session_id = response.session_id
            # Without a session (the broker had no slot), every fetch stays a full one.
            self.epoch = (
                INITIAL_EPOCH
                if response.session_id == INVALID_SESSION_ID
                else next_epoch(INITIAL_EPOCH)
            )
        else:
            self.epoch = next_epoch(self.epoch)
        return True

    def handle_error(self) -> None:
        """The answer was lost (a disconnect or a timeout): the next fetch is a full one that
        closes this session and opens another (Kafka's `nextCloseExistingAttemptNew`)."""
        self.epoch = INITIAL_EPOCH
