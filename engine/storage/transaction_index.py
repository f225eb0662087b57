"""The aborted-transaction index of a replica's log: Kafka's `TransactionIndex` (`.txnindex`).

When an ABORT marker is appended (by the leader, or copied by a follower) the producer state
knows where that producer's transaction began, and the pair becomes an entry here (Kafka's
`CompletedTxn`). read_committed fetches are answered from this index with the aborted
transactions that overlap the range they return, so the consumer can drop those records (T5),
without the broker reading the log. The index is rebuilt with the producer state after a
truncation or retention, entries below the log start are trimmed, and the log cleaner drops the
entries whose marker it removed.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from engine.server.partition import Partition


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int  # the offset of the ABORT marker


class TransactionIndex:
    def __init__(self) -> None:
        self.entries: list[AbortedTxn] = []  # in marker order, so sorted by last offset

    def append(self, producer_id: int, first_offset: int, last_offset: int) -> None:
        if self.entries and last_offset <= self.entries[-1].last_offset:
            return  # already indexed (a marker is indexed once)
        self.entries.append(AbortedTxn(producer_id, first_offset, last_offset))

    def clear(self) -> None:
        self.entries = []

    def trim_below(self, log_start_offset: int) -> None:
        """Retention: entries whose marker is below the log start are gone with their segment."""
        keep = bisect_left([e.last_offset for e in self.entries], log_start_offset)
        if keep:
            del self.entries[:keep]

    def after_cleaning(self, cleaned_up_to: int, still_needed: set[int]) -> None:
        """Kafka rewrites a cleaned segment's index with just the aborted transactions that
        still have records to hide (their marker offsets in `still_needed`)."""
        self.entries = [
            e
            for e in self.entries
            if e.last_offset >= cleaned_up_to or e.last_offset in still_needed
        ]

    def collect(self, start: int, end: int) -> list[tuple[int, int]]:
        """Kafka's `collectAbortedTxns`: (producer id, first offset) of every aborted
        transaction with its marker at or after `start` and its first offset before `end`."""
        position = bisect_left([e.last_offset for e in self.entries], start)
        return [
            (e.producer_id, e.first_offset) for e in self.entries[position:] if e.first_offset < end
        ]


def aborted_transactions(partition: Partition, start: int, end: int) -> list[tuple[int, int]]:
    """(producer id, first offset) of every aborted transaction that overlaps [start, end) in
    this replica's log."""
    index = partition.producer_state.aborted_index
    index.trim_below(partition.log.log_start_offset)
    return index.collect(start, end)
