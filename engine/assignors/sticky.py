"""The sticky assignors' shared algorithm: Kafka's `AbstractStickyAssignor`, without racks.

Balance comes first (partition counts differ by at most one where subscriptions allow), then as
many partitions as possible stay with their previous owner. As in Kafka there are two paths: a
fast "constrained" one when every member subscribes to the same topics, and a general one.

Kafka iterates `java.util.HashMap`s and `HashSet`s at a few places where the order decides the
result (which member keeps one partition more, which moved partition moves back); this module
reproduces those orders so results equal Kafka's, including its own tests' expectations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.common.records import TopicPartition

if TYPE_CHECKING:
    from engine.assignors import Subscription

DEFAULT_GENERATION = -1

_MASK_32 = 0xFFFFFFFF


# --- Java's orders ------------------------------------------------------------------------


def java_string_key(text: str) -> bytes:
    """Sort key equal to Java's `String.compareTo` (UTF-16 code units, then length)."""
    return text.encode("utf-16-be", "surrogatepass")


def _java_string_hash(text: str) -> int:
    units = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & _MASK_32
    return h


def _java_topic_partition_hash(tp: TopicPartition) -> int:
    return (31 * ((31 + tp.partition) & _MASK_32) + _java_string_hash(tp.topic)) & _MASK_32


def _java_bucket(hash_code: int, capacity: int) -> int:
    # HashMap.hash() spreads the high bits down before masking with the table size.
    return (hash_code ^ (hash_code >> 16)) & (capacity - 1)


def _java_capacity(max_size: int) -> int:
    # A default HashMap starts at 16 buckets and doubles once it holds more than 3/4 of them.
    capacity = 16
    while max_size > capacity * 3 // 4:
        capacity *= 2
    return capacity


def java_hashmap_order(keys: Iterable[str]) -> list[str]:
    """The iteration order of a default `java.util.HashMap` filled with `keys` in this order."""
    inserted = list(dict.fromkeys(keys))
    capacity = _java_capacity(len(inserted))
    # Buckets in index order; within a bucket, insertion order (sorted() is stable).
    return sorted(inserted, key=lambda key: _java_bucket(_java_string_hash(key), capacity))


class _JavaHashSet:
    """Tracks a `java.util.HashSet<TopicPartition>` closely enough to know its first element."""

    def __init__(self) -> None:
        self._insertion: dict[TopicPartition, int] = {}
        self._counter = 0
        self._max_size = 0

    def add(self, tp: TopicPartition) -> None:
        if tp in self._insertion:
            return
        self._counter += 1
        self._insertion[tp] = self._counter
        self._max_size = max(self._max_size, len(self._insertion))

    def remove(self, tp: TopicPartition) -> None:
        del self._insertion[tp]

    def __len__(self) -> int:
        return len(self._insertion)

    def first(self) -> TopicPartition:
        # Tables never shrink; treeified buckets (8+ collisions) are not modelled.
        capacity = _java_capacity(self._max_size)
        return min(
            self._insertion,
            key=lambda tp: (
                _java_bucket(_java_topic_partition_hash(tp), capacity),
                self._insertion[tp],
            ),
        )


# --- Previous owners ----------------------------------------------------------------------


@dataclass
class _Ownership:
    """Who owned what before this rebalance, after settling conflicting claims."""

    all_subscriptions_equal: bool
    owned: dict[str, list[TopicPartition]]  # in Kafka's HashMap order of members
    claimed_by_several: set[TopicPartition]
    max_generation: int


def _resolve_ownership(
    member_order: Sequence[str],
    subscriptions: Mapping[str, Subscription],
    partitions_per_topic: Mapping[str, int],
) -> _Ownership:
    """Kafka's `allSubscriptionsEqual`: the newest generation's claim on a partition wins.

    Two members of the same generation claiming one partition lose it both.
    """
    first_topics = frozenset(subscriptions[member_order[0]].topics)
    # Kafka compares against the first non-empty subscription it meets, which can call a member
    # subscribed to nothing "equal"; comparing every member exactly keeps assignments valid.
    all_equal = all(frozenset(subscriptions[m].topics) == first_topics for m in member_order)
    owned: dict[str, list[TopicPartition]] = {}
    owner_of: dict[TopicPartition, str] = {}
    claimed_by_several: set[TopicPartition] = set()
    max_generation = DEFAULT_GENERATION
    for member in member_order:
        subscription = subscriptions[member]
        generation = subscription.generation
        max_generation = max(max_generation, generation)
        kept: list[TopicPartition] = []
        owned[member] = kept
        for tp in subscription.owned_partitions:
            # Partitions that no longer exist are dropped (Kafka would keep assigning them).
            if not 0 <= tp.partition < partitions_per_topic.get(tp.topic, 0):
                continue
            other = owner_of.get(tp)
            if other is None:
                kept.append(tp)
                owner_of[tp] = member
                continue
            other_generation = subscriptions[other].generation
            if generation == other_generation:
                claimed_by_several.add(tp)
                if tp in owned[other]:
                    owned[other].remove(tp)
                owner_of[tp] = member
            elif generation > other_generation:
                kept.append(tp)
                if tp in owned[other]:
                    owned[other].remove(tp)
                owner_of[tp] = member
    return _Ownership(all_equal, owned, claimed_by_several, max_generation)


