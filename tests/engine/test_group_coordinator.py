"""The group coordinator's own duties: loading and unloading groups with the leadership of their
`__consumer_offsets` partition, the sync timeout, and `group.max.size` (Kafka's
`GroupMetadataManager`)."""

from __future__ import annotations

from typing import Any

from engine import Cluster, TopicPartition
from engine.coordinator.group.classic_group import (
    JoinGroupRequest,
    JoinGroupResponse,
    SyncGroupResponse,
)
from engine.coordinator.group.group_coordinator import GroupCoordinator
from engine.coordinator.group.group_records import OFFSETS_TOPIC
from engine.errors import GroupMaxSizeReachedError

from .test_groups import consumer, events, make_cluster, settle

GROUP = "billing"


def coordinator_of(cluster: Cluster, group: str = GROUP) -> GroupCoordinator:
    groups = cluster.services["groups"]
    groups.ensure_offsets_topic()
    cluster.advance(2000)
    found = groups.coordinator_for(group)
    assert found is not None
    return found


class RawMember:
    """A client speaking the classic protocol straight to the coordinator, so a test can leave
    out a step (such as the leader's SyncGroup) that a real consumer always takes."""

    def __init__(
        self, coordinator: GroupCoordinator, name: str, instance_id: str | None = None
    ) -> None:
        self.coordinator = coordinator
        self.name = name
        self.instance_id = instance_id
        self.member_id = ""
        self.join: JoinGroupResponse | None = None
        self.sync: SyncGroupResponse | None = None

    def send_join(self) -> JoinGroupResponse | None:
        self.join = None

        def answer(response: Any) -> None:
            self.join = response
            if response.member_id:
                self.member_id = response.member_id

        request = JoinGroupRequest(
            GROUP,
            self.member_id,
            self.instance_id,
            self.name,
            session_timeout_ms=10000,
            rebalance_timeout_ms=20000,
            protocols=("range",),
            metadata={"topics": ["orders"], "owned": [], "generation": -1},
        )
        self.coordinator.handle_join(request, answer)
        if self.join is not None and self.join.error == "MEMBER_ID_REQUIRED":
            return self.send_join()
        return self.join

    def send_sync(self, assignments: dict[str, list[Any]] | None = None) -> None:
        assert self.join is not None
        self.coordinator.handle_sync(
            GROUP,
            self.join.generation,
            self.member_id,
            self.instance_id,
            assignments,
            lambda response: setattr(self, "sync", response),
        )

    def heartbeat(self) -> str:
        assert self.join is not None
        answers: list[str] = []
        self.coordinator.handle_heartbeat(
            GROUP, self.join.generation, self.member_id, self.instance_id, answers.append
        )
        return answers[0]


# --- loading and unloading with partition leadership -------------------------------------------


def test_new_coordinator_expires_members_whose_clients_died_during_the_failover() -> None:
    cluster = make_cluster()
    members = [consumer(cluster), consumer(cluster)]
    settle(cluster, members)
    old = cluster.describe_group(GROUP).coordinator
    since = len(cluster.events)
    for member in members:
        member.crash()
    cluster.stop_broker(old)
    # No client ever talks to the new coordinator: it loads the group when it is elected and runs
    # the loaded members' session timers (45 s, fresh from the load) by itself.
    cluster.advance(70000)
    description = cluster.describe_group(GROUP)
    assert description.coordinator not in (old, -1)
    assert description.members == []
    assert description.state == "Empty"
    loaded = events(cluster, "group_coordinator_loaded", since, broker=description.coordinator)
    assert any(GROUP in e["groups"] for e in loaded)
    removed = events(cluster, "member_removed", since, group=GROUP, reason="session timeout")
    assert {e["coordinator"] for e in removed} == {description.coordinator}
    assert len(removed) == 2


def test_loaded_members_get_a_fresh_session_timeout_after_the_failover() -> None:
    cluster = make_cluster()
    members = [consumer(cluster)]
    settle(cluster, members)
    old = cluster.describe_group(GROUP).coordinator
    members[0].crash()
    cluster.stop_broker(old)
    cluster.advance(12000)  # the controller fences the broker; a new leader loads the group
    loaded_at = max(
        e.time_ms
        for e in cluster.events
        if e.kind == "group_coordinator_loaded" and GROUP in e.data["groups"]
    )
    cluster.advance(loaded_at + 44000 - cluster.now_ms)
    assert len(cluster.describe_group(GROUP).members) == 1
    cluster.advance(2000)
    assert cluster.describe_group(GROUP).members == []


