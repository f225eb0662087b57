"""Members join, leave, crash and poll at random while brokers bounce: ownership stays exclusive
per generation, and once the group settles every partition has exactly one owner."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from engine import Cluster, TopicPartition

TOPIC = "orders"
PARTITIONS = 4
GROUP = "stateful"
ALL = {TopicPartition(TOPIC, p) for p in range(PARTITIONS)}


class GroupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cluster = Cluster(brokers=3, seed=3)
        self.cluster.create_topic(TOPIC, partitions=PARTITIONS, replication_factor=3)
        self.live: list[Any] = []
        self.strategy = "range"
        self.static_ids = 0

    @initialize(
        strategy=st.sampled_from(["range", "roundrobin", "sticky", "cooperative-sticky"]),
        members=st.integers(1, 3),
    )
    def start_group(self, strategy: str, members: int) -> None:
        self.strategy = strategy
        for _ in range(members):
            self.join(static=False)

    @precondition(lambda self: len(self.live) < 4)
    @rule(static=st.booleans())
    def join(self, static: bool) -> None:
        config: dict[str, Any] = {
            "group.id": GROUP,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": self.strategy,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "max.poll.interval.ms": 20000,
        }
        if static:
            self.static_ids += 1
            config["group.instance.id"] = f"instance-{self.static_ids}"
        consumer = self.cluster.consumer(config)
        consumer.subscribe([TOPIC])
        self.live.append(consumer)

    @precondition(lambda self: len(self.live) > 1)  # someone stays, so the end state is checked
    @rule(index=st.integers(0, 3), crash=st.booleans())
    def stop(self, index: int, crash: bool) -> None:
        consumer = self.live.pop(index % len(self.live))
        if crash:
            consumer.crash()
        else:
            consumer.close()

    @precondition(lambda self: bool(self.live))
    @rule(index=st.integers(0, 3), timeout=st.sampled_from([0, 100, 1000, 3000]))
    def poll(self, index: int, timeout: int) -> None:
        self.live[index % len(self.live)].poll(timeout)

    @rule(broker=st.integers(1, 3), crash=st.booleans())
    def bounce_broker(self, broker: int, crash: bool) -> None:
        """One broker at a time goes down (crash or controlled shutdown) and comes back:
        group coordinators move with the leadership of __consumer_offsets partitions."""
        down = [b for b in self.cluster.brokers() if not b.alive]
        if down:
            self.cluster.start_broker(down[0].id)
        elif crash:
            self.cluster.stop_broker(broker)
        else:
            self.cluster.shutdown_broker(broker)

    @rule(ms=st.sampled_from([10, 500, 3000, 7000, 25000]))
    def advance(self, ms: int) -> None:
        self.cluster.advance(ms)

    @invariant()
    def members_of_one_generation_never_share_a_partition(self) -> None:
        owners: dict[tuple[int, TopicPartition], str] = {}
        for consumer in self.live:
            coordinator = consumer.coordinator
            if coordinator.generation < 0:
                continue
            for tp in consumer.assignment():
                key = (coordinator.generation, tp)
                assert key not in owners, f"{tp} owned twice in generation {coordinator.generation}"
                owners[key] = consumer.client_id

    @invariant()
    def each_generation_assignment_is_exclusive(self) -> None:
        for event in self.cluster.events:
            if event.kind == "rebalance_completed" and event.data["group"] == GROUP:
                owned = [tuple(tp) for tps in event.data["assignment"].values() for tp in tps]
                assert len(owned) == len(set(owned))

    def teardown(self) -> None:
        for broker in self.cluster.brokers():
            if not broker.alive:
                self.cluster.start_broker(broker.id)
        if not self.live:
            return
        for _ in range(200):
            for consumer in self.live:
                consumer.poll(300)
            if self._settled():
                break
        assert self._settled(), self.cluster.describe_group(GROUP)
        owned = [tp for consumer in self.live for tp in consumer.assignment()]
        assert sorted(owned) == sorted(ALL)  # exactly one owner each

    def _settled(self) -> bool:
        description = self.cluster.describe_group(GROUP)
        given = {m.client_id: m.assignment for m in description.members}
        return (
            description.state == "Stable"
            and set(given) == {c.client_id for c in self.live}
            and all(given[c.client_id] == c.assignment() for c in self.live)
            and set().union(*given.values()) == ALL
        )


GroupMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_group_membership_under_random_joins_leaves_crashes_and_polls = GroupMachine.TestCase