# --- Constrained path: every member subscribes to the same topics --------------------------


def _assign_constrained(
    partitions_per_topic: Mapping[str, int], ownership: _Ownership
) -> tuple[dict[str, list[TopicPartition]], dict[TopicPartition, str]]:
    """Kafka's `ConstrainedAssignmentBuilder`: keep owned partitions up to the quota, then fill.

    Returns the assignment and the partitions moving from one owner to another.
    """
    members = list(ownership.owned)
    total = sum(partitions_per_topic.values())
    min_quota = total // len(members)
    max_quota = -(-total // len(members))
    expected_over_min = total % len(members)
    current_over_min = 0

    assignment: dict[str, list[TopicPartition]] = {member: [] for member in members}
    assigned: set[TopicPartition] = set()
    maybe_revoked: dict[TopicPartition, str] = {}
    transferring: dict[TopicPartition, str] = {}
    under_min: list[str] = []
    exactly_min: list[str] = []

    for member in members:
        owned = sorted(
            ownership.owned[member], key=lambda tp: (tp.partition, java_string_key(tp.topic))
        )
        owned = [tp for tp in owned if tp not in ownership.claimed_by_several]
        if len(owned) < min_quota:
            keep = owned
            under_min.append(member)
        elif len(owned) >= max_quota and current_over_min < expected_over_min:
            current_over_min += 1
            if current_over_min == expected_over_min:
                exactly_min.clear()
            keep = owned[:max_quota]
        else:
            keep = owned[:min_quota]
            # It may still take one more, while members with one extra are still wanted.
            if current_over_min < expected_over_min:
                exactly_min.append(member)
        assignment[member].extend(keep)
        assigned.update(keep)
        for tp in owned[len(keep) :]:
            maybe_revoked[tp] = member

    unassigned = [
        TopicPartition(topic, partition)
        for topic in sorted(partitions_per_topic, key=java_string_key)
        for partition in range(partitions_per_topic[topic])
        if TopicPartition(topic, partition) not in assigned
    ]
    under_min.sort(key=java_string_key)
    exactly_min.sort(key=java_string_key)

    # Round-robin over members below quota; `cursor` plays Kafka's iterator over `under_min`.
    cursor = 0
    for tp in unassigned:
        from_under_min = bool(under_min)
        if cursor < len(under_min):
            member = under_min[cursor]
            cursor += 1
        elif under_min:
            member = under_min[0]
            cursor = 1
        elif exactly_min:
            member = exactly_min.pop(0)
        else:
            raise RuntimeError("sticky assignment has partitions left but no member to fill")
        assignment[member].append(tp)
        previous = maybe_revoked.get(tp)
        if (previous is not None and previous != member) or tp in ownership.claimed_by_several:
            transferring[tp] = member
        count = len(assignment[member])
        if count == min_quota and from_under_min:
            cursor -= 1
            del under_min[cursor]
            exactly_min.append(member)
    return assignment, transferring


# --- General path ----------------------------------------------------------------------------


class _PartitionMovements:
    """Kafka's `PartitionMovements`: where each partition came from during this rebalance."""

    def __init__(self) -> None:
        self._by_topic: dict[str, dict[tuple[str, str], _JavaHashSet]] = {}
        self._moves: dict[TopicPartition, tuple[str, str]] = {}

    def _remove_record(self, tp: TopicPartition) -> tuple[str, str]:
        pair = self._moves.pop(tp)
        moves_for_topic = self._by_topic[tp.topic]
        moves_for_topic[pair].remove(tp)
        if not moves_for_topic[pair]:
            del moves_for_topic[pair]
        if not moves_for_topic:
            del self._by_topic[tp.topic]
        return pair

    def _add_record(self, tp: TopicPartition, pair: tuple[str, str]) -> None:
        self._moves[tp] = pair
        self._by_topic.setdefault(tp.topic, {}).setdefault(pair, _JavaHashSet()).add(tp)

    def move(self, tp: TopicPartition, old_member: str, new_member: str) -> None:
        if tp in self._moves:
            source, _ = self._remove_record(tp)
            # Moving back to where it started cancels the movement.
            if source != new_member:
                self._add_record(tp, (source, new_member))
        else:
            self._add_record(tp, (old_member, new_member))

    def partition_to_move(
        self, tp: TopicPartition, old_member: str, new_member: str
    ) -> TopicPartition:
        """Rather undo an earlier move of this topic between the two members than add one."""
        moves_for_topic = self._by_topic.get(tp.topic)
        if moves_for_topic is None:
            return tp
        if tp in self._moves:
            old_member = self._moves[tp][0]
        reverse = moves_for_topic.get((new_member, old_member))
        if reverse is None:
            return tp
        return reverse.first()


@dataclass
class _PreviousOwner:
    member: str
    generation: int


class _GeneralAssignmentBuilder:
    """Kafka's `GeneralAssignmentBuilder`: keep what is valid, fill the least loaded, rebalance."""

    def __init__(
        self,
        member_order: Sequence[str],
        subscriptions: Mapping[str, Subscription],
        partitions_per_topic: Mapping[str, int],
        ownership: _Ownership,
    ) -> None:
        self.member_order = member_order
        self.subscriptions = subscriptions
        self.partitions_per_topic = partitions_per_topic
        self.max_generation = ownership.max_generation
        self.total_partitions = sum(partitions_per_topic.values())
        self.topic_members: dict[str, list[str]] = {topic: [] for topic in partitions_per_topic}
        self.member_topics: dict[str, list[str]] = {}
        self.current: dict[str, list[TopicPartition]] = {
            m: list(ownership.owned[m]) for m in member_order
        }
        for member in member_order:
            topics = [t for t in subscriptions[member].topics if t in partitions_per_topic]
            self.member_topics[member] = topics
            for topic in topics:
                self.topic_members[topic].append(member)
        self.owner: dict[TopicPartition, str] = {
            tp: member for member, tps in self.current.items() for tp in tps
        }
        sorted_topics = sorted(
            partitions_per_topic,
            key=lambda t: (len(self.topic_members[t]), java_string_key(t)),
        )
        self.sorted_partitions = [
            TopicPartition(topic, p)
            for topic in sorted_topics
            for p in range(partitions_per_topic[topic])
        ]
        # Kafka's TreeSet `sortedCurrentSubscriptions`, ordered on demand by `_by_load`.
        self.members_in_play: set[str] = set()
        self.movements = _PartitionMovements()
        self.revocation_required = False

    def _by_load(self) -> list[str]:
        return sorted(
            self.members_in_play, key=lambda m: (len(self.current[m]), java_string_key(m))
        )

    def build(self) -> dict[str, list[TopicPartition]]:
        previous = self._previous_owners()
        assigned = self._keep_owned_partitions()
        unassigned = [tp for tp in self.sorted_partitions if tp not in assigned]
        self.members_in_play = set(self.current)
        self._balance(previous, unassigned)
        return self.current

    def _previous_owners(self) -> dict[TopicPartition, _PreviousOwner]:
        """Claims from older generations: where a partition may go back to (`prevAssignment`)."""
        previous: dict[TopicPartition, _PreviousOwner] = {}
        for member in self.member_order:
            subscription = self.subscriptions[member]
            if subscription.generation >= self.max_generation:
                continue
            for tp in subscription.owned_partitions:
                known = previous.get(tp)
                if known is None or subscription.generation > known.generation:
                    previous[tp] = _PreviousOwner(member, subscription.generation)
        return previous

    def _keep_owned_partitions(self) -> set[TopicPartition]:
        assigned: set[TopicPartition] = set()
        for member, partitions in self.current.items():
            subscribed = self.subscriptions[member].topics
            for tp in list(partitions):
                if tp.topic not in subscribed:
                    partitions.remove(tp)
                    self.revocation_required = True
                else:
                    assigned.add(tp)
        return assigned

    def _max_assignment_size(self, member: str) -> int:
        return sum(self.partitions_per_topic[t] for t in self.member_topics[member])

    def _is_balanced(self) -> bool:
        by_load = self._by_load()
        if not by_load or len(self.current[by_load[0]]) >= len(self.current[by_load[-1]]) - 1:
            return True
        owner = {tp: m for m in self.current for tp in self.current[m]}
        for member in by_load:
            count = len(self.current[member])
            if count == self._max_assignment_size(member):
                continue
            mine = set(self.current[member])
            for topic in self.member_topics[member]:
                for p in range(self.partitions_per_topic[topic]):
                    tp = TopicPartition(topic, p)
                    other = owner.get(tp)
                    if (
                        tp not in mine
                        and other is not None
                        and count + 1 < len(self.current[other])
                    ):
                        return False
        return True

    def _can_topic_move(self, topic: str) -> bool:
        return len(self.topic_members[topic]) >= 2

    def _can_member_take_part(self, member: str) -> bool:
        if len(self.current[member]) < self._max_assignment_size(member):
            return True
        return any(self._can_topic_move(tp.topic) for tp in self.current[member])

    def _assign_to_least_loaded(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            if not self.topic_members[tp.topic]:
                continue
            for member in self._by_load():
                if tp.topic in self.member_topics[member]:
                    self.current[member].append(tp)
                    self.owner[tp] = member
                    break

    def _balance(
        self, previous: dict[TopicPartition, _PreviousOwner], unassigned: list[TopicPartition]
    ) -> None:
        initializing = all(not partitions for partitions in self.current.values())
        self._assign_to_least_loaded(unassigned)

        fixed_partitions = {
            TopicPartition(topic, p)
            for topic, count in self.partitions_per_topic.items()
            if not self._can_topic_move(topic)
            for p in range(count)
        }
        reassignable = [tp for tp in self.sorted_partitions if tp not in fixed_partitions]
        unassigned = [tp for tp in unassigned if tp not in fixed_partitions]
        fixed_members: dict[str, list[TopicPartition]] = {}
        for member in self.member_order:
            if not self._can_member_take_part(member):
                self.members_in_play.discard(member)
                fixed_members[member] = self.current.pop(member)

        before = {member: list(partitions) for member, partitions in self.current.items()}
        owner_before = dict(self.owner)
        # Without forced revocations, first try to balance by moving only the new partitions.
        if not self.revocation_required:
            self._perform_reassignments(unassigned, previous)
        moved = self._perform_reassignments(reassignable, previous)
        if not initializing and moved and _balance_score(self.current) >= _balance_score(before):
            self.current = before
            self.owner = owner_before
        self.current.update(fixed_members)
        self.members_in_play.update(fixed_members)

    def _perform_reassignments(
        self, partitions: list[TopicPartition], previous: dict[TopicPartition, _PreviousOwner]
    ) -> bool:
        moved_any = False
        modified = True
        while modified:
            modified = False
            for tp in partitions:
                if self._is_balanced():
                    break
                member = self.owner[tp]
                count = len(self.current[member])
                back_to = previous.get(tp)
                # Kafka forgets to check the previous owner still subscribes (and may crash).
                if (
                    back_to is not None
                    and tp.topic in self.member_topics[back_to.member]
                    and count > len(self.current[back_to.member]) + 1
                ):
                    self._reassign(tp, back_to.member)
                    moved_any = modified = True
                    continue
                if any(
                    count > len(self.current[other]) + 1 for other in self.topic_members[tp.topic]
                ):
                    new_member = next(
                        m for m in self._by_load() if tp.topic in self.member_topics[m]
                    )
                    self._reassign(tp, new_member)
                    moved_any = modified = True
        return moved_any

    def _reassign(self, tp: TopicPartition, new_member: str) -> None:
        actual = self.movements.partition_to_move(tp, self.owner[tp], new_member)
        old_member = self.owner[actual]
        self.movements.move(actual, old_member, new_member)
        self.current[old_member].remove(actual)
        self.current[new_member].append(actual)
        self.owner[actual] = new_member


def _balance_score(assignment: Mapping[str, list[TopicPartition]]) -> int:
    counts = [len(partitions) for partitions in assignment.values()]
    return sum(abs(a - b) for i, a in enumerate(counts) for b in counts[i + 1 :])


# --- Entry point -----------------------------------------------------------------------------


def sticky_assign(
    subscriptions: Mapping[str, Subscription], partitions_per_topic: Mapping[str, int]
) -> tuple[dict[str, list[TopicPartition]], dict[TopicPartition, str] | None]:
    """Kafka's `AbstractStickyAssignor.assignPartitions` over subscribed topics with metadata.

    Returns the assignment (every member, lists unsorted) and, on the constrained path, the
    partitions changing owner; None on the general path, where the cooperative assignor
    computes them from the members' owned partitions.
    """
    if not subscriptions:
        return {}, None
    member_order = java_hashmap_order(subscriptions)
    ownership = _resolve_ownership(member_order, subscriptions, partitions_per_topic)
    if ownership.all_subscriptions_equal:
        return _assign_constrained(partitions_per_topic, ownership)
    builder = _GeneralAssignmentBuilder(
        member_order, subscriptions, partitions_per_topic, ownership
    )
    return builder.build(), None


def partitions_changing_owner(
    subscriptions: Mapping[str, Subscription],
    assignment: Mapping[str, Sequence[TopicPartition]],
) -> dict[TopicPartition, str]:
    """Partitions a member gains while another member, claiming it, loses it.

    `CooperativeStickyAssignor.computePartitionsTransferringOwnership`.
    """
    added: dict[TopicPartition, str] = {}
    revoked: set[TopicPartition] = set()
    for member, partitions in assignment.items():
        owned = set(subscriptions[member].owned_partitions)
        assigned = set(partitions)
        for tp in partitions:
            if tp not in owned:
                added[tp] = member
        revoked.update(owned - assigned)
    return {tp: member for tp, member in added.items() if tp in revoked}
