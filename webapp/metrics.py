"""Kafka's own metrics, computed from the simulated cluster, and the change each event caused.

The panel shows the names an operator watches on a real cluster (JMX MBeans of the brokers and
the controller, the consumer's `records-lag-max`), summed over the brokers the way a dashboard
sums them. Gauges (UnderReplicatedPartitions, UnderMinIsrPartitionCount, OfflinePartitionsCount,
ActiveControllerCount) are read from `snapshot()`; meters (IsrShrinksPerSec, IsrExpandsPerSec,
LeaderElectionRateAndTimeMs, RequestsPerSec, ErrorsPerSec) count events and requests, with their
rate over the last `RATE_WINDOW_MS` of cluster time.

`MetricsTracker` also replays the engine's events one by one (incrementally: it keeps its place
in `cluster.events`) and records for each event the gauges it moved, so the narration can say
"UnderReplicatedPartitions 0 → 3" beside the sentence of the event that caused it. Only the
partitions of the learner's topics count (`__consumer_offsets` and other internal topics are
left out, as on the stage), which the panel says.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

RATE_WINDOW_MS = 10_000
SAMPLE_EVERY_MS = 500
MAX_CHANGES = 4000  # event index -> changes, kept for the most recent events

GAUGES = (
    "UnderReplicatedPartitions",
    "UnderMinIsrPartitionCount",
    "OfflinePartitionsCount",
    "ActiveControllerCount",
)


def api_name(kind: str) -> str:
    """`find_coordinator` -> `FindCoordinator`: Kafka's request name of an engine request kind."""
    return "".join(part.capitalize() for part in kind.split("_"))


def _public(topic: Any) -> bool:
    return not str(topic).startswith("__")


@dataclass
class _Partition:
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int


@dataclass(frozen=True)
class Change:
    metric: str
    before: float
    after: float

    @property
    def text(self) -> str:
        return f"{self.metric} {self.before:g} → {self.after:g}"


