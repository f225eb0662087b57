"""Lag over time per consumer group and produce / consume rates per topic.

The host samples the engine on the cluster clock (every `SAMPLE_EVERY_MS` of logical time, a
bounded window of samples) and renders the small inline SVG charts once per new sample, so the
charts fragment costs nothing on state versions that bring no new sample.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine.errors import KafkaError
from webapp.engine_host.templating import render_to_string

SAMPLE_EVERY_MS = 500
MAX_SAMPLES = 120  # one minute of logical time
RATE_WINDOW = 4  # samples: rates are averaged over the last two seconds
CHART_WIDTH = 240
CHART_HEIGHT = 48


@dataclass(frozen=True)
class Sample:
    time_ms: int
    lag: dict[str, int]  # consumer group (or standalone consumer) -> total lag
    produced: dict[str, int]  # topic -> sum of log end offsets
    consumed: dict[str, int]  # topic -> sum of consumed positions (groups and consumers)


def _group_ids(cluster: Any) -> list[str]:
    ids = {getattr(c, "group_id", None) for c in cluster.consumers}
    ids |= {getattr(a, "group_id", None) for a in cluster.apps.apps}
    return sorted(i for i in ids if i)


def take_sample(runtime: Any) -> Sample:
    cluster = runtime.cluster
    produced: dict[str, int] = {}
    consumed: dict[str, int] = {}
    lag: dict[str, int] = {}
    high_watermarks: dict[tuple[str, int], int] = {}
    for name in sorted(t for t in cluster.list_topics() if not t.startswith("__")):
        try:
            description = cluster.describe_topic(name)
        except KafkaError:
            continue
        produced[name] = sum(int(p.log_end_offset) for p in description.partitions)
        consumed.setdefault(name, 0)
        for p in description.partitions:
            high_watermarks[(name, p.partition)] = int(p.high_watermark)
    for group_id in _group_ids(cluster):
        try:
            group = cluster.describe_group(group_id)
        except (KafkaError, KeyError, ValueError):
            continue
        lag[f"group {group_id}"] = sum(max(0, int(v)) for v in dict(group.lag).values())
        for tp, offset in dict(group.offsets).items():
            if tp.topic in consumed:
                consumed[tp.topic] += int(offset)
    for consumer in getattr(runtime, "consumers", {}).values():
        total = 0
        for tp in consumer.partitions:
            position = consumer.positions.get(tp.partition, 0)
            total += max(0, high_watermarks.get((tp.topic, tp.partition), 0) - position)
            if tp.topic in consumed:
                consumed[tp.topic] += position
        lag[f"consumer {consumer.name}"] = total
    return Sample(runtime.now_ms, lag, produced, consumed)


@dataclass
class MetricsHistory:
    """Samples on the cluster clock, bounded; `version` moves when a sample is added."""

    every_ms: int = SAMPLE_EVERY_MS
    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    version: int = 0
    next_ms: int = 0
    _html: str = ""
    _html_version: int = -1

    def observe(self, runtime: Any) -> bool:
        """Sample if the clock reached the next sampling moment; True if it sampled."""
        now = runtime.now_ms
        if self.samples and now < self.next_ms:
            return False
        if self.samples and now < self.samples[-1].time_ms:
            self.samples.clear()  # the clock went back (a replay): start again
        self.samples.append(take_sample(runtime))
        self.next_ms = (now // self.every_ms + 1) * self.every_ms
        self.version += 1
        return True

    def render(self) -> str:
        if self._html_version != self.version:
            self._html = render_to_string("sandbox/fragments/charts.html", charts_context(self))
            self._html_version = self.version
        return self._html


def _points(values: list[tuple[int, float]], top: float) -> str:
    if not values:
        return ""
    start, end = values[0][0], values[-1][0]
    span = max(1, end - start)
    scale = (CHART_HEIGHT - 4) / top if top > 0 else 0.0
    return " ".join(
        f"{(t - start) * CHART_WIDTH / span:.1f},{CHART_HEIGHT - 2 - v * scale:.1f}"
        for t, v in values
    )


def _rates(samples: list[Sample], topic: str, which: str) -> list[tuple[int, float]]:
    rates = []
    for index in range(1, len(samples)):
        before = samples[max(0, index - RATE_WINDOW)]
        now = samples[index]
        seconds = (now.time_ms - before.time_ms) / 1000
        if seconds <= 0:
            continue
        delta = getattr(now, which).get(topic, 0) - getattr(before, which).get(topic, 0)
        rates.append((now.time_ms, max(0.0, delta / seconds)))
    return rates


def charts_context(history: MetricsHistory) -> dict[str, Any]:
    samples = list(history.samples)
    window_s = (samples[-1].time_ms - samples[0].time_ms) / 1000 if len(samples) > 1 else 0.0
    groups = []
    names = sorted({name for s in samples for name in s.lag})
    for name in names:
        values = [(s.time_ms, float(s.lag[name])) for s in samples if name in s.lag]
        top = max((v for _, v in values), default=0.0)
        groups.append(
            {
                "name": name,
                "now": int(values[-1][1]) if values else 0,
                "max": int(top),
                "points": _points(values, max(top, 1.0)),
            }
        )
    topics = []
    for name in sorted(samples[-1].produced) if samples else []:
        produce = _rates(samples, name, "produced")
        consume = _rates(samples, name, "consumed")
        top = max([v for _, v in produce + consume] + [1.0])
        topics.append(
            {
                "name": name,
                "produce_rate": produce[-1][1] if produce else 0.0,
                "consume_rate": consume[-1][1] if consume else 0.0,
                "produce_points": _points(produce, top),
                "consume_points": _points(consume, top),
                "max": top,
            }
        )
    return {
        "groups": groups,
        "topics": topics,
        "window_s": window_s,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
    }
