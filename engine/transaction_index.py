"""The aborted-transaction index of a replica's log: Kafka's `TransactionIndex` (`.txnindex`).

read_committed fetches are answered with the aborted transactions that overlap the range they
return, so the consumer can drop those records (T5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.partition import Partition


def aborted_transactions(partition: Partition, start: int, end: int) -> list[tuple[int, int]]:
    """(producer id, first offset) of every aborted transaction that overlaps [start, end)."""
    log = partition.log
    open_first: dict[int, int] = {}
    found: list[tuple[int, int]] = []
    for batch in log.iter_batches(log.log_start_offset):
        if batch.is_control:
            first = open_first.pop(batch.producer_id, None)
            if (
                batch.control_type == "ABORT"
                and first is not None
                and batch.last_offset >= start
                and first < end
            ):
                found.append((batch.producer_id, first))
        elif batch.is_transactional and batch.producer_id not in open_first:
            open_first[batch.producer_id] = batch.base_offset
    return found
