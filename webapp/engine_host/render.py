"""Turn a runtime into HTML fragments, once per state version.

Only the engine's facade is read here (`brokers()`, `describe_topic`, `read`, `events`), never
`snapshot()`'s keys, so the engine's internals can change freely. A fragment is a top-level
element with an id; htmx's WebSocket extension swaps each one into the page by that id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string

from engine.errors import KafkaError
from lessons.scenarios.runtime import ClusterRuntime, kafka_error_text
from webapp.engine_host.stage import build_mirror, build_stage
from webapp.narration import NarratedEvent, headline, narrate

logger = logging.getLogger(__name__)

LOG_CELLS_SHOWN = 24
LOG_PARTITIONS_SHOWN = 24
EVENTS_SHOWN = 30
NARRATED_EVENTS = 600  # the engine's tail narrated per version; older history is in the log


@dataclass(frozen=True)
class ClockView:
    now_ms: int
    paused: bool
    speed: float
    viewers: int
    # The speed the clock manages when its work budget holds it back (None: at full speed).
    throttled_to: float | None = None

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


def _narrated(runtime: ClusterRuntime) -> list[NarratedEvent]:
    """The engine's recent events told in plain words, oldest first."""
    return narrate(list(runtime.cluster.events[-NARRATED_EVENTS:]))


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


def render_fragments(runtime: ClusterRuntime, clock: ClockView) -> dict[str, str]:
    """Every fragment of the cluster stage, keyed by element id, in page order."""
    alive = {b.id for b in runtime.cluster.brokers() if b.alive}
    topics = [_topic_view(runtime, name, alive) for name in topic_names(runtime)]
    snap = runtime.cluster.snapshot()
    bookmarks: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for topic in topics:
        for p in topic["partitions"]:
            marks = [(m["name"], int(m["position"])) for m in p["consumer_positions"]]
            bookmarks[(topic["name"], p["number"])] = marks
    told = _narrated(runtime)
    events = list(reversed(told))[:EVENTS_SHOWN]
    context = {
        "stage": build_stage(
            runtime.cluster,
            snap=snap,
            consumer_positions=bookmarks,
            recent_messages=list(getattr(runtime, "recent_messages", {}).values()),
        ),
        "mirror": build_mirror(snap),
        "headline": headline(told),
        "clock": clock,
        "topics": topics,
        "consumers": _consumers_view(runtime, topics),
        "events": events,
        "notices": list(reversed(runtime.notices)),
        "pending_sends": len(runtime.pending_sends),
        "acked_sends": runtime.acked_sends,
        "failed_sends": runtime.failed_sends,
    }
    fragments = {
        "clock": render_to_string("sandbox/fragments/clock.html", context),
        "narration": render_to_string("sandbox/fragments/narration.html", context),
        "stage": render_to_string("sandbox/fragments/stage.html", context),
        "mirror": render_to_string("sandbox/fragments/mirror.html", context),
        "topics": render_to_string("sandbox/fragments/topics.html", context),
        "consumers": render_to_string("sandbox/fragments/consumers.html", context),
        "events": render_to_string("sandbox/fragments/events.html", context),
        "notices": render_to_string("sandbox/fragments/notices.html", context),
    }
    return fragments


def version_marker(version: int, base: int | None) -> str:
    """The element that tells the page which state version it holds (base: for a diff)."""
    base_attr = "" if base is None else f' data-base="{base}"'
    return f'<div id="state-version" data-version="{version}"{base_attr} hidden></div>'


def render_error_fragment(message: str) -> dict[str, str]:
    html = render_to_string("sandbox/fragments/stage_error.html", {"message": message})
    return {"topics": html}
