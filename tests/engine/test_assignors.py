"""Consumer group assignors: range, roundrobin, sticky and cooperative-sticky.

Exact cases come from the javadoc of Kafka's assignors and from Kafka's RangeAssignorTest,
RoundRobinAssignorTest, AbstractStickyAssignorTest, StickyAssignorTest and
CooperativeStickyAssignorTest (rack-aware cases left out: the simulation has no racks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.assignors import (
    SUPPORTED_STRATEGIES,
    Subscription,
    assign,
    canonical_strategy,
    is_cooperative,
)
from engine.common.records import TopicPartition

STICKY_STRATEGIES = ["sticky", "cooperative-sticky"]
Assignment = dict[str, list[TopicPartition]]


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def parts(*items: TopicPartition) -> list[TopicPartition]:
    return sorted(items)


def sub(
    *topics: str,
    owned: Sequence[TopicPartition] = (),
    generation: int = -1,
    instance: str | None = None,
) -> Subscription:
    return Subscription(topics, owned, generation, instance)


def owned_now(
    subscriptions: Mapping[str, Subscription], assignment: Assignment, generation: int = 1
) -> dict[str, Subscription]:
    """Every member rejoins owning what it was just given, as in Kafka's tests."""
    return {
        member: Subscription(s.topics, assignment[member], generation, s.group_instance_id)
        for member, s in subscriptions.items()
    }


def assert_no_partition_changes_hands_directly(
    subscriptions: Mapping[str, Subscription], assignment: Assignment
) -> bool:
    """CooperativeStickyAssignorTest.verifyCooperativeValidity; True when something is revoked."""
    added: set[TopicPartition] = set()
    revoked: set[TopicPartition] = set()
    for member, partitions in assignment.items():
        owned = set(subscriptions[member].owned_partitions)
        added |= set(partitions) - owned
        revoked |= owned - set(partitions)
    assert not added & revoked, f"handed over in one rebalance: {added & revoked}"
    return bool(revoked)


def settle(
    strategy: str,
    subscriptions: Mapping[str, Subscription],
    partitions_per_topic: Mapping[str, int],
    assignment: Assignment,
) -> tuple[dict[str, Subscription], Assignment]:
    """For cooperative-sticky, run the follow-up rebalances until nothing is revoked any more."""
    current = dict(subscriptions)
    rounds = 0
    while is_cooperative(strategy) and assert_no_partition_changes_hands_directly(
        current, assignment
    ):
        current = owned_now(current, assignment)
        assignment = assign(strategy, current, partitions_per_topic)
        rounds += 1
        assert rounds <= 4
    return current, assignment


def assert_valid(
    subscriptions: Mapping[str, Subscription],
    partitions_per_topic: Mapping[str, int],
    assignment: Assignment,
) -> None:
    assert set(assignment) == set(subscriptions)
    seen: list[TopicPartition] = []
    for member, partitions in assignment.items():
        assert partitions == sorted(partitions)
        for partition in partitions:
            assert partition.topic in subscriptions[member].topics
        seen.extend(partitions)
    expected = {
        tp(topic, p)
        for topic, count in partitions_per_topic.items()
        if any(topic in s.topics for s in subscriptions.values())
        for p in range(count)
    }
    assert sorted(seen) == sorted(expected)


def assert_balanced(subscriptions: Mapping[str, Subscription], assignment: Assignment) -> None:
    """No partition could move to a member with two or more fewer (StickyAssignor's definition)."""
    for loaded, loaded_partitions in assignment.items():
        for light, light_partitions in assignment.items():
            if len(loaded_partitions) >= len(light_partitions) + 2:
                movable = [p for p in loaded_partitions if p.topic in subscriptions[light].topics]
                assert not movable, f"{movable} could move from {loaded} to {light}"


def assert_fully_balanced(assignment: Assignment) -> None:
    sizes = [len(partitions) for partitions in assignment.values()]
    assert max(sizes) - min(sizes) <= 1


def sticky_round(
    strategy: str,
    subscriptions: Mapping[str, Subscription],
    partitions_per_topic: Mapping[str, int],
) -> tuple[dict[str, Subscription], Assignment]:
    """Assign, check cooperative safety, settle, and check the result valid and balanced."""
    first = assign(strategy, subscriptions, partitions_per_topic)
    settled_subscriptions, settled = settle(strategy, subscriptions, partitions_per_topic, first)
    assert_valid(settled_subscriptions, partitions_per_topic, settled)
    assert_balanced(settled_subscriptions, settled)
    return settled_subscriptions, settled


def transferring(
    subscriptions: Mapping[str, Subscription], partitions_per_topic: Mapping[str, int]
) -> dict[TopicPartition, str]:
    """Kafka's `partitionsTransferringOwnership`: what cooperative-sticky holds back."""
    eager = assign("sticky", subscriptions, partitions_per_topic)
    cooperative = assign("cooperative-sticky", subscriptions, partitions_per_topic)
    return {p: m for m, partitions in eager.items() for p in partitions if p not in cooperative[m]}


# --- strategy names ------------------------------------------------------------------------------


def test_supported_strategies_are_kafkas_short_names() -> None:
    assert SUPPORTED_STRATEGIES == ("range", "roundrobin", "sticky", "cooperative-sticky")


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("org.apache.kafka.clients.consumer.RangeAssignor", "range"),
        ("org.apache.kafka.clients.consumer.RoundRobinAssignor", "roundrobin"),
        ("org.apache.kafka.clients.consumer.StickyAssignor", "sticky"),
        ("org.apache.kafka.clients.consumer.CooperativeStickyAssignor", "cooperative-sticky"),
        (" range ", "range"),
    ],
)
def test_kafka_class_names_map_to_short_names(name: str, short: str) -> None:
    assert canonical_strategy(name) == short
    subscriptions = {"c1": sub("t"), "c2": sub("t")}
    assert assign(name, subscriptions, {"t": 3}) == assign(short, subscriptions, {"t": 3})


def test_an_unknown_strategy_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="Unknown partition.assignment.strategy 'uniform'.*range"):
        assign("uniform", {"c1": sub("t")}, {"t": 1})
    with pytest.raises(ValueError):
        is_cooperative("org.apache.kafka.clients.consumer.ConsumerPartitionAssignor")


def test_only_cooperative_sticky_is_cooperative() -> None:
    assert [is_cooperative(s) for s in SUPPORTED_STRATEGIES] == [False, False, False, True]
    assert is_cooperative("org.apache.kafka.clients.consumer.CooperativeStickyAssignor")


def test_subscription_takes_lists_and_keeps_tuples() -> None:
    subscription = Subscription(["t", "t", "u"], [tp("t", 1)], 3, "i1")
    assert subscription.topics == ("t", "u")
    assert subscription.owned_partitions == (tp("t", 1),)
    assert isinstance(Subscription(["t"], [("t", 0)]).owned_partitions[0], TopicPartition)  # type: ignore[list-item]
    assert hash(subscription) == hash(Subscription(("t", "u"), (tp("t", 1),), 3, "i1"))


# --- common edge cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", SUPPORTED_STRATEGIES)
def test_a_member_without_topics_gets_an_empty_list(strategy: str) -> None:
    assert assign(strategy, {"consumer": sub()}, {}) == {"consumer": []}


@pytest.mark.parametrize("strategy", SUPPORTED_STRATEGIES)
def test_topics_without_metadata_are_ignored(strategy: str) -> None:
    assert assign(strategy, {"consumer": sub("topic")}, {}) == {"consumer": []}
    assert assign(strategy, {"consumer": sub("topic")}, {"topic": 0}) == {"consumer": []}


@pytest.mark.parametrize("strategy", SUPPORTED_STRATEGIES)
def test_one_member_gets_every_partition_of_its_topics_only(strategy: str) -> None:
    result = assign(
        strategy, {"consumer": sub("topic1", "topic2")}, {"topic1": 1, "topic2": 2, "other": 3}
    )
    assert result == {"consumer": [tp("topic1", 0), tp("topic2", 0), tp("topic2", 1)]}


@pytest.mark.parametrize("strategy", SUPPORTED_STRATEGIES)
def test_an_empty_group_gets_an_empty_assignment(strategy: str) -> None:
    assert assign(strategy, {}, {"t": 3}) == {}


# --- range ---------------------------------------------------------------------------------------


def test_range_javadoc_example() -> None:
    result = assign("range", {"C0": sub("t0", "t1"), "C1": sub("t0", "t1")}, {"t0": 3, "t1": 3})
    assert result == {
        "C0": [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)],
        "C1": [tp("t0", 2), tp("t1", 2)],
    }


