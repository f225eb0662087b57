"""A Jepsen-style checker: what the clients were told, against what the logs hold.

`History` records every acknowledged send (and every record handed to an application); the
checker reads the final logs and reports each anomaly with the moment it happened: an
acknowledged record lost or changed, a record written twice, records of one key out of send
order, an offset reused for different data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.common.records import ConsumerRecord, TopicPartition

if TYPE_CHECKING:
    from engine.cluster import Cluster


@dataclass(frozen=True, slots=True)
class Acknowledged:
    producer: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    send_index: int
    acked_ms: int


def _shown(data: bytes | None) -> str:
    """A record's key or value as a learner reads it: “v27”, or null."""
    if data is None:
        return "null"
    return "\u201c" + data.decode("utf-8", errors="replace") + "\u201d"


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: str  # lost, changed, duplicated, reordered, offset_reused, aborted_read
    time_ms: int
    topic: str
    partition: int
    offset: int
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "time_ms": self.time_ms,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "detail": self.detail,
        }


class History:
    """What the clients were told. It gets only what it needs from the facade: the cluster's
    clock (`now_ms`), its window (`max_entries`, the records the cluster may retain) and the
    check to run on it (`check(cluster, history)` bound to its cluster by the facade)."""

    def __init__(
        self,
        now_ms: Callable[[], int],
        max_entries: int,
        checker: Callable[[History], list[Anomaly]] | None = None,
    ) -> None:
        self._now_ms = now_ms
        self._checker = checker
        self.acknowledged: list[Acknowledged] = []
        self.consumed: list[tuple[str, int, ConsumerRecord]] = []
        # What read_committed consumers were handed: none of it may be an aborted record (T5).
        self.read_committed_consumed: list[tuple[str, int, ConsumerRecord]] = []
        self._send_counter = 0
        # Offsets the cluster ever acknowledged for each partition, to catch reuse.
        # (Each slot's owner is its latest acknowledgement: a frozen record shared, not a copy.)
        self.offset_owner: dict[tuple[str, int, int], Acknowledged] = {}
        self.reused: list[Anomaly] = []
        self.enabled = True
        # A sandbox can run for hours: keep a bounded window (as many entries as the cluster may
        # retain records), so the history never outgrows the cluster it describes.
        self.max_entries = max_entries

    def on_acknowledged(self, producer: Any, batch: Any, base_offset: int) -> None:
        if not self.enabled:
            return
        now = self._now_ms()
        futures = getattr(batch, "futures", None)
        for index, record in enumerate(batch.records):
            self._send_counter += 1
            offset = base_offset + index if base_offset >= 0 else -1
            # Send order is the order of the producer's futures, not the order of the answers.
            send_index = (
                futures[index].id if futures and index < len(futures) else self._send_counter
            )
            ack = Acknowledged(
                producer.client_id,
                batch.tp.topic,
                batch.tp.partition,
                offset,
                record.key,
                record.value,
                send_index,
                now,
            )
            self.acknowledged.append(ack)
            if offset < 0:
                continue
            slot = (ack.topic, ack.partition, offset)
            previous = self.offset_owner.get(slot)
            if previous is not None and (
                previous.key != record.key or previous.value != record.value
            ):
                self.reused.append(
                    Anomaly(
                        "offset_reused",
                        now,
                        ack.topic,
                        ack.partition,
                        offset,
                        f"offset {offset} was acknowledged twice for different records",
                    )
                )
            self.offset_owner[slot] = ack
        if len(self.acknowledged) > self.max_entries * 5 // 4:
            self._trim_acknowledged()

    def _trim_acknowledged(self) -> None:
        """Forget the oldest acknowledgements (amortised: a quarter of the window at a time)."""
        excess = len(self.acknowledged) - self.max_entries
        for ack in self.acknowledged[:excess]:
            slot = (ack.topic, ack.partition, ack.offset)
            owner = self.offset_owner.get(slot)
            if owner is not None and owner.key == ack.key and owner.value == ack.value:
                del self.offset_owner[slot]
        del self.acknowledged[:excess]

    def on_consumed(self, consumer: Any, records: list[ConsumerRecord]) -> None:
        if not self.enabled:
            return
        now = self._now_ms()
        for record in records:
            self.consumed.append((consumer.client_id, now, record))
        if getattr(consumer, "isolation_level", "read_uncommitted") == "read_committed":
            for record in records:
                self.read_committed_consumed.append((consumer.client_id, now, record))
        for seen in (self.consumed, self.read_committed_consumed):
            if len(seen) > self.max_entries * 5 // 4:
                del seen[: len(seen) - self.max_entries]

    def check(self) -> list[Anomaly]:
        if self._checker is None:
            raise ValueError("this history was made without a cluster to check it against")
        return self._checker(self)