def test_coordinator_unloads_its_groups_when_leadership_moves_away() -> None:
    cluster = make_cluster()
    reader = consumer(cluster)
    settle(cluster, [reader])
    number = cluster.services["groups"].partition_for(GROUP)
    preferred = cluster.describe_topic(OFFSETS_TOPIC).partitions[number].replicas[0]
    assert cluster.describe_group(GROUP).coordinator == preferred
    cluster.stop_broker(preferred)
    cluster.advance(12000)
    interim = cluster.describe_group(GROUP).coordinator
    assert interim not in (preferred, -1)
    cluster.start_broker(preferred)
    for _ in range(40):
        reader.poll(500)
        if preferred in cluster.describe_topic(OFFSETS_TOPIC).partitions[number].isr:
            break
    coordinator = cluster.broker_by_id(interim).services["groups"]
    assert GROUP in coordinator.groups
    reader.crash()  # no more requests: nothing but the resignation itself can unload the group
    since = len(cluster.events)
    cluster.elect_leaders(OFFSETS_TOPIC, number, election_type="preferred")
    cluster.advance(5000)
    assert cluster.describe_group(GROUP).coordinator == preferred
    assert GROUP not in coordinator.groups
    assert events(cluster, "group_coordinator_unloaded", since, broker=interim)
    answers: list[str] = []
    coordinator.handle_heartbeat(GROUP, 1, "someone", None, answers.append)
    assert answers == ["NOT_COORDINATOR"]


# --- the sync timeout --------------------------------------------------------------------------


def test_a_leader_that_never_sends_sync_group_is_removed_after_the_rebalance_timeout() -> None:
    cluster = make_cluster()
    coordinator = coordinator_of(cluster)
    leader, follower = RawMember(coordinator, "leader"), RawMember(coordinator, "follower")
    leader.send_join()
    follower.send_join()
    cluster.advance(6000)  # group.initial.rebalance.delay.ms, once more for the second member
    assert leader.join is not None and leader.join.leader == leader.member_id
    assert cluster.describe_group(GROUP).state == "CompletingRebalance"
    follower.send_sync()
    since = len(cluster.events)
    # Both keep heartbeating, so no session expires; only the sync timeout (20 s) can end this.
    for _ in range(9):
        cluster.advance(2000)
        assert leader.heartbeat() == "" and follower.heartbeat() == ""
    assert cluster.describe_group(GROUP).state == "CompletingRebalance"
    cluster.advance(2500)
    description = cluster.describe_group(GROUP)
    assert description.state == "PreparingRebalance"
    assert [m.member_id for m in description.members] == [follower.member_id]
    assert follower.sync is not None and follower.sync.error == "REBALANCE_IN_PROGRESS"
    removed = events(cluster, "member_removed", since, member=leader.member_id)
    assert removed and "SyncGroup" in removed[0]["reason"]
    assert leader.heartbeat() == "UNKNOWN_MEMBER_ID"


def test_the_sync_timeout_is_cancelled_once_every_member_has_synced() -> None:
    cluster = make_cluster()
    coordinator = coordinator_of(cluster)
    leader, follower = RawMember(coordinator, "leader"), RawMember(coordinator, "follower")
    leader.send_join()
    follower.send_join()
    cluster.advance(6000)
    follower.send_sync()
    leader.send_sync({leader.member_id: [("orders", 0)], follower.member_id: [("orders", 1)]})
    cluster.advance(1000)
    assert cluster.describe_group(GROUP).state == "Stable"
    for _ in range(20):
        cluster.advance(2000)
        assert leader.heartbeat() == "" and follower.heartbeat() == ""
    assert cluster.describe_group(GROUP).state == "Stable"


# --- group.max.size ------------------------------------------------------------------------------


def test_group_max_size_counts_static_members_but_lets_a_known_instance_return() -> None:
    cluster = Cluster(brokers=3, seed=7, config={"group.max.size": 1})
    cluster.create_topic("orders", partitions=2, replication_factor=3)
    coordinator = coordinator_of(cluster)
    first = RawMember(coordinator, "first", instance_id="instance-1")
    first.send_join()
    second = RawMember(coordinator, "second", instance_id="instance-2")
    assert second.send_join() == JoinGroupResponse("GROUP_MAX_SIZE_REACHED")
    dynamic = RawMember(coordinator, "dynamic")
    assert dynamic.send_join() == JoinGroupResponse("GROUP_MAX_SIZE_REACHED")
    cluster.advance(3000)
    assert first.join is not None and first.join.error == ""
    first.send_sync({first.member_id: [("orders", 0), ("orders", 1)]})
    cluster.advance(1000)
    # The same instance restarting (a new member id for instance-1) takes its own place.
    restarted = RawMember(coordinator, "first-again", instance_id="instance-1")
    response = restarted.send_join()
    assert response is not None and response.error == ""
    assert [m.group_instance_id for m in cluster.describe_group(GROUP).members] == ["instance-1"]