def test_range_javadoc_new_member_ids_after_a_rolling_bounce_shuffle_the_assignment() -> None:
    result = assign("range", {"C3": sub("t0", "t1"), "C2": sub("t0", "t1")}, {"t0": 3, "t1": 3})
    assert result["C3"] == [tp("t0", 2), tp("t1", 2)]
    assert result["C2"] == [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]


def test_range_javadoc_static_members_keep_their_ranges_across_member_ids() -> None:
    before = assign(
        "range",
        {"C0": sub("t0", "t1", instance="I0"), "C1": sub("t0", "t1", instance="I1")},
        {"t0": 3, "t1": 3},
    )
    after = assign(
        "range",
        {"C3": sub("t0", "t1", instance="I0"), "C2": sub("t0", "t1", instance="I1")},
        {"t0": 3, "t1": 3},
    )
    assert before["C0"] == after["C3"] == [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
    assert before["C1"] == after["C2"] == [tp("t0", 2), tp("t1", 2)]


def test_range_two_members_one_partition_leaves_the_second_idle() -> None:
    result = assign(
        "range", {"consumer1": sub("topic1"), "consumer2": sub("topic1")}, {"topic1": 1}
    )
    assert result == {"consumer1": [tp("topic1", 0)], "consumer2": []}


def test_range_two_members_two_partitions() -> None:
    result = assign(
        "range", {"consumer1": sub("topic1"), "consumer2": sub("topic1")}, {"topic1": 2}
    )
    assert result == {"consumer1": [tp("topic1", 0)], "consumer2": [tp("topic1", 1)]}


def test_range_divides_each_topic_among_its_own_subscribers() -> None:
    subscriptions = {
        "consumer1": sub("topic1"),
        "consumer2": sub("topic1", "topic2"),
        "consumer3": sub("topic1"),
    }
    assert assign("range", subscriptions, {"topic1": 3, "topic2": 2}) == {
        "consumer1": [tp("topic1", 0)],
        "consumer2": [tp("topic1", 1), tp("topic2", 0), tp("topic2", 1)],
        "consumer3": [tp("topic1", 2)],
    }


def test_range_orders_static_members_by_instance_id_not_member_id() -> None:
    subscriptions = {
        "consumer-b": sub("topic1", "topic2", instance="instance1"),
        "consumer-a": sub("topic1", "topic2", instance="instance2"),
    }
    result = assign("range", subscriptions, {"topic1": 3, "topic2": 3})
    assert result["consumer-b"] == [
        tp("topic1", 0),
        tp("topic1", 1),
        tp("topic2", 0),
        tp("topic2", 1),
    ]
    assert result["consumer-a"] == [tp("topic1", 2), tp("topic2", 2)]


def test_range_puts_static_members_before_dynamic_ones() -> None:
    subscriptions = {
        "consumer-b": sub("topic1", "topic2", instance="instance1"),
        "consumer-a": sub("topic1", "topic2"),
    }
    result = assign("range", subscriptions, {"topic1": 3, "topic2": 3})
    assert result["consumer-b"] == [
        tp("topic1", 0),
        tp("topic1", 1),
        tp("topic2", 0),
        tp("topic2", 1),
    ]
    assert result["consumer-a"] == [tp("topic1", 2), tp("topic2", 2)]


def test_range_static_members_persist_when_a_dynamic_member_is_replaced() -> None:
    static = {f"consumer{i}": sub("topic1", "topic2", instance=f"instance{i}") for i in (1, 2, 3)}
    expected = {
        "consumer1": [tp("topic1", 0), tp("topic1", 1), tp("topic2", 0)],
        "consumer2": [tp("topic1", 2), tp("topic2", 1)],
        "consumer3": [tp("topic1", 3), tp("topic2", 2)],
    }
    ppt = {"topic1": 5, "topic2": 4}
    assert assign("range", {**static, "consumer4": sub("topic1", "topic2")}, ppt) == {
        **expected,
        "consumer4": [tp("topic1", 4), tp("topic2", 3)],
    }
    assert assign("range", {**static, "consumer5": sub("topic1", "topic2")}, ppt) == {
        **expected,
        "consumer5": [tp("topic1", 4), tp("topic2", 3)],
    }


def test_range_static_assignment_survives_member_id_changes() -> None:
    ppt = {"topic1": 5, "topic2": 5}
    by_instance = {
        "instance1": [tp("topic1", 0), tp("topic1", 1), tp("topic2", 0), tp("topic2", 1)],
        "instance2": [tp("topic1", 2), tp("topic1", 3), tp("topic2", 2), tp("topic2", 3)],
        "instance3": [tp("topic1", 4), tp("topic2", 4)],
    }
    before = assign(
        "range",
        {f"consumer{i}": sub("topic1", "topic2", instance=f"instance{i}") for i in (1, 2, 3)},
        ppt,
    )
    renamed = {
        "consumer1": sub("topic1", "topic2", instance="instance1"),
        "consumer5": sub("topic1", "topic2", instance="instance2"),
        "consumer4": sub("topic1", "topic2", instance="instance3"),
    }
    after = assign("range", renamed, ppt)
    assert {f"instance{i}": before[f"consumer{i}"] for i in (1, 2, 3)} == by_instance
    assert {
        "instance1": after["consumer1"],
        "instance2": after["consumer5"],
        "instance3": after["consumer4"],
    } == by_instance


def test_range_co_partitioned_topics_line_up_and_unknown_topics_are_skipped() -> None:
    topics = [f"t{i}" for i in range(1, 10)]
    ppt = {"t1": 6, "t2": 6, "t3": 2, "t4": 2, "t5": 4, "t6": 4}
    result = assign("range", {"c0": sub(*topics), "c1": sub(*topics), "c2": sub(*topics)}, ppt)

    def names(partitions: list[TopicPartition]) -> str:
        return ", ".join(str(p) for p in partitions)

    assert names(result["c0"]) == "t1-0, t1-1, t2-0, t2-1, t3-0, t4-0, t5-0, t5-1, t6-0, t6-1"
    assert names(result["c1"]) == "t1-2, t1-3, t2-2, t2-3, t3-1, t4-1, t5-2, t6-2"
    assert names(result["c2"]) == "t1-4, t1-5, t2-4, t2-5, t5-3, t6-3"


# --- roundrobin ----------------------------------------------------------------------------------


def test_roundrobin_javadoc_example() -> None:
    result = assign(
        "roundrobin", {"C0": sub("t0", "t1"), "C1": sub("t0", "t1")}, {"t0": 3, "t1": 3}
    )
    assert result == {
        "C0": [tp("t0", 0), tp("t0", 2), tp("t1", 1)],
        "C1": [tp("t0", 1), tp("t1", 0), tp("t1", 2)],
    }


def test_roundrobin_javadoc_skips_members_not_subscribed_to_a_topic() -> None:
    subscriptions = {"C0": sub("t0"), "C1": sub("t0", "t1"), "C2": sub("t0", "t1", "t2")}
    assert assign("roundrobin", subscriptions, {"t0": 1, "t1": 2, "t2": 3}) == {
        "C0": [tp("t0", 0)],
        "C1": [tp("t1", 0)],
        "C2": [tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)],
    }


def test_roundrobin_javadoc_member_ids_decide_the_order_unless_members_are_static() -> None:
    ppt = {"t0": 3, "t1": 3}
    first = assign(
        "roundrobin", {"C0": sub("t0", "t1"), "C1": sub("t0", "t1"), "C2": sub("t0", "t1")}, ppt
    )
    assert first == {
        "C0": [tp("t0", 0), tp("t1", 0)],
        "C1": [tp("t0", 1), tp("t1", 1)],
        "C2": [tp("t0", 2), tp("t1", 2)],
    }
    bounced = assign(
        "roundrobin", {"C5": sub("t0", "t1"), "C3": sub("t0", "t1"), "C4": sub("t0", "t1")}, ppt
    )
    assert bounced == {
        "C3": [tp("t0", 0), tp("t1", 0)],
        "C4": [tp("t0", 1), tp("t1", 1)],
        "C5": [tp("t0", 2), tp("t1", 2)],
    }
    static = assign(
        "roundrobin",
        {
            "C5": sub("t0", "t1", instance="I0"),
            "C3": sub("t0", "t1", instance="I1"),
            "C4": sub("t0", "t1", instance="I2"),
        },
        ppt,
    )
    assert static == {
        "C5": [tp("t0", 0), tp("t1", 0)],
        "C3": [tp("t0", 1), tp("t1", 1)],
        "C4": [tp("t0", 2), tp("t1", 2)],
    }


