"""Consumer groups over the classic protocol: membership, rebalances, offsets, lag (G and O)."""

from __future__ import annotations

from typing import Any

import pytest

from engine import Cluster, TopicPartition
from engine.coordinator.group.group_records import (
    OFFSETS_TOPIC,
    java_string_hashcode,
    offsets_partition_for,
)
from engine.errors import (
    CommitFailedError,
    FencedInstanceIdError,
    GroupNotEmptyError,
    InvalidSessionTimeoutError,
)
from tests.engine.helpers import events

TOPIC = "orders"


def make_cluster(partitions: int = 3, seed: int = 7) -> Cluster:
    cluster = Cluster(brokers=3, seed=seed)
    cluster.create_topic(TOPIC, partitions=partitions, replication_factor=3)
    return cluster


def produce(cluster: Cluster, count: int, start: int = 0) -> None:
    producer = cluster.producer({"acks": "all"})
    for i in range(start, start + count):
        producer.send(TOPIC, value=f"v{i}".encode(), key=f"k{i}".encode())
    producer.flush()


def consumer(cluster: Cluster, group: str = "billing", **config: Any) -> Any:
    settings = {"group.id": group, "auto.offset.reset": "earliest"}
    settings.update({k.replace("_", "."): v for k, v in config.items()})
    c = cluster.consumer(settings)
    c.subscribe([TOPIC])
    return c


def settle(
    cluster: Cluster, consumers: list[Any], group: str = "billing", rounds: int = 40
) -> None:
    """Poll every consumer until the group is Stable and each consumer holds what it was given."""
    for _ in range(rounds):
        for c in consumers:
            c.poll(200)
        description = cluster.describe_group(group)
        given = {m.client_id: m.assignment for m in description.members}
        if description.state == "Stable" and all(
            given.get(c.client_id) == c.assignment() for c in consumers
        ):
            return
    raise AssertionError(f"group {group} did not settle: {cluster.describe_group(group)}")


