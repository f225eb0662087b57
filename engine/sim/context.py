"""What each component of the simulated cluster is handed instead of the cluster itself.

The facade (`engine.cluster.Cluster`) builds one `SimContext` (the clock and scheduler, the
network, the random source, the event sink, the call recorder, the resource limits, the
brokers' address book and the taps) and passes it through constructors, together with whatever
else a component needs by name (the controller, a config, a callable). No component holds the
cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING, Any, Protocol

from engine.sim.clock import Scheduler
from engine.sim.limits import ResourceLimits
from engine.sim.network import Network

if TYPE_CHECKING:
    from engine.common.records import ConsumerRecord, Record, RecordBatch, TopicPartition
    from engine.common.requests import RequestEndpoint
    from engine.server.broker import Broker

EventSink = Callable[[str, dict[str, Any]], None]
CallRecorder = Callable[[str, dict[str, Any]], None]
RunUntil = Callable[[Callable[[], bool], int], bool]


class HistoryTap(Protocol):
    """What the history of acknowledged and consumed records (`engine.checker`) listens to."""

    def on_acknowledged(self, producer: Any, batch: Any, base_offset: int) -> None: ...

    def on_consumed(self, consumer: Any, records: list[ConsumerRecord]) -> None: ...


class Nodes:
    """The brokers by id: the simulated network's address book (a read-only view)."""

    __slots__ = ("_brokers",)

    def __init__(self, brokers: dict[int, Broker]) -> None:
        self._brokers = brokers

    def broker_by_id(self, broker_id: int) -> Broker:
        return self._brokers[broker_id]

    def broker_ids(self) -> list[int]:
        return sorted(self._brokers)

    def endpoint(self, broker_id: int) -> RequestEndpoint:
        """What a client reaches of a broker: its process state and its request handler."""
        return self._brokers[broker_id]


class Taps:
    """What brokers and clients report as they work: the records and bytes the cluster retains
    (its resource limits count them) and what the history of the run records."""

    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes
        self.retained_records = 0
        self.retained_bytes = 0
        self.history: HistoryTap | None = None

    def on_append(self, partition: Any, batch: RecordBatch) -> None:
        self.retained_records += len(batch.records)
        self.retained_bytes += batch.size

    def on_follower_append(self, partition: Any, batch: RecordBatch) -> None:
        self.retained_records += len(batch.records)
        self.retained_bytes += batch.size

    def on_truncate(self, partition: Any, removed: list[Record]) -> None:
        self.recount_retained()

    def recount_retained(self) -> None:
        records = 0
        size = 0
        for broker_id in self.nodes.broker_ids():
            for partition in self.nodes.broker_by_id(broker_id).partitions.values():
                records += partition.log.record_count
                size += partition.log.size
        self.retained_records = records
        self.retained_bytes = size

    def on_high_watermark_changed(self, partition: Any) -> None:
        return None

    def on_client_send(self, producer: Any, tp: TopicPartition) -> None:
        return None

    def on_produce_request(self, producer: Any, leader: int, tps: list[TopicPartition]) -> None:
        return None

    def on_batch_acknowledged(self, producer: Any, batch: Any, base_offset: int) -> None:
        if self.history is not None:
            self.history.on_acknowledged(producer, batch, base_offset)

    def on_records_consumed(self, consumer: Any, records: list[ConsumerRecord]) -> None:
        if self.history is not None:
            self.history.on_consumed(consumer, records)


@dataclass(frozen=True, eq=False, slots=True)
class SimContext:
    """The simulation kernel as one component sees it."""

    scheduler: Scheduler
    network: Network
    rng: Random
    emit: EventSink
    # Records a state-changing call in the command log (only at the outermost level).
    record_call: CallRecorder
    # Records `producer.send` for a keyed send of bytes without partition, headers or timestamp
    # (producer number, topic, value, key): `record_call` for the hot path, kept compact.
    record_send: Callable[[int, str, bytes | None, bytes], None]
    # Runs the clock until the condition holds or the deadline passes (calls inside are not
    # recorded again).
    run_until: RunUntil
    # While inside, calls are not recorded (an app's own clients, created on the clock).
    unrecorded: Callable[[], AbstractContextManager[None]]
    limits: ResourceLimits
    nodes: Nodes
    taps: Taps

    @property
    def now_ms(self) -> int:
        return self.scheduler.now_ms


class CreateTopic(Protocol):
    """How a coordinator creates its internal topic (through the controller, as the facade
    does for `create_topic`)."""

    def __call__(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        config: dict[str, Any] | None,
        internal: bool = False,
    ) -> None: ...