def test_a_failing_offsets_topic_creation_is_reported_once_not_per_retry() -> None:
    # With one of three brokers down, __consumer_offsets (RF 3) cannot be created; the consumer
    # keeps retrying FindCoordinator every retry.backoff.ms, and the story is told once.
    cluster = Cluster(brokers=3, seed=2)
    cluster.create_topic("t", 1, 2)
    cluster.stop_broker(3)
    cluster.advance(12_000)
    consumer = cluster.consumer({"group.id": "g"})
    consumer.subscribe(["t"])
    consumer.poll(timeout_ms=5_000)
    failures = [e for e in cluster.events if e.kind == "offsets_topic_creation_failed"]
    assert len(failures) == 1
    assert failures[0].data["error"] == "InvalidReplicationFactorError"


# --- offset commits and the generation (G2, G7) -----------------------------------------------


def test_a_current_member_committing_with_a_stale_generation_gets_illegal_generation() -> None:
    cluster = Cluster(brokers=3, seed=7)
    cluster.create_topic("orders", partitions=2, replication_factor=3)
    coordinator = coordinator_of(cluster)
    first = RawMember(coordinator, "first")
    first.send_join()
    cluster.advance(3000)  # group.initial.rebalance.delay.ms
    assert first.join is not None and first.join.error == ""
    first.send_sync({first.member_id: [("orders", 0), ("orders", 1)]})
    cluster.advance(100)
    stale = first.join.generation
    second = RawMember(coordinator, "second")
    second.send_join()
    first.send_join()  # the rebalance: both join the next generation
    cluster.advance(100)
    assert first.join is not None and second.join is not None
    assert first.join.generation == second.join.generation == stale + 1
    first.send_sync({first.member_id: [("orders", 0)], second.member_id: [("orders", 1)]})
    second.send_sync()
    cluster.advance(100)
    assert first.member_id in {m.member_id for m in cluster.describe_group(GROUP).members}

    orders_0 = TopicPartition("orders", 0)
    answers: list[str] = []

    def commit(generation: int, offset: int) -> str:
        coordinator.offsets.handle_offset_commit(
            GROUP, generation, first.member_id, None, {orders_0: offset}, answers.append
        )
        cluster.advance(100)
        return answers.pop()

    def committed() -> int:
        fetched: list[Any] = []
        coordinator.offsets.handle_offset_fetch(GROUP, [orders_0], fetched.append)
        return int(fetched[0][1][orders_0])

    assert commit(stale + 1, 5) == ""
    assert committed() == 5
    assert commit(stale, 9) == "ILLEGAL_GENERATION"
    assert committed() == 5
    assert commit(stale + 2, 9) == "ILLEGAL_GENERATION"  # a generation from the future, too
    assert committed() == 5


def test_a_group_loaded_over_group_max_size_rebalances_and_lets_only_that_many_back() -> None:
    # Kafka's GroupMetadataManager.onLoaded: a freshly loaded group with more members than
    # group.max.size (the setting was lowered in a rolling restart) starts a rebalance; while
    # it rebalances, acceptJoiningMember lets members back in the order they rejoin, up to the
    # limit, and the rest are removed with GROUP_MAX_SIZE_REACHED.
    cluster = make_cluster()
    members = [consumer(cluster) for _ in range(3)]
    settle(cluster, members)
    assert len(cluster.describe_group(GROUP).members) == 3
    for broker_id in cluster.broker_ids():
        cluster.broker_by_id(broker_id).config["group.max.size"] = 2
    old = cluster.describe_group(GROUP).coordinator
    since = len(cluster.events)
    cluster.stop_broker(old)
    refused: list[Any] = []
    for _ in range(60):
        for member in members:
            if member in refused:
                continue
            try:
                member.poll(200)
            except GroupMaxSizeReachedError:
                refused.append(member)
    description = cluster.describe_group(GROUP)
    assert description.coordinator not in (old, -1)
    assert len(refused) == 1
    assert description.state == "Stable"
    assert sorted(m.client_id for m in description.members) == sorted(
        m.client_id for m in members if m not in refused
    )
    started = events(cluster, "rebalance_started", since, group=GROUP)
    assert started[0]["reason"].startswith(f"Freshly-loaded group {GROUP} (size 3)")
    assert "is over capacity 2" in started[0]["reason"]
    removed = events(cluster, "member_removed", since, group=GROUP)
    assert [r["reason"] for r in removed] == ["group.max.size reached on rejoin"]
    assert removed[0]["client_id"] == refused[0].client_id