def test_java_string_hashcode_and_kafka_abs_pick_the_offsets_partition() -> None:
    assert java_string_hashcode("") == 0
    assert java_string_hashcode("hello") == 99162322
    assert java_string_hashcode("polygenelubricants") == -(2**31)
    assert offsets_partition_for("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) is 0
    assert offsets_partition_for("hello", 50) == 99162322 % 50


def test_first_group_request_creates_the_compacted_internal_offsets_topic() -> None:
    cluster = make_cluster()
    assert OFFSETS_TOPIC not in cluster.list_topics()
    c = consumer(cluster)
    c.poll(100)
    description = cluster.describe_topic(OFFSETS_TOPIC)
    assert description.internal
    assert len(description.partitions) == 50
    assert all(len(p.replicas) == 3 for p in description.partitions)
    assert "compact" in description.config["cleanup.policy"]


def test_first_member_leads_after_the_initial_rebalance_delay() -> None:
    cluster = make_cluster()
    c = consumer(cluster)
    settle(cluster, [c])
    description = cluster.describe_group("billing")
    assert description.generation == 1
    assert description.protocol == "range"
    assert description.leader == description.members[0].member_id
    assert description.members[0].member_id.startswith("consumer-1-")
    completed = events(cluster, "rebalance_completed", group="billing")
    started = [e for e in cluster.events if e.kind == "rebalance_started"][0]
    first_done = [e for e in cluster.events if e.kind == "rebalance_completed"][0]
    assert first_done.time_ms - started.time_ms >= 3000  # group.initial.rebalance.delay.ms
    assert completed[0]["assignment"] == {description.leader: [[TOPIC, 0], [TOPIC, 1], [TOPIC, 2]]}


def test_more_consumers_than_partitions_leaves_idle_members() -> None:
    cluster = make_cluster(partitions=2)
    members = [consumer(cluster) for _ in range(3)]
    settle(cluster, members)
    sizes = sorted(len(c.assignment()) for c in members)
    assert sizes == [0, 1, 1]
    owned = [tp for c in members for tp in c.assignment()]
    assert sorted(owned) == [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
    assert len(cluster.describe_group("billing").members) == 3


def test_two_groups_each_read_every_record_with_independent_offsets() -> None:
    cluster = make_cluster()
    produce(cluster, 30)
    reader_a = consumer(cluster, "audit", enable_auto_commit=False)
    reader_b = consumer(cluster, "search", enable_auto_commit=False, max_poll_records=5)
    got_a: list[int] = []
    for _ in range(20):
        got_a += [r.offset for r in reader_a.poll(300)]
    reader_a.commit()
    batch_b = []
    while not batch_b:
        batch_b = reader_b.poll(300)
    reader_b.commit()
    assert len(got_a) == 30
    offsets_a = cluster.describe_group("audit").offsets
    offsets_b = cluster.describe_group("search").offsets
    assert sum(offsets_a.values()) == 30
    assert sum(offsets_b.values()) == 5
    assert sum(cluster.describe_group("search").lag.values()) == 25
    assert sum(cluster.describe_group("audit").lag.values()) == 0


def test_crashed_consumer_partitions_move_after_the_session_timeout() -> None:
    cluster = make_cluster(partitions=4)
    first = consumer(cluster, session_timeout_ms=10000)
    second = consumer(cluster, session_timeout_ms=10000)
    settle(cluster, [first, second])
    lost = first.assignment()
    assert lost and not lost & second.assignment()
    crashed_at = cluster.now_ms
    first.crash()
    while len(second.assignment()) < 4:
        second.poll(500)
        assert cluster.now_ms < crashed_at + 30000
        if cluster.now_ms < crashed_at + 9000:
            assert not lost & second.assignment()
    assert cluster.now_ms >= crashed_at + 10000
    removed = events(cluster, "member_removed", group="billing")
    assert [e["reason"] for e in removed] == ["session timeout"]
    assert removed[0]["client_id"] == first.client_id


def test_slow_consumer_is_removed_after_max_poll_interval_and_its_commit_fails() -> None:
    cluster = make_cluster()
    produce(cluster, 9)
    slow = consumer(cluster, max_poll_interval_ms=20000, enable_auto_commit=False)
    settle(cluster, [slow])
    records = []
    while not records:
        records = slow.poll(500)
    cluster.advance(25000)  # processing takes longer than max.poll.interval.ms
    left = events(cluster, "member_left", group="billing")
    assert len(left) == 1 and "max.poll.interval.ms" in left[0]["reason"]
    assert cluster.describe_group("billing").members == []
    with pytest.raises(CommitFailedError):
        slow.commit()
    settle(cluster, [slow])  # polling again rejoins as a new member
    assert cluster.describe_group("billing").generation == 3


def test_static_member_that_misses_polls_stays_until_its_session_expires() -> None:
    cluster = make_cluster()
    slow = consumer(
        cluster, group_instance_id="worker-a", max_poll_interval_ms=20000, session_timeout_ms=30000
    )
    settle(cluster, [slow])
    cluster.advance(40000)
    assert len(cluster.describe_group("billing").members) == 1
    assert events(cluster, "member_left") == []
    cluster.advance(20000)
    assert cluster.describe_group("billing").members == []
    assert [e["reason"] for e in events(cluster, "member_removed")] == ["session timeout"]


def _consume_crash_and_restart(commit_first: bool) -> list[int]:
    """Consume 20 records 5 at a time; in its third batch the worker dies between the commit
    and the processing; a replacement in the same group then reads what remains."""
    cluster = make_cluster(partitions=1)
    produce(cluster, 20)
    processed: list[int] = []
    worker = consumer(
        cluster, enable_auto_commit=False, max_poll_records=5, session_timeout_ms=10000
    )
    batches = 0
    while batches < 3:
        records = worker.poll(500)
        if not records:
            continue
        batches += 1
        offsets = [r.offset for r in records]
        if commit_first:
            worker.commit()
            if batches == 3:
                worker.crash()  # committed, never processed
                break
            processed += offsets
        else:
            processed += offsets
            if batches == 3:
                worker.crash()  # processed, never committed
                break
            worker.commit()
    replacement = consumer(cluster, enable_auto_commit=False, max_poll_records=5)
    for _ in range(80):
        processed += [r.offset for r in replacement.poll(500)]
        if max(processed, default=-1) == 19:
            break
    return processed


def test_at_least_once_process_then_commit_crash_gives_duplicates_on_restart() -> None:
    processed = _consume_crash_and_restart(commit_first=False)
    assert sorted(processed) == sorted([*range(20), *range(10, 15)])  # batch 3 processed twice


def test_at_most_once_commit_then_process_crash_loses_records() -> None:
    processed = _consume_crash_and_restart(commit_first=True)
    assert sorted(processed) == [*range(10), *range(15, 20)]  # batch 3 never processed


def test_static_member_restart_within_the_session_timeout_does_not_rebalance() -> None:
    cluster = make_cluster(partitions=4)
    a = consumer(cluster, group_instance_id="a", session_timeout_ms=30000)
    b = consumer(cluster, group_instance_id="b", session_timeout_ms=30000)
    settle(cluster, [a, b])
    before = cluster.describe_group("billing")
    owned = a.assignment()
    rebalances = len(events(cluster, "rebalance_started"))
    a.close()  # a static member does not leave on close
    assert len(cluster.describe_group("billing").members) == 2
    cluster.advance(5000)
    restarted = consumer(cluster, group_instance_id="a", session_timeout_ms=30000)
    settle(cluster, [restarted, b])
    after = cluster.describe_group("billing")
    assert restarted.assignment() == owned
    assert after.generation == before.generation
    assert len(events(cluster, "rebalance_started")) == rebalances
    assert {m.group_instance_id for m in after.members} == {"a", "b"}


def test_a_second_consumer_with_the_same_instance_id_fences_the_first() -> None:
    cluster = make_cluster()
    first = consumer(cluster, group_instance_id="a")
    settle(cluster, [first])
    second = consumer(cluster, group_instance_id="a")
    settle(cluster, [second])
    with pytest.raises(FencedInstanceIdError):
        for _ in range(20):
            first.poll(1000)


def _rebalance_when_second_joins(strategy: str) -> tuple[Cluster, Any, Any, int, int]:
    cluster = make_cluster(partitions=4)
    produce(cluster, 40)
    first = consumer(cluster, partition_assignment_strategy=strategy)
    settle(cluster, [first])
    mark = len(cluster.events)
    generation = cluster.describe_group("billing").generation
    second = consumer(cluster, partition_assignment_strategy=strategy)
    settle(cluster, [first, second])
    for _ in range(5):  # a cooperative follow-up rebalance settles within a few polls
        first.poll(200)
        second.poll(200)
    settle(cluster, [first, second])
    return cluster, first, second, mark, generation


def test_eager_rebalance_revokes_everything_in_one_round() -> None:
    cluster, first, second, mark, generation = _rebalance_when_second_joins("range")
    assert cluster.describe_group("billing").generation == generation + 1
    revoked = events(cluster, "partitions_revoked", mark, client=first.client_id)
    assert [sorted(map(tuple, e["partitions"])) for e in revoked] == [
        [(TOPIC, p) for p in range(4)]
    ]
    assert len(first.assignment()) == len(second.assignment()) == 2


def test_cooperative_rebalance_revokes_only_moving_partitions_in_two_rounds() -> None:
    cluster, first, second, mark, generation = _rebalance_when_second_joins("cooperative-sticky")
    assert cluster.describe_group("billing").generation == generation + 2
    revoked = events(cluster, "partitions_revoked", mark, client=first.client_id)
    assert len(revoked) == 1 and len(revoked[0]["partitions"]) == 2
    moved = {TopicPartition(t, p) for t, p in revoked[0]["partitions"]}
    assert second.assignment() == moved
    assert len(first.assignment()) == 2 and not moved & first.assignment()
    completed = events(cluster, "rebalance_completed", mark)
    assert len(completed) == 2
    # In the first round the moving partitions belong to nobody.
    first_round = [
        TopicPartition(t, p) for owned in completed[0]["assignment"].values() for t, p in owned
    ]
    assert len(first_round) == 2 and not moved & set(first_round)


def test_describe_group_reports_committed_offsets_and_lag() -> None:
    cluster = make_cluster(partitions=1)
    produce(cluster, 10)
    reader = consumer(cluster, enable_auto_commit=False, max_poll_records=4)
    records = []
    while not records:
        records = reader.poll(500)
    reader.commit()
    description = cluster.describe_group("billing")
    assert description.offsets == {TopicPartition(TOPIC, 0): 4}
    assert description.lag == {TopicPartition(TOPIC, 0): 6}
    assert reader.committed(TopicPartition(TOPIC, 0)) == 4
    unknown = cluster.describe_group("nobody")
    assert unknown.state == "Dead" and unknown.members == [] and unknown.offsets == {}


def test_reset_offsets_is_refused_with_members_and_clamped_without() -> None:
    cluster = make_cluster(partitions=2)
    produce(cluster, 10)
    reader = consumer(cluster)
    settle(cluster, [reader])
    with pytest.raises(GroupNotEmptyError):
        cluster.reset_offsets("billing", TOPIC, "earliest")
    reader.close()
    assert cluster.describe_group("billing").state == "Empty"
    ends = {
        TopicPartition(TOPIC, p.partition): p.high_watermark
        for p in cluster.describe_topic(TOPIC).partitions
    }
    assert cluster.reset_offsets("billing", TOPIC, "latest") == ends
    assert cluster.reset_offsets("billing", TOPIC, 10**6) == ends
    assert cluster.reset_offsets("billing", TOPIC, "earliest") == {tp: 0 for tp in ends}
    assert cluster.describe_group("billing").offsets == {tp: 0 for tp in ends}
    again = consumer(cluster, auto_offset_reset="latest")
    seen = []
    for _ in range(20):
        seen += again.poll(300)
    assert len(seen) == 10  # starts from the reset offsets, not from auto.offset.reset


def test_commits_of_a_group_without_members_are_accepted() -> None:
    cluster = make_cluster()
    produce(cluster, 6)
    manual = cluster.consumer(
        {"group.id": "ops", "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    manual.assign([TopicPartition(TOPIC, 0)])
    manual.commit({TopicPartition(TOPIC, 0): 1})
    assert manual.committed(TopicPartition(TOPIC, 0)) == 1
    assert cluster.describe_group("ops").state == "Empty"
    assert events(cluster, "offsets_committed", group="ops")[0]["offsets"] == [[TOPIC, 0, 1]]


def test_auto_commit_commits_positions_inside_poll() -> None:
    cluster = make_cluster(partitions=1)
    produce(cluster, 8)
    reader = consumer(cluster, auto_commit_interval_ms=1000)
    total = 0
    for _ in range(20):
        total += len(reader.poll(500))
    assert total == 8
    assert cluster.describe_group("billing").offsets == {TopicPartition(TOPIC, 0): 8}


def test_session_timeout_outside_the_broker_range_is_refused() -> None:
    cluster = make_cluster()
    c = consumer(cluster, session_timeout_ms=1000)
    with pytest.raises(InvalidSessionTimeoutError):
        for _ in range(20):
            c.poll(500)


def test_group_moves_to_a_new_coordinator_when_its_broker_stops() -> None:
    cluster = make_cluster()
    produce(cluster, 9)
    reader = consumer(cluster, enable_auto_commit=False)
    got = 0
    for _ in range(50):
        got += len(reader.poll(300))
        if got == 9:
            break
    assert got == 9
    reader.commit()
    old = cluster.describe_group("billing").coordinator
    cluster.stop_broker(old)
    for _ in range(60):
        reader.poll(500)
        description = cluster.describe_group("billing")
        if description.coordinator not in (old, -1) and description.state == "Stable":
            break
    assert description.coordinator != old
    assert sum(description.offsets.values()) == 9  # reloaded from __consumer_offsets
    assert len(description.members) == 1
    assert reader.assignment() == {TopicPartition(TOPIC, p) for p in range(3)}


def test_replay_of_group_activity_rebuilds_an_equal_snapshot() -> None:
    cluster = make_cluster()
    produce(cluster, 12)
    a = consumer(cluster, max_poll_records=3)
    b = consumer(cluster, partition_assignment_strategy="cooperative-sticky,range")
    settle(cluster, [a, b])
    a.poll(300)
    a.commit()
    a.committed(TopicPartition(TOPIC, 0))
    b.crash()
    cluster.advance(50000)
    a.poll(500)
    a.close()
    cluster.reset_offsets("billing", TOPIC, "earliest")
    rebuilt = Cluster.from_log(cluster.export_log())
    assert rebuilt.snapshot() == cluster.snapshot()
    assert cluster.snapshot()["groups"]["billing"]["state"] == "Empty"


def test_eager_sticky_members_keep_their_partitions_when_another_leaves() -> None:
    cluster = make_cluster(partitions=6)
    members = [consumer(cluster, partition_assignment_strategy="sticky") for _ in range(3)]
    settle(cluster, members)
    before = {c.client_id: c.assignment() for c in members}
    members[0].close()
    settle(cluster, members[1:])
    for c in members[1:]:
        assert before[c.client_id] < c.assignment()
    assert sorted(len(c.assignment()) for c in members[1:]) == [3, 3]


def test_an_idle_group_consumer_learns_of_added_partitions_in_the_background() -> None:
    # The heartbeat thread polls the network client between poll() calls, so the consumer's
    # metadata is refreshed once metadata.max.age.ms (300 s) has passed without a poll.
    cluster = make_cluster(partitions=2)
    member = consumer(cluster, max_poll_interval_ms=900_000)
    settle(cluster, [member])
    cluster.add_partitions(TOPIC, 4)
    cluster.advance(299_000)
    assert len(member.topics[TOPIC]) == 2
    cluster.advance(2_000)
    assert len(member.topics[TOPIC]) == 4
    settle(cluster, [member])
    assert len(member.assignment()) == 4