def _final_log(cluster: Cluster, tp: TopicPartition) -> tuple[dict[int, ConsumerRecord], int]:
    """The partition's log as a reader would find it now: the leader's, or, while the partition
    is offline, the longest replica's."""
    registration = cluster.controller.topics[tp.topic].partitions[tp.partition]
    holders = []
    for broker_id in registration.replicas:
        replica = cluster.broker_by_id(broker_id).partitions.get(tp)
        if replica is not None:
            holders.append(
                (broker_id == registration.leader, replica.log.log_end_offset, broker_id, replica)
            )
    if not holders:
        return {}, 0
    holders.sort(key=lambda item: (not item[0], -item[1], item[2]))
    replica = holders[0][3]
    records = {r.offset: r for r in cluster.read(tp.topic, tp.partition, 0, replica=holders[0][2])}
    return records, replica.log.log_start_offset


def _losing_events(cluster: Cluster) -> dict[tuple[str, int], list[Any]]:
    """Per partition, the events that can lose acknowledged records: truncations and unclean
    elections, in time order."""
    found: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for event in cluster.events:
        if event.kind == "log_truncated" or (
            event.kind == "leader_elected" and event.data.get("unclean")
        ):
            found[(str(event.data.get("topic")), int(event.data.get("partition", -1)))].append(
                event
            )
    return found


def _when_lost(
    losing_events: dict[tuple[str, int], list[Any]], ack: Acknowledged
) -> tuple[int, str]:
    """The moment an acknowledged record went: the first truncation that removed its offset, or
    an unclean election after it was acknowledged; otherwise its acknowledgement."""
    for event in losing_events.get((ack.topic, ack.partition), []):
        if event.time_ms < ack.acked_ms:
            continue
        if event.kind == "leader_elected":
            return event.time_ms, f"unclean election of broker {event.data.get('leader')}"
        if ack.offset in event.data.get("offsets", ()):
            return event.time_ms, f"truncated on broker {event.data.get('broker')}"
    return ack.acked_ms, "no truncation recorded"


