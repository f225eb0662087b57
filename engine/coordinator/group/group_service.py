"""The cluster-wide face of the group coordinators: finding a group's coordinator, describing
groups with their offsets and lag (`kafka-consumer-groups --describe`) and resetting offsets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.common.metadata import NO_LEADER
from engine.common.records import TopicPartition
from engine.coordinator.group.classic_group import DEAD, READ_COMMITTED, ClassicGroup
from engine.coordinator.group.group_coordinator import GroupCoordinator
from engine.coordinator.group.group_records import OFFSETS_TOPIC, offsets_partition_for
from engine.errors import (
    GroupIdNotFoundError,
    GroupNotEmptyError,
    KafkaError,
    KafkaTimeoutError,
    UnknownTopicOrPartitionError,
    error_for_name,
)

if TYPE_CHECKING:
    from engine.controller.quorum_controller import QuorumController
    from engine.server.broker import Broker
    from engine.server.partition import Partition
    from engine.sim.context import CreateTopic, SimContext


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    assignment: set[TopicPartition]


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    state: str
    generation: int
    protocol: str | None
    leader: str | None
    members: list[MemberDescription]
    offsets: dict[TopicPartition, int]
    lag: dict[TopicPartition, int]
    coordinator: int = NO_LEADER


class GroupService:
    """`cluster.groups`: finds coordinators, describes groups, resets offsets."""

    def __init__(
        self,
        ctx: SimContext,
        broker_config: dict[str, Any],
        controller: QuorumController,
        create_topic: CreateTopic,
        leader_log_partition: Callable[[str, int], Partition | None],
    ) -> None:
        self.ctx = ctx
        self.broker_config = broker_config
        self.controller = controller
        self.create_topic = create_topic
        self.leader_log_partition = leader_log_partition
        self.coordinators: dict[int, GroupCoordinator] = {}
        self._last_creation_failure: tuple[str, int] | None = None
        for broker_id in ctx.nodes.broker_ids():
            broker = ctx.nodes.broker_by_id(broker_id)
            coordinator = GroupCoordinator(self, broker)
            self.coordinators[broker_id] = coordinator

    def num_partitions(self) -> int:
        topic = self.controller.topics.get(OFFSETS_TOPIC)
        if topic is not None and topic.partitions:
            return len(topic.partitions)
        return int(self.broker_config["offsets.topic.num.partitions"])

    def partition_for(self, group_id: str) -> int:
        return offsets_partition_for(group_id, self.num_partitions())

    def ensure_offsets_topic(self) -> None:
        """Kafka creates `__consumer_offsets` on the first FindCoordinator for a group."""
        if OFFSETS_TOPIC in self.controller.topics:
            return
        config = self.broker_config
        try:
            self.create_topic(
                OFFSETS_TOPIC,
                int(config["offsets.topic.num.partitions"]),
                int(config["offsets.topic.replication.factor"]),
                {
                    "cleanup.policy": "compact",
                    "segment.bytes": int(config["offsets.topic.segment.bytes"]),
                },
                internal=True,
            )
        except KafkaError as exc:
            # Every FindCoordinator retries the creation; tell the story once, not per retry.
            error = type(exc).__name__
            now = self.ctx.now_ms
            last = self._last_creation_failure
            if last is None or last[0] != error or now - last[1] >= 10_000:
                self._last_creation_failure = (error, now)
                self.ctx.emit(
                    "offsets_topic_creation_failed", {"error": error, "message": exc.message}
                )

    def find_coordinator(self, broker: Broker, group_id: str) -> tuple[str, int]:
        view = broker.topics.get(OFFSETS_TOPIC)
        if view is None or not view.partitions:
            self.ensure_offsets_topic()
            return "COORDINATOR_NOT_AVAILABLE", NO_LEADER
        registration = view.partitions.get(offsets_partition_for(group_id, len(view.partitions)))
        if registration is None or registration.leader == NO_LEADER:
            return "COORDINATOR_NOT_AVAILABLE", NO_LEADER
        return "", registration.leader

    def coordinator_for(self, group_id: str) -> GroupCoordinator | None:
        topic = self.controller.topics.get(OFFSETS_TOPIC)
        if topic is None:
            return None
        registration = topic.partitions.get(self.partition_for(group_id))
        if registration is None or registration.leader == NO_LEADER:
            return None
        return self.coordinators.get(registration.leader)

    def commit_transactional_offsets(
        self, group_id: str, offsets: dict[TopicPartition, int]
    ) -> None:
        """A committed transaction's offsets (T6) become the group's committed offsets."""
        self.ensure_offsets_topic()
        coordinator = self.coordinator_for(group_id)
        error, group = (
            coordinator._group(group_id, create=True) if coordinator else ("NOT_COORDINATOR", None)
        )
        if coordinator is None or group is None:
            self.ctx.emit("offsets_commit_failed", {"group": group_id, "error": error})
            return
        coordinator.offsets.commit_offsets(group, dict(offsets), lambda error: None)

    # --- reads -------------------------------------------------------------------------------

    def _end_offset(self, tp: TopicPartition, isolation_level: str) -> int | None:
        """What a consumer can read up to: the high watermark, or the LSO for read_committed."""
        topic = self.controller.topics.get(tp.topic)
        if topic is None or tp.partition not in topic.partitions:
            return None
        replica = self.leader_log_partition(tp.topic, tp.partition)
        if replica is None:
            return None
        log = replica.log
        return int(
            log.last_stable_offset if isolation_level == READ_COMMITTED else log.high_watermark
        )

    def lag(self, group: ClassicGroup) -> dict[TopicPartition, int]:
        """O4: end offset minus committed offset. The end offset follows the isolation level of the
        member that owns the partition (from its JoinGroup metadata), or of the last generation's
        members when nobody owns it. Never negative: a committed offset past the end (the log was
        truncated after an unclean election) shows lag 0, as nothing is left to read."""
        owners = {tp: m for m in group.members.values() for tp in m.assignment}
        lag: dict[TopicPartition, int] = {}
        for tp, offset in sorted(group.offsets.items()):
            owner = owners.get(tp)
            isolation_level = (
                owner.metadata.get("isolation_level", group.isolation_level)
                if owner is not None
                else group.isolation_level
            )
            end = self._end_offset(tp, isolation_level)
            if end is not None:
                lag[tp] = max(end - offset, 0)
        return lag

    def _describe(
        self, group_id: str, group: ClassicGroup | None, coordinator: int
    ) -> GroupDescription:
        if group is None:
            return GroupDescription(group_id, DEAD, 0, None, None, [], {}, {}, coordinator)
        lag = self.lag(group)
        members = [
            MemberDescription(m.member_id, m.group_instance_id, m.client_id, set(m.assignment))
            for m in group.members.values()
        ]
        return GroupDescription(
            group_id,
            group.state,
            group.generation,
            group.protocol,
            group.leader,
            members,
            dict(sorted(group.offsets.items())),
            lag,
            coordinator,
        )

    def describe_group(self, group_id: str) -> GroupDescription:
        coordinator = self.coordinator_for(group_id)
        if coordinator is None:
            return self._describe(group_id, None, NO_LEADER)
        return self._describe(group_id, coordinator.view(group_id), coordinator.broker.id)

    def list_groups(self) -> list[str]:
        return sorted(self._all_views())

    def _all_views(self) -> dict[str, tuple[ClassicGroup, int]]:
        topic = self.controller.topics.get(OFFSETS_TOPIC)
        found: dict[str, tuple[ClassicGroup, int]] = {}
        if topic is None:
            return found
        for number, registration in sorted(topic.partitions.items()):
            coordinator = self.coordinators.get(registration.leader)
            if coordinator is None:
                continue
            for group_id, group in coordinator.views(number).items():
                found[group_id] = (group, registration.leader)
        return found

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for group_id, (group, coordinator) in sorted(self._all_views().items()):
            description = self._describe(group_id, group, coordinator)
            out[group_id] = {
                "state": description.state,
                "generation": description.generation,
                "protocol": description.protocol,
                "leader": description.leader,
                "coordinator": coordinator,
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "assignment": [[tp.topic, tp.partition] for tp in sorted(m.assignment)],
                    }
                    for m in description.members
                ],
                "offsets": [[tp.topic, tp.partition, o] for tp, o in description.offsets.items()],
                "lag": [[tp.topic, tp.partition, lag] for tp, lag in description.lag.items()],
            }
        return out

    # --- admin: kafka-consumer-groups --reset-offsets ----------------------------------------

    def reset_offsets(self, group_id: str, topic: str, to: str | int) -> dict[TopicPartition, int]:
        targets = self._reset_targets(group_id, topic, to, check_members=True)
        self._admin_request(group_id, targets, "commit")
        return targets

    def _reset_targets(
        self, group_id: str, topic: str, to: str | int, check_members: bool
    ) -> dict[TopicPartition, int]:
        registration = self.controller.topics.get(topic)
        if registration is None:
            raise UnknownTopicOrPartitionError(f"Topic '{topic}' does not exist.")
        if not (to in ("earliest", "latest") or (isinstance(to, int) and not isinstance(to, bool))):
            raise ValueError("reset_offsets takes to='earliest', 'latest' or an offset number")
        if check_members and self.describe_group(group_id).members:
            raise GroupNotEmptyError(
                f"Assignments can only be reset if the group '{group_id}' is inactive, "
                "but the current state is not Empty: stop its consumers first."
            )
        targets: dict[TopicPartition, int] = {}
        for number in sorted(registration.partitions):
            tp = TopicPartition(topic, number)
            replica = self.leader_log_partition(topic, number)
            earliest = replica.log.log_start_offset if replica else 0
            latest = replica.log.high_watermark if replica else 0
            target = earliest if to == "earliest" else latest if to == "latest" else int(to)
            targets[tp] = min(max(target, earliest), latest)  # O5: clamped
        return targets

    def reset_offsets_nowait(
        self,
        group_id: str,
        topic: str,
        to: str | int,
        done: Callable[[str], None],
        grace_ms: int = 0,
    ) -> dict[TopicPartition, int]:
        """`reset_offsets` for a caller that must not block (a live host): the checks run at
        once (and raise as `reset_offsets` does); the write goes to the group's coordinator on
        the cluster clock (looked up every 100 ms while it is not available, as the blocking
        call does) and `done(error)` gets the answer once: "" when stored, REQUEST_TIMED_OUT
        after the same 30 s. With `grace_ms`, a group that still has members (consumers whose
        LeaveGroup is on its way) is given that long to empty before the reset is refused with
        NON_EMPTY_GROUP. Not recorded in the cluster's log: callers replay their own."""
        answered: list[str] = []

        def respond(error: str) -> None:
            if not answered:
                answered.append(error)
                done(error)

        scheduler = self.ctx.scheduler
        empty_by = scheduler.now_ms + grace_ms
        targets = self._reset_targets(group_id, topic, to, check_members=grace_ms <= 0)
        self.ensure_offsets_topic()
        deadline = scheduler.now_ms + 30000

        def attempt() -> bool:
            coordinator = self.coordinator_for(group_id)
            if coordinator is None or not coordinator.leads(group_id):
                return False
            coordinator.offsets.admin_commit(group_id, targets, respond)
            return True

        def try_now() -> None:
            if answered:
                return
            if grace_ms > 0 and self.describe_group(group_id).members:
                if scheduler.now_ms >= empty_by:
                    respond("NON_EMPTY_GROUP")
                else:
                    scheduler.call_later(100, try_now)
                return
            if attempt():
                return
            if scheduler.now_ms + 100 > deadline:
                respond("REQUEST_TIMED_OUT")
                return
            scheduler.call_later(100, try_now)

        try_now()
        if not answered:
            scheduler.call_at(deadline, lambda: respond("REQUEST_TIMED_OUT"))
        return targets

    def reset_error(self, group_id: str, error: str) -> KafkaError | None:
        """The exception `reset_offsets` raises for a coordinator's answer (None: stored)."""
        if not error:
            return None
        if error == "NON_EMPTY_GROUP":
            return GroupNotEmptyError(
                f"The group '{group_id}' has members; stop its consumers first."
            )
        return error_for_name(error)(f"Resetting offsets failed: {error}.")

    def alter_offsets(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        """Kafka's AlterConsumerGroupOffsets for an inactive group: the offsets as given (the
        tool computes and clamps them first)."""
        for tp, offset in offsets.items():
            topic = self.controller.topics.get(tp.topic)
            if topic is None or tp.partition not in topic.partitions:
                raise UnknownTopicOrPartitionError(f"{tp.topic}-{tp.partition} does not exist.")
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise ValueError("offsets must be whole, non-negative numbers")
        if self.describe_group(group_id).members:
            raise GroupNotEmptyError(
                f"The group '{group_id}' has members; stop its consumers first."
            )
        self._admin_request(group_id, dict(sorted(offsets.items())), "commit")

    def delete_group(self, group_id: str) -> None:
        """Kafka's DeleteGroups: refused while the group has members or when it is unknown."""
        self._admin_request(group_id, {}, "delete")

    def delete_offsets(
        self, group_id: str, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, str]:
        """Kafka's OffsetDelete: per partition "" (deleted, or nothing was committed) or
        GROUP_SUBSCRIBED_TO_TOPIC; `GroupIdNotFoundError` for an unknown group."""
        for tp in partitions:
            topic = self.controller.topics.get(tp.topic)
            if topic is None or tp.partition not in topic.partitions:
                raise UnknownTopicOrPartitionError(f"{tp.topic}-{tp.partition} does not exist.")
        answer: list[tuple[str, dict[TopicPartition, str]]] = []
        self.ensure_offsets_topic()
        deadline = self.ctx.now_ms + 30000

        def attempt() -> bool:
            coordinator = self.coordinator_for(group_id)
            if coordinator is None or not coordinator.leads(group_id):
                return False
            coordinator.offsets.admin_delete_offsets(group_id, list(partitions), answer.append)
            return True

        started = attempt() or self.ctx.run_until(attempt, deadline)
        if started:
            self.ctx.run_until(lambda: bool(answer), deadline)
        if not answer:
            raise KafkaTimeoutError("Timed out waiting for the group coordinator.")
        error, results = answer[0]
        if error == "GROUP_ID_NOT_FOUND":
            raise GroupIdNotFoundError(f"The group '{group_id}' does not exist.")
        if error:
            raise error_for_name(error)(f"The group coordinator answered {error}.")
        return dict(results)

    def _admin_request(
        self, group_id: str, offsets: dict[TopicPartition, int], action: str
    ) -> None:
        """Send an admin request to the group's coordinator, waiting (on cluster time) for a
        coordinator to lead the group and for the stored records to be replicated."""
        self.ensure_offsets_topic()
        outcome: list[str] = []
        deadline = self.ctx.now_ms + 30000

        def attempt() -> bool:
            coordinator = self.coordinator_for(group_id)
            if coordinator is None or not coordinator.leads(group_id):
                return False
            if action == "delete":
                coordinator.offsets.admin_delete_group(group_id, outcome.append)
            else:
                coordinator.offsets.admin_commit(group_id, offsets, outcome.append)
            return True

        started = attempt() or self.ctx.run_until(attempt, deadline)
        if started:
            self.ctx.run_until(lambda: bool(outcome), deadline)
        if not outcome:
            raise KafkaTimeoutError(
                "Timed out waiting for the group coordinator to store the offsets."
            )
        if outcome[0] == "NON_EMPTY_GROUP":
            raise GroupNotEmptyError(
                f"The group '{group_id}' has members; stop its consumers first."
            )
        if outcome[0] == "GROUP_ID_NOT_FOUND":
            raise GroupIdNotFoundError(f"The group '{group_id}' does not exist.")
        if outcome[0]:
            raise error_for_name(outcome[0])(f"The group coordinator answered {outcome[0]}.")