@dataclass
class MetricsTracker:
    """Follows `cluster.events`; keeps the gauges they imply and the meters they count."""

    seen: int = 0
    partitions: dict[tuple[str, int], _Partition] = field(default_factory=dict)
    # A new cluster elects its first controller before it records events: -1 stands for it.
    active_controller: int | None = -1
    isr_shrinks: int = 0
    isr_expands: int = 0
    elections: int = 0
    unclean_elections: int = 0
    meter_times: dict[str, deque[int]] = field(default_factory=dict)
    changes: dict[int, list[Change]] = field(default_factory=dict)
    request_samples: deque[tuple[int, dict[str, int], dict[str, int]]] = field(
        default_factory=lambda: deque(maxlen=64)
    )

    # -- gauges implied by the events --------------------------------------------------------

    def gauges(self, min_isr: dict[str, int]) -> dict[str, float]:
        under = under_min = offline = 0
        for (topic, _), p in self.partitions.items():
            if len(p.isr) < len(p.replicas):
                under += 1
            if p.leader < 0:
                offline += 1
            needed = min(min_isr.get(topic, 1), len(p.replicas))
            if len(p.isr) < needed:
                under_min += 1
        return {
            "UnderReplicatedPartitions": under,
            "UnderMinIsrPartitionCount": under_min,
            "OfflinePartitionsCount": offline,
            "ActiveControllerCount": 1 if self.active_controller is not None else 0,
        }

    def _meter(self, name: str, time_ms: int) -> None:
        self.meter_times.setdefault(name, deque(maxlen=512)).append(time_ms)

    def rate(self, name: str, now_ms: int) -> float:
        times = self.meter_times.get(name, deque())
        recent = sum(1 for t in times if now_ms - t < RATE_WINDOW_MS)
        return recent / (min(RATE_WINDOW_MS, max(now_ms, 1)) / 1000)

    def update(self, cluster: Any, snap: dict[str, Any]) -> None:
        """Take in the events emitted since the last call."""
        events = cluster.events
        dropped = cluster.events_dropped  # indices here are absolute (Cluster.event_count)
        min_isr = min_isr_by_topic(snap)
        current = {
            (name, int(p["partition"])): p
            for name, t in snap["topics"].items()
            for p in t["partitions"]
        }
        for index in range(max(self.seen, dropped), dropped + len(events)):
            event = events[index - dropped]
            before = self.gauges(min_isr)
            self._apply(event, current)
            after = self.gauges(min_isr)
            moved = [
                Change(name, before[name], after[name])
                for name in GAUGES
                if before[name] != after[name]
            ]
            if moved:
                self.changes[index] = moved
        self.seen = dropped + len(events)
        while len(self.changes) > MAX_CHANGES:
            self.changes.pop(next(iter(self.changes)))
        now = int(snap["now_ms"])
        network = getattr(cluster, "network", None)
        if network is not None and (
            not self.request_samples or now - self.request_samples[-1][0] >= SAMPLE_EVERY_MS
        ):
            errors = {
                api: sum(codes.values())
                for api, codes in getattr(network, "request_errors", {}).items()
            }
            self.request_samples.append((now, dict(getattr(network, "requests", {})), errors))

    def _apply(self, event: Any, current: dict[tuple[str, int], Any]) -> None:
        kind, data = event.kind, event.data
        if kind == "controller_elected":
            self.active_controller = int(data.get("controller", 0))
        elif kind == "controller_lost_quorum" or (
            kind == "controller_stopped" and data.get("controller") == self.active_controller
        ):
            self.active_controller = None
        if not _public(data.get("topic", "")):
            return
        topic = str(data.get("topic"))
        if kind == "topic_created":
            for number, replicas in enumerate(data.get("assignment") or []):
                reps = tuple(int(r) for r in replicas)
                self.partitions[(topic, number)] = _Partition(reps, reps, reps[0] if reps else -1)
        elif kind == "partitions_added":
            for number in range(int(data.get("from", 0)), int(data.get("to", 0))):
                p = current.get((topic, number))
                reps = tuple(int(r) for r in (p["replicas"] if p else ()))
                self.partitions[(topic, number)] = _Partition(reps, reps, reps[0] if reps else -1)
        elif kind == "topic_deleted":
            for key in [k for k in self.partitions if k[0] == topic]:
                del self.partitions[key]
        key = (topic, int(data.get("partition", -1)))
        partition = self.partitions.get(key)
        if partition is None:
            return
        if kind == "leader_elected":
            partition.leader = int(data.get("leader", -1))
            self.elections += 1
            self._meter("LeaderElectionRateAndTimeMs", event.time_ms)
            if data.get("unclean"):
                self.unclean_elections += 1
                self._meter("UncleanLeaderElectionsPerSec", event.time_ms)
        elif kind == "isr_shrunk":
            partition.isr = tuple(int(b) for b in data.get("isr", []))
            self.isr_shrinks += 1
            self._meter("IsrShrinksPerSec", event.time_ms)
        elif kind == "isr_expanded":
            partition.isr = tuple(int(b) for b in data.get("isr", []))
            self.isr_expands += 1
            self._meter("IsrExpandsPerSec", event.time_ms)

    def request_rates(self, now_ms: int) -> tuple[dict[str, float], dict[str, float]]:
        """Requests and errors per second per API over the window of samples."""
        if not self.request_samples:
            return {}, {}
        last_ms, last_requests, last_errors = self.request_samples[-1]
        first = self.request_samples[0]
        for sample in self.request_samples:
            if last_ms - sample[0] <= RATE_WINDOW_MS:
                first = sample
                break
        first_ms, first_requests, first_errors = first
        if last_ms == first_ms:  # one sample: the average since the start
            first_ms, first_requests, first_errors = 0, {}, {}
        seconds = max(0.001, (last_ms - first_ms) / 1000)
        requests = {
            api: (n - first_requests.get(api, 0)) / seconds for api, n in last_requests.items()
        }
        errors = {api: (n - first_errors.get(api, 0)) / seconds for api, n in last_errors.items()}
        return requests, errors


def min_isr_by_topic(snap: dict[str, Any]) -> dict[str, int]:
    found = {}
    for name, t in snap["topics"].items():
        value = t.get("config", {}).get("min.insync.replicas", 1)
        try:
            found[name] = int(value)
        except (TypeError, ValueError):
            found[name] = 1
    return found


def tracker_for(runtime: Any) -> MetricsTracker:
    """The runtime's tracker (made on first use), brought up to date by the caller."""
    tracker = getattr(runtime, "stage_metrics", None)
    if not isinstance(tracker, MetricsTracker):
        tracker = MetricsTracker()
        runtime.stage_metrics = tracker
    return tracker