def test_roundrobin_two_members_one_partition() -> None:
    result = assign(
        "roundrobin", {"consumer1": sub("topic"), "consumer2": sub("topic")}, {"topic": 1}
    )
    assert result == {"consumer1": [tp("topic", 0)], "consumer2": []}


def test_roundrobin_mixed_topics() -> None:
    subscriptions = {
        "consumer1": sub("topic1"),
        "consumer2": sub("topic1", "topic2"),
        "consumer3": sub("topic1"),
    }
    assert assign("roundrobin", subscriptions, {"topic1": 3, "topic2": 2}) == {
        "consumer1": [tp("topic1", 0)],
        "consumer2": [tp("topic1", 1), tp("topic2", 0), tp("topic2", 1)],
        "consumer3": [tp("topic1", 2)],
    }


@pytest.mark.parametrize(
    "subscriptions",
    [
        {
            "consumer-b": sub("topic1", "topic2", instance="instance1"),
            "consumer-a": sub("topic1", "topic2", instance="instance2"),
        },
        {
            "consumer-b": sub("topic1", "topic2", instance="instance1"),
            "consumer-a": sub("topic1", "topic2"),
        },
    ],
)
def test_roundrobin_puts_static_members_first_by_instance_id(
    subscriptions: dict[str, Subscription],
) -> None:
    result = assign("roundrobin", subscriptions, {"topic1": 3, "topic2": 3})
    assert result["consumer-b"] == [tp("topic1", 0), tp("topic1", 2), tp("topic2", 1)]
    assert result["consumer-a"] == [tp("topic1", 1), tp("topic2", 0), tp("topic2", 2)]


def test_roundrobin_static_members_persist_when_a_dynamic_member_is_replaced() -> None:
    static = {f"consumer{i}": sub("topic1", "topic2", instance=f"instance{i}") for i in (1, 2, 3)}
    expected = {
        "consumer1": [tp("topic1", 0), tp("topic2", 1)],
        "consumer2": [tp("topic1", 1), tp("topic2", 2)],
        "consumer3": [tp("topic1", 2)],
    }
    ppt = {"topic1": 3, "topic2": 3}
    assert assign("roundrobin", {**static, "consumer4": sub("topic1", "topic2")}, ppt) == {
        **expected,
        "consumer4": [tp("topic2", 0)],
    }
    assert assign("roundrobin", {**static, "consumer5": sub("topic1", "topic2")}, ppt) == {
        **expected,
        "consumer5": [tp("topic2", 0)],
    }


def test_roundrobin_static_assignment_survives_member_id_changes() -> None:
    ppt = {"topic1": 5, "topic2": 5}
    by_instance = {
        "instance1": [tp("topic1", 0), tp("topic1", 3), tp("topic2", 1), tp("topic2", 4)],
        "instance2": [tp("topic1", 1), tp("topic1", 4), tp("topic2", 2)],
        "instance3": [tp("topic1", 2), tp("topic2", 0), tp("topic2", 3)],
    }
    before = assign(
        "roundrobin",
        {f"consumer{i}": sub("topic1", "topic2", instance=f"instance{i}") for i in (1, 2, 3)},
        ppt,
    )
    after = assign("roundrobin", {
        "consumer1": sub("topic1", "topic2", instance="instance1"),
        "consumer5": sub("topic1", "topic2", instance="instance2"),
        "consumer4": sub("topic1", "topic2", instance="instance3"),
    }, ppt)  # fmt: skip
    assert {f"instance{i}": before[f"consumer{i}"] for i in (1, 2, 3)} == by_instance
    assert {
        "instance1": after["consumer1"],
        "instance2": after["consumer5"],
        "instance3": after["consumer4"],
    } == by_instance


# --- sticky: javadoc -----------------------------------------------------------------------------


def test_sticky_javadoc_example_1_starts_like_roundrobin_then_keeps_every_partition() -> None:
    topics = ("t0", "t1", "t2", "t3")
    ppt = dict.fromkeys(topics, 2)
    subscriptions = {c: sub(*topics) for c in ("C0", "C1", "C2")}
    first = assign("sticky", subscriptions, ppt)
    assert (
        first
        == assign("roundrobin", subscriptions, ppt)
        == {
            "C0": parts(tp("t0", 0), tp("t1", 1), tp("t3", 0)),
            "C1": parts(tp("t0", 1), tp("t2", 0), tp("t3", 1)),
            "C2": parts(tp("t1", 0), tp("t2", 1)),
        }
    )
    without_c1 = {c: sub(*topics, owned=first[c], generation=1) for c in ("C0", "C2")}
    assert assign("roundrobin", without_c1, ppt) == {
        "C0": parts(tp("t0", 0), tp("t1", 0), tp("t2", 0), tp("t3", 0)),
        "C2": parts(tp("t0", 1), tp("t1", 1), tp("t2", 1), tp("t3", 1)),
    }
    second = assign("sticky", without_c1, ppt)
    assert set(first["C0"]) <= set(second["C0"]) and set(first["C2"]) <= set(second["C2"])
    # The javadoc's own lists predate Kafka 2.4's path for equal subscriptions; this is 4.0's.
    assert second == {
        "C0": parts(tp("t0", 0), tp("t0", 1), tp("t1", 1), tp("t3", 0)),
        "C2": parts(tp("t1", 0), tp("t2", 0), tp("t2", 1), tp("t3", 1)),
    }


def test_sticky_javadoc_example_2_balances_better_than_roundrobin_and_keeps_five() -> None:
    ppt = {"t0": 1, "t1": 2, "t2": 3}
    subscriptions = {"C0": sub("t0"), "C1": sub("t0", "t1"), "C2": sub("t0", "t1", "t2")}
    assert assign("roundrobin", subscriptions, ppt) == {
        "C0": [tp("t0", 0)],
        "C1": [tp("t1", 0)],
        "C2": [tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)],
    }
    first = assign("sticky", subscriptions, ppt)
    assert first == {
        "C0": [tp("t0", 0)],
        "C1": [tp("t1", 0), tp("t1", 1)],
        "C2": [tp("t2", 0), tp("t2", 1), tp("t2", 2)],
    }
    without_c0 = {
        "C1": sub("t0", "t1", owned=first["C1"], generation=1),
        "C2": sub("t0", "t1", "t2", owned=first["C2"], generation=1),
    }
    assert assign("roundrobin", without_c0, ppt) == {
        "C1": [tp("t0", 0), tp("t1", 1)],
        "C2": [tp("t1", 0), tp("t2", 0), tp("t2", 1), tp("t2", 2)],
    }
    assert assign("sticky", without_c0, ppt) == {
        "C1": [tp("t0", 0), tp("t1", 0), tp("t1", 1)],
        "C2": [tp("t2", 0), tp("t2", 1), tp("t2", 2)],
    }


