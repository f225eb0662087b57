"""The KRaft controller quorum: Kafka's `QuorumController`, `ReplicationControlManager`,
`ClusterControlManager` and `PartitionChangeBuilder`, reduced to what a learner can observe.

Controller nodes 101..100+N elect an active controller among themselves; a metadata change
commits only while the active controller reaches a majority of the quorum. Committed changes
are pushed to brokers over the network, so a broker cut off from the controller keeps acting
on stale metadata (the zombie leader).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING, Any

from engine.common.config import TOPIC_BROKER_SYNONYMS
from engine.common.metadata import (
    NO_LEADER,
    BrokerRegistration,
    MetadataRecord,
    PartitionRegistration,
    TopicRegistration,
)
from engine.controller.reassignment import (
    ReassignmentReplicas,
    revert,
    validate_manual_assignment,
)
from engine.errors import (
    ClusterUnavailableError,
    ElectionNotNeededError,
    EligibleLeadersNotAvailableError,
    InvalidPartitionsError,
    InvalidReplicaAssignmentError,
    InvalidReplicationFactorError,
    NoReassignmentInProgressError,
    PreferredLeaderNotAvailableError,
    TopicExistsError,
    UnknownTopicOrPartitionError,
)
from engine.sim.clock import Scheduler, Timer
from engine.sim.network import Network

if TYPE_CHECKING:
    from engine.server.broker import Broker

EmitEvent = Callable[[str, dict[str, Any]], None]


@dataclass(slots=True)
class ControllerNode:
    id: int
    alive: bool = True
    # KRaft replication as `kafka-metadata-quorum describe` reports it: the metadata offset this
    # voter last replicated and when it was last caught up with the active controller.
    log_end_offset: int = 0
    last_caught_up_ms: int = 0


class QuorumController:
    def __init__(
        self,
        controller_ids: list[int],
        scheduler: Scheduler,
        network: Network,
        rng: Random,
        config: dict[str, Any],
        emit: EmitEvent,
    ) -> None:
        self.nodes = {node_id: ControllerNode(node_id) for node_id in controller_ids}
        self.scheduler = scheduler
        self.network = network
        self.rng = rng
        self.config = config
        self.emit = emit
        self.active_id: int | None = controller_ids[0] if controller_ids else None
        self.quorum_epoch = 1
        self.topics: dict[str, TopicRegistration] = {}
        self.brokers: dict[int, BrokerRegistration] = {}
        self.broker_nodes: dict[int, Broker] = {}
        self.last_heartbeat_ms: dict[int, int] = {}
        self.metadata_offset = 0
        self._next_topic_id = 1
        self._session_timers: dict[int, Timer] = {}
        self._election_timer: Timer | None = None
        self._rebalance_timer: Timer | None = None
        self._quorum_lost = False
        self._disconnected: set[int] = set()
        # Dynamic broker configs by entity ("" for every broker, "1" for broker 1), and the
        # broker config the cluster was made with, which deleting a dynamic key returns to.
        self.broker_configs: dict[str, dict[str, Any]] = {}
        self.static_config = dict(config)
        self.network.on_change.append(self.check_quorum)
        self.network.on_change.append(self.on_connectivity_change)
        self._schedule_leader_rebalance()

    # --- quorum --------------------------------------------------------------------------------

    def majority(self) -> int:
        return len(self.nodes) // 2 + 1

    def _reaches_majority(self, node_id: int) -> bool:
        reachable = sum(
            1
            for other in self.nodes.values()
            if other.alive and self.network.reachable(node_id, other.id)
        )
        return reachable >= self.majority()

    def has_quorum(self) -> bool:
        active = self.active_id
        return active is not None and self.nodes[active].alive and self._reaches_majority(active)

    def check_quorum(self) -> None:
        """After a fault: if the active controller lost its majority, hold an election later."""
        self.track_voters()
        if self.has_quorum():
            if self._quorum_lost:
                # The same controller regained its majority: heartbeats it could not process
                # meanwhile must not count against the brokers.
                self._quorum_lost = False
                self._refresh_sessions()
            return
        self._quorum_lost = True
        if self._election_timer is not None and not self._election_timer.cancelled:
            return
        timeout = int(self.config["controller.quorum.fetch.timeout.ms"]) + self.rng.randint(
            0, int(self.config["controller.quorum.election.timeout.ms"])
        )
        self._election_timer = self.scheduler.call_later(timeout, self._elect_controller)

    def _elect_controller(self) -> None:
        self._election_timer = None
        if self.has_quorum():
            return
        candidates = [
            node.id
            for node in self.nodes.values()
            if node.alive and self._reaches_majority(node.id)
        ]
        if not candidates:
            if self.active_id is not None:
                self.emit("controller_lost_quorum", {"controller": self.active_id})
            self.active_id = None
            self.on_connectivity_change()
            return
        self.active_id = self.rng.choice(candidates)
        self.quorum_epoch += 1
        self.emit("controller_elected", {"controller": self.active_id, "epoch": self.quorum_epoch})
        # A new active controller gives every broker a fresh session before fencing anyone.
        self._quorum_lost = False
        self._refresh_sessions()
        self.track_voters()

    def _refresh_sessions(self) -> None:
        for broker_id, registration in self.brokers.items():
            if not registration.fenced:
                self.last_heartbeat_ms[broker_id] = self.scheduler.now_ms
                self._arm_session_timer(broker_id)
        self.on_connectivity_change()

    def connected(self, broker_id: int) -> bool:
        """Whether this broker's heartbeats reach an active controller that has its quorum."""
        broker = self.broker_nodes.get(broker_id)
        active = self.active_id
        return (
            broker is not None
            and broker.alive
            and active is not None
            and self.has_quorum()
            and self.network.reachable(broker_id, active)
        )

    def on_connectivity_change(self) -> None:
        """After any fault or recovery: brokers that lost the controller start their session
        clock from the last heartbeat that got through; brokers that found it again send real
        heartbeats until they are caught up and unfenced."""
        for broker_id in sorted(self.broker_nodes):
            broker = self.broker_nodes[broker_id]
            if self.connected(broker_id):
                self._disconnected.discard(broker_id)
                broker.wake_heartbeats()
                continue
            if broker_id in self._disconnected:
                continue
            self._disconnected.add(broker_id)
            registration = self.brokers.get(broker_id)
            if registration is None or registration.fenced:
                continue
            last = (
                broker.last_scheduled_heartbeat_arrival()
                if broker.alive
                else min(self.scheduler.now_ms, broker.last_scheduled_heartbeat_arrival())
            )
            self.last_heartbeat_ms[broker_id] = max(self.last_heartbeat_ms.get(broker_id, 0), last)
            self._arm_session_timer(broker_id)

    def stop_node(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if not node.alive:
            return
        self.track_voters()
        node.alive = False
        self.emit("controller_stopped", {"controller": node_id})
        self.check_quorum()
        self.on_connectivity_change()

    def start_node(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.alive:
            return
        node.alive = True
        self.emit("controller_started", {"controller": node_id})
        self.check_quorum()
        self.on_connectivity_change()
        self.track_voters()

    def require_quorum(self) -> None:
        if not self.has_quorum():
            raise ClusterUnavailableError(
                "No active controller with a majority of the quorum: metadata cannot change "
                "until a majority of controller nodes is running and connected."
            )

    # --- committing and publishing -----------------------------------------------------------

    def _commit(self, record: MetadataRecord) -> None:
        self.track_voters()
        for broker in self.broker_nodes.values():
            self._push(broker, record)

    def track_voters(self) -> None:
        """Voters the active controller reaches replicate its metadata log as it is written; the
        others keep the offset and time they last caught up at."""
        if not self.has_quorum() or self.active_id is None:
            return
        now = self.scheduler.now_ms
        for node in self.nodes.values():
            if node.alive and self.network.reachable(self.active_id, node.id):
                node.log_end_offset = self.metadata_offset
                node.last_caught_up_ms = now

    def _next_record(self, kind: str, **fields: Any) -> MetadataRecord:
        self.metadata_offset += 1
        return MetadataRecord(offset=self.metadata_offset, kind=kind, **fields)

    def _push(self, broker: Broker, record: MetadataRecord) -> None:
        if not broker.alive or self.active_id is None:
            return
        self.network.send(
            self.active_id, broker.id, "metadata", lambda: broker.apply_metadata(record)
        )

    def full_image(self) -> tuple[int, list[MetadataRecord]]:
        records: list[MetadataRecord] = []
        for broker in self.brokers.values():
            records.append(MetadataRecord(0, "broker", broker=_copy_broker(broker)))
        for topic in self.topics.values():
            records.append(
                MetadataRecord(
                    0,
                    "topic",
                    topic=topic.name,
                    config=dict(topic.config),
                    internal=topic.internal,
                    overrides=frozenset(topic.overrides),
                )
            )
            for partition, registration in topic.partitions.items():
                records.append(
                    MetadataRecord(
                        0,
                        "partition",
                        topic=topic.name,
                        partition=partition,
                        registration=registration,
                    )
                )
        for entity, layer in sorted(self.broker_configs.items()):
            records.append(MetadataRecord(0, "broker_config", topic=entity, config=dict(layer)))
        return self.metadata_offset, records

    def _set_partition(
        self, topic: str, partition: int, new: PartitionRegistration, reason: str
    ) -> None:
        registration = self.topics[topic].partitions.get(partition)
        self.topics[topic].partitions[partition] = new
        if registration is not None:
            if new.leader != registration.leader or new.leader_epoch != registration.leader_epoch:
                self.emit(
                    "leader_elected",
                    {
                        "topic": topic,
                        "partition": partition,
                        "leader": new.leader,
                        "previous_leader": registration.leader,
                        "leader_epoch": new.leader_epoch,
                        "unclean": reason == "unclean",
                        "reason": reason,
                    },
                )
            removed = [b for b in registration.isr if b not in new.isr]
            added = [b for b in new.isr if b not in registration.isr]
            if removed:
                self.emit(
                    "isr_shrunk",
                    {
                        "topic": topic,
                        "partition": partition,
                        "removed": removed,
                        "isr": list(new.isr),
                        "reason": reason,
                    },
                )
            if added:
                self.emit(
                    "isr_expanded",
                    {
                        "topic": topic,
                        "partition": partition,
                        "added": added,
                        "isr": list(new.isr),
                        "reason": reason,
                    },
                )
        self._commit(
            self._next_record("partition", topic=topic, partition=partition, registration=new)
        )

    # --- brokers -----------------------------------------------------------------------------

    def register_broker_node(self, broker: Broker) -> None:
        self.broker_nodes[broker.id] = broker
        self.brokers[broker.id] = BrokerRegistration(broker.id, fenced=True)

    def usable_brokers(self) -> list[int]:
        return sorted(
            b.id for b in self.brokers.values() if not b.fenced and not b.in_controlled_shutdown
        )

    def is_eligible(self, broker_id: int) -> bool:
        registration = self.brokers.get(broker_id)
        return (
            registration is not None
            and not registration.fenced
            and not registration.in_controlled_shutdown
        )

    def handle_heartbeat(self, broker_id: int, metadata_offset: int, want_shutdown: bool) -> bool:
        """A broker heartbeat reached the active controller; returns whether the broker may be
        unfenced (it has caught up with metadata)."""
        if not self.has_quorum():
            return False
        self.last_heartbeat_ms[broker_id] = self.scheduler.now_ms
        self._arm_session_timer(broker_id)
        registration = self.brokers[broker_id]
        if want_shutdown:
            return False
        if registration.fenced and metadata_offset >= self.metadata_offset:
            self._unfence(broker_id)
        return True

    def _arm_session_timer(self, broker_id: int) -> None:
        timer = self._session_timers.get(broker_id)
        if timer is not None and not timer.cancelled:
            return
        timeout = int(self.config["broker.session.timeout.ms"])
        due = self.last_heartbeat_ms.get(broker_id, self.scheduler.now_ms) + timeout

        def expire() -> None:
            self._session_timers.pop(broker_id, None)
            if self.connected(broker_id):
                # Heartbeats are getting through (counted, not simulated, while steady).
                self._disconnected.discard(broker_id)
                return
            last = self.last_heartbeat_ms.get(broker_id, 0)
            if self.scheduler.now_ms - last < timeout:
                self._arm_session_timer(broker_id)
                return
            if not self.has_quorum():
                return
            registration = self.brokers.get(broker_id)
            if registration is not None and not registration.fenced:
                self.fence_broker(broker_id, f"missed heartbeats for {timeout // 1000} s")

        self._session_timers[broker_id] = self.scheduler.call_at(due, expire)

    def fence_broker(self, broker_id: int, reason: str) -> None:
        """C2: a fenced broker leaves every ISR and loses its leaderships."""
        registration = self.brokers[broker_id]
        registration.fenced = True
        registration.epoch += 1
        affected: list[str] = []
        self._commit(self._next_record("broker", broker=_copy_broker(registration)))
        for topic in self.topics.values():
            for partition, current in sorted(topic.partitions.items()):
                if broker_id not in current.isr and current.leader != broker_id:
                    continue
                affected.append(f"{topic.name}-{partition}")
                self._change_partition(topic, partition, remove=broker_id, reason="broker fenced")
        self.emit("broker_fenced", {"broker": broker_id, "reason": reason, "partitions": affected})

    def _unfence(self, broker_id: int) -> None:
        registration = self.brokers[broker_id]
        registration.fenced = False
        registration.in_controlled_shutdown = False
        self._commit(self._next_record("broker", broker=_copy_broker(registration)))
        self.emit("broker_unfenced", {"broker": broker_id})
        # C4: a leaderless partition whose ISR holds this broker gets it as leader.
        for topic in self.topics.values():
            for partition, current in sorted(topic.partitions.items()):
                if current.leader == NO_LEADER and broker_id in current.replicas:
                    self._change_partition(topic, partition, reason="broker unfenced")

    def controlled_shutdown(self, broker_id: int) -> None:
        registration = self.brokers[broker_id]
        registration.in_controlled_shutdown = True
        for topic in self.topics.values():
            for partition, current in sorted(topic.partitions.items()):
                if broker_id in current.isr or current.leader == broker_id:
                    self._change_partition(
                        topic, partition, remove=broker_id, reason="controlled shutdown"
                    )
        registration.fenced = True
        registration.epoch += 1
        self._commit(self._next_record("broker", broker=_copy_broker(registration)))
        self.emit(
            "broker_fenced",
            {"broker": broker_id, "reason": "controlled shutdown", "partitions": []},
        )

    # --- leader election (PartitionChangeBuilder) --------------------------------------------

    def _elect(
        self,
        topic: TopicRegistration,
        replicas: tuple[int, ...],
        isr: tuple[int, ...],
        allow_unclean: bool,
    ) -> tuple[int, tuple[int, ...], bool]:
        for replica in replicas:  # C3
            if replica in isr and self.is_eligible(replica):
                return replica, isr, False
        if allow_unclean:  # C5
            for replica in replicas:
                if self.is_eligible(replica):
                    return replica, (replica,), True
        return NO_LEADER, isr, False  # C4

    def _change_partition(
        self,
        topic: TopicRegistration,
        partition: int,
        remove: int | None = None,
        reason: str = "",
        force_unclean: bool = False,
    ) -> None:
        current = topic.partitions[partition]
        isr = current.isr
        if remove is not None and remove in isr:
            shrunk = tuple(b for b in isr if b != remove)
            # The ISR never becomes empty: the last member stays (C4).
            isr = shrunk if shrunk else isr
        unclean = force_unclean or bool(topic.config.get("unclean.leader.election.enable"))
        if current.reassigning:  # the change may complete the reassignment (PartitionChangeBuilder)
            self._build_change(topic, partition, isr=isr, unclean=unclean, reason=reason)
            return
        leader = current.leader
        elected_unclean = False
        if leader in (NO_LEADER, remove) or not self.is_eligible(leader):
            leader, isr, elected_unclean = self._elect(topic, current.replicas, isr, unclean)
        if leader == current.leader and isr == current.isr:
            return
        new = current.changed(
            isr=isr,
            leader=leader,
            leader_epoch=current.leader_epoch + (1 if leader != current.leader else 0),
            partition_epoch=current.partition_epoch + 1,
        )
        self._set_partition(topic.name, partition, new, "unclean" if elected_unclean else reason)

    def alter_partition(
        self,
        broker_id: int,
        topic_name: str,
        partition: int,
        leader_epoch: int,
        partition_epoch: int,
        new_isr: tuple[int, ...],
    ) -> tuple[str, PartitionRegistration | None]:
        """AlterPartition from a leader: returns (error name or "", current registration)."""
        if not self.has_quorum():
            return "NOT_CONTROLLER", None
        topic = self.topics.get(topic_name)
        if topic is None or partition not in topic.partitions:
            return "UNKNOWN_TOPIC_OR_PARTITION", None
        current = topic.partitions[partition]
        if current.leader != broker_id or current.leader_epoch != leader_epoch:
            return "FENCED_LEADER_EPOCH", current
        if current.partition_epoch != partition_epoch:
            return "INVALID_UPDATE_VERSION", current
        for replica in new_isr:
            if replica not in current.isr and not self.is_eligible(replica):
                return "INELIGIBLE_REPLICA", current
        reason = (
            "follower fell behind (replica.lag.time.max.ms)"
            if len(new_isr) < len(current.isr)
            else "follower caught up"
        )
        if current.reassigning:  # an adding replica caught up: the reassignment may complete
            return "", self._build_change(topic, partition, isr=tuple(new_isr), reason=reason)
        new = current.changed(isr=tuple(new_isr), partition_epoch=current.partition_epoch + 1)
        self._set_partition(topic_name, partition, new, reason)
        return "", new

    def elect_leaders(self, topic_name: str, partition: int, election_type: str) -> None:
        self.require_quorum()
        topic = self.topics.get(topic_name)
        if topic is None or partition not in topic.partitions:
            raise UnknownTopicOrPartitionError(f"{topic_name}-{partition} does not exist.")
        current = topic.partitions[partition]
        if election_type == "preferred":
            preferred = current.preferred_leader
            if current.leader == preferred:
                raise ElectionNotNeededError(
                    f"Broker {preferred} already leads {topic_name}-{partition}."
                )
            if preferred not in current.isr or not self.is_eligible(preferred):
                raise PreferredLeaderNotAvailableError(
                    f"Broker {preferred}, the preferred leader of {topic_name}-{partition}, is not "
                    "an eligible in-sync replica."
                )
            new = current.changed(
                leader=preferred,
                leader_epoch=current.leader_epoch + 1,
                partition_epoch=current.partition_epoch + 1,
            )
            self._set_partition(topic_name, partition, new, "preferred leader election")
        elif election_type == "unclean":
            if current.leader != NO_LEADER:
                raise ElectionNotNeededError(f"{topic_name}-{partition} already has a leader.")
            leader, isr, unclean = self._elect(topic, current.replicas, current.isr, True)
            if leader == NO_LEADER:
                raise EligibleLeadersNotAvailableError(
                    f"No replica of {topic_name}-{partition} is alive to lead it."
                )
            new = current.changed(
                leader=leader,
                isr=isr,
                leader_epoch=current.leader_epoch + 1,
                partition_epoch=current.partition_epoch + 1,
            )
            self._set_partition(topic_name, partition, new, "unclean" if unclean else "election")
        else:
            raise ValueError("election_type must be 'preferred' or 'unclean'")

    def _schedule_leader_rebalance(self) -> None:
        interval = int(self.config["leader.imbalance.check.interval.seconds"]) * 1000
        self._rebalance_timer = self.scheduler.call_later(interval, self._rebalance_leaders)

    def _rebalance_leaders(self) -> None:
        """R10: move leadership back to preferred replicas when a broker's imbalance passes the
        configured percentage."""
        self._schedule_leader_rebalance()
        if not self.config["auto.leader.rebalance.enable"] or not self.has_quorum():
            return
        threshold = int(self.config["leader.imbalance.per.broker.percentage"])
        preferred_of: dict[int, list[tuple[TopicRegistration, int]]] = {}
        for topic in self.topics.values():
            for partition, current in topic.partitions.items():
                preferred_of.setdefault(current.preferred_leader, []).append((topic, partition))
        for broker_id in sorted(preferred_of):
            owned = preferred_of[broker_id]
            not_led = [(t, p) for t, p in owned if t.partitions[p].leader != broker_id]
            if not owned or 100 * len(not_led) / len(owned) <= threshold:
                continue
            for topic, partition in not_led:
                current = topic.partitions[partition]
                if broker_id in current.isr and self.is_eligible(broker_id):
                    new = current.changed(
                        leader=broker_id,
                        leader_epoch=current.leader_epoch + 1,
                        partition_epoch=current.partition_epoch + 1,
                    )
                    self._set_partition(topic.name, partition, new, "auto leader rebalance")

    def try_unclean_elections(self, topic_name: str) -> None:
        topic = self.topics[topic_name]
        if not topic.config.get("unclean.leader.election.enable"):
            return
        for partition, current in sorted(topic.partitions.items()):
            if current.leader == NO_LEADER:
                self._change_partition(topic, partition, reason="unclean")

    # --- partition reassignment (KIP-455) ----------------------------------------------------

    def _build_change(
        self,
        topic: TopicRegistration,
        partition: int,
        *,
        isr: tuple[int, ...] | None = None,
        target: ReassignmentReplicas | None = None,
        unclean: bool = False,
        reason: str = "",
    ) -> PartitionRegistration:
        """Kafka's `PartitionChangeBuilder.build` for a partition that is (or starts) being
        reassigned: complete the reassignment when the ISR allows, keep the leader while it is
        a valid one (in the ISR and eligible) or elect the first valid target replica, and bump
        the leader epoch when the leader changes or replicas are removed."""
        current = topic.partitions[partition]
        ongoing = target or ReassignmentReplicas.ongoing(current)
        replicas, new_isr = ongoing.replicas, current.isr if isr is None else isr
        adding, removing = ongoing.adding, ongoing.removing
        completed = ongoing.maybe_complete(new_isr)
        if completed is not None:
            replicas, new_isr = completed
            adding, removing = (), ()
        leader = current.leader
        elected_unclean = False
        if not (leader in new_isr and self.is_eligible(leader)):
            valid = [r for r in replicas if r in new_isr and self.is_eligible(r)]
            if valid:
                leader = valid[0]
            elif unclean and any(self.is_eligible(r) for r in replicas):
                leader = next(r for r in replicas if self.is_eligible(r))
                new_isr, elected_unclean = (leader,), True
            else:
                leader = NO_LEADER
        bump = leader != current.leader or not set(current.replicas) <= set(replicas)
        new = current.changed(
            replicas=replicas,
            isr=new_isr,
            leader=leader,
            adding_replicas=adding,
            removing_replicas=removing,
            leader_epoch=current.leader_epoch + (1 if bump else 0),
            partition_epoch=current.partition_epoch + 1,
        )
        if new.changed(partition_epoch=current.partition_epoch) == current:
            return current
        if completed is not None:
            reason = "partition reassignment completed"
        self._set_partition(topic.name, partition, new, "unclean" if elected_unclean else reason)
        if completed is not None:
            self.emit(
                "reassignment_completed",
                {
                    "topic": topic.name,
                    "partition": partition,
                    "replicas": list(replicas),
                    "removed": list(ongoing.removing),
                    "leader": leader,
                },
            )
        return new

    def alter_partition_reassignment(
        self, topic_name: str, partition: int, target: Iterable[int] | None
    ) -> None:
        """AlterPartitionReassignments for one partition: start (or replace) a reassignment to
        `target`, or cancel the ongoing one when `target` is None (raises KafkaError)."""
        self.require_quorum()
        topic = self.topics.get(topic_name)
        if topic is None:
            raise UnknownTopicOrPartitionError(f"Unable to find a topic named {topic_name}.")
        current = topic.partitions.get(partition)
        if current is None:
            raise UnknownTopicOrPartitionError(
                f"Unable to find partition {topic_name}:{partition}."
            )
        if target is None:
            self._cancel_reassignment(topic, partition, current)
            return
        wanted = tuple(target)
        validate_manual_assignment(wanted, set(self.brokers))
        reassignment = ReassignmentReplicas.of(current.replicas, wanted)
        new = self._build_change(
            topic, partition, target=reassignment, reason="partition reassignment"
        )
        if new.reassigning:
            self.emit(
                "reassignment_started",
                {
                    "topic": topic_name,
                    "partition": partition,
                    "target": list(wanted),
                    "adding": list(new.adding_replicas),
                    "removing": list(new.removing_replicas),
                },
            )

    def _cancel_reassignment(
        self, topic: TopicRegistration, partition: int, current: PartitionRegistration
    ) -> None:
        if not current.reassigning:
            raise NoReassignmentInProgressError("No partition reassignment is in progress.")
        replicas, isr, needs_unclean = revert(current)
        unclean = bool(topic.config.get("unclean.leader.election.enable"))
        if needs_unclean and not unclean:
            raise InvalidReplicaAssignmentError(
                f"Unable to revert partition assignment for {topic.name}:{partition} because "
                "it would require an unclean leader election."
            )
        self._build_change(
            topic,
            partition,
            isr=isr,
            target=ReassignmentReplicas((), (), replicas),
            unclean=unclean,
            reason="partition reassignment cancelled",
        )
        self.emit(
            "reassignment_cancelled",
            {"topic": topic.name, "partition": partition, "replicas": list(replicas)},
        )

    def list_partition_reassignments(
        self, partitions: Iterable[tuple[str, int]] | None = None
    ) -> list[tuple[str, int, PartitionRegistration]]:
        """ListPartitionReassignments: the ongoing reassignments (of the given partitions, or
        all), sorted by topic and partition."""
        self.require_quorum()
        wanted = None if partitions is None else set(partitions)
        found = []
        for name in sorted(self.topics):
            for number, registration in sorted(self.topics[name].partitions.items()):
                if registration.reassigning and (wanted is None or (name, number) in wanted):
                    found.append((name, number, registration))
        return found

    # --- topics ------------------------------------------------------------------------------

    def assign_replicas(
        self,
        partitions: int,
        replication_factor: int,
        first_partition: int = 0,
        existing: dict[int, PartitionRegistration] | None = None,
    ) -> list[tuple[int, ...]]:
        """Spread leaders and followers evenly, from a seeded random start (AdminUtils-style)."""
        brokers = self.usable_brokers()
        if replication_factor > len(brokers):
            raise InvalidReplicationFactorError(
                f"Unable to replicate the partition {replication_factor} time(s): The target "
                f"replication factor of {replication_factor} cannot be reached because only "
                f"{len(brokers)} broker(s) are registered."
            )
        count = len(brokers)
        start = self.rng.randrange(count)
        shift = self.rng.randrange(count)
        assignments: list[tuple[int, ...]] = []
        for index in range(first_partition, first_partition + partitions):
            if index > 0 and index % count == 0:
                shift += 1
            first = (start + index) % count
            replicas = [brokers[first]]
            for j in range(replication_factor - 1):
                offset = 1 + (shift + j) % (count - 1) if count > 1 else 0
                replicas.append(brokers[(first + offset) % count])
            assignments.append(tuple(replicas))
        return assignments

    def create_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        config: dict[str, Any],
        internal: bool = False,
        overrides: Iterable[str] = (),
    ) -> TopicRegistration:
        self.require_quorum()
        if name in self.topics:
            raise TopicExistsError(f"Topic '{name}' already exists.")
        if partitions < 1:
            raise InvalidPartitionsError("Number of partitions must be larger than 0.")
        if replication_factor < 1:
            raise InvalidReplicationFactorError("Replication factor must be larger than 0.")
        assignments = self.assign_replicas(partitions, replication_factor)
        topic = TopicRegistration(
            name, self._next_topic_id, {}, dict(config), internal, set(overrides)
        )
        self._next_topic_id += 1
        self.topics[name] = topic
        self._commit(
            self._next_record(
                "topic",
                topic=name,
                config=dict(config),
                internal=internal,
                overrides=frozenset(topic.overrides),
            )
        )
        for partition, replicas in enumerate(assignments):
            self._set_partition(
                name,
                partition,
                PartitionRegistration(replicas, replicas, replicas[0], 0, 0),
                "created",
            )
        self.emit(
            "topic_created",
            {
                "topic": name,
                "partitions": partitions,
                "replication_factor": replication_factor,
                "assignment": [list(r) for r in assignments],
            },
        )
        return topic

    def add_partitions(self, name: str, total: int) -> None:
        self.require_quorum()
        topic = self.topics.get(name)
        if topic is None:
            raise UnknownTopicOrPartitionError(f"Topic '{name}' does not exist.")
        current = len(topic.partitions)
        if total <= current:
            raise InvalidPartitionsError(
                f"Topic '{name}' has {current} partitions; the new count must be larger, "
                f"not {total}."
            )
        replication_factor = len(topic.partitions[0].replicas)
        assignments = self.assign_replicas(
            total - current, replication_factor, first_partition=current
        )
        for offset, replicas in enumerate(assignments):
            self._set_partition(
                name,
                current + offset,
                PartitionRegistration(replicas, replicas, replicas[0], 0, 0),
                "created",
            )
        self.emit("partitions_added", {"topic": name, "from": current, "to": total})

    def delete_topic(self, name: str) -> None:
        self.require_quorum()
        if name not in self.topics:
            raise UnknownTopicOrPartitionError(f"Topic '{name}' does not exist.")
        del self.topics[name]
        self._commit(self._next_record("remove_topic", topic=name))
        self.emit("topic_deleted", {"topic": name})

    def alter_config(self, name: str, config: dict[str, Any], deleted: Iterable[str] = ()) -> None:
        """Set topic configs; keys in `deleted` stop being the topic's own (their values in
        `config` are the broker's defaults they return to)."""
        self.require_quorum()
        topic = self.topics.get(name)
        if topic is None:
            raise UnknownTopicOrPartitionError(f"Topic '{name}' does not exist.")
        topic.config.update(config)
        removed = set(deleted)
        topic.overrides = (topic.overrides | set(config)) - removed
        self._commit(
            self._next_record(
                "config",
                topic=name,
                config=dict(topic.config),
                overrides=frozenset(topic.overrides),
            )
        )
        self.emit("topic_config_changed", {"topic": name, "changes": dict(config)})
        if config.get("unclean.leader.election.enable"):
            self.try_unclean_elections(name)

    # --- dynamic broker configs (IncrementalAlterConfigs on BROKER resources) -----------------

    def alter_broker_config(
        self,
        entity: str,
        sets: dict[str, Any],
        deletes: Iterable[str],
        topic_defaults: dict[str, Any],
    ) -> None:
        """Commit one entity's dynamic broker config layer (validated by the caller) and apply
        it: the cluster default changes the broker defaults every topic follows (the topics'
        effective configs and the controller's unclean-election rule); a broker's own layer is
        applied by that broker to the replicas it hosts."""
        self.require_quorum()
        layer = dict(self.broker_configs.get(entity, {}))
        removed = [k for k in deletes if k in layer]
        for key in removed:
            del layer[key]
        layer.update(sets)
        if layer:
            self.broker_configs[entity] = layer
        else:
            self.broker_configs.pop(entity, None)
        self._commit(self._next_record("broker_config", topic=entity, config=dict(layer)))
        if entity == "":
            self._apply_cluster_defaults([*sets, *removed], topic_defaults)
        self.emit(
            "broker_config_changed",
            {
                "broker": None if entity == "" else int(entity),
                "changes": dict(sets),
                "deleted": removed,
            },
        )

    def _apply_cluster_defaults(self, keys: list[str], topic_defaults: dict[str, Any]) -> None:
        layer = self.broker_configs.get("", {})
        for key in keys:
            self.config[key] = layer.get(key, self.static_config[key])
        changed = {
            topic_key: self.config[broker_key]
            for topic_key, broker_key in TOPIC_BROKER_SYNONYMS.items()
            if broker_key in keys
        }
        topic_defaults.update(changed)
        for topic in self.topics.values():
            follows = {k: v for k, v in changed.items() if k not in topic.overrides}
            if not follows or all(topic.config.get(k) == v for k, v in follows.items()):
                continue
            topic.config.update(follows)
            self._commit(
                self._next_record(
                    "config",
                    topic=topic.name,
                    config=dict(topic.config),
                    overrides=frozenset(topic.overrides),
                )
            )
            if follows.get("unclean.leader.election.enable"):
                # DynamicLogConfig.reconfigure: enabling it cluster-wide elects leaderless
                # partitions at once.
                self.try_unclean_elections(topic.name)


def _copy_broker(registration: BrokerRegistration) -> BrokerRegistration:
    return BrokerRegistration(
        registration.id,
        registration.fenced,
        registration.in_controlled_shutdown,
        registration.epoch,
    )