def check(cluster: Cluster, history: History) -> list[Anomaly]:
    anomalies = list(history.reused)
    logs: dict[TopicPartition, tuple[dict[int, ConsumerRecord], int]] = {}
    compacted: set[str] = set()
    for name, registration in cluster.controller.topics.items():
        if "compact" in registration.config.get("cleanup.policy", []):
            compacted.add(name)
    losing_events = _losing_events(cluster)
    by_key: dict[tuple[str, int, bytes | None], list[Acknowledged]] = defaultdict(list)
    for ack in history.acknowledged:
        if ack.offset < 0 or ack.topic not in cluster.controller.topics:
            continue
        tp = TopicPartition(ack.topic, ack.partition)
        if tp not in logs:
            logs[tp] = _final_log(cluster, tp)
        records, log_start = logs[tp]
        if ack.offset < log_start:
            continue  # removed by retention, not lost
        found = records.get(ack.offset)
        if found is None:
            if ack.topic in compacted:
                continue
            when, why = _when_lost(losing_events, ack)
            anomalies.append(
                Anomaly(
                    "lost",
                    when,
                    ack.topic,
                    ack.partition,
                    ack.offset,
                    f"{_shown(ack.value)} was acknowledged at {ack.acked_ms} ms to {ack.producer} "
                    f"at offset {ack.offset}; it is no longer in the log ({why})",
                    {"acked_ms": ack.acked_ms, "producer": ack.producer},
                )
            )
        elif (found.key, found.value) != (ack.key, ack.value):
            when, why = _when_lost(losing_events, ack)
            anomalies.append(
                Anomaly(
                    "changed",
                    when,
                    ack.topic,
                    ack.partition,
                    ack.offset,
                    f"acknowledged {_shown(ack.value)} at offset {ack.offset} at {ack.acked_ms} "
                    f"ms, the log now holds {_shown(found.value)} there ({why})",
                    {"acked_ms": ack.acked_ms, "producer": ack.producer},
                )
            )
        by_key[(ack.topic, ack.partition, ack.key)].append(ack)
    # Duplicates: an acknowledged payload in the log more often than it was acknowledged.
    acknowledged_counts: dict[tuple[str, int, bytes | None, bytes | None], int] = defaultdict(int)
    for ack in history.acknowledged:
        acknowledged_counts[(ack.topic, ack.partition, ack.key, ack.value)] += 1
    for tp, (records, _start) in sorted(logs.items()):
        seen: dict[tuple[bytes | None, bytes | None], list[int]] = defaultdict(list)
        for offset in sorted(records):
            record = records[offset]
            payload = (record.key, record.value)
            allowed = acknowledged_counts.get((tp.topic, tp.partition, *payload), 0)
            if not allowed:
                continue
            seen[payload].append(offset)
            if len(seen[payload]) > allowed:
                anomalies.append(
                    Anomaly(
                        "duplicated",
                        record.timestamp,
                        tp.topic,
                        tp.partition,
                        offset,
                        f"{_shown(record.value)} was acknowledged {_times(allowed)} but is at "
                        "offsets "
                        f"{', '.join(map(str, seen[payload]))}",
                    )
                )
    # Reordering: for one producer and key, log order must follow send order.
    for (topic, partition, key), acks in by_key.items():
        if key is None:
            continue
        per_producer: dict[str, list[Acknowledged]] = defaultdict(list)
        for ack in acks:
            per_producer[ack.producer].append(ack)
        for producer, items in per_producer.items():
            items.sort(key=lambda a: a.send_index)
            last_offset = -1
            for ack in items:
                if ack.offset < last_offset:
                    anomalies.append(
                        Anomaly(
                            "reordered",
                            ack.acked_ms,
                            topic,
                            partition,
                            ack.offset,
                            f"{producer} sent {_shown(ack.value)} after a record of key "
                            f"{_shown(key)} now at "
                            f"offset {last_offset}, yet it sits at {ack.offset}",
                        )
                    )
                last_offset = max(last_offset, ack.offset)
    anomalies.extend(_aborted_reads(cluster, history))
    anomalies.sort(key=lambda a: (a.time_ms, a.topic, a.partition, a.offset, a.kind))
    return anomalies


def _aborted_reads(cluster: Cluster, history: History) -> list[Anomaly]:
    """Records a read_committed consumer was handed that the log says were aborted."""
    found: list[Anomaly] = []
    views: dict[TopicPartition, tuple[set[int], set[int]]] = {}
    for client_id, time_ms, record in history.read_committed_consumed:
        tp = TopicPartition(record.topic, record.partition)
        if record.topic not in cluster.controller.topics:
            continue
        if tp not in views:
            every = {r.offset for r in cluster.read(tp.topic, tp.partition, 0)}
            committed = {
                r.offset
                for r in cluster.read(tp.topic, tp.partition, 0, isolation_level="read_committed")
            }
            views[tp] = (every, committed)
        every, committed = views[tp]
        if record.offset in every and record.offset not in committed:
            found.append(
                Anomaly(
                    "aborted_read",
                    time_ms,
                    tp.topic,
                    tp.partition,
                    record.offset,
                    f"{client_id} (read_committed) was handed {_shown(record.value)} at offset "
                    f"{record.offset}, which belongs to an aborted transaction",
                )
            )
    return found
