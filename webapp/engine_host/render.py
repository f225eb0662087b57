"""Turn a runtime into HTML fragments, once per state version.

Only the engine's facade is read here (`brokers()`, `describe_topic`, `read`, `events`), never
`snapshot()`'s keys, so the engine's internals can change freely. A fragment is a top-level
element with an id; htmx's WebSocket extension swaps each one into the page by that id.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from engine.errors import KafkaError
from lessons.scenarios.runtime import ClusterRuntime, kafka_error_text
from webapp.engine_host.stage import build_mirror, build_stage
from webapp.engine_host.templating import render_to_string
from webapp.metrics import metrics_view, tracker_for
from webapp.narration import NarratedEvent, headline, narrate, quiet_since
from webapp.why import why_refused

logger = logging.getLogger(__name__)

LOG_CELLS_SHOWN = 24
LOG_PARTITIONS_SHOWN = 24
EVENTS_SHOWN = 30
NARRATED_EVENTS = 600  # the engine's tail narrated per version; older history is in the log

# Fragment id (the element each one replaces on the page) -> its template, in page order.
FRAGMENT_TEMPLATES = {
    "clock": "sandbox/fragments/clock.html",
    "narration": "sandbox/fragments/narration.html",
    "stage": "sandbox/fragments/stage.html",
    "mirror": "sandbox/fragments/mirror.html",
    "topics": "sandbox/fragments/topics.html",
    "consumers": "sandbox/fragments/consumers.html",
    "events": "sandbox/fragments/events.html",
    "notices": "sandbox/fragments/notices.html",
    "metrics": "sandbox/fragments/metrics.html",
    "sends": "sandbox/fragments/sends.html",
    "topic-notes": "sandbox/fragments/topic_notes.html",
}
# The fragments a workshop room's pages (templates/workshops/stage.html, stage_below.html:
# the learner's, the instructor's and the presenter's) have a slot for. A room's host renders
# only these: a fragment with no target costs every viewer its bytes for nothing, and htmx
# reports each one as `htmx:oobErrorNoTarget`.
ROOM_FRAGMENTS = frozenset(
    {"clock", "narration", "stage", "mirror", "topics", "consumers", "events", "notices"}
)


@dataclass(frozen=True)
class ClockView:
    now_ms: int
    paused: bool
    speed: float
    viewers: int
    # The speed the clock manages when its work budget holds it back (None: at full speed).
    throttled_to: float | None = None
    # Why the clock is stopped by the host's memory bound (None: it is not).
    memory_stopped: str | None = None

    @property
    def throttled_label(self) -> str:
        if self.throttled_to is None:
            return ""
        return f"cluster running at {self.throttled_to:.1f}x: too much work"

    @property
    def seconds(self) -> float:
        return self.now_ms / 1000

    @property
    def speed_label(self) -> str:
        return f"{self.speed:g}x"


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    return data.decode("utf-8", errors="replace")


def _topic_view(
    runtime: ClusterRuntime, name: str, alive: set[int], max_partitions: int = LOG_PARTITIONS_SHOWN
) -> dict[str, Any]:
    cluster = runtime.cluster
    try:
        description = cluster.describe_topic(name)
    except KafkaError as error:
        return {"name": name, "error": kafka_error_text(error), "partitions": []}
    consumer_marks: dict[int, list[dict[str, Any]]] = {}
    for consumer in runtime.consumers.values():
        if consumer.topic != name:
            continue
        for partition, position in consumer.positions.items():
            consumer_marks.setdefault(partition, []).append(
                {"name": consumer.name, "position": position}
            )
    partitions = []
    # Big topics: the HTML logs show the first partitions; the text mirror lists them all.
    for p in description.partitions[:max_partitions]:
        start = max(int(p.log_start_offset), int(p.log_end_offset) - LOG_CELLS_SHOWN)
        records, read_error = _read_tail(runtime, name, p, start)
        marks = consumer_marks.get(p.partition, [])
        # a consumer that has read nothing here yet waits at the log start (earliest reset)
        for consumer in runtime.consumers.values():
            if consumer.topic == name and p.partition not in consumer.positions:
                marks.append({"name": consumer.name, "position": int(p.log_start_offset)})
        cells = [
            {
                "offset": r.offset,
                "key": _text(r.key),
                "value": _text(r.value),
                "committed": r.offset < p.high_watermark,
                "consumers": [m["name"] for m in marks if m["position"] == r.offset],
            }
            for r in records
        ]
        partitions.append(
            {
                "number": p.partition,
                "leader": p.leader,
                # the controller still names a crashed broker until its heartbeats time out
                "leader_stopped": p.leader != -1 and p.leader not in alive,
                "replicas": list(p.replicas),
                "isr": list(p.isr),
                "leader_epoch": getattr(p, "leader_epoch", None),
                "high_watermark": p.high_watermark,
                "log_end_offset": p.log_end_offset,
                "log_start_offset": p.log_start_offset,
                "hidden_before": start - int(p.log_start_offset),
                "cells": cells,
                "read_error": read_error,
                # a consumer waiting for the next record sits just past the log end
                "waiting_consumers": [
                    m["name"] for m in marks if m["position"] >= int(p.log_end_offset)
                ],
                "consumer_positions": marks,
            }
        )
    return {"name": name, "error": "", "partitions": partitions}


def _read_tail(runtime: ClusterRuntime, topic: str, p: Any, start: int) -> tuple[list[Any], str]:
    """Read the leader's log, or an alive replica's when the partition is offline."""
    cluster = runtime.cluster
    try:
        return list(cluster.read(topic, p.partition, offset=start)), ""
    except KafkaError as leader_error:
        alive = {b.id for b in cluster.brokers() if b.alive}
        for replica in p.replicas:
            if replica not in alive:
                continue
            try:
                return list(cluster.read(topic, p.partition, offset=start, replica=replica)), ""
            except KafkaError:
                continue
        return [], kafka_error_text(leader_error)


def _narrated(runtime: ClusterRuntime, snap: dict[str, Any]) -> list[NarratedEvent]:
    """The engine's recent events told in plain words, oldest first, each with the metric
    changes it caused."""
    events = runtime.cluster.events
    tracker = tracker_for(runtime)
    tracker.update(runtime.cluster, snap)
    first = max(0, len(events) - NARRATED_EVENTS)
    # The tracker's changes are by absolute event index (the cluster may have dropped old ones).
    base = runtime.cluster.events_dropped + first
    changes = {i - base: tracker.changes[i] for i in tracker.changes if i >= base}
    return narrate(list(events[first:]), changes=changes)


def refusals_view(runtime: ClusterRuntime, snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per producer still waiting on sends: the refusal it is retrying (Kafka's error name, the
    attempt, the time left to delivery.timeout.ms), why, and the lesson that explains it."""
    now = runtime.now_ms
    waiting = {p["client_id"]: p for p in snap.get("producers", []) if p.get("pending")}
    objects = {getattr(p, "client_id", None): p for p in runtime.cluster.producers}
    found: dict[str, dict[str, Any]] = {}
    if not waiting:
        return found
    sent_at: dict[tuple[str, int], int] = {}
    for send in runtime.pending_sends:
        tp = getattr(send.future, "tp", None)
        if tp is not None and runtime.producer is not None:
            key = (f"{tp.topic}-{tp.partition}", 0)
            sent_at.setdefault(key, send.sent_ms)
    events = runtime.cluster.events
    start = max(0, len(events) - 4 * NARRATED_EVENTS)
    streak_start: dict[tuple[Any, str], int] = {}
    latest: dict[Any, Any] = {}
    for event in events[start:]:
        if event.kind != "produce_retried":
            continue
        d = event.data
        tp = f"{d.get('topic')}-{d.get('partition')}"
        if int(d.get("attempt", 0)) <= 1 or (d.get("producer"), tp) not in streak_start:
            streak_start[(d.get("producer"), tp)] = event.time_ms
        latest[d.get("producer")] = event
    for client_id, event in latest.items():
        if client_id not in waiting:
            continue
        producer = objects.get(client_id)
        timeout = int(getattr(producer, "delivery_timeout_ms", 120_000))
        d = event.data
        tp = f"{d.get('topic')}-{d.get('partition')}"
        began = streak_start.get((client_id, tp), event.time_ms)
        if client_id == getattr(runtime.producer, "client_id", None):
            began = min(began, sent_at.get((tp, 0), began))
        if now - began >= timeout:
            continue
        why = why_refused(str(d.get("error", "")))
        found[client_id] = {
            "client_id": client_id,
            "error": d.get("error"),
            "attempt": int(d.get("attempt", 0)),
            "partition": tp,
            "left_s": max(0.0, (began + timeout - now) / 1000),
            "timeout_s": timeout / 1000,
            "why": why.sentence if why else "",
            "lesson_url": why.lesson_url if why else "",
            "lesson_title": why.lesson_title if why else "",
        }
    return found


