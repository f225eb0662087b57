"""A replica's log: segments of record batches, the sparse offset index, the leader-epoch cache.

Mirrors Kafka's `UnifiedLog`, `LocalLog`, `LogSegment`, `OffsetIndex` and `LeaderEpochFileCache`.
Offsets are dense when written; compaction later leaves gaps, and a read at a gap returns the
next record that is present.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from engine.common.record_size import RECORD_BATCH_OVERHEAD
from engine.common.records import Record, RecordBatch

INDEX_ENTRY_BYTES = 8


def batch_digest(batch: RecordBatch, crc: int) -> int:
    # One crc32 over the joined parts equals chaining crc32 over each part in turn.
    parts = [
        f"b{batch.base_offset}/{batch.leader_epoch}/{batch.producer_id}/{batch.control_type}".encode()
    ]
    append = parts.append
    for record in batch.records:
        append(b"%d:%d" % (record.offset, record.timestamp))
        append(record.key or b"\x00")
        append(record.value or b"\x01")
    return zlib.crc32(b"".join(parts), crc)


@dataclass(slots=True)
class LogSegment:
    """One segment: batches from `base_offset` on, with a sparse offset index."""

    base_offset: int
    created_ms: int
    max_index_entries: int
    batches: list[RecordBatch] = field(default_factory=list)
    last_offsets: list[int] = field(default_factory=list)
    size: int = 0
    index: list[tuple[int, int]] = field(default_factory=list)
    bytes_since_last_index_entry: int = 0
    largest_timestamp: int = -1
    first_batch_timestamp: int | None = None
    # The fingerprint of `batches`, folded in on demand (`digest`): a snapshot asks for it, the
    # write path never does. `_digested` batches are in `_digest` so far.
    _digest: int = 0
    _digested: int = 0

    @property
    def next_offset(self) -> int:
        return self.last_offsets[-1] + 1 if self.last_offsets else self.base_offset

    @property
    def record_count(self) -> int:
        return sum(len(batch.records) for batch in self.batches)

    @property
    def digest(self) -> int:
        """The crc32 chained over every batch (`batch_digest`), the same value as folding each
        batch in as it is appended; batches are only appended, or the segment is rebuilt
        (`rebuild_stats`) after any other change, so the folded prefix stays valid."""
        batches = self.batches
        if self._digested < len(batches):
            digest = self._digest
            for batch in batches[self._digested :]:
                digest = batch_digest(batch, digest)
            self._digest = digest
            self._digested = len(batches)
        return self._digest

    def append(
        self, batch: RecordBatch, index_interval_bytes: int, last_offset: int | None = None
    ) -> None:
        """Add `batch` (whose `last_offset` the caller may pass, already worked out)."""
        if last_offset is None:
            last_offset = batch.last_offset
        # Kafka adds an index entry once index.interval.bytes were written since the last one.
        if self.bytes_since_last_index_entry > index_interval_bytes:
            self.index.append((last_offset, self.size))
            self.bytes_since_last_index_entry = 0
        self.batches.append(batch)
        self.last_offsets.append(last_offset)
        self.size += batch.size
        self.bytes_since_last_index_entry += batch.size
        if batch.max_timestamp > self.largest_timestamp:
            self.largest_timestamp = batch.max_timestamp
        if self.first_batch_timestamp is None:
            self.first_batch_timestamp = batch.max_timestamp

    @property
    def index_full(self) -> bool:
        return len(self.index) >= self.max_index_entries

    def rebuild_stats(self) -> None:
        self._digest = 0
        self._digested = 0  # folded again on demand
        self.last_offsets = [batch.last_offset for batch in self.batches]
        self.size = sum(batch.size for batch in self.batches)
        self.largest_timestamp = max((b.max_timestamp for b in self.batches), default=-1)
        self.first_batch_timestamp = self.batches[0].max_timestamp if self.batches else None
        self.index = [(o, p) for o, p in self.index if o < self.next_offset]

    def first_batch_at_or_after(self, offset: int) -> int:
        return bisect_left(self.last_offsets, offset)


@dataclass(slots=True)
class EpochEntry:
    epoch: int
    start_offset: int


class UnifiedLog:
    """The log of one replica of one partition."""

    def __init__(
        self,
        topic: str,
        partition: int,
        config: dict[str, Any],
        now_ms: int,
        on_event: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.config = config
        self._on_event = on_event
        self.segments: list[LogSegment] = [self._new_segment(0, now_ms)]
        self._segment_bases: list[int] = [0]
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.high_watermark = 0
        self.epoch_cache: list[EpochEntry] = []
        self.size = 0
        self.record_count = 0
        # Control markers and transactions need this; set by the replica that owns the log.
        self.first_unstable_offset: Callable[[], int | None] = lambda: None

    # --- state -------------------------------------------------------------------------------

    def _new_segment(self, base_offset: int, now_ms: int) -> LogSegment:
        max_entries = max(1, int(self.config["segment.index.bytes"]) // INDEX_ENTRY_BYTES)
        return LogSegment(base_offset=base_offset, created_ms=now_ms, max_index_entries=max_entries)

    @property
    def active_segment(self) -> LogSegment:
        return self.segments[-1]

    @property
    def last_stable_offset(self) -> int:
        unstable = self.first_unstable_offset()
        if unstable is None:
            return self.high_watermark
        return min(unstable, self.high_watermark)

    def latest_epoch(self) -> int:
        return self.epoch_cache[-1].epoch if self.epoch_cache else -1

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """Kafka's `LeaderEpochFileCache.endOffsetFor`: (epoch, end offset) for a follower's epoch.

        The end offset is the start of the first epoch after the one asked for, or the log end
        when it is the latest; (-1, -1) when the epoch is older than anything cached.
        """
        if not self.epoch_cache:
            return (-1, -1)
        if epoch == self.epoch_cache[-1].epoch:
            return (epoch, self.log_end_offset)
        if epoch < self.epoch_cache[0].epoch:
            return (-1, -1)
        starts = [entry.epoch for entry in self.epoch_cache]
        position = bisect_right(starts, epoch)
        if position >= len(self.epoch_cache):
            return (self.epoch_cache[-1].epoch, self.log_end_offset)
        found = self.epoch_cache[position - 1].epoch if position > 0 else -1
        return (found, self.epoch_cache[position].start_offset)

    def _assign_epoch(self, epoch: int, start_offset: int) -> None:
        if epoch < 0:
            return
        if not self.epoch_cache or epoch > self.epoch_cache[-1].epoch:
            self.epoch_cache.append(EpochEntry(epoch, start_offset))

    # --- writes ------------------------------------------------------------------------------

    def append(self, batch: RecordBatch, now_ms: int) -> None:
        """Append a batch whose offsets are already set (by the leader, or copied by a follower)."""
        if batch.base_offset != self.log_end_offset and batch.base_offset < self.log_end_offset:
            raise ValueError(
                f"{self.topic}-{self.partition}: batch at {batch.base_offset} below the log end "
                f"{self.log_end_offset}"
            )
        if batch.size == 0:
            batch.size = RECORD_BATCH_OVERHEAD + sum(record.size for record in batch.records)
        if self.segments[-1].size:
            self._maybe_roll(batch, now_ms)  # an empty active segment is never rolled
        epoch = batch.leader_epoch
        epoch_cache = self.epoch_cache
        if epoch >= 0 and (not epoch_cache or epoch > epoch_cache[-1].epoch):
            self._assign_epoch(epoch, batch.base_offset)
        records = batch.records
        last_offset = records[-1].offset if records else batch.base_offset
        self.segments[-1].append(batch, int(self.config["index.interval.bytes"]), last_offset)
        self.log_end_offset = last_offset + 1
        self.size += batch.size
        self.record_count += len(records)

    def _maybe_roll(self, batch: RecordBatch, now_ms: int) -> None:
        segment = self.active_segment
        if segment.size == 0:
            return
        reason = None
        if segment.size + batch.size > int(self.config["segment.bytes"]):
            reason = "segment.bytes"
        elif (
            segment.first_batch_timestamp is not None
            # Kafka compares the incoming batch's timestamp with the segment's first batch's.
            and batch.max_timestamp - segment.first_batch_timestamp > int(self.config["segment.ms"])
        ):
            reason = "segment.ms"
        elif segment.index_full:
            reason = "index full"
        if reason is not None:
            self.roll(now_ms, base_offset=batch.base_offset, reason=reason)

    def roll(self, now_ms: int, base_offset: int | None = None, reason: str = "") -> LogSegment:
        base = self.log_end_offset if base_offset is None else base_offset
        if self.active_segment.size == 0 and self.active_segment.base_offset == base:
            return self.active_segment
        segment = self._new_segment(base, now_ms)
        self.segments.append(segment)
        self._segment_bases.append(base)
        self._on_event(
            "segment_rolled",
            {
                "topic": self.topic,
                "partition": self.partition,
                "base_offset": base,
                "reason": reason,
            },
        )
        return segment

    def update_high_watermark(self, offset: int) -> bool:
        """Set the HW, clamped to [log start, log end] (L7); True when it changed."""
        clamped = min(max(offset, self.log_start_offset), self.log_end_offset)
        if clamped != self.high_watermark:
            self.high_watermark = clamped
            return True
        return False

    def maybe_increment_high_watermark(self, offset: int) -> bool:
        clamped = min(max(offset, self.log_start_offset), self.log_end_offset)
        if clamped > self.high_watermark:
            self.high_watermark = clamped
            return True
        return False

    def truncate_to(self, offset: int) -> list[Record]:
        """Remove every record at or after `offset`; returns what was removed (R8)."""
        if offset >= self.log_end_offset:
            return []
        removed: list[Record] = []
        while len(self.segments) > 1 and self.segments[-1].base_offset >= offset:
            segment = self.segments.pop()
            self._segment_bases.pop()
            for batch in segment.batches:
                removed.extend(batch.records)
        segment = self.active_segment
        position = segment.first_batch_at_or_after(offset)
        kept = segment.batches[:position]
        for batch in segment.batches[position:]:
            keep = [record for record in batch.records if record.offset < offset]
            removed.extend(record for record in batch.records if record.offset >= offset)
            if keep:
                # A shorter copy: a stored batch is never changed (checkpoints share them).
                size = RECORD_BATCH_OVERHEAD + sum(record.size for record in keep)
                kept.append(replace(batch, records=keep, size=size))
        segment.batches = kept
        segment.rebuild_stats()
        self.log_end_offset = max(offset, self.log_start_offset)
        if segment.base_offset > self.log_end_offset:
            segment.base_offset = self.log_end_offset
            self._segment_bases[-1] = self.log_end_offset
        self.high_watermark = min(self.high_watermark, self.log_end_offset)
        self.epoch_cache = [e for e in self.epoch_cache if e.start_offset < self.log_end_offset]
        self._recount()
        removed.sort(key=lambda record: record.offset)  # segments were popped newest first
        return removed

    def truncate_fully_and_start_at(self, offset: int, now_ms: int) -> None:
        self.segments = [self._new_segment(offset, now_ms)]
        self._segment_bases = [offset]
        self.log_start_offset = offset
        self.log_end_offset = offset
        self.high_watermark = offset
        self.epoch_cache = []
        self._recount()

    def _recount(self) -> None:
        self.size = sum(segment.size for segment in self.segments)
        self.record_count = sum(segment.record_count for segment in self.segments)

    def maybe_increment_log_start_offset(self, offset: int, reason: str) -> None:
        """Move the log start forward (a follower following its leader, or retention)."""
        offset = min(offset, self.high_watermark)
        if offset <= self.log_start_offset:
            return
        self.log_start_offset = offset
        self._delete_segments_below(offset, reason)

    def _delete_segments_below(self, offset: int, reason: str) -> None:
        while len(self.segments) > 1 and self.segments[1].base_offset <= offset:
            self._delete_first_segment(reason)

    def _delete_first_segment(self, reason: str) -> None:
        segment = self.segments.pop(0)
        self._segment_bases.pop(0)
        self._on_event(
            "segment_deleted",
            {
                "topic": self.topic,
                "partition": self.partition,
                "base_offset": segment.base_offset,
                "next_offset": segment.next_offset,
                "records": segment.record_count,
                "bytes": segment.size,
                "reason": reason,
            },
        )
        self._recount()

    def delete_old_segments(self, now_ms: int) -> int:
        """Retention (L4, L5): whole segments, oldest first, never past the high watermark."""
        deleted = 0
        if "delete" not in self.config["cleanup.policy"]:
            return 0
        retention_ms = int(self.config["retention.ms"])
        if retention_ms >= 0:
            deleted += self._delete_while(
                lambda segment, _total: now_ms - segment.largest_timestamp > retention_ms,
                now_ms,
                "retention.ms",
            )
        retention_bytes = int(self.config["retention.bytes"])
        if retention_bytes >= 0:
            excess = [self.size - retention_bytes]

            def over_size(segment: LogSegment, _total: int) -> bool:
                if excess[0] - segment.size >= 0:
                    excess[0] -= segment.size
                    return True
                return False

            deleted += self._delete_while(over_size, now_ms, "retention.bytes")
        return deleted

    def _delete_while(
        self, predicate: Callable[[LogSegment, int], bool], now_ms: int, reason: str
    ) -> int:
        deletable: list[LogSegment] = []
        for position, segment in enumerate(self.segments):
            is_last = position == len(self.segments) - 1
            upper = self.log_end_offset if is_last else self.segments[position + 1].base_offset
            if is_last and segment.size == 0:
                break
            if self.high_watermark >= upper and predicate(segment, self.size):
                deletable.append(segment)
            else:
                break
        if not deletable:
            return 0
        if len(deletable) == len(self.segments):
            # Kafka rolls a new, empty active segment before deleting every existing one.
            self.roll(now_ms, reason="retention of the active segment")
        for _ in deletable:
            self._delete_first_segment(reason)
        self.log_start_offset = max(self.log_start_offset, self.segments[0].base_offset)
        return len(deletable)

    # --- reads -------------------------------------------------------------------------------

    def _segment_position(self, offset: int) -> int:
        return max(0, bisect_right(self._segment_bases, offset) - 1)

    def iter_batches(
        self, start_offset: int, end_offset: int | None = None
    ) -> Iterator[RecordBatch]:
        """Batches holding offsets >= start_offset (whole batches, as a Kafka fetch returns)."""
        end = self.log_end_offset if end_offset is None else end_offset
        for segment in self.segments[self._segment_position(start_offset) :]:
            if segment.base_offset >= end:
                return
            for batch in segment.batches[segment.first_batch_at_or_after(start_offset) :]:
                if batch.base_offset >= end:
                    return
                yield batch

    def read_records(
        self, start_offset: int, end_offset: int | None = None, max_records: int | None = None
    ) -> list[Record]:
        end = self.log_end_offset if end_offset is None else end_offset
        out: list[Record] = []
        for batch in self.iter_batches(start_offset, end):
            if batch.is_control:
                continue
            for record in batch.records:
                if record.offset < start_offset:
                    continue
                if record.offset >= end:
                    return out
                out.append(record)
                if max_records is not None and len(out) >= max_records:
                    return out
        return out

    def offset_for_timestamp(self, timestamp: int) -> int | None:
        for segment in self.segments:
            if segment.largest_timestamp < timestamp:
                continue
            for batch in segment.batches:
                for record in batch.records:
                    if record.timestamp >= timestamp:
                        return record.offset
        return None

    def digest(self) -> int:
        """A fingerprint of the log's contents, so snapshots compare logs without copying them."""
        crc = zlib.crc32(f"{self.log_start_offset}/{self.log_end_offset}".encode())
        for segment in self.segments:
            crc = zlib.crc32(f"{segment.base_offset}:{segment.digest}".encode(), crc)
        return crc

    def invalidate(self) -> None:
        """Called after an in-place change (compaction) so derived values are recomputed."""
        for segment in self.segments:
            segment.rebuild_stats()
        self._segment_bases = [segment.base_offset for segment in self.segments]
        self._recount()