def snapshot_gauges(snap: dict[str, Any]) -> dict[str, int]:
    """The gauges read straight from `snapshot()` (the truth the tracker's replay must match)."""
    min_isr = min_isr_by_topic(snap)
    under = under_min = offline = 0
    for name, t in snap["topics"].items():
        if not _public(name) or t.get("internal"):
            continue
        for p in t["partitions"]:
            replicas, isr = list(p["replicas"]), list(p["isr"])
            under += len(isr) < len(replicas)
            offline += int(p["leader"]) < 0
            under_min += len(isr) < min(min_isr.get(name, 1), len(replicas))
    active = sum(1 for c in snap["controllers"] if c["is_active"])
    return {
        "UnderReplicatedPartitions": under,
        "UnderMinIsrPartitionCount": under_min,
        "OfflinePartitionsCount": offline,
        "ActiveControllerCount": active,
    }


def metrics_view(runtime: Any, snap: dict[str, Any]) -> dict[str, Any]:
    """Every row of the metrics panel."""
    tracker = tracker_for(runtime)
    tracker.update(runtime.cluster, snap)
    now = int(snap["now_ms"])
    gauges = snapshot_gauges(snap)
    rows = [
        {
            "name": "UnderReplicatedPartitions",
            "mbean": "kafka.server:type=ReplicaManager",
            "value": gauges["UnderReplicatedPartitions"],
            "help": "partitions whose ISR is smaller than their replica list",
            "alarm": gauges["UnderReplicatedPartitions"] > 0,
        },
        {
            "name": "UnderMinIsrPartitionCount",
            "mbean": "kafka.server:type=ReplicaManager",
            "value": gauges["UnderMinIsrPartitionCount"],
            "help": "partitions with fewer in-sync replicas than min.insync.replicas: "
            "acks=all writes to them are refused",
            "alarm": gauges["UnderMinIsrPartitionCount"] > 0,
        },
        {
            "name": "OfflinePartitionsCount",
            "mbean": "kafka.controller:type=KafkaController",
            "value": gauges["OfflinePartitionsCount"],
            "help": "partitions with no leader: nobody can read or write them",
            "alarm": gauges["OfflinePartitionsCount"] > 0,
        },
        {
            "name": "ActiveControllerCount",
            "mbean": "kafka.controller:type=KafkaController",
            "value": gauges["ActiveControllerCount"],
            "help": "controllers that are active: exactly 1 on a healthy cluster",
            "alarm": gauges["ActiveControllerCount"] != 1,
        },
        {
            "name": "IsrShrinksPerSec",
            "mbean": "kafka.server:type=ReplicaManager",
            "value": tracker.isr_shrinks,
            "rate": tracker.rate("IsrShrinksPerSec", now),
            "help": "replicas removed from an ISR (count, and per second lately)",
            "alarm": False,
        },
        {
            "name": "IsrExpandsPerSec",
            "mbean": "kafka.server:type=ReplicaManager",
            "value": tracker.isr_expands,
            "rate": tracker.rate("IsrExpandsPerSec", now),
            "help": "replicas that caught up and rejoined an ISR",
            "alarm": False,
        },
        {
            "name": "LeaderElectionRateAndTimeMs",
            "mbean": "kafka.controller:type=ControllerStats",
            "value": tracker.elections,
            "rate": tracker.rate("LeaderElectionRateAndTimeMs", now),
            "help": "partition leader elections",
            "alarm": False,
        },
        {
            "name": "UncleanLeaderElectionsPerSec",
            "mbean": "kafka.controller:type=ControllerStats",
            "value": tracker.unclean_elections,
            "rate": tracker.rate("UncleanLeaderElectionsPerSec", now),
            "help": "elections of an out-of-sync replica: acknowledged records may be lost",
            "alarm": tracker.unclean_elections > 0,
        },
    ]
    lag_rows = []
    for group_id in sorted(snap.get("groups", {})):
        lags = [int(n) for _, _, n in snap["groups"][group_id].get("lag", [])]
        lag_rows.append({"group": group_id, "value": max(lags, default=0)})
    requests, errors = tracker.request_rates(now)
    network = getattr(runtime.cluster, "network", None)
    totals = dict(getattr(network, "requests", {}))
    error_codes = {
        api: dict(codes) for api, codes in getattr(network, "request_errors", {}).items()
    }
    api_rows = [
        {
            "api": api_name(kind),
            "total": totals[kind],
            "rate": requests.get(kind, 0.0),
            "errors": sum(error_codes.get(kind, {}).values()),
            "error_rate": errors.get(kind, 0.0),
            "codes": ", ".join(
                f"{code} {count}"
                for code, count in Counter(error_codes.get(kind, {})).most_common(3)
            ),
        }
        for kind in sorted(totals)
    ]
    return {"rows": rows, "lag": lag_rows, "apis": api_rows, "window_s": RATE_WINDOW_MS // 1000}