def _sends_view(
    runtime: ClusterRuntime, refusals: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The stage producer's records still in flight, each with its refusal if it is retrying."""
    client_id = getattr(runtime.producer, "client_id", None)
    refusal = refusals.get(str(client_id)) if client_id else None
    timeout = int(getattr(runtime.producer, "delivery_timeout_ms", 120_000))
    rows = []
    for send in runtime.pending_sends[:8]:
        tp = getattr(send.future, "tp", None)
        where = f"{tp.topic}-{tp.partition}" if tp is not None else ""
        retrying = refusal if refusal and refusal["partition"] == where else None
        rows.append(
            {
                "key": send.key,
                "value": send.value,
                "partition": where,
                "age_s": (runtime.now_ms - send.sent_ms) / 1000,
                "left_s": max(0.0, (send.sent_ms + timeout - runtime.now_ms) / 1000),
                "refusal": retrying,
            }
        )
    return rows


def _producer_totals(snap: dict[str, Any]) -> dict[str, int]:
    """Sent / acknowledged / in flight over every producer of the cluster (the stage's, the
    producer apps' and, in an opened stress run, the run's own)."""
    totals = {"sent": 0, "acked": 0, "pending": 0}
    for p in snap.get("producers", []):
        for key in totals:
            totals[key] += int(p.get(key, 0) or 0)
    return totals


def topic_notes(snap: dict[str, Any]) -> list[dict[str, str]]:
    """Settings that are legal but surprising, said in words: a min.insync.replicas above the
    replication factor behaves as the replication factor (Kafka 3.7+, effectiveMinIsr)."""
    from webapp.why import SITUATIONS

    notes = []
    for name in sorted(snap["topics"]):
        t = snap["topics"][name]
        if name.startswith("__") or t.get("internal") or not t.get("partitions"):
            continue
        try:
            min_isr = int(t.get("config", {}).get("min.insync.replicas", 1))
        except (TypeError, ValueError):
            continue
        rf = min(len(p["replicas"]) for p in t["partitions"])
        if min_isr > rf:
            why = SITUATIONS["effective_min_isr"]
            notes.append(
                {
                    "topic": name,
                    "text": f"{name}: min.insync.replicas is {min_isr} but each partition has "
                    f"{rf} replicas, so it behaves as {rf}: acks=all writes need all {rf} "
                    "replicas in sync.",
                    "why": why.sentence,
                    "lesson_url": why.lesson_url,
                    "lesson_title": why.lesson_title,
                }
            )
    return notes


def _current_notices(runtime: ClusterRuntime) -> list[Any]:
    """Notices newest first; an error is dropped once a later command succeeded."""
    shown = []
    success_since = False
    for notice in reversed(runtime.notices):
        if notice.level == "error" and success_since:
            continue
        if notice.level != "error":
            success_since = True
        shown.append({"seconds": notice.time_ms / 1000, "level": notice.level, "text": notice.text})
    return shown[:6]


def _consumers_view(runtime: ClusterRuntime, topics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    log_ends = {
        (t["name"], p["number"]): int(p["log_end_offset"]) for t in topics for p in t["partitions"]
    }
    views = []
    for consumer in runtime.consumers.values():
        rows = []
        for tp in consumer.partitions:
            partition = tp.partition
            log_end = log_ends.get((consumer.topic, partition), 0)
            position = consumer.positions.get(partition, 0)
            rows.append(
                {"partition": partition, "position": position, "lag": max(0, log_end - position)}
            )
        views.append(
            {
                "name": consumer.name,
                "topic": consumer.topic,
                "poll_interval_ms": consumer.poll_interval_ms,
                "records_read": consumer.records_read,
                "rows": rows,
                "last_error": consumer.last_error,
            }
        )
    return views


def topic_names(runtime: ClusterRuntime) -> list[str]:
    names = [t for t in runtime.cluster.list_topics() if not t.startswith("__")]
    return sorted(names)


def render_fragments(
    runtime: ClusterRuntime,
    clock: ClockView,
    *,
    readonly: bool = False,
    only: frozenset[str] | None = None,
) -> dict[str, str]:
    """Every fragment of the cluster stage, keyed by element id, in page order. `readonly`
    (the past): no buttons are drawn on brokers and controllers. `only`: just these fragments
    (a workshop room's host: ROOM_FRAGMENTS)."""
    alive = {b.id for b in runtime.cluster.brokers() if b.alive}
    topics = [_topic_view(runtime, name, alive) for name in topic_names(runtime)]
    snap = runtime.cluster.snapshot()
    bookmarks: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for topic in topics:
        for p in topic["partitions"]:
            marks = [(m["name"], int(m["position"])) for m in p["consumer_positions"]]
            bookmarks[(topic["name"], p["number"])] = marks
    told = _narrated(runtime, snap)
    events = list(reversed(told))[:EVENTS_SHOWN]
    refusals = refusals_view(runtime, snap)
    wanted = [key for key in FRAGMENT_TEMPLATES if only is None or key in only]
    context: dict[str, Any] = {
        "stage": build_stage(
            runtime.cluster,
            snap=snap,
            consumer_positions=bookmarks,
            recent_messages=list(getattr(runtime, "recent_messages", {}).values()),
            refusals=refusals,
            with_actions=not readonly,
        ),
        "mirror": build_mirror(snap),
        "headline": headline(told),
        "quiet_since": quiet_since(told, runtime.now_ms),
        "clock": clock,
        "topics": topics,
        "consumers": _consumers_view(runtime, topics),
        "events": events,
        "notices": _current_notices(runtime),
        "producer_totals": _producer_totals(snap),
        "failed_sends": runtime.failed_sends,
        "refusals": list(refusals.values()),
    }
    # Only what a fragment to be drawn needs (a room page has no metrics or sends panel).
    if "sends" in wanted:
        context["sends"] = _sends_view(runtime, refusals)
    if "metrics" in wanted:
        context["metrics"] = metrics_view(runtime, snap)
    if "topic-notes" in wanted:
        context["topic_notes"] = topic_notes(snap)
    return {key: render_to_string(FRAGMENT_TEMPLATES[key], context) for key in wanted}


# Fragments made of parts, each a top-level element with an id of its own: the stage's nested
# SVGs (`<svg class="stage-part" id="stage-row-0">`) and the records panel's partitions
# (`<div class="partition" id="partition-orders-0">`). When only some parts changed, the host
# sends just those (htmx swaps each by its id); the fragment itself when anything else did.
SPLIT_FRAGMENTS = ("stage", "topics")
_PART_OPEN = re.compile(r'<(svg|div) class="(?:stage-part|partition)" id="([^"]+)"')
_PART_SLOT = re.compile("\x00([^\x00]+)\x00")


def element_end(html: str, start: int, tag: str) -> int:
    """Where the element opened at `start` ends (just past its closing tag)."""
    tags = re.compile(rf"<{tag}[\s>]|</{tag}>")
    depth = 0
    for match in tags.finditer(html, start):
        depth += -1 if match.group(0).startswith("</") else 1
        if depth == 0:
            return match.end()
    raise ValueError(f"<{tag}> opened at {start} is not closed")


def split_parts(html: str) -> tuple[str, dict[str, str]]:
    """A fragment as its skeleton (each part replaced by a slot naming it) and its parts by id,
    in page order. `join_parts` puts them back together, byte for byte."""
    skeleton: list[str] = []
    parts: dict[str, str] = {}
    at = 0
    while (match := _PART_OPEN.search(html, at)) is not None:
        end = element_end(html, match.start(), match.group(1))
        skeleton.append(html[at : match.start()])
        skeleton.append(f"\x00{match.group(2)}\x00")
        parts[match.group(2)] = html[match.start() : end]
        at = end
    skeleton.append(html[at:])
    return "".join(skeleton), parts


def part_ids(skeleton: str) -> list[str]:
    """The parts a skeleton has slots for, in page order."""
    return _PART_SLOT.findall(skeleton)


def join_parts(skeleton: str, parts: dict[str, str]) -> str:
    return _PART_SLOT.sub(lambda match: parts[match.group(1)], skeleton)


def version_marker(version: int, base: int | None) -> str:
    """The element that tells the page which state version it holds (base: for a diff)."""
    base_attr = "" if base is None else f' data-base="{base}"'
    return f'<div id="state-version" data-version="{version}"{base_attr} hidden></div>'


def render_error_fragment(message: str) -> dict[str, str]:
    html = render_to_string("sandbox/fragments/stage_error.html", {"message": message})
    return {"topics": html}