# --- sticky and cooperative-sticky: Kafka's AbstractStickyAssignorTest ---------------------------


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_ignores_owned_partitions_of_topics_no_longer_subscribed(strategy: str) -> None:
    owned = [tp("topic", 0), tp("topic", 1), tp("other", 0), tp("other", 1)]
    subscriptions = {"consumer": sub("topic", owned=owned, generation=1)}
    assert sticky_round(strategy, subscriptions, {"topic": 2})[1] == {
        "consumer": [tp("topic", 0), tp("topic", 1)]
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_two_members_one_partition(strategy: str) -> None:
    _, result = sticky_round(
        strategy, {"consumer1": sub("topic"), "consumer2": sub("topic")}, {"topic": 1}
    )
    assert sorted(len(p) for p in result.values()) == [0, 1]


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_two_members_two_partitions(strategy: str) -> None:
    _, result = sticky_round(
        strategy, {"consumer1": sub("topic"), "consumer2": sub("topic")}, {"topic": 2}
    )
    assert result == {"consumer1": [tp("topic", 0)], "consumer2": [tp("topic", 1)]}


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_multiple_members_mixed_topic_subscriptions(strategy: str) -> None:
    subscriptions = {
        "consumer1": sub("topic1"),
        "consumer2": sub("topic1", "topic2"),
        "consumer3": sub("topic1"),
    }
    _, result = sticky_round(strategy, subscriptions, {"topic1": 3, "topic2": 2})
    assert result == {
        "consumer1": [tp("topic1", 0), tp("topic1", 2)],
        "consumer2": [tp("topic2", 0), tp("topic2", 1)],
        "consumer3": [tp("topic1", 1)],
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_two_members_two_topics_six_partitions(strategy: str) -> None:
    subscriptions = {"consumer1": sub("topic1", "topic2"), "consumer2": sub("topic1", "topic2")}
    _, result = sticky_round(strategy, subscriptions, {"topic1": 3, "topic2": 3})
    assert result == {
        "consumer1": [tp("topic1", 0), tp("topic1", 2), tp("topic2", 1)],
        "consumer2": [tp("topic1", 1), tp("topic2", 0), tp("topic2", 2)],
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_member_owning_min_quota_gets_the_extra_partition(strategy: str) -> None:
    topics = ("topic1", "topic2")
    subscriptions = {
        "consumer1": sub(*topics, owned=[tp("topic1", 0), tp("topic2", 1)], generation=1),
        "consumer2": sub(*topics, owned=[tp("topic1", 1), tp("topic2", 2)], generation=1),
    }
    ppt = {"topic1": 2, "topic2": 3}
    assert transferring(subscriptions, ppt) == {}
    assert sticky_round(strategy, subscriptions, ppt)[1] == {
        "consumer1": parts(tp("topic1", 0), tp("topic2", 1), tp("topic2", 0)),
        "consumer2": parts(tp("topic1", 1), tp("topic2", 2)),
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_more_members_owning_max_quota_than_extra_slots(strategy: str) -> None:
    # Which member keeps its second partition follows Kafka's HashMap order of member ids.
    topics = ("topic1", "topic2")
    subscriptions = {
        "consumer1": sub(*topics, owned=[tp("topic1", 0), tp("topic2", 0)], generation=1),
        "consumer2": sub(*topics, owned=[tp("topic1", 1), tp("topic2", 1)], generation=1),
        "consumer3": sub(*topics, generation=1),
    }
    ppt = {"topic1": 2, "topic2": 2}
    assert transferring(subscriptions, ppt) == {tp("topic2", 0): "consumer3"}
    assert sticky_round(strategy, subscriptions, ppt)[1] == {
        "consumer1": [tp("topic1", 0)],
        "consumer2": [tp("topic1", 1), tp("topic2", 1)],
        "consumer3": [tp("topic2", 0)],
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_all_members_under_min_quota(strategy: str) -> None:
    topics = ("topic1", "topic2")
    subscriptions = {
        "consumer1": sub(*topics, owned=[tp("topic1", 0)], generation=1),
        "consumer2": sub(*topics, owned=[tp("topic1", 1)], generation=1),
        "consumer3": sub(*topics, generation=1),
    }
    ppt = {"topic1": 2, "topic2": 3}
    assert transferring(subscriptions, ppt) == {}
    assert sticky_round(strategy, subscriptions, ppt)[1] == {
        "consumer1": parts(tp("topic1", 0), tp("topic2", 1)),
        "consumer2": parts(tp("topic1", 1), tp("topic2", 2)),
        "consumer3": [tp("topic2", 0)],
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_add_then_remove_a_member_on_one_topic(strategy: str) -> None:
    ppt = {"topic": 3}
    subscriptions: dict[str, Subscription] = {"consumer1": sub("topic")}
    subscriptions, result = sticky_round(strategy, subscriptions, ppt)
    assert result == {"consumer1": [tp("topic", 0), tp("topic", 1), tp("topic", 2)]}

    subscriptions = {
        "consumer1": sub("topic", owned=result["consumer1"], generation=1),
        "consumer2": sub("topic", generation=1),
    }
    assert transferring(subscriptions, ppt) == {tp("topic", 2): "consumer2"}
    subscriptions, result = sticky_round(strategy, subscriptions, ppt)
    assert result == {"consumer1": [tp("topic", 0), tp("topic", 1)], "consumer2": [tp("topic", 2)]}

    subscriptions = {"consumer2": sub("topic", owned=result["consumer2"], generation=1)}
    assert transferring(subscriptions, ppt) == {}
    assert sticky_round(strategy, subscriptions, ppt)[1] == {
        "consumer2": [tp("topic", 0), tp("topic", 1), tp("topic", 2)]
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_keeps_each_topic_balanced_as_members_come_and_go(strategy: str) -> None:
    topics = ("topic1", "topic2")
    ppt = {"topic1": 12, "topic2": 12}

    def per_topic_counts(result: Assignment) -> set[int]:
        return {
            sum(1 for p in ps if p.topic == topic) for ps in result.values() for topic in topics
        }

    subscriptions, result = sticky_round(strategy, {"consumer1": sub(*topics)}, ppt)
    assert per_topic_counts(result) == {12}
    subscriptions = {**owned_now(subscriptions, result), "consumer2": sub(*topics, generation=1)}
    subscriptions, result = sticky_round(strategy, subscriptions, ppt)
    assert per_topic_counts(result) == {6}
    subscriptions = {
        **owned_now(subscriptions, result),
        "consumer3": sub(*topics, generation=1),
        "consumer4": sub(*topics, generation=1),
    }
    subscriptions, result = sticky_round(strategy, subscriptions, ppt)
    assert per_topic_counts(result) == {3}
    subscriptions = {
        m: s for m, s in owned_now(subscriptions, result).items() if m in ("consumer3", "consumer4")
    }
    assert transferring(subscriptions, ppt) == {}
    _, result = sticky_round(strategy, subscriptions, ppt)
    assert per_topic_counts(result) == {6}


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_add_and_remove_two_members_on_two_topics(strategy: str) -> None:
    topics = ("topic1", "topic2")
    ppt = {"topic1": 3, "topic2": 4}
    subscriptions, result = sticky_round(
        strategy, {"consumer1": sub(*topics), "consumer2": sub(*topics)}, ppt
    )
    assert result == {
        "consumer1": parts(tp("topic1", 0), tp("topic1", 2), tp("topic2", 1), tp("topic2", 3)),
        "consumer2": parts(tp("topic1", 1), tp("topic2", 0), tp("topic2", 2)),
    }
    subscriptions = {
        **owned_now(subscriptions, result),
        "consumer3": sub(*topics, generation=1),
        "consumer4": sub(*topics, generation=1),
    }
    assert transferring(subscriptions, ppt) == {
        tp("topic1", 2): "consumer3",
        tp("topic2", 3): "consumer3",
        tp("topic2", 2): "consumer4",
    }
    subscriptions, result = sticky_round(strategy, subscriptions, ppt)
    assert result == {
        "consumer1": parts(tp("topic1", 0), tp("topic2", 1)),
        "consumer2": parts(tp("topic2", 0), tp("topic1", 1)),
        "consumer3": parts(tp("topic1", 2), tp("topic2", 3)),
        "consumer4": parts(tp("topic2", 2)),
    }
    subscriptions = {
        m: s for m, s in owned_now(subscriptions, result).items() if m in ("consumer3", "consumer4")
    }
    assert transferring(subscriptions, ppt) == {}
    assert sticky_round(strategy, subscriptions, ppt)[1] == {
        "consumer3": parts(tp("topic1", 2), tp("topic2", 3), tp("topic1", 0), tp("topic2", 1)),
        "consumer4": parts(tp("topic2", 2), tp("topic1", 1), tp("topic2", 0)),
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_balances_where_roundrobin_does_poorly(strategy: str) -> None:
    ppt = {f"topic{i}": (i % 2) + 1 for i in range(1, 6)}
    all_topics = tuple(ppt)
    subscriptions = {
        "consumer1": sub(*all_topics),
        "consumer2": sub("topic1", "topic3", "topic5"),
        "consumer3": sub("topic1", "topic3", "topic5"),
        "consumer4": sub(*all_topics),
    }
    assert assign("roundrobin", subscriptions, ppt)["consumer3"] == []
    _, result = sticky_round(strategy, subscriptions, ppt)
    assert sorted(len(p) for p in result.values()) == [2, 2, 2, 2]


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_add_then_remove_a_topic_keeps_each_members_partitions(strategy: str) -> None:
    ppt = {"topic": 3}
    subscriptions, first = sticky_round(
        strategy, {"consumer1": sub("topic"), "consumer2": sub("topic")}, ppt
    )
    assert sorted(len(p) for p in first.values()) == [1, 2]

    ppt = {"topic": 3, "topic2": 3}
    subscriptions = {m: Subscription(("topic", "topic2"), first[m], 1) for m in first}
    assert transferring(subscriptions, ppt) == {}
    subscriptions, second = sticky_round(strategy, subscriptions, ppt)
    assert [len(second[m]) for m in ("consumer1", "consumer2")] == [3, 3]
    assert all(set(first[m]) <= set(second[m]) for m in first)

    ppt = {"topic2": 3}
    subscriptions = {m: Subscription(("topic2",), second[m], 1) for m in second}
    assert transferring(subscriptions, ppt) == {}
    _, third = sticky_round(strategy, subscriptions, ppt)
    assert sorted(len(p) for p in third.values()) == [1, 2]
    assert all(set(third[m]) <= set(second[m]) for m in third)


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_reassignment_after_one_of_nineteen_nested_subscribers_leaves(strategy: str) -> None:
    ppt = {f"t{i:02d}": i for i in range(1, 20)}
    subscriptions = {
        f"c{i:02d}": sub(*(f"t{j:02d}" for j in range(1, i + 1))) for i in range(1, 20)
    }
    subscriptions, result = sticky_round(strategy, subscriptions, ppt)
    subscriptions = {m: s for m, s in owned_now(subscriptions, result).items() if m != "c10"}
    sticky_round(strategy, subscriptions, ppt)


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_reassignment_after_one_member_is_added(strategy: str) -> None:
    ppt = {"topic": 20}
    subscriptions = {f"c{i:02d}": sub("topic") for i in range(1, 10)}
    subscriptions, result = sticky_round(strategy, subscriptions, ppt)
    subscriptions = {**owned_now(subscriptions, result), "c10": sub("topic", generation=1)}
    sticky_round(strategy, subscriptions, ppt)


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_same_subscriptions_when_one_member_leaves(strategy: str) -> None:
    ppt = {f"t{i:02d}": i for i in range(1, 15)}
    subscriptions = {f"c{i}": sub(*ppt) for i in range(1, 9)}
    subscriptions, result = sticky_round(strategy, subscriptions, ppt)
    subscriptions = {m: s for m, s in owned_now(subscriptions, result).items() if m != "c5"}
    assert transferring(subscriptions, ppt) == {}
    sticky_round(strategy, subscriptions, ppt)


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_new_subscription_of_one_member(strategy: str) -> None:
    ppt = {f"t{i}": 1 for i in range(1, 5)}
    subscriptions = {f"c{i}": sub(*(f"t{j}" for j in range(i, 3 * i - 1))) for i in range(3)}
    subscriptions, result = sticky_round(strategy, subscriptions, ppt)
    c0 = subscriptions["c0"]
    subscriptions = {
        **owned_now(subscriptions, result),
        "c0": Subscription((*c0.topics, "t1"), result["c0"], 1),
    }
    sticky_round(strategy, subscriptions, ppt)


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_moves_existing_assignments_to_balance(strategy: str) -> None:
    ppt = {f"topic{i}": 1 for i in range(1, 7)}
    subscriptions = {
        "consumer1": sub("topic1", "topic2", owned=[tp("topic1", 0)], generation=1),
        "consumer2": sub(
            "topic1",
            "topic2",
            "topic3",
            "topic4",
            owned=[tp("topic2", 0), tp("topic3", 0)],
            generation=1,
        ),
        "consumer3": sub(
            "topic2",
            "topic3",
            "topic4",
            "topic5",
            "topic6",
            owned=[tp("topic4", 0), tp("topic5", 0), tp("topic6", 0)],
            generation=1,
        ),
    }
    sticky_round(strategy, subscriptions, ppt)


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_members_that_stay_keep_their_partition(strategy: str) -> None:
    ppt = {"topic1": 3}
    subscriptions, first = sticky_round(
        strategy, {f"consumer{i}": sub("topic1") for i in range(1, 5)}, ppt
    )
    assert all(len(p) <= 1 for p in first.values())
    subscriptions = {m: s for m, s in owned_now(subscriptions, first).items() if m != "consumer1"}
    assert transferring(subscriptions, ppt) == {}
    _, second = sticky_round(strategy, subscriptions, ppt)
    assert all(len(p) == 1 for p in second.values())
    assert all(set(first[m]) <= set(second[m]) for m in second)


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_assignment_of_a_deleted_topic_is_dropped(strategy: str) -> None:
    result = assign(
        strategy, {"consumer": sub("topic1", "topic2", "topic3")}, {"topic1": 1, "topic3": 100}
    )
    assert len(result["consumer"]) == 101
    owned = {
        "consumer": sub(
            "topic", owned=[tp("topic", 0), tp("topic", 1), tp("topic", 2)], generation=1
        )
    }
    assert assign(strategy, owned, {}) == {"consumer": []}


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_members_reaching_their_quota_are_considered_filled(strategy: str) -> None:
    subscriptions = {
        "consumer1": sub("topic", owned=[tp("topic", 0), tp("topic", 1)], generation=1),
        "consumer2": sub("topic", owned=[tp("topic", 2)], generation=1),
        "consumer3": sub("topic", generation=1),
    }
    assert transferring(subscriptions, {"topic": 4}) == {}
    assert sticky_round(strategy, subscriptions, {"topic": 4})[1] == {
        "consumer1": [tp("topic", 0), tp("topic", 1)],
        "consumer2": [tp("topic", 2)],
        "consumer3": [tp("topic", 3)],
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
@pytest.mark.parametrize("stale_generation", [9, -1])
def test_sticky_claims_from_a_stale_or_no_generation_lose_to_the_current_one(
    strategy: str, stale_generation: int
) -> None:
    topics = ("topic", "topic2")
    claimed = [tp("topic", 0), tp("topic", 2), tp("topic2", 1)]
    subscriptions = {
        "consumer1": sub(*topics, owned=claimed, generation=10),
        "consumer2": sub(*topics, owned=claimed, generation=stale_generation),
    }
    ppt = {"topic": 3, "topic2": 3}
    assert transferring(subscriptions, ppt) == {}
    assert sticky_round(strategy, subscriptions, ppt)[1] == {
        "consumer1": parts(*claimed),
        "consumer2": parts(tp("topic", 1), tp("topic2", 0), tp("topic2", 2)),
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_partition_claimed_twice_in_one_generation_goes_to_a_third_member(
    strategy: str,
) -> None:
    subscriptions = {
        "consumer1": sub("topic", owned=[tp("topic", 0), tp("topic", 1)], generation=1),
        "consumer2": sub("topic", owned=[tp("topic", 0), tp("topic", 2)], generation=1),
        "consumer3": sub("topic", generation=1),
    }
    assert transferring(subscriptions, {"topic": 3}) == {tp("topic", 0): "consumer3"}
    assert sticky_round(strategy, subscriptions, {"topic": 3})[1] == {
        "consumer1": [tp("topic", 1)],
        "consumer2": [tp("topic", 2)],
        "consumer3": [tp("topic", 0)],
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_partitions_go_to_the_member_with_the_highest_generation(strategy: str) -> None:
    topics = ("topic", "topic2", "topic3")
    subscriptions = {
        "consumer1": sub(
            *topics, owned=[tp("topic", 0), tp("topic2", 0), tp("topic3", 0)], generation=10
        ),
        "consumer2": sub(
            *topics, owned=[tp("topic", 1), tp("topic2", 1), tp("topic3", 1)], generation=9
        ),
        "consumer3": sub(
            *topics, owned=[tp("topic2", 1), tp("topic3", 0), tp("topic3", 2)], generation=8
        ),
    }
    ppt = dict.fromkeys(topics, 3)
    assert transferring(subscriptions, ppt) == {}
    assert sticky_round(strategy, subscriptions, ppt)[1] == {
        "consumer1": parts(tp("topic", 0), tp("topic2", 0), tp("topic3", 0)),
        "consumer2": parts(tp("topic", 1), tp("topic2", 1), tp("topic3", 1)),
        "consumer3": parts(tp("topic", 2), tp("topic2", 2), tp("topic3", 2)),
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_no_reassignment_of_partitions_current_members_hold(strategy: str) -> None:
    topics = ("topic", "topic2", "topic3", "topic1")
    subscriptions = {
        "consumer1": sub(*topics, generation=-1),
        "consumer2": sub(
            *topics, owned=[tp("topic", 0), tp("topic2", 0), tp("topic1", 0)], generation=9
        ),
        "consumer3": sub(
            *topics, owned=[tp("topic3", 2), tp("topic2", 2), tp("topic1", 1)], generation=8
        ),
        "consumer4": sub(
            *topics, owned=[tp("topic3", 1), tp("topic", 1), tp("topic", 2)], generation=7
        ),
    }
    ppt = dict.fromkeys(topics, 3)
    assert transferring(subscriptions, ppt) == {}
    _, result = sticky_round(strategy, subscriptions, ppt)
    assert result["consumer1"] == parts(tp("topic1", 2), tp("topic2", 1), tp("topic3", 0))
    assert_fully_balanced(result)


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_claims_of_several_generations(strategy: str) -> None:
    topics = ("topic", "topic2")
    subscriptions = {
        "consumer1": sub(
            *topics, owned=[tp("topic", 0), tp("topic2", 1), tp("topic", 1)], generation=10
        ),
        "consumer2": sub(
            *topics, owned=[tp("topic", 0), tp("topic2", 1), tp("topic2", 2)], generation=8
        ),
    }
    ppt = {"topic": 3, "topic2": 3}
    assert transferring(subscriptions, ppt) == {}
    assert sticky_round(strategy, subscriptions, ppt)[1] == {
        "consumer1": parts(tp("topic", 0), tp("topic2", 1), tp("topic", 1)),
        "consumer2": parts(tp("topic", 2), tp("topic2", 2), tp("topic2", 0)),
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_unequal_subscriptions_with_three_generations_claiming_one_partition(
    strategy: str,
) -> None:
    ppt = {"topic": 6, "topic1": 1}
    for g1, g2, g3 in [(1, 2, 3), (1, 3, 2), (2, 1, 3), (2, 3, 1), (3, 1, 2), (3, 2, 1)]:
        subscriptions = {
            "consumer1": sub("topic", owned=[tp("topic", 0), tp("topic", 2)], generation=g1),
            "consumer2": sub(
                "topic", owned=[tp("topic", 1), tp("topic", 2), tp("topic", 3)], generation=g2
            ),
            "consumer3": sub(
                "topic", owned=[tp("topic", 2), tp("topic", 4), tp("topic", 5)], generation=g3
            ),
            "consumer4": sub("topic1", owned=[tp("topic1", 0)], generation=2),
        }
        result = assign(strategy, subscriptions, ppt)
        flat = [p for ps in result.values() for p in ps]
        assert len(flat) == len(set(flat))
        assert all(1 <= len(ps) <= 2 for ps in result.values())
        if is_cooperative(strategy):
            assert_no_partition_changes_hands_directly(subscriptions, result)


# --- StickyAssignorTest / CooperativeStickyAssignorTest ------------------------------------------


@pytest.mark.parametrize(
    ("partitions", "consumer1_gets"), [(3, [tp("topic", 1)]), (4, [tp("topic", 1), tp("topic", 3)])]
)
def test_partition_claimed_twice_is_assigned_at_once_by_sticky_but_held_back_by_cooperative(
    partitions: int, consumer1_gets: list[TopicPartition]
) -> None:
    subscriptions = {
        "consumer1": sub("topic", owned=[tp("topic", 0), tp("topic", 1)], generation=1),
        "consumer2": sub("topic", owned=[tp("topic", 0), tp("topic", 2)], generation=1),
        "consumer3": sub("topic", generation=1),
    }
    ppt = {"topic": partitions}
    eager = assign("sticky", subscriptions, ppt)
    assert eager == {
        "consumer1": consumer1_gets,
        "consumer2": [tp("topic", 2)],
        "consumer3": [tp("topic", 0)],
    }
    cooperative = assign("cooperative-sticky", subscriptions, ppt)
    # Both claimants must revoke topic-0 before consumer3 may take it.
    assert cooperative == {
        "consumer1": consumer1_gets,
        "consumer2": [tp("topic", 2)],
        "consumer3": [],
    }


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
@pytest.mark.parametrize("equal", [True, False])
def test_sticky_assignment_with_multiple_generations_1(strategy: str, equal: bool) -> None:
    all_topics = ("topic", "topic2")
    c2_topics = all_topics if equal else ("topic",)
    ppt = {"topic": 6, "topic2": 6}
    subs = {
        "consumer1": sub(*all_topics),
        "consumer2": sub(*c2_topics),
        "consumer3": sub(*all_topics),
    }
    _, r1 = sticky_round(strategy, subs, ppt)
    assert [len(r1[c]) for c in ("consumer1", "consumer2", "consumer3")] == [4, 4, 4]

    subs = {
        "consumer1": sub(*all_topics, owned=r1["consumer1"], generation=1),
        "consumer2": sub(*c2_topics, owned=r1["consumer2"], generation=1),
    }
    _, r2 = sticky_round(strategy, subs, ppt)
    assert [len(r2[c]) for c in ("consumer1", "consumer2")] == [6, 6]
    if equal:
        assert set(r1["consumer1"]) <= set(r2["consumer1"])
    assert set(r1["consumer2"]) <= set(r2["consumer2"])
    assert set(r2["consumer2"]) & set(r1["consumer3"])

    subs = {
        "consumer2": sub(*c2_topics, owned=r2["consumer2"], generation=2),
        "consumer3": sub(*all_topics, owned=r1["consumer3"], generation=1),
    }
    _, r3 = sticky_round(strategy, subs, ppt)
    assert [len(r3[c]) for c in ("consumer2", "consumer3")] == [6, 6]


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
@pytest.mark.parametrize("equal", [True, False])
def test_sticky_assignment_with_multiple_generations_2(strategy: str, equal: bool) -> None:
    all_topics = ("topic", "topic2", "topic3")
    c1_topics = all_topics if equal else ("topic",)
    c3_topics = all_topics if equal else ("topic", "topic2")
    ppt = dict.fromkeys(all_topics, 4)
    _, r1 = sticky_round(
        strategy,
        {"consumer1": sub(*c1_topics), "consumer2": sub(*all_topics), "consumer3": sub(*c3_topics)},
        ppt,
    )
    assert [len(r1[c]) for c in ("consumer1", "consumer2", "consumer3")] == [4, 4, 4]

    _, r2 = sticky_round(
        strategy, {"consumer2": sub(*all_topics, owned=r1["consumer2"], generation=1)}, ppt
    )
    assert len(r2["consumer2"]) == 12 and set(r1["consumer2"]) <= set(r2["consumer2"])

    subs = {
        "consumer1": sub(*c1_topics, owned=r1["consumer1"], generation=1),
        "consumer2": sub(*all_topics, owned=r2["consumer2"], generation=2),
        "consumer3": sub(*c3_topics, owned=r1["consumer3"], generation=1),
    }
    _, r3 = sticky_round(strategy, subs, ppt)
    assert [len(r3[c]) for c in ("consumer1", "consumer2", "consumer3")] == [4, 4, 4]


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
@pytest.mark.parametrize("equal", [True, False])
def test_sticky_assignment_with_conflicting_previous_generations(
    strategy: str, equal: bool
) -> None:
    all_topics = ("topic", "topic2", "topic3")
    c1_topics = all_topics if equal else ("topic",)
    c2_topics = all_topics if equal else ("topic", "topic2")
    t = [tp("topic", i) for i in range(4)]
    t2 = [tp("topic2", i) for i in range(4)]
    t3 = [tp("topic3", i) for i in range(4)]
    c1_owned = [t[0], t[1], t[2], t2[2], t2[3], t3[0]] if equal else [t[0], t[1], t[2], t[3]]
    c2_owned = [t[0], t[1], t2[0], t2[1], t2[2], t2[3]]
    c3_owned = [t[2], t[3], t3[0], t3[1], t3[2], t3[3]]
    subscriptions = {
        "consumer1": sub(*c1_topics, owned=c1_owned, generation=1),
        "consumer2": sub(*c2_topics, owned=c2_owned, generation=2),
        "consumer3": sub(*all_topics, owned=c3_owned, generation=2),
    }
    _, result = sticky_round(strategy, subscriptions, dict.fromkeys(all_topics, 4))
    assert [len(result[c]) for c in ("consumer1", "consumer2", "consumer3")] == [4, 4, 4]
    assert set(result["consumer2"]) <= set(c2_owned)
    assert set(result["consumer3"]) <= set(c3_owned)


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_member_without_generation_keeps_what_it_owned(strategy: str) -> None:
    # StickyAssignorTest.testSchemaBackwardCompatibility / testAssignorWithOldVersionSubscriptions
    subscriptions = {
        "consumer1": sub("topic", owned=[tp("topic", 0), tp("topic", 2)], generation=1),
        "consumer2": sub("topic", owned=[tp("topic", 1)]),
        "consumer3": sub("topic"),
    }
    _, result = sticky_round(strategy, subscriptions, {"topic": 3})
    assert [len(result[c]) for c in ("consumer1", "consumer2", "consumer3")] == [1, 1, 1]
    assert result["consumer1"][0] in (tp("topic", 0), tp("topic", 2))
    assert result["consumer2"] == [tp("topic", 1)]


# --- equal to Kafka's own output ------------------------------------------------------------------


# Cases where Kafka's HashMap/HashSet orders, generations or earlier moves decide the result.
# Each expectation was computed by Kafka's own AbstractStickyAssignor and CooperativeStickyAssignor
# code (trunk, October 2024) from the same subscriptions: members as (topics, owned, generation).
KAFKA_COMPUTED = [
    pytest.param(
        {"t0": 1},
        {
            "c17": ("t0", "t0:0", -1),
            "c5": ("t0", "t0:0", -1),
            "m10": ("t0", "t0:0", 3),
        },
        {
            "sticky": {
                "c17": "t0:0",
                "c5": "",
                "m10": "",
            },
            "cooperative-sticky": {
                "c17": "",
                "c5": "",
                "m10": "",
            },
        },
        id="two-claims-one-generation",
    ),
    pytest.param(
        {"t0": 2, "t1": 0, "t2": 0},
        {
            "m22": ("t1 t0", "", -1),
            "m7": ("t0 t2", "t0:1 t0:0", -1),
            "m18": ("t0 t2", "t0:1 t0:0", 3),
            "m20": ("t0 t1", "", 2),
        },
        {
            "sticky": {
                "m22": "",
                "m7": "t0:0",
                "m18": "t0:1",
                "m20": "",
            },
            "cooperative-sticky": {
                "m22": "",
                "m7": "t0:0",
                "m18": "t0:1",
                "m20": "",
            },
        },
        id="older-claim-pulls-back",
    ),
    pytest.param(
        {"t0": 6, "t1": 4},
        {
            "m13": ("t1 t0", "t0:2 t0:3 t1:2 t1:0 t0:5 t1:1 t0:1 t1:3", 2),
            "m2": ("t0", "t1:3 t0:1", 2),
            "c0": ("t1", "t0:0 t1:1", 1),
            "c20": ("t0 t1", "t1:1 t0:0 t0:1 t0:5 t0:2 t0:3 t1:0 t1:3 t1:2 t0:4", -1),
            "c4": ("t1 t0", "t1:0 t0:1 t1:2 t0:4 t0:0 t1:1", 2),
        },
        {
            "sticky": {
                "m13": "t0:3 t0:5",
                "m2": "t0:1 t0:2",
                "c0": "t1:1 t1:3",
                "c20": "t1:0 t1:2",
                "c4": "t0:0 t0:4",
            },
            "cooperative-sticky": {
                "m13": "t0:3 t0:5",
                "m2": "t0:1",
                "c0": "t1:1",
                "c20": "t1:0 t1:2",
                "c4": "t0:0 t0:4",
            },
        },
        id="dropped-topic-revokes-first",
    ),
    pytest.param(
        {"t0": 5, "t1": 3, "t2": 0},
        {
            "m9": ("t0", "", -1),
            "m7": ("t0 t2 t1", "t1:2 t0:4 t1:1 t0:3 t1:0", 2),
            "m22": ("t1", "", 1),
        },
        {
            "sticky": {
                "m9": "t0:0 t0:1 t0:2",
                "m7": "t0:3 t0:4 t1:2",
                "m22": "t1:0 t1:1",
            },
            "cooperative-sticky": {
                "m9": "t0:0 t0:1 t0:2",
                "m7": "t0:3 t0:4 t1:2",
                "m22": "",
            },
        },
        id="undo-earlier-move",
    ),
    pytest.param(
        {"t0": 3, "t1": 6},
        {
            "m26": ("t0 t1", "t0:1 t1:1 t1:3 t1:4 t0:0 t1:5 t0:2", -1),
            "m17": ("t0 t1", "t1:0", 1),
            "c27": ("t0", "", 2),
            "m21": ("t0", "", 2),
        },
        {
            "sticky": {
                "m26": "t1:3 t1:4 t1:5",
                "m17": "t1:0 t1:1 t1:2",
                "c27": "t0:0 t0:2",
                "m21": "t0:1",
            },
            "cooperative-sticky": {
                "m26": "t1:3 t1:4 t1:5",
                "m17": "t1:0 t1:2",
                "c27": "",
                "m21": "",
            },
        },
        id="undo-in-hashset-order",
    ),
    pytest.param(
        {"t0": 1, "t1": 1},
        {
            "c10": ("t0 t1", "t0:0 t1:0", 3),
            "c29": ("t0", "", 3),
            "m13": ("t1 t0", "t1:0", 2),
            "m14": ("t1 t0", "t1:0", 2),
        },
        {
            "sticky": {
                "c10": "t0:0",
                "c29": "",
                "m13": "",
                "m14": "t1:0",
            },
            "cooperative-sticky": {
                "c10": "t0:0",
                "c29": "",
                "m13": "",
                "m14": "t1:0",
            },
        },
        id="newest-older-claim-wins",
    ),
    pytest.param(
        {"t0": 5, "t1": 0, "t2": 10, "t3": 4},
        {
            "c0": ("t1 t2", "t2:9 t3:1 t2:2 t2:7", 3),
            "m0": (
                "t0 t2 t1",
                "t3:0 t2:0 t2:1 t0:0 t3:2 t2:4 t0:4 t2:3 t0:1 t2:5 t0:2 t2:8 t3:3 t0:3",
                -1,
            ),
            "m23": ("t1 t2 t0", "t2:6", 1),
            "m22": ("t0", "", -1),
            "c25": ("t3", "", 2),
            "m14": ("t1 t0 t3", "", -1),
        },
        {
            "sticky": {
                "c0": "t2:2 t2:3 t2:7 t2:9",
                "m0": "t0:4 t2:0 t2:5",
                "m23": "t2:1 t2:4 t2:6 t2:8",
                "m22": "t0:0 t0:1 t0:3",
                "c25": "t3:0 t3:2",
                "m14": "t0:2 t3:1 t3:3",
            },
            "cooperative-sticky": {
                "c0": "t2:2 t2:7 t2:9",
                "m0": "t0:4 t2:0 t2:5",
                "m23": "t2:6",
                "m22": "",
                "c25": "",
                "m14": "",
            },
        },
        id="hashset-order-many-moves",
    ),
    pytest.param(
        {"t": 20},
        {
            "consumer0": ("t", "t:0 t:1", 1),
            "consumer1": ("t", "t:2 t:3", 1),
            "consumer2": ("t", "t:4 t:5", 1),
            "consumer3": ("t", "t:6 t:7", 1),
            "consumer4": ("t", "t:8 t:9", 1),
            "consumer5": ("t", "t:10 t:11", 1),
            "consumer6": ("t", "t:12 t:13", 1),
            "consumer7": ("t", "t:14 t:15", 1),
            "consumer8": ("t", "t:16 t:17", 1),
            "consumer9": ("t", "", 1),
            "consumer10": ("t", "", 1),
            "consumer11": ("t", "", 1),
            "consumer12": ("t", "", 1),
            "consumer13": ("t", "t:18 t:19", 1),
        },
        {
            "sticky": {
                "consumer0": "t:0",
                "consumer1": "t:2",
                "consumer2": "t:4",
                "consumer3": "t:6",
                "consumer4": "t:8 t:9",
                "consumer5": "t:10 t:11",
                "consumer6": "t:12 t:13",
                "consumer7": "t:14 t:15",
                "consumer8": "t:16 t:17",
                "consumer9": "t:7",
                "consumer10": "t:1",
                "consumer11": "t:3",
                "consumer12": "t:5",
                "consumer13": "t:18 t:19",
            },
            "cooperative-sticky": {
                "consumer0": "t:0",
                "consumer1": "t:2",
                "consumer2": "t:4",
                "consumer3": "t:6",
                "consumer4": "t:8 t:9",
                "consumer5": "t:10 t:11",
                "consumer6": "t:12 t:13",
                "consumer7": "t:14 t:15",
                "consumer8": "t:16 t:17",
                "consumer9": "",
                "consumer10": "",
                "consumer11": "",
                "consumer12": "",
                "consumer13": "t:18 t:19",
            },
        },
        id="hashmap-32-buckets",
    ),
]


def _parse_partitions(text: str) -> list[TopicPartition]:
    return [tp(item.rsplit(":", 1)[0], int(item.rsplit(":", 1)[1])) for item in text.split()]


@pytest.mark.parametrize(("partitions_per_topic", "members", "expected"), KAFKA_COMPUTED)
@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_sticky_output_equals_kafkas_where_its_iteration_orders_decide(
    strategy: str,
    partitions_per_topic: dict[str, int],
    members: dict[str, tuple[str, str, int]],
    expected: dict[str, dict[str, str]],
) -> None:
    subscriptions = {
        member: Subscription(topics.split(), _parse_partitions(owned), generation)
        for member, (topics, owned, generation) in members.items()
    }
    result = assign(strategy, subscriptions, partitions_per_topic)
    assert result == {m: _parse_partitions(text) for m, text in expected[strategy].items()}


# --- where Kafka 4.0's own code misbehaves, checked against it; the engine stays valid -------


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_a_member_subscribed_to_nothing_gets_nothing_even_when_listed_first(strategy: str) -> None:
    # Kafka's allSubscriptionsEqual skips an empty first subscription (consumer4 comes first in
    # its HashMap), takes the constrained path and gives consumer4 topic t's partition 2.
    subscriptions = {"consumer1": sub("t"), "consumer2": sub("t"), "consumer4": sub()}
    result = assign(strategy, subscriptions, {"t": 3})
    assert result["consumer4"] == []
    assert_valid(subscriptions, {"t": 3}, result)


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_a_stale_claim_never_drags_a_partition_to_a_member_not_subscribed_to_it(
    strategy: str,
) -> None:
    # Kafka moves t0-3 back to member-0, which claimed it in an older generation but now reads
    # only t1 and t2.
    subscriptions = {
        "member-24": sub("t0", "t1", owned=[tp("t1", 0)], generation=4),
        "c29": sub("t0", owned=[tp("t0", 4)], generation=5),
        "member-0": sub("t1", "t2", owned=[tp("t0", 3), tp("t1", 1)], generation=4),
    }
    sticky_round(strategy, subscriptions, {"t0": 5, "t1": 2, "t2": 0})


@pytest.mark.parametrize("strategy", STICKY_STRATEGIES)
def test_a_stale_claim_by_a_member_with_nothing_to_balance_does_not_crash(strategy: str) -> None:
    # Kafka throws a NullPointerException: m28, set aside because its topic has no partitions,
    # is looked up as t1-1's previous owner.
    subscriptions = {
        "m28": sub("t0", owned=[tp("t1", 1)]),
        "member-11": sub("t1", "t0", owned=[tp("t1", 2), tp("t1", 0), tp("t1", 3)], generation=2),
        "member-13": sub("t1", "t0", owned=[tp("t1", 0), tp("t1", 1), tp("t1", 3)]),
    }
    _, result = sticky_round(strategy, subscriptions, {"t0": 0, "t1": 4})
    assert result["m28"] == []


# --- randomized properties -----------------------------------------------------------------------


@st.composite
def groups(
    draw: st.DrawFn, equal_subscriptions: bool = False
) -> tuple[dict[str, Subscription], dict[str, int]]:
    topic_names = draw(
        st.lists(
            st.sampled_from(["a", "b", "c", "orders", "t1", "t10"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    ppt = {t: draw(st.integers(min_value=0, max_value=9)) for t in topic_names}
    members = draw(
        st.lists(
            st.from_regex(r"(consumer-|c|m)[0-9]{1,3}", fullmatch=True),
            min_size=1,
            max_size=7,
            unique=True,
        )
    )
    everyone = draw(st.lists(st.sampled_from([*topic_names, "ghost"]), min_size=1, unique=True))
    all_partitions = [tp(t, p) for t, n in ppt.items() for p in range(n)]
    unclaimed = list(all_partitions)
    subscriptions = {}
    for member in members:
        topics = (
            everyone
            if equal_subscriptions
            else draw(st.lists(st.sampled_from(topic_names), unique=True))
        )
        owned = draw(st.lists(st.sampled_from(unclaimed), unique=True)) if unclaimed else []
        unclaimed = [p for p in unclaimed if p not in owned]
        generation = draw(st.sampled_from([-1, 3, 4]))
        instance = draw(st.none() | st.just(f"instance-{member}"))
        subscriptions[member] = Subscription(topics, owned, generation, instance)
    return subscriptions, ppt


@given(group=groups(), strategy=st.sampled_from(["range", "roundrobin", "sticky"]))
@settings(deadline=None)
def test_every_subscribed_partition_goes_to_exactly_one_subscribed_member(
    group: tuple[dict[str, Subscription], dict[str, int]], strategy: str
) -> None:
    subscriptions, ppt = group
    assert_valid(subscriptions, ppt, assign(strategy, subscriptions, ppt))


@given(group=groups(), strategy=st.sampled_from(SUPPORTED_STRATEGIES))
@settings(deadline=None)
def test_no_strategy_depends_on_the_order_topics_are_listed(
    group: tuple[dict[str, Subscription], dict[str, int]], strategy: str
) -> None:
    subscriptions, ppt = group
    reversed_topics = dict(reversed(list(ppt.items())))
    assert assign(strategy, subscriptions, ppt) == assign(strategy, subscriptions, reversed_topics)


@given(group=groups())
@settings(deadline=None)
def test_range_and_roundrobin_do_not_depend_on_the_order_members_are_listed(
    group: tuple[dict[str, Subscription], dict[str, int]],
) -> None:
    subscriptions, ppt = group
    reversed_order = dict(reversed(list(subscriptions.items())))
    for strategy in ("range", "roundrobin"):
        assert assign(strategy, subscriptions, ppt) == assign(strategy, reversed_order, ppt)


@given(group=groups(), strategy=st.sampled_from(STICKY_STRATEGIES))
@settings(deadline=None)
def test_sticky_assignments_are_valid_and_balanced(
    group: tuple[dict[str, Subscription], dict[str, int]], strategy: str
) -> None:
    subscriptions, ppt = group
    sticky_round(strategy, subscriptions, ppt)


@given(group=groups(equal_subscriptions=True), strategy=st.sampled_from(STICKY_STRATEGIES))
@settings(deadline=None)
def test_with_equal_subscriptions_sticky_counts_differ_by_at_most_one(
    group: tuple[dict[str, Subscription], dict[str, int]], strategy: str
) -> None:
    subscriptions, ppt = group
    _, result = sticky_round(strategy, subscriptions, ppt)
    assert_fully_balanced(result)


@given(
    topics=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, unique=True),
    counts=st.lists(st.integers(min_value=0, max_value=12), min_size=4, max_size=4),
    before=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8, unique=True),
    leaving=st.sets(st.integers(min_value=0, max_value=7)),
    joining=st.lists(st.integers(min_value=41, max_value=60), max_size=4, unique=True),
)
@settings(deadline=None)
def test_members_that_stay_lose_only_what_balance_requires(
    topics: list[str], counts: list[int], before: list[int], leaving: set[int], joining: list[int]
) -> None:
    ppt = dict(zip(topics, counts, strict=False))
    first = assign("sticky", {f"c{m}": sub(*topics) for m in before}, ppt)
    staying = [f"c{m}" for i, m in enumerate(before) if i not in leaving]
    newcomers = [f"c{m}" for m in joining]
    assume(staying or newcomers)
    subscriptions = {
        **{m: sub(*topics, owned=first[m], generation=1) for m in staying},
        **{m: sub(*topics, generation=1) for m in newcomers},
    }
    result = assign("sticky", subscriptions, ppt)
    kept = {m: len(set(first[m]) & set(result[m])) for m in staying}
    for member in staying:
        assert kept[member] == min(len(first[member]), len(result[member]))
    total = sum(ppt.values())
    low, extra = divmod(total, len(subscriptions))
    owning_more = sum(1 for m in staying if len(first[m]) > low)
    best = sum(min(len(first[m]), low) for m in staying) + min(owning_more, extra)
    assert sum(kept.values()) == best


@given(group=groups())
@settings(deadline=None)
def test_cooperative_sticky_never_hands_a_partition_from_one_owner_to_another(
    group: tuple[dict[str, Subscription], dict[str, int]],
) -> None:
    subscriptions, ppt = group
    result = assign("cooperative-sticky", subscriptions, ppt)
    assert_no_partition_changes_hands_directly(subscriptions, result)
    eager = assign("sticky", subscriptions, ppt)
    assert all(set(result[m]) <= set(eager[m]) for m in subscriptions)


@given(
    claims=st.lists(
        st.tuples(st.sets(st.integers(min_value=0, max_value=5)), st.sampled_from([-1, 1, 2])),
        min_size=1,
        max_size=5,
    )
)
@settings(deadline=None)
def test_cooperative_sticky_is_safe_even_when_members_claim_the_same_partitions(
    claims: list[tuple[set[int], int]],
) -> None:
    subscriptions = {
        f"m{i}": sub("t", owned=[tp("t", p) for p in sorted(owned)], generation=generation)
        for i, (owned, generation) in enumerate(claims)
    }
    result = assign("cooperative-sticky", subscriptions, {"t": 6})
    assert_no_partition_changes_hands_directly(subscriptions, result)
    settled_subscriptions, settled = settle("cooperative-sticky", subscriptions, {"t": 6}, result)
    assert_valid(settled_subscriptions, {"t": 6}, settled)
    assert_fully_balanced(settled)
