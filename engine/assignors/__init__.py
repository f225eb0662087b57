"""Consumer group partition assignors: which member of a group reads which partitions.

The group leader runs one of these on every rebalance (`partition.assignment.strategy`), as
Kafka's `RangeAssignor`, `RoundRobinAssignor`, `StickyAssignor` and `CooperativeStickyAssignor`
do; the sticky ones live in `engine.assignors.sticky`. Rack-aware assignment is left out: the
simulation has no racks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.assignors.sticky import (
    DEFAULT_GENERATION,
    java_string_key,
    partitions_changing_owner,
    sticky_assign,
)
from engine.common.records import TopicPartition

RANGE = "range"
ROUND_ROBIN = "roundrobin"
STICKY = "sticky"
COOPERATIVE_STICKY = "cooperative-sticky"

SUPPORTED_STRATEGIES: tuple[str, ...] = (RANGE, ROUND_ROBIN, STICKY, COOPERATIVE_STICKY)

_CLASS_NAMES = {
    "org.apache.kafka.clients.consumer.RangeAssignor": RANGE,
    "org.apache.kafka.clients.consumer.RoundRobinAssignor": ROUND_ROBIN,
    "org.apache.kafka.clients.consumer.StickyAssignor": STICKY,
    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor": COOPERATIVE_STICKY,
}


@dataclass(frozen=True)
class Subscription:
    """What a member sends when it joins: its topics and, for the sticky assignors, what it owns.

    `generation` is the generation in which it got `owned_partitions` (-1: none); when members
    disagree on a partition's owner the newer generation wins. Topics repeated are kept once.
    """

    topics: Sequence[str]
    owned_partitions: Sequence[TopicPartition] = ()
    generation: int = DEFAULT_GENERATION
    group_instance_id: str | None = None

    def __post_init__(self) -> None:
        # Frozen, so normalise through object.__setattr__: tuples make it hashable and safe.
        object.__setattr__(self, "topics", tuple(dict.fromkeys(self.topics)))
        owned = tuple(
            TopicPartition(topic, partition) for topic, partition in self.owned_partitions
        )
        object.__setattr__(self, "owned_partitions", owned)


def canonical_strategy(strategy: str) -> str:
    """The short name for a strategy given by short name or by Kafka's assignor class name."""
    name = strategy.strip()
    if name in SUPPORTED_STRATEGIES:
        return name
    if name in _CLASS_NAMES:
        return _CLASS_NAMES[name]
    choices = ", ".join(SUPPORTED_STRATEGIES)
    raise ValueError(f"Unknown partition.assignment.strategy {strategy!r}; use one of {choices}")


def is_cooperative(strategy: str) -> bool:
    """True when members keep their partitions during a rebalance (KIP-429's protocol)."""
    return canonical_strategy(strategy) == COOPERATIVE_STICKY


def assign(
    strategy: str,
    subscriptions: Mapping[str, Subscription],
    partitions_per_topic: Mapping[str, int],
) -> dict[str, list[TopicPartition]]:
    """The leader's assignment: every member id maps to its sorted list of partitions.

    Topics without metadata (missing from `partitions_per_topic`, or with no partitions) are
    left out, as Kafka does until the leader learns about them.
    """
    name = canonical_strategy(strategy)
    subscribed = {topic for subscription in subscriptions.values() for topic in subscription.topics}
    known = {
        topic: count
        for topic, count in partitions_per_topic.items()
        if topic in subscribed and count > 0
    }
    if name == RANGE:
        assignment = _assign_range(subscriptions, known)
    elif name == ROUND_ROBIN:
        assignment = _assign_round_robin(subscriptions, known)
    else:
        assignment, transferring = sticky_assign(subscriptions, known)
        if name == COOPERATIVE_STICKY:
            if transferring is None:
                transferring = partitions_changing_owner(subscriptions, assignment)
            # The current owner revokes these first; a follow-up rebalance hands them over.
            for tp, new_owner in transferring.items():
                assignment[new_owner].remove(tp)
    return {member: sorted(assignment.get(member, [])) for member in subscriptions}


def _member_sort_key(member_id: str, subscription: Subscription) -> tuple[int, bytes, bytes]:
    """Kafka's `MemberInfo` order: static members by group.instance.id first, then the rest."""
    if subscription.group_instance_id is not None:
        return (0, java_string_key(subscription.group_instance_id), java_string_key(member_id))
    return (1, java_string_key(member_id), b"")


def _sorted_members(subscriptions: Mapping[str, Subscription], members: Iterable[str]) -> list[str]:
    return sorted(members, key=lambda member: _member_sort_key(member, subscriptions[member]))


def _assign_range(
    subscriptions: Mapping[str, Subscription], partitions_per_topic: Mapping[str, int]
) -> dict[str, list[TopicPartition]]:
    """Per topic: contiguous ranges, the first `partitions % members` members one partition more."""
    assignment: dict[str, list[TopicPartition]] = {member: [] for member in subscriptions}
    for topic, count in partitions_per_topic.items():
        members = _sorted_members(
            subscriptions, (m for m, s in subscriptions.items() if topic in s.topics)
        )
        if not members:
            continue
        per_member, with_extra = divmod(count, len(members))
        start = 0
        for index, member in enumerate(members):
            size = per_member + (1 if index < with_extra else 0)
            assignment[member].extend(TopicPartition(topic, p) for p in range(start, start + size))
            start += size
    return assignment


def _assign_round_robin(
    subscriptions: Mapping[str, Subscription], partitions_per_topic: Mapping[str, int]
) -> dict[str, list[TopicPartition]]:
    """All partitions sorted, dealt in turn over sorted members, skipping the unsubscribed."""
    assignment: dict[str, list[TopicPartition]] = {member: [] for member in subscriptions}
    members = _sorted_members(subscriptions, subscriptions)
    topics = sorted(partitions_per_topic, key=java_string_key)
    turn = 0
    for topic in topics:
        for partition in range(partitions_per_topic[topic]):
            # Someone subscribes to every topic here, so this finds a member within one circle.
            while topic not in subscriptions[members[turn]].topics:
                turn = (turn + 1) % len(members)
            assignment[members[turn]].append(TopicPartition(topic, partition))
            turn = (turn + 1) % len(members)
    return assignment
