"""The log cleaner: Kafka's `LogCleaner`, `LogCleanerManager` and `Cleaner` (K1-K5).

Every broker runs one cleaner that wakes every `log.cleaner.backoff.ms` and compacts the
replicas it holds whose `cleanup.policy` includes compact. Each replica is cleaned on its own
(as in Kafka, the leader does not ship cleaned logs), so the replicas of a partition end with
the same records even though their batches may be grouped differently.

A cleaning keeps the latest record of every key at its original offset; the offsets it removes
become gaps. It never touches the active segment, anything at or past the last stable offset,
nor segments holding records younger than `min.compaction.lag.ms`. Tombstones (a null value)
survive the cleaning that first sees them, which stamps their batch with a delete horizon
(KIP-534); a later cleaning after that horizon removes them. Records of aborted transactions
are dropped. A transaction marker goes once no record of its transaction is left before it, on
the same two-step horizon as tombstones (Kafka's `CleanedTransactionMetadata`). The batch holding
a producer's last sequence number keeps its header even when every record in it goes, and a
rewritten batch keeps its original last offset, so producer state can be rebuilt from the log.
A log also becomes cleanable, whatever its dirty ratio, once its oldest dirty segment is older
than `max.compaction.lag.ms` (KIP-354).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import compress, repeat
from operator import attrgetter, countOf, le
from typing import TYPE_CHECKING, Any

from engine.common.record_size import RECORD_BATCH_OVERHEAD
from engine.common.records import Record, RecordBatch, TopicPartition
from engine.storage.transaction_index import aborted_transactions

if TYPE_CHECKING:
    from engine.server.broker import Broker
    from engine.server.partition import Partition
    from engine.sim.context import SimContext
    from engine.storage.log import LogSegment, UnifiedLog

ReplicaKey = tuple[int, TopicPartition]
# id of a batch's first record -> (its records, key -> last offset, tombstones): see `clean`.
BatchMaps = dict[int, tuple[list[Record], dict[bytes | None, int], int]]


@dataclass(slots=True)
class CleanedBatch(RecordBatch):
    """A batch rewritten by the cleaner: it keeps the original batch's last offset (Kafka's
    `overrideLastOffset`), so its last sequence number survives even if its last record goes."""

    header_last_offset: int = -1

    @property
    def last_offset(self) -> int:
        return self.header_last_offset


@dataclass(slots=True)
class LogToClean:
    """A compacted replica and its clean/dirty split (Kafka's `LogToClean`)."""

    partition: Partition
    first_dirty_offset: int
    first_uncleanable_offset: int
    clean_bytes: int
    dirty_bytes: int
    # How long past max.compaction.lag.ms the oldest dirty segment is (Kafka's
    # `maxCompactionDelay`); above 0 the log is cleaned whatever its dirty ratio.
    max_compaction_delay_ms: int = 0

    @property
    def cleanable_ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0


@dataclass(slots=True)
class CleaningStats:
    records_removed: int = 0
    tombstones_removed: int = 0
    aborted_records_removed: int = 0
    tombstones_stamped: int = 0
    markers_removed: int = 0
    batch_headers_retained: int = 0


class CleanedTransactionMetadata:
    """Kafka's `CleanedTransactionMetadata`: while the cleaner walks a log, which batches belong
    to aborted transactions (they can go) and which markers no longer guard any record."""

    def __init__(self, aborted: list[tuple[int, int]]) -> None:
        self.aborted = sorted(aborted, key=lambda item: item[1])  # (producer id, first offset)
        self.ongoing_aborted: dict[int, bool] = {}  # producer id -> a batch of it was seen
        self.ongoing_committed: set[int] = set()
        # ABORT markers that still guard records: their index entries stay.
        self.needed_abort_markers: set[int] = set()

    def _consume_aborted_up_to(self, offset: int) -> None:
        while self.aborted and self.aborted[0][1] <= offset:
            self.ongoing_aborted[self.aborted.pop(0)[0]] = False

    def on_batch_read(self, batch: RecordBatch) -> bool:
        """True when the batch belongs to an aborted transaction."""
        self._consume_aborted_up_to(batch.last_offset)
        if not batch.is_transactional:
            return False
        if batch.producer_id in self.ongoing_aborted:
            self.ongoing_aborted[batch.producer_id] = True
            return True
        self.ongoing_committed.add(batch.producer_id)
        return False

    def on_control_batch_read(self, batch: RecordBatch) -> bool:
        """True when no record of the marker's transaction was seen before it: it may go."""
        self._consume_aborted_up_to(batch.last_offset)
        if not batch.records:
            return True  # already emptied by an earlier cleaning
        if batch.control_type == "ABORT":
            if self.ongoing_aborted.pop(batch.producer_id, False):
                self.needed_abort_markers.add(batch.last_offset)
                return False
            return True
        if batch.control_type == "COMMIT":
            if batch.producer_id in self.ongoing_committed:
                self.ongoing_committed.discard(batch.producer_id)
                return False
            return True
        return False


class LogCleaner:
    def __init__(self, ctx: SimContext, broker_config: dict[str, Any]) -> None:
        self.ctx = ctx
        self.broker_config = broker_config
        # Kafka's cleaner-offset-checkpoint: where the dirty part of each replica's log starts.
        self.checkpoints: dict[ReplicaKey, int] = {}
        # KIP-534 delete horizons, per replica: batch base offset -> time its tombstones may go.
        self.delete_horizons: dict[ReplicaKey, dict[int, int]] = {}
        # The Partition object a checkpoint belongs to (a re-created topic starts afresh).
        self._owners: dict[ReplicaKey, Partition] = {}
        self.cleanings = 0
        # Every broker's cleaner wakes every log.cleaner.backoff.ms from the cluster's start, the
        # brokers in order; one timer runs the passes of all of them (they are due together and
        # a pass schedules nothing, so they always ran back to back). It sleeps while no pass
        # could do anything, since `_dormant_since`, until `wake`.
        self._dormant_since: int | None = None
        self._backoff_ms = max(1, int(self.broker_config["log.cleaner.backoff.ms"]))
        self._schedule(ctx.now_ms + self._backoff())

    def _backoff(self) -> int:
        """log.cleaner.backoff.ms as it was when the cluster was built."""
        return self._backoff_ms

    def _schedule(self, due_ms: int) -> None:
        def tick() -> None:
            busy = False
            # One pass of every broker's cleaner shares what it read of each batch.
            batch_maps: BatchMaps = {}
            for broker_id in self.ctx.nodes.broker_ids():
                broker = self.ctx.nodes.broker_by_id(broker_id)
                if not self._idle(broker):
                    busy = True
                    self.clean_broker(broker, batch_maps)
            if busy:
                self.ctx.scheduler.call_later(self._backoff(), tick)
            else:
                self._dormant_since = self.ctx.now_ms

        self.ctx.scheduler.call_at(due_ms, tick)

    def _idle(self, broker: Broker) -> bool:
        """True when a pass of this broker's cleaner can do nothing, now or until a change
        (`wake`): the broker is down, the cleaner disabled, or no replica on it is compacted."""
        if not broker.alive or not self.broker_config["log.cleaner.enable"]:
            return True
        return not any(
            "compact" in partition.config["cleanup.policy"]
            for partition in broker.partitions.values()
        )

    def wake(self, broker_id: int) -> None:
        """A broker started, or its replicas or their configs changed: a sleeping cleaner
        resumes on its schedule (the passes it skipped would have done nothing)."""
        since = self._dormant_since
        if since is None or self._idle(self.ctx.nodes.broker_by_id(broker_id)):
            return
        self._dormant_since = None
        backoff = self._backoff()
        now = self.ctx.now_ms
        self._schedule(since + ((now - since) // backoff + 1) * backoff)

    # --- LogCleanerManager -------------------------------------------------------------------

    def clean_broker(self, broker: Broker, batch_maps: BatchMaps | None = None) -> int:
        """One pass of a broker's cleaner: every log past its dirty ratio, the dirtiest first.
        `batch_maps` carries what cleanings read of whole batches to the next ones (see
        `clean`); passes of the cleaners of one tick share it."""
        if batch_maps is None:
            batch_maps = {}
        candidates: list[LogToClean] = []
        owners = self._owners
        for tp in sorted(broker.partitions):
            partition = broker.partitions[tp]
            if "compact" not in partition.config["cleanup.policy"]:
                continue
            if len(partition.log.segments) == 1 and owners.get((broker.id, tp)) is partition:
                # Only the active segment: nothing is cleanable (log_to_clean would find no
                # dirty bytes, and its checkpoint needs no reset for a known replica).
                continue
            candidate = self.log_to_clean(broker.id, partition)
            min_ratio = float(partition.config["min.cleanable.dirty.ratio"])
            if candidate.dirty_bytes > 0 and (
                candidate.max_compaction_delay_ms > 0 or candidate.cleanable_ratio > min_ratio
            ):
                candidates.append(candidate)
        candidates.sort(key=lambda c: (-c.cleanable_ratio, c.partition.tp))
        for candidate in candidates:
            self.clean(broker, candidate, batch_maps)
        return len(candidates)

    def first_dirty_offset(self, broker_id: int, partition: Partition) -> int:
        key = (broker_id, partition.tp)
        log = partition.log
        if self._owners.get(key) is not partition:
            self._owners[key] = partition
            self.checkpoints.pop(key, None)
            self.delete_horizons.pop(key, None)
        offset = self.checkpoints.get(key, log.log_start_offset)
        # Kafka resets a checkpoint that fell out of the log (truncation, retention) to its start.
        if offset < log.log_start_offset or offset > log.log_end_offset:
            offset = log.log_start_offset
        return offset

    def log_to_clean(self, broker_id: int, partition: Partition) -> LogToClean:
        log = partition.log
        now = self.ctx.now_ms
        first_dirty = self.first_dirty_offset(broker_id, partition)
        # K2: never the active segment, nothing at or past the LSO (itself at most the HW) ...
        first_uncleanable = min(log.active_segment.base_offset, log.last_stable_offset)
        # ... and no segment holding records younger than min.compaction.lag.ms.
        lag_ms = int(partition.config["min.compaction.lag.ms"])
        if lag_ms > 0:
            for segment in log.segments[:-1]:
                if segment.next_offset <= first_dirty:
                    continue
                if segment.largest_timestamp > now - lag_ms:
                    first_uncleanable = min(first_uncleanable, segment.base_offset)
                    break
        first_uncleanable = max(first_uncleanable, first_dirty)
        cleanable = log.segments[:-1]
        clean_bytes = sum(s.size for s in cleanable if s.next_offset <= first_dirty)
        dirty_bytes = sum(
            s.size
            for s in cleanable
            if s.next_offset > first_dirty and s.base_offset < first_uncleanable
        )
        # KIP-354: the oldest first-batch timestamp among the dirty, inactive segments.
        first_timestamps = [
            s.first_batch_timestamp
            for s in cleanable
            if s.next_offset > first_dirty and s.first_batch_timestamp is not None
        ]
        clean_until = now - max(int(partition.config["max.compaction.lag.ms"]), 0)
        earliest = min(first_timestamps, default=None)
        delay = clean_until - earliest if earliest is not None and earliest < clean_until else 0
        return LogToClean(
            partition, first_dirty, first_uncleanable, clean_bytes, dirty_bytes, delay
        )

    # --- Cleaner -----------------------------------------------------------------------------

    def clean(
        self, broker: Broker, candidate: LogToClean, batch_maps: BatchMaps | None = None
    ) -> CleaningStats:
        """Clean one replica's log up to the candidate's first uncleanable offset.

        `batch_maps` holds, per whole gap-free batch an earlier cleaning of the same pass put
        into its offset map (keyed by the id of its first record, which the entry keeps alive),
        the batch's records, their key -> last offset map and tombstone count. The replicas of
        a partition hold the same record objects (a follower copies the leader's records, not
        their contents), so the second and third replica add such a batch to their map with
        one dict update instead of a pass over its records. An entry is used only for a list
        of records equal to its own, so the map is the one the records give either way."""
        if batch_maps is None:
            batch_maps = {}
        partition = candidate.partition
        log = partition.log
        key = (broker.id, partition.tp)
        now = self.ctx.now_ms
        start = log.log_start_offset
        end = candidate.first_uncleanable_offset
        horizons = self.delete_horizons.setdefault(key, {})
        delete_retention_ms = int(partition.config["delete.retention.ms"])
        # The offset map: the latest offset of every key in the dirty section, aborted
        # transactions left out (Kafka's `buildOffsetMap`).
        offset_map: dict[bytes | None, int] = {}
        # The batches that went into the map whole, with consecutive offsets: base offset ->
        # how many tombstones the batch holds (counted while its records are at hand).
        mapped: dict[int, int] = {}
        first_dirty = candidate.first_dirty_offset
        scan = CleanedTransactionMetadata(aborted_transactions(partition, first_dirty, end))
        for batch in log.iter_batches(first_dirty, end):
            if batch.is_control:
                scan.on_control_batch_read(batch)
                continue
            if scan.on_batch_read(batch):
                continue
            records = batch.records
            if records and first_dirty <= records[0].offset and batch.last_offset < end:
                # The whole batch is in the dirty section: a C-level pass over (key, offset).
                first = records[0].offset
                count = len(records)
                if records[-1].offset - first == count - 1:  # no gaps: first, first + 1, ...
                    known = batch_maps.get(id(records[0]))
                    if known is not None and known[0] == records:  # the same objects: cheap
                        _records, keys, tombstones = known
                    else:
                        keys = dict(
                            zip(map(_KEY, records), range(first, first + count), strict=True)
                        )
                        tombstones = countOf(map(_VALUE, records), None)
                        batch_maps[id(records[0])] = (records, keys, tombstones)
                    offset_map.update(keys)
                    mapped[batch.base_offset] = tombstones
                else:
                    offset_map.update(map(_KEY_AND_OFFSET, records))
                continue
            for record in records:
                if first_dirty <= record.offset < end:
                    offset_map[record.key] = record.offset

        stats = CleaningStats()
        # The offsets the map keeps (each key's latest), in order.
        survivors = sorted(offset_map.values())
        txn = CleanedTransactionMetadata(aborted_transactions(partition, start, end))
        last_batches = self._last_batches_of_producers(partition)
        cleaned = [s for s in log.segments[:-1] if s.base_offset < end]
        bytes_before = sum(s.size for s in cleaned)
        rewritten: list[tuple[LogSegment, list[RecordBatch]]] = []
        for segment in cleaned:
            kept_batches: list[RecordBatch] = []
            for batch in segment.batches:
                if batch.base_offset >= end:
                    kept_batches.append(batch)
                    continue
                kept = self._clean_batch(
                    batch,
                    end,
                    offset_map,
                    mapped,
                    survivors,
                    horizons,
                    txn,
                    last_batches,
                    now,
                    delete_retention_ms,
                    stats,
                )
                if kept is None:
                    horizons.pop(batch.base_offset, None)
                    continue
                kept_batches.append(kept)
            rewritten.append((segment, kept_batches))
        # The first cleaning that sees a batch's tombstones stamps it with a delete horizon.
        for _segment, batches in rewritten:
            for batch in batches:
                if (
                    batch.base_offset not in horizons
                    and not batch.is_control
                    and (
                        None in map(_VALUE, batch.records)  # values are bytes or None
                        if batch.last_offset < end
                        else any(r.value is None and r.offset < end for r in batch.records)
                    )
                ):
                    horizons[batch.base_offset] = now + delete_retention_ms
                    stats.tombstones_stamped += 1
        partition.producer_state.aborted_index.after_cleaning(end, txn.needed_abort_markers)
        segments_before = len(log.segments)
        self._replace_segments(
            log,
            rewritten,
            int(partition.config["segment.bytes"]),
            int(partition.config["index.interval.bytes"]),
        )
        for base in [b for b in horizons if b < log.log_start_offset]:
            del horizons[base]
        self.checkpoints[key] = end
        self.cleanings += 1
        self.ctx.taps.recount_retained()
        self.ctx.emit(
            "log_compacted",
            {
                "topic": partition.tp.topic,
                "partition": partition.tp.partition,
                "broker": broker.id,
                "start_offset": start,
                "end_offset": end,
                "dirty_ratio": round(candidate.cleanable_ratio, 4),
                "records_removed": stats.records_removed,
                "tombstones_removed": stats.tombstones_removed,
                "aborted_records_removed": stats.aborted_records_removed,
                "markers_removed": stats.markers_removed,
                "batch_headers_retained": stats.batch_headers_retained,
                "bytes_before": bytes_before,
                "bytes_after": sum(
                    s.size
                    for s in log.segments
                    if s.base_offset < end and s is not log.active_segment
                ),
                "segments_before": segments_before,
                "segments_after": len(log.segments),
            },
        )
        return stats

    @staticmethod
    def _last_batches_of_producers(partition: Partition) -> dict[int, tuple[int | None, int]]:
        """Per producer: the last offset of its last data batch (None when its latest entry is
        a marker) and its epoch, from the replica's producer state."""
        found: dict[int, tuple[int | None, int]] = {}
        for producer_id, entry in partition.producer_state.producers.items():
            last = entry.batches[-1].last_offset if entry.batches else None
            found[producer_id] = (last, entry.producer_epoch)
        return found

    @staticmethod
    def _clean_batch(
        batch: RecordBatch,
        end: int,
        offset_map: dict[bytes | None, int],
        mapped: dict[int, int],
        survivors: list[int],
        horizons: dict[int, int],
        txn: CleanedTransactionMetadata,
        last_batches: dict[int, tuple[int | None, int]],
        now: int,
        delete_retention_ms: int,
        stats: CleaningStats,
    ) -> RecordBatch | None:
        """The batch as it survives this cleaning: itself, a rewritten copy, or None (gone).
        Kafka's `checkBatchRetention` and `shouldRetainRecord`. `mapped` and `survivors` are
        the map's whole gap-free batches and its values, sorted (see `_kept_by_survivors`)."""
        if batch.is_control:
            can_discard = txn.on_control_batch_read(batch)
            horizon = horizons.get(batch.base_offset)
            discard_records = can_discard and horizon is not None and now >= horizon
            if can_discard and horizon is None:
                # Markers go on the tombstones' two-step delete horizon.
                horizons[batch.base_offset] = now + delete_retention_ms
        else:
            discard_records = txn.on_batch_read(batch)  # a batch of an aborted transaction
        last = last_batches.get(batch.producer_id) if batch.producer_id >= 0 else None
        retain_header = last is not None and (
            batch.last_offset == last[0]
            if last[0] is not None
            else batch.is_control and batch.producer_epoch == last[1]
        )
        if discard_records:
            kept: list[Record] = []
            stats.records_removed += len(batch.records)
            if batch.is_control:
                stats.markers_removed += len(batch.records)
            else:
                stats.aborted_records_removed += len(batch.records)
        elif batch.is_control:
            return batch
        else:
            horizon = horizons.get(batch.base_offset)
            records = batch.records
            if batch.last_offset < end and (horizon is None or now < horizon):
                # Every record is below `end` and no tombstone's horizon has passed: a record
                # goes only when a later offset of its key is in the map (the loop below, with
                # its two first branches never taken).
                tombstones = mapped.get(batch.base_offset)
                if tombstones is not None:
                    kept = _kept_by_survivors(records, survivors)
                else:
                    kept = _kept_by_offset_map(records, offset_map)
                removed = len(records) - len(kept)
                if removed:
                    stats.records_removed += removed
                    # The removed records are the batch's less the kept ones (values are bytes
                    # or None: countOf counts the tombstones, in C).
                    if tombstones is None:
                        tombstones = countOf(map(_VALUE, records), None)
                    stats.tombstones_removed += tombstones - countOf(map(_VALUE, kept), None)
                    return _rewritten(batch, kept, retain_header, stats)
                return batch
            kept = []
            for record in batch.records:
                if record.offset >= end:
                    kept.append(record)
                    continue
                latest = offset_map.get(record.key)
                if latest is not None and record.offset < latest:
                    stats.records_removed += 1
                    if record.value is None:
                        stats.tombstones_removed += 1
                    continue
                if record.value is None and horizon is not None and now >= horizon:
                    stats.records_removed += 1
                    stats.tombstones_removed += 1
                    continue
                kept.append(record)
        if len(kept) == len(batch.records):
            return batch
        return _rewritten(batch, kept, retain_header, stats)

    @staticmethod
    def _replace_segments(
        log: UnifiedLog,
        rewritten: list[tuple[LogSegment, list[RecordBatch]]],
        segment_bytes: int,
        index_interval_bytes: int,
    ) -> None:
        """Kafka's `groupSegmentsBySize`: cleaned neighbours are merged while they fit."""
        groups: list[tuple[LogSegment, list[RecordBatch], int]] = []
        for segment, batches in rewritten:
            size = sum(b.size for b in batches)
            if groups and groups[-1][2] + size <= segment_bytes:
                first, grouped, total = groups[-1]
                groups[-1] = (first, grouped + batches, total + size)
            else:
                groups.append((segment, list(batches), size))
        new_segments = []
        for first, batches, _size in groups:
            segment = log._new_segment(first.base_offset, first.created_ms)
            for batch in batches:
                segment.append(batch, index_interval_bytes)
            new_segments.append(segment)
        log.segments = new_segments + log.segments[len(rewritten) :]
        log.invalidate()

    # --- views -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "cleanings": self.cleanings,
            "checkpoints": [
                [b, tp.topic, tp.partition, o] for (b, tp), o in sorted(self.checkpoints.items())
            ],
            "delete_horizons": [
                [b, tp.topic, tp.partition, base, horizon]
                for (b, tp), entries in sorted(self.delete_horizons.items())
                for base, horizon in sorted(entries.items())
            ],
        }


# (key, offset) and value of a record, read in C by map() on the cleaner's per-record passes.
_KEY_AND_OFFSET = attrgetter("key", "offset")
_KEY = attrgetter("key")
_OFFSET = attrgetter("offset")
_VALUE = attrgetter("value")


def _kept_by_offset_map(records: list[Record], offset_map: dict[bytes | None, int]) -> list[Record]:
    """The records no later offset of their key in the map replaces (a key the map lacks
    stays): `[r for r in records if offset_map.get(r.key, -1) <= r.offset]`, in C."""
    return list(
        compress(
            records,
            map(
                le,
                map(offset_map.get, map(_KEY, records), repeat(-1)),
                map(_OFFSET, records),
            ),
        )
    )


def _kept_by_survivors(records: list[Record], survivors: list[int]) -> list[Record]:
    """`_kept_by_offset_map` for a batch that went into the map whole and has no gaps (offsets
    first .. first + n - 1): the map holds every key of it at that record's offset or a later
    one, so a record stays exactly when its offset is one the map keeps. Those are picked out
    of `survivors` (the map's offsets, sorted) by bisection, without visiting the records that
    go: a compacted topic keeps a few records per key out of many."""
    first = records[0].offset
    low = bisect_left(survivors, first)
    high = bisect_right(survivors, first + len(records) - 1, low)
    return [records[offset - first] for offset in survivors[low:high]]


def _rewritten(
    batch: RecordBatch, kept: list[Record], retain_header: bool, stats: CleaningStats
) -> RecordBatch | None:
    """A batch that lost records: None when nothing (not even its header) is kept, else a new
    batch object (fetch responses in flight may still hold the old one), with the original
    batch's last offset."""
    if not kept and not retain_header:
        return None
    if not kept:
        # The producer's last batch keeps its header: its sequence numbers and epoch.
        stats.batch_headers_retained += 1
    return CleanedBatch(
        base_offset=batch.base_offset,
        records=kept,
        leader_epoch=batch.leader_epoch,
        producer_id=batch.producer_id,
        producer_epoch=batch.producer_epoch,
        base_sequence=batch.base_sequence,
        is_transactional=batch.is_transactional,
        is_control=batch.is_control,
        control_type=batch.control_type,
        size=RECORD_BATCH_OVERHEAD + sum(r.size for r in kept),
        max_timestamp=max((r.timestamp for r in kept), default=batch.max_timestamp),
        header_last_offset=batch.last_offset,
    )
