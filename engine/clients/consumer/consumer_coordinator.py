"""The consumer's side of the classic group protocol: Kafka's `ConsumerCoordinator` and
`AbstractCoordinator`, heartbeat thread included.

It finds the group coordinator, joins (JoinGroup, then SyncGroup), computes the assignment when
it is the leader, revokes partitions (all of them for eager assignors, only the moving ones for
cooperative-sticky, KIP-429), heartbeats on the cluster clock, leaves the group when the
application stops calling poll() for `max.poll.interval.ms`, and commits offsets.
Rejoining happens only inside `poll()`, as in Kafka.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.assignors import COOPERATIVE_STICKY, Subscription, assign, canonical_strategy
from engine.clients.consumer.consumer_heartbeat import HeartbeatThread
from engine.clients.consumer.consumer_offsets import ConsumerOffsets
from engine.clients.consumer.member_state import (
    COMPLETING_REBALANCE,
    COORDINATOR_ERRORS,
    FATAL_JOIN_ERRORS,
    PREPARING_REBALANCE,
    STABLE,
    UNJOINED,
)
from engine.common.records import TopicPartition
from engine.common.requests.group import (
    GROUP,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    SyncGroupRequest,
    SyncGroupResponse,
)
from engine.errors import (
    FencedInstanceIdError,
    KafkaError,
    error_for_name,
)

if TYPE_CHECKING:
    from engine.clients.consumer.kafka_consumer import KafkaConsumer


def _tps(partitions: set[TopicPartition]) -> list[list[Any]]:
    return [[tp.topic, tp.partition] for tp in sorted(partitions)]


class ConsumerCoordinator:
    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        self.ctx = consumer.ctx
        config = consumer.config
        assert consumer.group_id is not None
        self.group_id: str = consumer.group_id
        self.instance_id: str | None = config["group.instance.id"]
        self.strategies = tuple(
            dict.fromkeys(canonical_strategy(s) for s in config["partition.assignment.strategy"])
        )
        self.session_timeout_ms = int(config["session.timeout.ms"])
        self.heartbeat_interval_ms = int(config["heartbeat.interval.ms"])
        self.max_poll_interval_ms = int(config["max.poll.interval.ms"])
        self.auto_commit = bool(config["enable.auto.commit"])
        self.auto_commit_interval_ms = int(config["auto.commit.interval.ms"])
        self.retry_backoff_ms = int(config["retry.backoff.ms"])
        self.request_timeout_ms = int(config["request.timeout.ms"])
        self.coordinator_id: int | None = None
        self.finding = False
        self.member_id = ""
        self.generation = -1
        self.protocol: str | None = None
        self.leader = ""
        self.state = UNJOINED
        self.rejoin_needed = False
        self.pre_join_commit: str = ""  # "", "in_flight" or "done"
        self.fatal: KafkaError | None = None
        self.wake = False
        # Bumped whenever the membership is reset, so that stale answers are ignored.
        self.epoch = 0
        self.last_poll_ms = self.ctx.now_ms
        self.next_auto_commit_ms = self.ctx.now_ms + self.auto_commit_interval_ms
        self.committed_in_flight: set[TopicPartition] = set()
        self.no_committed: set[TopicPartition] = set()
        self.assignment_snapshot: dict[str, int] | None = None
        self.joined_subscription: set[str] = set()
        # The leader's JoinGroup answer, held until metadata newer than the join arrives.
        self.leader_join: JoinGroupResponse | None = None
        self.leader_metadata_version = 0
        # What this member owned when it started rejoining (sticky assignors keep it).
        self.owned_for_join: set[TopicPartition] = set()
        self.heartbeat = HeartbeatThread(self)
        self.offsets = ConsumerOffsets(self)

    # --- small helpers -----------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        return self.ctx.now_ms

    @property
    def cooperative(self) -> bool:
        return (
            self.protocol == COOPERATIVE_STICKY
            if self.protocol
            else self.strategies[0] == COOPERATIVE_STICKY
        )

    def emit(self, kind: str, **data: Any) -> None:
        self.ctx.emit(
            kind,
            {
                "group": self.group_id,
                "client": self.consumer.client_id,
                "member": self.member_id,
                **data,
            },
        )

    def poke(self) -> None:
        """Something a blocked poll() should look at arrived."""
        self.wake = True
        self.consumer.progress += 1

    def active(self) -> bool:
        return not self.consumer.closed and not self.consumer.crashed

    def reset_generation(self, reset_member_id: bool) -> None:
        self.epoch += 1
        self.generation = -1
        self.protocol = None
        self.leader = ""
        self.state = UNJOINED
        self.assignment_snapshot = None
        self.pre_join_commit = ""
        self.leader_join = None
        if reset_member_id:
            self.member_id = ""
        self.rejoin_needed = True

    def coordinator_unknown(self) -> None:
        if self.coordinator_id is not None:
            self.emit("coordinator_lost", coordinator=self.coordinator_id)
        self.coordinator_id = None

    # --- finding the coordinator -------------------------------------------------------------

    def find_coordinator(self) -> None:
        if self.finding or self.coordinator_id is not None or not self.active():
            return
        broker_id = self.consumer.pick_broker()
        if broker_id is None:
            self._retry_find()
            return
        self.finding = True
        group_id = self.group_id

        def on_reply(response: object) -> None:
            self.finding = False
            if isinstance(response, FindCoordinatorResponse) and not response.error:
                self.coordinator_id = response.node_id
                self.emit("coordinator_found", coordinator=self.coordinator_id)
                self.poke()
            else:
                self._retry_find()

        self.consumer.send_request(broker_id, FindCoordinatorRequest(group_id, GROUP), on_reply)

    def _retry_find(self) -> None:
        """Look again after `retry.backoff.ms`. The lookup counts as in flight while it waits,
        so polls in the meantime join this one retry instead of each starting another chain."""
        self.finding = True

        def retry() -> None:
            self.finding = False
            if self.active() and self.coordinator_id is None:
                self.find_coordinator()

        self.ctx.scheduler.call_later(self.retry_backoff_ms, retry)

    # --- poll ----------------------------------------------------------------------------------

    def poll(self) -> None:
        self.wake = False
        if self.fatal is not None:
            error, self.fatal = self.fatal, None
            raise error
        self.last_poll_ms = self.now_ms
        if not self.consumer.subscription:
            self.offsets.maybe_auto_commit()
            return
        self.heartbeat.ensure()
        if self.coordinator_id is None:
            self.find_coordinator()
            return
        self.offsets.maybe_auto_commit()
        self._maybe_assign()
        self._check_metadata()
        if (self.rejoin_needed or self.state == UNJOINED) and self.state not in (
            PREPARING_REBALANCE,
            COMPLETING_REBALANCE,
        ):
            self._prepare_and_join()

    def needs_poll(self) -> bool:
        # Called while poll() waits: the application is inside poll(), so its poll timer holds.
        self.last_poll_ms = self.now_ms
        return self.wake

    def on_records_returned(self) -> None:
        self.last_poll_ms = self.now_ms

    def on_subscription_change(self) -> None:
        if self.consumer.subscription != self.joined_subscription and self.state != UNJOINED:
            self.rejoin_needed = True
        self.poke()

    def _check_metadata(self) -> None:
        """The leader rejoins when a subscribed topic's partition count changed (Kafka's
        assignment snapshot), so new partitions get an owner."""
        if self.assignment_snapshot is None or self.state != STABLE:
            return
        topics = self.consumer.topics
        current = {t: len(topics[t]) for t in self.assignment_snapshot if t in topics}
        if any(current.get(t, n) != n for t, n in self.assignment_snapshot.items()):
            self.rejoin_needed = True
        age = int(self.consumer.config["metadata.max.age.ms"])
        if self.now_ms - self.consumer.last_metadata_ms >= age:
            self.consumer.request_metadata_update(set(self.assignment_snapshot))

    # --- joining ------------------------------------------------------------------------------

    def _prepare_and_join(self) -> None:
        """Kafka's `onJoinPrepare`, then JoinGroup."""
        consumer = self.consumer
        if self.generation < 0 and consumer.assigned:
            # The membership was lost: the partitions are gone, without a commit.
            lost = set(consumer.assigned)
            consumer.set_assignment(set())
            self.emit("partitions_lost", partitions=_tps(lost))
        if self.pre_join_commit == "in_flight":
            return
        self.owned_for_join = set(consumer.assigned)
        if (
            self.auto_commit
            and self.generation >= 0
            and self.pre_join_commit == ""
            and consumer.assigned
        ):
            # O3: auto commit before the rebalance; join once it is answered.
            self.pre_join_commit = "in_flight"

            def committed(error: str) -> None:
                self.pre_join_commit = "done"
                self.poke()

            self.offsets.send_commit(self.positions_for(), committed)
            return
        if consumer.assigned:
            if self.cooperative:
                revoked = {tp for tp in consumer.assigned if tp.topic not in consumer.subscription}
            else:
                revoked = set(consumer.assigned)  # G13: eager gives everything up first
            if revoked:
                consumer.set_assignment(consumer.assigned - revoked)
                self.emit(
                    "partitions_revoked", partitions=_tps(revoked), generation=self.generation
                )
        self._send_join()

    def positions_for(
        self, partitions: set[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        consumer = self.consumer
        chosen = consumer.assigned if partitions is None else partitions
        return {tp: consumer.positions[tp] for tp in sorted(chosen) if tp in consumer.positions}

    def _send_join(self) -> None:
        if self.coordinator_id is None:
            self.find_coordinator()
            return
        consumer = self.consumer
        self.state = PREPARING_REBALANCE
        self.rejoin_needed = False
        self.pre_join_commit = ""
        self.joined_subscription = set(consumer.subscription)
        metadata = {
            "topics": sorted(consumer.subscription),
            "owned": _tps(consumer.assigned if self.cooperative else self.owned_for_join),
            "generation": self.generation,
            # Not in Kafka's subscription: lets describe_group measure lag from the LSO (O4).
            "isolation_level": consumer.isolation_level,
        }
        request = JoinGroupRequest(
            self.group_id,
            self.member_id,
            self.instance_id,
            consumer.client_id,
            self.session_timeout_ms,
            self.max_poll_interval_ms,
            self.strategies,
            metadata,
        )
        epoch = self.epoch

        def on_reply(response: object) -> None:
            if epoch != self.epoch or self.state != PREPARING_REBALANCE:
                return
            self._on_join_response(response)
            self.poke()

        consumer.send_request(
            self.coordinator_id,
            request,
            on_reply,
            timeout_ms=max(self.request_timeout_ms, self.max_poll_interval_ms + 5000),
        )

    def _handle_member_error(self, error: str) -> bool:
        """What JoinGroup and SyncGroup answers share (Kafka's `AbstractCoordinator`): True
        when `error` was one of the membership or coordinator errors and has been handled."""
        if error == "UNKNOWN_MEMBER_ID":
            self.reset_generation(reset_member_id=True)
        elif error == "ILLEGAL_GENERATION":
            self.reset_generation(reset_member_id=False)
        elif error in COORDINATOR_ERRORS:
            self.coordinator_unknown()
            self.rejoin_needed = True
        else:
            return False
        return True

    def _lost_response(self) -> None:
        """No answer (timeout or disconnect): find the coordinator again and rejoin."""
        self.coordinator_unknown()
        self.rejoin_needed = True

    def _on_join_response(self, response: object) -> None:
        self.state = UNJOINED
        if not isinstance(response, JoinGroupResponse):
            self._lost_response()
            return
        error = response.error
        if error == "MEMBER_ID_REQUIRED":
            self.member_id = response.member_id
            self._send_join()
        elif self._handle_member_error(error):
            pass
        elif error in FATAL_JOIN_ERRORS:
            self.reset_generation(reset_member_id=True)
            self.rejoin_needed = False
            self.fatal = error_for_name(error)(
                f"JoinGroup for group {self.group_id!r} failed with {error}."
            )
        elif error:
            self.rejoin_needed = True
        else:
            self.member_id = response.member_id
            self.generation = response.generation
            self.protocol = response.protocol
            self.leader = response.leader
            if response.leader == self.member_id and not response.skip_assignment:
                # Kafka's leader makes sure its metadata is fresh before it assigns.
                self.state = COMPLETING_REBALANCE
                self.leader_join = response
                self.leader_metadata_version = self.consumer.metadata_version
                topics = {t for _, _, metadata in response.members for t in metadata["topics"]}
                self.consumer.wanted_topics |= topics
                self.consumer.request_metadata_update(topics)
                return
            self._send_sync(None)

    def _maybe_assign(self) -> None:
        response = self.leader_join
        if response is None or self.consumer.metadata_version <= self.leader_metadata_version:
            return
        self.leader_join = None
        self._send_sync(self._assign(response))

    def _assign(self, response: JoinGroupResponse) -> dict[str, list[TopicPartition]]:
        """The leader's job: run the chosen assignor over every member's subscription."""
        subscriptions = {
            member_id: Subscription(
                metadata["topics"],
                [TopicPartition(t, p) for t, p in metadata["owned"]],
                metadata["generation"],
                instance_id,
            )
            for member_id, instance_id, metadata in response.members
        }
        topics = {t for s in subscriptions.values() for t in s.topics}
        missing = {t for t in topics if t not in self.consumer.topics}
        if missing:
            self.consumer.request_metadata_update(missing)
        partitions_per_topic = {t: len(self.consumer.topics[t]) for t in sorted(topics - missing)}
        self.assignment_snapshot = dict(partitions_per_topic)
        assert response.protocol is not None
        return assign(response.protocol, subscriptions, partitions_per_topic)

    def _send_sync(self, assignments: dict[str, list[TopicPartition]] | None) -> None:
        assert self.coordinator_id is not None
        self.state = COMPLETING_REBALANCE
        group_id, generation, member_id, instance_id = (
            self.group_id,
            self.generation,
            self.member_id,
            self.instance_id,
        )
        epoch = self.epoch

        sync_request = SyncGroupRequest(group_id, generation, member_id, instance_id, assignments)

        def on_reply(response: object) -> None:
            if epoch != self.epoch or self.state != COMPLETING_REBALANCE:
                return
            self._on_sync_response(response)
            self.poke()

        self.consumer.send_request(self.coordinator_id, sync_request, on_reply)

    def _on_sync_response(self, response: object) -> None:
        self.state = UNJOINED
        if not isinstance(response, SyncGroupResponse):
            self._lost_response()
            return
        error = response.error
        if self._handle_member_error(error):
            pass
        elif error == "FENCED_INSTANCE_ID":
            self.reset_generation(reset_member_id=True)
            self.rejoin_needed = False
            self.fatal = FencedInstanceIdError(
                f"Another consumer with group.instance.id {self.instance_id!r} "
                "took this member's place."
            )
        elif error:
            self.rejoin_needed = True
        else:
            self.state = STABLE
            self._on_join_complete(set(response.assignment))

    def _on_join_complete(self, assigned: set[TopicPartition]) -> None:
        consumer = self.consumer
        owned = set(consumer.assigned)
        added = assigned - owned
        revoked = owned - assigned
        if revoked:
            # Cooperative: give up only what moves, then rejoin so the new owner gets it (KIP-429).
            if self.auto_commit:
                self.offsets.send_commit(self.positions_for(revoked), lambda error: None)
            self.emit("partitions_revoked", partitions=_tps(revoked), generation=self.generation)
            self.rejoin_needed = True
        consumer.set_assignment(assigned)
        for tp in added:
            self.no_committed.discard(tp)
        self.emit(
            "partitions_assigned",
            partitions=_tps(added),
            assignment=_tps(assigned),
            generation=self.generation,
        )
        self.heartbeat.ensure()

    # --- leaving -------------------------------------------------------------------------------

    def maybe_leave(self, reason: str) -> None:
        """Kafka's `maybeLeaveGroup`: dynamic members send LeaveGroup; everyone forgets the
        generation (a static member is removed only when its session expires, G6)."""
        if self.instance_id is None and self.member_id and self.coordinator_id is not None:
            self._send_leave(reason, lambda response: None)
        self.reset_generation(reset_member_id=True)
        self.rejoin_needed = False

    def _send_leave(self, reason: str, on_reply: Callable[[object], None]) -> None:
        assert self.coordinator_id is not None
        group_id, member_id = self.group_id, self.member_id

        self.consumer.send_request(
            self.coordinator_id, LeaveGroupRequest(group_id, member_id, None, reason), on_reply
        )

    def leave_group(self, reason: str) -> None:
        consumer = self.consumer
        if consumer.assigned and consumer.subscription:
            self.emit(
                "partitions_revoked", partitions=_tps(consumer.assigned), generation=self.generation
            )
            consumer.set_assignment(set())
        self.maybe_leave(reason)
        self.joined_subscription = set()

    def close(self, wait: bool = True) -> None:
        """Kafka's close: the last auto commit, then LeaveGroup. Without `wait` both are sent
        and not waited for (their answers are dropped once the consumer is closed)."""
        consumer = self.consumer
        if (
            self.auto_commit
            and consumer.assigned
            and (self.generation >= 0 or not consumer.subscription)
        ):
            if not wait:
                self.offsets.send_commit(self.positions_for(), lambda error: None)
            else:
                try:
                    self.offsets.commit_sync(self.positions_for())
                except KafkaError as exc:
                    self.emit("auto_commit_failed", error=type(exc).__name__)
        if consumer.subscription:
            if consumer.assigned:
                self.emit(
                    "partitions_revoked",
                    partitions=_tps(consumer.assigned),
                    generation=self.generation,
                )
            if self.instance_id is None and self.member_id and self.coordinator_id is not None:
                answered: list[object] = []
                self._send_leave("the consumer is being closed", answered.append)
                if wait:
                    self.ctx.run_until(
                        lambda: bool(answered), self.now_ms + self.request_timeout_ms
                    )
        self._stop()

    def on_crash(self) -> None:
        self._stop()

    def _stop(self) -> None:
        self.epoch += 1
        self.heartbeat.stop()
        self.state = UNJOINED

    # --- offsets (see `engine.clients.consumer.consumer_offsets`) ---------------------------------

    def commit_sync(self, offsets: dict[TopicPartition, int]) -> None:
        self.offsets.commit_sync(offsets)

    def fetch_committed_sync(self, tp: TopicPartition) -> int | None:
        return self.offsets.fetch_committed_sync(tp)

    def fetch_committed_position(self, tp: TopicPartition) -> bool:
        return self.offsets.fetch_committed_position(tp)
