"""The cluster metadata the KRaft controller owns and brokers replicate: Kafka's
`PartitionRegistration`, `TopicImage` and broker registrations, plus the metadata records
that carry changes to brokers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class PartitionRegistration:
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0
    # An ongoing reassignment (KIP-455): the replicas being added and removed; `replicas` is
    # then the target followed by the removing ones (PartitionReassignmentReplicas).
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    @property
    def preferred_leader(self) -> int:
        return self.replicas[0]

    @property
    def reassigning(self) -> bool:
        return bool(self.adding_replicas or self.removing_replicas)

    def changed(self, **changes: Any) -> PartitionRegistration:
        return replace(self, **changes)


@dataclass(slots=True)
class TopicRegistration:
    name: str
    topic_id: int
    partitions: dict[int, PartitionRegistration]
    config: dict[str, Any]  # effective values, the broker's defaults included
    internal: bool = False
    # The keys set on the topic itself (Kafka's DYNAMIC_TOPIC_CONFIG); the others follow the
    # broker's defaults.
    overrides: set[str] = field(default_factory=set)


@dataclass(slots=True)
class BrokerRegistration:
    id: int
    fenced: bool = True
    in_controlled_shutdown: bool = False
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class MetadataRecord:
    """One committed change: kind is topic, partition, remove_topic, config, broker, or
    broker_config (a dynamic broker config layer: `topic` holds its entity, "" for every
    broker, "1" for broker 1, and `config` the layer's keys)."""

    offset: int
    kind: str
    topic: str = ""
    partition: int = -1
    registration: PartitionRegistration | None = None
    config: dict[str, Any] = field(default_factory=dict)
    broker: BrokerRegistration | None = None
    internal: bool = False
    # topic and config records: the keys the topic sets itself (the others follow the brokers'
    # defaults, which a broker's own dynamic config may change for the replicas it hosts).
    overrides: frozenset[str] = frozenset()
