"""Engine events told as plain sentences, the way an instructor would narrate the stage.

Events of one moment that belong together are told as one line: a broker fenced at 11.0 s and
the ISR shrinks that its fencing caused become "broker 2 missed heartbeats for 9 s: fenced,
removed from the ISR of orders-0 and orders-2". Internal topics (`__consumer_offsets`) are left
out of the story unless nothing else happened, since a learner watches their own topics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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
        "produce_retried",
        "segment_rolled",
    }
)


@dataclass(frozen=True)
class NarratedEvent:
    time_ms: int
    kind: str
    text: str
    level: str = "info"  # "info", "warn" or "bad"
    repeats: int = 1  # the same sentence told this many times in a row (a retry loop)

    @property
    def seconds(self) -> float:
        return self.time_ms / 1000


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
    text = f"{_tp(d)} has a new leader: {who}, epoch {d.get('leader_epoch')}"
    if d.get("previous_leader") not in (None, -1):
        text += f" (was broker {d.get('previous_leader')})"
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
    shown = ", ".join(f"{t}-{p}@{o}" for t, p, o in offsets[:4])
    more = f" and {len(offsets) - 4} more" if len(offsets) > 4 else ""
    return f"group {d.get('group')} committed {shown}{more}", "info"


def _kib(size: Any) -> str:
    return f"{int(size or 0) // 1024} KiB"


def _buffer_blocked(d: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{d.get('producer')}'s buffer.memory ({_kib(d.get('buffer_memory'))}) is full of "
        "batches the brokers have not acknowledged: send() now waits, up to "
        f"max.block.ms ({int(d.get('max_block_ms') or 0) / 1000:g} s), for a batch to finish",
        "warn",
    )


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
        f"group {d.get('group')} started a rebalance: {d.get('reason')}",
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


def narrate(events: Sequence[Any], *, include_internal: bool = False) -> list[NarratedEvent]:
    """Sentences for `events` (objects with `.time_ms`, `.kind`, `.data`), oldest first."""
    told: list[NarratedEvent] = []
    # Group by moment so a fencing and the ISR shrinks it caused read as one sentence.
    index = 0
    while index < len(events):
        moment = events[index].time_ms
        batch = []
        while index < len(events) and events[index].time_ms == moment:
            batch.append(events[index])
            index += 1
        for event in _narrate_moment(moment, batch, include_internal):
            if told and told[-1].kind == event.kind and told[-1].text == event.text:
                # A retry loop says one thing many times: tell it once, with a count.
                event = replace(event, repeats=told[-1].repeats + 1)
                told[-1] = event
            else:
                told.append(event)
    return told


def _narrate_moment(moment: int, batch: list[Any], include_internal: bool) -> list[NarratedEvent]:
    told: list[NarratedEvent] = []
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
        for other_position, other in enumerate(batch):
            if (
                other.kind == "isr_shrunk"
                and broker in (other.data.get("removed") or [])
                and other.data.get("reason") == "broker fenced"
            ):
                shrinks.append(other.data)
                absorbed.add(other_position)
        text, level = _fence_story(event.data, shrinks)
        absorbed.add(position)
        told.append(NarratedEvent(moment, "broker_fenced", text, level))
    for position, event in enumerate(batch):
        if position in absorbed or event.kind in QUIET_KINDS:
            continue
        if not include_internal and _internal(event.data):
            continue
        if event.kind.startswith("group_coordinator") and not _public(event.data.get("groups", [])):
            continue
        teller = SIMPLE.get(event.kind)
        if teller is None:
            text, level = event.kind.replace("_", " "), "info"
        else:
            text, level = teller(dict(event.data))
        told.append(NarratedEvent(moment, event.kind, text, level))
    return told


def headline(told: Sequence[NarratedEvent]) -> NarratedEvent | None:
    """The one line that says what just happened: the gravest event of the newest moment."""
    if not told:
        return None
    newest = [e for e in told if e.time_ms == told[-1].time_ms]
    rank = {"bad": 2, "warn": 1, "info": 0}
    return max(newest, key=lambda e: rank.get(e.level, 0))
