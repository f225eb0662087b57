"""Partition reassignment (KIP-455) as Kafka's controller computes it: the replica lists of an
ongoing reassignment (`PartitionReassignmentReplicas`), when it completes, and what cancelling
it reverts to (`PartitionReassignmentRevert`).

A reassignment runs in three steps (ReplicationControlManager.changePartitionReassignment):
the partition's replicas become the target followed by the replicas being removed, with
`adding_replicas` and `removing_replicas` set; the adding replicas fetch from the leader and
join the ISR as they catch up; once the ISR holds every target replica, the controller drops the
removing replicas from the replicas and the ISR (electing a leader from the target when the
leader was one of them) and clears both lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.common.metadata import PartitionRegistration
from engine.errors import InvalidReplicaAssignmentError


@dataclass(frozen=True, slots=True)
class ReassignmentReplicas:
    """Kafka's `PartitionReassignmentReplicas`."""

    removing: tuple[int, ...]
    adding: tuple[int, ...]
    replicas: tuple[int, ...]

    @classmethod
    def of(cls, current: tuple[int, ...], target: tuple[int, ...]) -> ReassignmentReplicas:
        removing = tuple(sorted(set(current) - set(target)))
        adding = tuple(sorted(set(target) - set(current)))
        return cls(removing, adding, (*target, *removing))

    @classmethod
    def ongoing(cls, registration: PartitionRegistration) -> ReassignmentReplicas:
        return cls(
            registration.removing_replicas, registration.adding_replicas, registration.replicas
        )

    @property
    def in_progress(self) -> bool:
        return bool(self.removing or self.adding)

    def maybe_complete(
        self, isr: tuple[int, ...]
    ) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """(replicas, isr) once the reassignment can complete with this ISR, else None."""
        if not self.in_progress:
            return None
        new_isr, new_replicas = isr, self.replicas
        if self.removing:
            new_isr = tuple(r for r in isr if r not in self.removing)
            if not new_isr:
                return None
            new_replicas = tuple(r for r in self.replicas if r not in self.removing)
            if not new_replicas:
                return None
        if not set(new_replicas) <= set(new_isr):
            return None
        return new_replicas, new_isr

    def original_replicas(self) -> tuple[int, ...]:
        return tuple(r for r in self.replicas if r not in self.adding)


def revert(registration: PartitionRegistration) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
    """Kafka's `PartitionReassignmentRevert`: (replicas, isr, unclean) after cancelling; unclean
    when every ISR member was an adding replica (the first original replica becomes the ISR)."""
    ongoing = ReassignmentReplicas.ongoing(registration)
    replicas = ongoing.original_replicas()
    isr = tuple(r for r in registration.isr if r not in ongoing.adding)
    if isr:
        return replicas, isr, False
    if not replicas:
        raise InvalidReplicaAssignmentError(
            "Invalid replica assignment: addingReplicas contains all replicas."
        )
    return replicas, (replicas[0],), True


def validate_manual_assignment(target: tuple[int, ...], registered: set[int]) -> None:
    """ReplicationControlManager.validateManualPartitionAssignment, with Kafka's messages."""
    if not target:
        raise InvalidReplicaAssignmentError(
            "The manual partition assignment includes an empty replica list."
        )
    previous: int | None = None
    for broker_id in sorted(target):
        if broker_id not in registered:
            raise InvalidReplicaAssignmentError(
                f"The manual partition assignment includes broker {broker_id}, but no such "
                "broker is registered."
            )
        if broker_id == previous:
            raise InvalidReplicaAssignmentError(
                f"The manual partition assignment includes the broker {previous} more than once."
            )
        previous = broker_id
