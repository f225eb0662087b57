"""Why the cluster said no: one sentence per refusal and the lesson that explains it.

The one mapping from a refusal (a Kafka error name, or a situation such as a rebalance or an
unclean election) to the sentence the stage shows beside it and the id of the lesson that
teaches it. The lesson player links its lessons by these ids; a lesson renamed there is renamed
here, in `LESSONS`, and nowhere else.

Lesson ids (slugs; the lesson page is `/lessons/<id>/`):

| id | what it teaches |
| --- | --- |
| `replication-isr` | replicas, the ISR, high watermark, `acks` and `min.insync.replicas` |
| `leader-failover` | a dead leader: fencing, clean and unclean elections, epochs |
| `idempotent-producer` | retries, `delivery.timeout.ms`, idempotence, the buffer |
| `rebalancing` | group membership, rebalances, generations, assignment |
| `transactions` | epochs that fence an old producer or consumer (a zombie) |
| `keys-and-ordering` | partitions, keys and the partitioner; partitions only grow |
| `offsets-commits` | committed offsets, auto-commit, resets |
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

LESSONS: dict[str, str] = {
    "replication-isr": "Replication, the ISR, LEO and the high watermark",
    "leader-failover": "Broker failure, leader election and unclean election",
    "idempotent-producer": "Retries, idempotence and delivery.timeout.ms",
    "rebalancing": "Rebalances, liveness timeouts and Kafka 4's group protocol",
    "transactions": "Transactions, read_committed and zombie fencing",
    "keys-and-ordering": "Keys, partitions and what ordering really means",
    "offsets-commits": "Offsets, commit modes and replay",
}


@dataclass(frozen=True)
class Why:
    sentence: str
    lesson: str  # a key of LESSONS

    @property
    def lesson_title(self) -> str:
        return LESSONS[self.lesson]

    @property
    def lesson_url(self) -> str:
        return lesson_url(self.lesson)


def lesson_url(lesson_id: str) -> str:
    """The lesson's page: the lesson player's URL when it is installed, else its agreed path."""
    try:
        return reverse("lesson-detail", args=[lesson_id])
    except NoReverseMatch:
        return f"/lessons/{lesson_id}/"


# Refusals by Kafka's exception name (the name the engine's events and errors carry).
REFUSALS: dict[str, Why] = {
    "NotEnoughReplicasException": Why(
        "acks=all needs min.insync.replicas replicas in the ISR and fewer are in sync, so the "
        "leader refuses the write and the producer retries until delivery.timeout.ms.",
        "replication-isr",
    ),
    "NotEnoughReplicasAfterAppendException": Why(
        "The leader wrote the record, then the ISR fell below min.insync.replicas before the "
        "followers caught up, so the write is not acknowledged and is retried.",
        "replication-isr",
    ),
    "NotLeaderOrFollowerException": Why(
        "The producer wrote to a broker that is no longer the partition's leader; it refreshes "
        "its metadata and retries on the new leader.",
        "leader-failover",
    ),
    "LeaderNotAvailableException": Why(
        "The partition has no leader for a moment (an election is under way); the producer "
        "waits and retries.",
        "leader-failover",
    ),
    "NetworkException": Why(
        "The connection to the leader broke before an answer came back; the producer cannot "
        "know whether the write landed, so it retries.",
        "idempotent-producer",
    ),
    "TimeoutException": Why(
        "delivery.timeout.ms ran out before any attempt succeeded, so the producer gave up "
        "and failed the send.",
        "idempotent-producer",
    ),
    "RequestTimedOutException": Why(
        "No answer came within request.timeout.ms; the producer retries while "
        "delivery.timeout.ms allows.",
        "idempotent-producer",
    ),
    "BufferExhaustedException": Why(
        "The producer's buffer.memory is full of records waiting for the cluster and "
        "max.block.ms passed without room freeing up.",
        "idempotent-producer",
    ),
    "InvalidPartitionsException": Why(
        "A topic's partition count can only grow, and must be at least 1.",
        "keys-and-ordering",
    ),
    "ProducerFencedException": Why(
        "A newer producer with the same transactional.id bumped the epoch; the old one is a "
        "zombie and every write it tries is refused.",
        "transactions",
    ),
    "InvalidProducerEpochException": Why(
        "The broker knows a newer epoch for this producer id; writes under the old epoch are "
        "refused so a zombie cannot add records.",
        "transactions",
    ),
    "CommitFailedException": Why(
        "The group rebalanced without this consumer; its partitions belong to someone else now, "
        "so its offsets are refused.",
        "transactions",
    ),
    "IllegalGenerationException": Why(
        "The member speaks for an old generation of the group; after a rebalance only the "
        "current generation may commit.",
        "transactions",
    ),
    "UnknownMemberIdException": Why(
        "The coordinator removed this member (it stopped heartbeating or polling in time); it "
        "must join the group again.",
        "rebalancing",
    ),
    "RebalanceInProgressException": Why(
        "The group is rebalancing; members stop, give up their partitions and rejoin.",
        "rebalancing",
    ),
}

# Situations that are not one error name.
SITUATIONS: dict[str, Why] = {
    "rebalance": Why(
        "The group's membership changed, so the coordinator stops every member, takes their "
        "partitions back and hands them out again; nobody reads meanwhile.",
        "rebalancing",
    ),
    "unclean_election": Why(
        "No in-sync replica was left, and unclean.leader.election.enable let an out-of-sync "
        "replica lead: records it never had are gone for good.",
        "leader-failover",
    ),
    "leader_election": Why(
        "The controller moved leadership to a replica in the ISR, with a higher leader epoch "
        "so the old leader's writes are refused if it comes back.",
        "leader-failover",
    ),
    "truncation": Why(
        "A replica's log held records past what the new leader had; it cut them off to match "
        "the leader (they were never committed).",
        "replication-isr",
    ),
    "fenced_zombie": Why(
        "A member the group removed tried to act under its old generation and was refused: "
        "the epoch fences the zombie.",
        "transactions",
    ),
    "member_removed": Why(
        "The coordinator stopped hearing this member within session.timeout.ms (or it never "
        "rejoined in time) and took its partitions away; if it comes back and commits under its "
        "old generation it is refused as a zombie.",
        "transactions",
    ),
    "effective_min_isr": Why(
        "Since Kafka 3.7 the effective min.insync.replicas is capped at the replication factor, "
        "so a setting above it behaves as the replication factor.",
        "replication-isr",
    ),
}


def why_refused(error_name: str) -> Why | None:
    """The why of a refusal by Kafka's name; `...Error` spellings are accepted too."""
    name = str(error_name or "").split(":")[0].strip()
    if name.isupper():  # a protocol error code: ILLEGAL_GENERATION
        name = "".join(part.capitalize() for part in name.split("_")) + "Exception"
    if name.endswith("Error"):
        name = name[: -len("Error")] + "Exception"
    if name == "KafkaTimeoutException":
        name = "TimeoutException"
    return REFUSALS.get(name)
