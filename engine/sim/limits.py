"""Resource limits of one simulated cluster, so no learner can exhaust the server.

The defaults keep a busy sandbox to a few tens of megabytes, so a 2-core, 24 GiB server holds
hundreds of them; workshops and benchmarks may raise them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import ResourceLimitError

if TYPE_CHECKING:
    from engine.common.records import RecordBatch


class RetainedCount(Protocol):
    """The running count of what a cluster retains (`engine.sim.context.Taps`)."""

    retained_records: int
    retained_bytes: int

    def recount_retained(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    max_brokers: int = 12
    max_controllers: int = 7
    max_topics: int = 64
    max_partitions_per_topic: int = 256
    max_partitions: int = 1024
    max_retained_records: int = 250_000
    max_retained_bytes: int = 64 * 1024 * 1024
    max_record_bytes: int = 1024 * 1024
    max_clients: int = 64
    max_advance_ms: int = 30 * 24 * 3600 * 1000

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_value(cls, value: ResourceLimits | dict[str, Any] | None) -> ResourceLimits:
        if value is None:
            return cls()
        if isinstance(value, ResourceLimits):
            return value
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown resource limit(s): {', '.join(sorted(unknown))}")
        return cls(**{k: int(v) for k, v in value.items()})

    def check_cluster_shape(self, brokers: int, controllers: int) -> None:
        if not 1 <= brokers <= self.max_brokers:
            raise ResourceLimitError(
                f"A simulated cluster has 1 to {self.max_brokers} brokers, not {brokers}."
            )
        if not 1 <= controllers <= self.max_controllers:
            raise ResourceLimitError(
                f"A simulated cluster has 1 to {self.max_controllers} controllers, "
                f"not {controllers}."
            )

    def check_topic(self, topics: Mapping[str, Any], new_partitions: int, new_topic: bool) -> None:
        """`topics`: the controller's topics by name (each with its `partitions`)."""
        if new_topic and len(topics) >= self.max_topics:
            raise ResourceLimitError(
                f"This cluster already has the most topics allowed ({self.max_topics})."
            )
        if new_partitions > self.max_partitions_per_topic:
            raise ResourceLimitError(
                f"A topic can have at most {self.max_partitions_per_topic} partitions here."
            )
        total = sum(len(t.partitions) for t in topics.values())
        if total + new_partitions > self.max_partitions:
            raise ResourceLimitError(
                f"This cluster can hold at most {self.max_partitions} partitions in all; "
                f"it has {total}."
            )

    def check_record(self, size: int) -> None:
        if size > self.max_record_bytes:
            raise ResourceLimitError(f"Records are limited to {self.max_record_bytes} bytes here.")

    def check_append(self, retained: RetainedCount, batch: RecordBatch) -> None:
        if retained.retained_records + len(batch.records) > self.max_retained_records:
            retained.recount_retained()
            if retained.retained_records + len(batch.records) > self.max_retained_records:
                raise ResourceLimitError(
                    f"This cluster holds {retained.retained_records} records, the most allowed is "
                    f"{self.max_retained_records}: lower retention or delete a topic."
                )
        if retained.retained_bytes + batch.size > self.max_retained_bytes:
            retained.recount_retained()
            if retained.retained_bytes + batch.size > self.max_retained_bytes:
                raise ResourceLimitError(
                    f"This cluster holds {retained.retained_bytes} bytes, the most allowed is "
                    f"{self.max_retained_bytes}: lower retention or delete a topic."
                )

    def check_clients(self, count: int) -> None:
        if count >= self.max_clients:
            raise ResourceLimitError(f"A cluster can have at most {self.max_clients} clients here.")
