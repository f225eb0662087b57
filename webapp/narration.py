"""Engine events told as plain sentences, the way an instructor would narrate the stage.

Events of one moment that belong together are told as one line: a broker fenced at 11.0 s and
the ISR shrinks that its fencing caused become "broker 2 missed heartbeats for 9 s: fenced,
removed from the ISR of orders-0 and orders-2". Internal topics (`__consumer_offsets`) are left
out of the story unless nothing else happened, since a learner watches their own topics.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lessons.scenarios.events import EVENT_KINDS

# Chatty bookkeeping a learner does not need narrated line by line.
QUIET_KINDS = frozenset(
    {
        "app_processed",
        "app_started",
        "coordinator_found",
        "partitions_assigned",
        "segment_rolled",
    }
)


# What outranks routine work: elections, ISR changes, refusals, rebalances, data loss.
KEY_KINDS = frozenset(
    {
        "broker_stopped",
        "broker_fenced",
        "broker_started",
        "broker_unfenced",
        "controller_stopped",
        "controller_elected",
        "controller_lost_quorum",
        "network_partitioned",
        "network_healed",
        "leader_elected",
        "isr_shrunk",
        "isr_expanded",
        "log_truncated",
        "produce_failed",
        "produce_retried",
        "producer_epoch_bumped",
        "transaction_aborted",
        "rebalance_started",
        "rebalance_completed",
        "member_removed",
        "partitions_lost",
        "offsets_commit_failed",
        "auto_commit_failed",
        "max_poll_interval_exceeded",
        "consumer_crashed",
        "app_crashed",
        "offset_out_of_range",
        "topic_created",
        "partitions_added",
        "topic_config_changed",
        "producer_buffer_blocked",
        "producer_buffer_exhausted",
        "log_truncation_detected",
        "controller_request_timed_out",
    }
)

# The headline's order among the events of recent moments (higher wins; then the newest).
HEADLINE_RANK = {
    "log_truncated": 9,
    "produce_failed": 8,
    "leader_elected": 7,
    "produce_retried": 6,
    "rebalance_started": 5,
    "offsets_commit_failed": 5,
    "broker_fenced": 4,
    "isr_shrunk": 4,
    "broker_stopped": 3,
}
HEADLINE_HOLD_MS = 5_000  # a key event stays the headline this long over routine work
QUIET_AFTER_MS = 10_000  # with nothing told for this long, the narration says since when


@dataclass(frozen=True)
class NarratedEvent:
    time_ms: int
    kind: str
    text: str
    level: str = "info"  # "info", "warn" or "bad"
    repeats: int = 1  # told this many times (a retry loop, or routine work folded together)
    importance: str = "routine"  # "key" (elections, ISR, refusals, loss) or "routine"
    changes: tuple[str, ...] = ()  # metrics this event moved: "UnderReplicatedPartitions 0 → 3"
    why: str = ""  # one sentence: why the cluster refused or did this
    lesson: str = ""  # the id of the lesson that explains it (webapp.why.LESSONS)
    fold: tuple[Any, ...] | None = None  # events with the same fold key are told as one line
    first_ms: int = 0  # a folded line: the time of its first event

    @property
    def seconds(self) -> float:
        return self.time_ms / 1000

    @property
    def lesson_url(self) -> str:
        from webapp.why import lesson_url

        return lesson_url(self.lesson) if self.lesson else ""

    @property
    def lesson_title(self) -> str:
        from webapp.why import LESSONS

        return LESSONS.get(self.lesson, "")


def _internal(data: dict[str, Any]) -> bool:
    return str(data.get("topic", "")).startswith("__")


def _tp(data: dict[str, Any]) -> str:
    return f"{data.get('topic')}-{data.get('partition')}"


def _and(items: Sequence[str]) -> str:
    items = list(items)
    if not items:
        return "nothing"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _brokers(ids: Iterable[Any]) -> str:
    ids = list(ids)
    if not ids:
        return "no broker"
    word = "broker" if len(ids) == 1 else "brokers"
    return f"{word} {_and([str(i) for i in ids])}"


def _public(names: Iterable[str]) -> list[str]:
    return [n for n in names if not str(n).startswith("__")]


def _broker_stopped(d: dict[str, Any]) -> tuple[str, str]:
    if d.get("controlled"):
        return f"broker {d.get('broker')} finished its controlled shutdown and stopped", "warn"
    return (
        f"broker {d.get('broker')} crashed: no controlled shutdown, the controller will notice "
        "through missed heartbeats",
        "bad",
    )


def _broker_fenced(d: dict[str, Any]) -> tuple[str, str]:
    reason = str(d.get("reason") or "fenced")
    if reason == "controlled shutdown":
        return (
            f"broker {d.get('broker')} began a controlled shutdown: fenced, its leaderships "
            "move to other replicas first",
            "warn",
        )
    return f"broker {d.get('broker')} {reason}: fenced by the controller", "bad"


def _leader_elected(d: dict[str, Any]) -> tuple[str, str]:
    leader = d.get("leader")
    who = "no leader (offline)" if leader in (-1, None) else f"broker {leader}"
    text = f"new leader for {_tp(d)}: {who} (epoch {d.get('leader_epoch')}"
    if d.get("previous_leader") not in (None, -1):
        text += f", was broker {d.get('previous_leader')}"
    text += ")"
    if d.get("unclean"):
        return text + "; an unclean election: acknowledged records may be lost", "bad"
    return text, "warn"


def _isr_shrunk(d: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{_brokers(d.get('removed', []))} left the ISR of {_tp(d)}; in sync now: "
        f"{_brokers(d.get('isr', []))}",
        "warn",
    )


def _isr_expanded(d: dict[str, Any]) -> tuple[str, str]:
    return f"{_brokers(d.get('added', []))} caught up and rejoined the ISR of {_tp(d)}", "info"


def _log_truncated(d: dict[str, Any]) -> tuple[str, str]:
    return (
        f"broker {d.get('broker')} truncated its copy of {_tp(d)} to offset "
        f"{d.get('truncated_to')}, dropping {d.get('records', 0)} records the new leader "
        "never had",
        "bad",
    )


def _rebalance_completed(d: dict[str, Any]) -> tuple[str, str]:
    assignment = d.get("assignment") or {}
    parts = []
    for member, tps in sorted(assignment.items()):
        short = str(member).split("-")[0:2]
        names = ", ".join(f"{t}-{p}" for t, p in tps) or "nothing"
        parts.append(f"{'-'.join(short)} gets {names}")
    summary = "; ".join(parts) if parts else "no members"
    return (
        f"group {d.get('group')} finished rebalancing (generation {d.get('generation')}): "
        f"{summary}",
        "info",
    )


def _offsets_committed(d: dict[str, Any]) -> tuple[str, str]:
    offsets = d.get("offsets") or []
    shown = ", ".join(f"{t}-{p} at offset {o}" for t, p, o in offsets[:3])
    more = f" and {len(offsets) - 3} more" if len(offsets) > 3 else ""
    return f"group {d.get('group')} committed {shown}{more}", "info"


# Errors a broker answers with on purpose (a refusal), as opposed to a write lost on the way.
REFUSAL_ERRORS = ("NotEnoughReplicas", "NotLeaderOrFollower", "LeaderNotAvailable", "Fenced")


def _produce_retried(d: dict[str, Any]) -> tuple[str, str]:
    who = d.get("producer") or "the producer"
    error = str(d.get("error"))
    how = "was refused with" if any(r in error for r in REFUSAL_ERRORS) else "failed with"
    return (
        f"{who}: the write to {_tp(d)} {how} {error}; retrying (attempt {d.get('attempt')})",
        "warn",
    )


def _kib(size: Any) -> str:
    return f"{int(size or 0) // 1024} KiB"


def _buffer_blocked(d: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{d.get('producer')}'s buffer.memory ({_kib(d.get('buffer_memory'))}) is full of "
        "batches the brokers have not acknowledged: send() now waits, up to "
        f"max.block.ms ({int(d.get('max_block_ms') or 0) / 1000:g} s), for a batch to finish",
        "warn",
    )


_MEMBER_ID = re.compile(
    r"\b([a-z][\w.]*?-\d+)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
)


def short_ids(text: str) -> str:
    """`consumer-2-c6a60420-8f81-...` -> `consumer-2`: member ids as a learner names them."""
    return _MEMBER_ID.sub(r"\1", text)


def _buffer_exhausted(d: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{d.get('producer')} waited {int(d.get('waited_ms') or 0) / 1000:g} s and no buffer "
        "came free: the send failed with BufferExhaustedException (the producer is faster "
        "than the brokers)",
        "bad",
    )


def _truncation_detected(d: dict[str, Any]) -> tuple[str, str]:
    where = _tp(d)
    lost = f"{d.get('client')} had read {where} up to offset {d.get('position')}, but "
    if d.get("divergent_offset") is None:
        lost += "the new leader shares no epoch with what it read"
    else:
        lost += f"the new leader's log parts from it at offset {d.get('divergent_offset')}"
    if d.get("reset_to") is None:
        return lost + ": poll() raises LogTruncationException (auto.offset.reset=none)", "bad"
    return lost + f": it moves back to {d.get('reset_to')} and reads the new records", "warn"


def _produce_failed(d: dict[str, Any]) -> tuple[str, str]:
    where = f" to {_tp(d)}" if d.get("topic") is not None else ""
    return f"a send{where} failed with {d.get('error')}", "bad"


SIMPLE: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "broker_stopped": _broker_stopped,
    "broker_fenced": _broker_fenced,
    "broker_started": lambda d: (f"broker {d.get('broker')} started again", "info"),
    "broker_unfenced": lambda d: (
        f"broker {d.get('broker')} is unfenced: the controller trusts it again",
        "info",
    ),
    "controller_stopped": lambda d: (f"controller {d.get('controller')} stopped", "warn"),
    "controller_started": lambda d: (f"controller {d.get('controller')} started", "info"),
    "controller_elected": lambda d: (
        f"controller {d.get('controller')} won the KRaft election (epoch {d.get('epoch')})",
        "warn",
    ),
    "leader_elected": _leader_elected,
    "isr_shrunk": _isr_shrunk,
    "isr_expanded": _isr_expanded,
    "log_truncated": _log_truncated,
    "segment_deleted": lambda d: (f"retention deleted a segment of {_tp(d)}", "info"),
    "log_compacted": lambda d: (f"the log cleaner compacted {_tp(d)}", "info"),
    "topic_created": lambda d: (
        f"topic {d.get('topic')} created: {d.get('partitions')} partitions, replication "
        f"factor {d.get('replication_factor')}",
        "info",
    ),
    "member_joined": lambda d: (
        f"{d.get('client_id')} joined group {d.get('group')}",
        "info",
    ),
    "rebalance_started": lambda d: (
        f"group {d.get('group')} started a rebalance: {short_ids(str(d.get('reason')))}",
        "warn",
    ),
    "rebalance_completed": _rebalance_completed,
    "offsets_committed": _offsets_committed,
    "offset_reset": lambda d: (
        f"{d.get('client')} reset its position on {_tp(d)} to {d.get('to')} "
        f"(offset {d.get('offset')})",
        "info",
    ),
    "produce_failed": _produce_failed,
    "produce_retried": _produce_retried,
    "member_removed": lambda d: (
        f"group {d.get('group')} removed {d.get('client_id') or d.get('member')}"
        + (f" ({d.get('reason')})" if d.get("reason") else ""),
        "warn",
    ),
    "offsets_commit_failed": lambda d: (
        f"group {d.get('group')} refused a commit from "
        f"{d.get('client_id') or d.get('client') or 'a member'}: {d.get('error')}",
        "bad",
    ),
    "max_poll_interval_exceeded": lambda d: (
        f"{d.get('client_id') or d.get('client')} took longer than max.poll.interval.ms "
        "between polls and leaves its group",
        "warn",
    ),
    "producer_buffer_blocked": _buffer_blocked,
    "producer_buffer_unblocked": lambda d: (
        f"{d.get('producer')}'s send() got buffer memory back after "
        f"{int(d.get('waited_ms') or 0)} ms and goes on",
        "info",
    ),
    "producer_buffer_exhausted": _buffer_exhausted,
    "log_truncation_detected": _truncation_detected,
    "offsets_deleted": lambda d: (
        f"group {d.get('group')} lost its committed offsets on "
        + ", ".join(f"{t}-{p}" for t, p in d.get("offsets", [])[:4])
        + (" and more" if len(d.get("offsets", [])) > 4 else "")
        + f" ({d.get('reason')})",
        "info",
    ),
    "controller_request_timed_out": lambda d: (
        f"{d.get('api')} hung for {int(d.get('waited_ms') or 0) / 1000:g} s: the broker found "
        "no active controller to forward it to and answered with a TimeoutException",
        "bad",
    ),
    "transaction_committed": lambda d: (
        f"transaction {d.get('transactional_id', '')} committed".replace("  ", " "),
        "info",
    ),
    "transaction_aborted": lambda d: (
        f"transaction {d.get('transactional_id', '')} aborted".replace("  ", " "),
        "warn",
    ),
    "network_partitioned": lambda d: (
        "the network was cut: "
        + " | ".join("{" + ", ".join(str(n) for n in g) + "}" for g in d.get("groups", []))
        + " cannot reach the rest",
        "bad",
    ),
    "offsets_topic_creation_failed": lambda d: (
        f"the group coordinator could not create __consumer_offsets yet ({d.get('error')}); "
        "consumers keep retrying",
        "warn",
    ),
    "network_healed": lambda d: ("the network healed: every node reaches every other", "info"),
    "coordinator_lost": lambda d: (
        f"{d.get('client')} lost its group coordinator (broker {d.get('coordinator')})",
        "warn",
    ),
    "group_coordinator_loaded": lambda d: (
        f"broker {d.get('broker')} is now coordinator of {_and(_public(d.get('groups', [])))}",
        "info",
    ),
}


# Narration tells the kinds of the engine's one event catalogue (the one scenario expectations
# and lessons wait on): a kind told or kept quiet here that the catalogue lacks is a typo.
_STRAY_KINDS = (set(SIMPLE) | QUIET_KINDS | {"broker_fenced", "isr_shrunk"}) - set(EVENT_KINDS)
if _STRAY_KINDS:
    raise RuntimeError(f"narration tells event kinds the catalogue lacks: {sorted(_STRAY_KINDS)}")


def _fence_story(fenced: dict[str, Any], shrinks: list[dict[str, Any]]) -> tuple[str, str]:
    reason = str(fenced.get("reason") or "was fenced")
    removed_from = [_tp(s) for s in shrinks if not _internal(s)]
    text = f"broker {fenced.get('broker')} {reason}: fenced"
    if removed_from:
        text += f", removed from the ISR of {_and(removed_from)}"
    return text, "bad"


def narrate(
    events: Sequence[Any],
    *,
    include_internal: bool = False,
    changes: Mapping[int, Sequence[Any]] | None = None,
) -> list[NarratedEvent]:
    """Sentences for `events` (objects with `.time_ms`, `.kind`, `.data`), oldest first.

    `changes` maps a position in `events` to the metric changes that event caused (objects
    with `.metric`, `.before`, `.after`; see webapp.metrics); a sentence shows the changes of
    every event it tells. Routine work (commits, joins) is folded: a group's commits become
    one line, "group billing committed 3 partitions, 12 times", until something important
    happens in between.
    """
    told: list[NarratedEvent] = []
    # Group by moment so a fencing and the ISR shrinks it caused read as one sentence.
    index = 0
    while index < len(events):
        moment = events[index].time_ms
        first = index
        batch = []
        while index < len(events) and events[index].time_ms == moment:
            batch.append(events[index])
            index += 1
        for event, sources in _narrate_moment(moment, batch, include_internal):
            if changes:
                merged = _merge_changes(changes, [first + i for i in sources])
                event = replace(event, changes=merged)
            if told and told[-1].kind == event.kind and told[-1].text == event.text:
                # A retry loop says one thing many times: tell it once, with a count.
                event = replace(event, repeats=told[-1].repeats + 1, first_ms=told[-1].first_ms)
                told[-1] = event
                continue
            folded = _fold_into(told, event)
            if folded is None:
                told.append(event)
    return told


def _merge_changes(changes: Mapping[int, Sequence[Any]], positions: list[int]) -> tuple[str, ...]:
    first_before: dict[str, Any] = {}
    last_after: dict[str, Any] = {}
    for position in sorted(positions):
        for change in changes.get(position, ()):
            first_before.setdefault(change.metric, change.before)
            last_after[change.metric] = change.after
    return tuple(
        f"{metric} {first_before[metric]:g} → {last_after[metric]:g}"
        for metric in first_before
        if first_before[metric] != last_after[metric]
    )


def _fold_into(told: list[NarratedEvent], event: NarratedEvent) -> NarratedEvent | None:
    """Fold `event` into an earlier line with its fold key, if only routine lines came since;
    the folded line moves to the end with the newest time."""
    if event.fold is None:
        return None
    for position in range(len(told) - 1, -1, -1):
        earlier = told[position]
        if earlier.fold == event.fold:
            repeats = earlier.repeats + 1
            merged = replace(
                event,
                repeats=repeats,
                first_ms=earlier.first_ms,
                text=_folded_text(event, repeats, earlier),
                changes=earlier.changes + event.changes,
            )
            merged = replace(merged, fold=event.fold)
            del told[position]
            told.append(merged)
            return merged
        if earlier.importance == "key":
            return None
    return None


def _folded_text(event: NarratedEvent, repeats: int, earlier: NarratedEvent) -> str:
    if event.kind == "offsets_committed":
        group, partitions = (event.fold[1], event.fold[2]) if event.fold else ("", 0)
        noun = "partition" if partitions == 1 else "partitions"
        return f"group {group} committed {partitions} {noun}, {repeats} times"
    if event.kind == "produce_retried":
        return event.text + f", {repeats} refusals so far"
    return f"{event.text} ({repeats} times)"


def _narrate_moment(
    moment: int, batch: list[Any], include_internal: bool
) -> list[tuple[NarratedEvent, list[int]]]:
    told: list[tuple[NarratedEvent, list[int]]] = []
    fenced_by_broker = {
        e.data.get("broker"): e
        for e in batch
        if e.kind == "broker_fenced" and "heartbeat" in str(e.data.get("reason", ""))
    }
    absorbed: set[int] = set()
    for position, event in enumerate(batch):
        if event.kind != "broker_fenced" or event.data.get("broker") not in fenced_by_broker:
            continue
        broker = event.data.get("broker")
        shrinks = []
        sources = [position]
        for other_position, other in enumerate(batch):
            if (
                other.kind == "isr_shrunk"
                and broker in (other.data.get("removed") or [])
                and other.data.get("reason") == "broker fenced"
            ):
                shrinks.append(other.data)
                absorbed.add(other_position)
                sources.append(other_position)
        text, level = _fence_story(event.data, shrinks)
        absorbed.add(position)
        told.append(
            (
                NarratedEvent(
                    moment,
                    "broker_fenced",
                    text,
                    level,
                    importance="key",
                    why="The controller stopped hearing the broker's heartbeats within "
                    "broker.session.timeout.ms, so it fenced it and moved its leaderships.",
                    lesson="leader-failover",
                ),
                sources,
            )
        )
    for position, event in enumerate(batch):
        if position in absorbed or event.kind in QUIET_KINDS:
            continue
        if not include_internal and _internal(event.data):
            continue
        if event.kind.startswith("group_coordinator") and not _public(event.data.get("groups", [])):
            continue
        teller = SIMPLE.get(event.kind)
        data = dict(event.data)
        if teller is None:
            text, level = event.kind.replace("_", " "), "info"
        else:
            text, level = teller(data)
        why, lesson = _why(event.kind, data)
        told.append(
            (
                NarratedEvent(
                    moment,
                    event.kind,
                    text,
                    level,
                    importance="key" if event.kind in KEY_KINDS else "routine",
                    why=why,
                    lesson=lesson,
                    fold=_fold_key(event.kind, data),
                    first_ms=moment,
                ),
                [position],
            )
        )
    return told


def _fold_key(kind: str, data: dict[str, Any]) -> tuple[Any, ...] | None:
    if kind == "offsets_committed":
        return (kind, data.get("group"), len(data.get("offsets") or []))
    if kind == "produce_retried":
        return (kind, data.get("producer"), _tp(data), data.get("error"))
    if kind in ("member_joined", "offset_fetched", "coordinator_found"):
        return (kind, data.get("group"), data.get("client_id") or data.get("client"))
    return None


def _why(kind: str, data: dict[str, Any]) -> tuple[str, str]:
    """The one-sentence why and the lesson id of an event that needs explaining."""
    from webapp.why import SITUATIONS, why_refused

    found = None
    if kind in ("produce_retried", "produce_failed", "offsets_commit_failed"):
        found = why_refused(str(data.get("error", "")))
    elif kind == "leader_elected":
        found = SITUATIONS["unclean_election" if data.get("unclean") else "leader_election"]
    elif kind in ("rebalance_started", "rebalance_completed"):
        found = SITUATIONS["rebalance"]
    elif kind == "log_truncated":
        found = SITUATIONS["truncation"]
    elif kind == "member_removed":
        found = SITUATIONS["member_removed"]
    elif kind == "max_poll_interval_exceeded":
        found = SITUATIONS["rebalance"]
    elif kind == "producer_epoch_bumped":
        found = why_refused("ProducerFencedException")
    elif kind in ("producer_buffer_blocked", "producer_buffer_exhausted"):
        found = why_refused("BufferExhaustedException")
    elif kind == "log_truncation_detected":
        found = SITUATIONS["truncation"]
    if found is None:
        return "", ""
    return found.sentence, found.lesson


def headline(told: Sequence[NarratedEvent]) -> NarratedEvent | None:
    """The one line that says what just happened: the gravest key event of the last few
    seconds (a new leader outranks the fencing that caused it), else the newest line."""
    if not told:
        return None
    newest_ms = told[-1].time_ms
    recent = [
        e for e in told if e.importance == "key" and newest_ms - e.time_ms <= HEADLINE_HOLD_MS
    ]
    if not recent:
        recent = [e for e in told if e.time_ms == newest_ms]
    rank = {"bad": 2, "warn": 1, "info": 0}
    latest_moment = max(e.time_ms for e in recent)
    # Events of the latest key moment; among them the highest ranked kind, then the gravest.
    moment = [e for e in recent if e.time_ms == latest_moment]
    return max(moment, key=lambda e: (HEADLINE_RANK.get(e.kind, 0), rank.get(e.level, 0)))


def quiet_since(told: Sequence[NarratedEvent], now_ms: int) -> float | None:
    """When the cluster went quiet (seconds of cluster time: its last told event, 0 if none),
    once nothing has been told for QUIET_AFTER_MS; None while something happened lately. A
    room left alone then reads "nothing has happened since t = 12.30 s" rather than the same
    old line as if it were news (and the line stays the same text while it stays quiet)."""
    last_ms = told[-1].time_ms if told else 0
    if now_ms - last_ms < QUIET_AFTER_MS:
        return None
    return last_ms / 1000
