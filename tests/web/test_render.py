"""The stage drawn from the engine: shapes laid out from a snapshot, fragments rendered once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine import Cluster
from engine.partitioner import partition_for_key
from lessons.scenarios.runtime import ClusterRuntime
from tests.web.support import sandbox_runtime
from webapp.engine_host.render import ClockView, render_fragments
from webapp.engine_host.stage import MAX_ROWS, PRODUCER_BOX_WIDTH, build_mirror, build_stage

CLOCK = ClockView(now_ms=0, paused=False, speed=1.0, viewers=1)


def sandbox() -> ClusterRuntime:
    runtime, _ = sandbox_runtime(seed=5)
    return runtime


def row(stage: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in stage["rows"] if r["name"] == name)


def test_the_fragments_draw_brokers_controllers_replicas_and_the_mirror() -> None:
    runtime = sandbox()
    runtime.apply({"type": "produce", "topic": "orders", "key": "k1", "value": "hello", "count": 1})
    runtime.advance(1_000)
    fragments = render_fragments(runtime, CLOCK)
    for fragment_id in ("stage", "mirror", "narration", "events", "clock", "topics"):
        assert f'id="{fragment_id}"' in fragments[fragment_id]
    svg = fragments["stage"]
    assert svg.count('class="broker is-alive"') == 3
    assert svg.count('class="controller is-active') == 1
    assert 'aria-label="Kill broker 2"' in svg
    assert 'aria-label="Stop controller 101"' in svg
    assert "key k1 · value hello" in svg
    partition = partition_for_key(b"k1", 3)
    mirror = fragments["mirror"]
    assert re.search(rf"orders-{partition}: leader broker \d.*HW 1, LEO 1", mirror)


def test_killing_a_leader_moves_the_star_and_marks_the_replica_out_of_sync() -> None:
    runtime = sandbox()
    runtime.advance(1_000)
    before = build_stage(runtime.cluster)
    old_leader = row(before, "orders-0")["leader"]
    runtime.apply({"type": "stop_broker", "broker_id": old_leader})
    runtime.advance(12_000)
    stage = build_stage(runtime.cluster)
    orders0 = row(stage, "orders-0")
    roles = {r.broker: r.role for r in orders0["replicas"]}
    assert roles[old_leader] == "out-of-sync"
    assert orders0["leader"] != old_leader
    assert roles[orders0["leader"]] == "leader"
    states = {b.id: b.state for b in stage["brokers"]}
    assert states[str(old_leader)] == "stopped"
    restart = [a["label"] for b in stage["brokers"] for a in b.actions]
    assert f"Restart broker {old_leader}" in restart
    mirror = build_mirror(runtime.cluster.snapshot())
    line = next(p for p in mirror["partitions"] if p["name"] == "orders-0")
    assert str(old_leader) not in line["isr"].split(", ")
    assert line["out_of_sync"] == str(old_leader)


def test_a_long_log_shows_its_last_offsets_after_an_ellipsis() -> None:
    runtime = sandbox()
    for _ in range(3):
        runtime.apply(
            {"type": "produce", "topic": "orders", "key": "same", "value": "v", "count": 100}
        )
        runtime.advance(2_000)
    stage = build_stage(runtime.cluster)
    partition = partition_for_key(b"same", 3)
    leader = next(r for r in row(stage, f"orders-{partition}")["replicas"] if r.role == "leader")
    assert leader.log_end_offset == 300
    assert leader.hidden_before > 0
    assert leader.cells[-1].offset == 299
    assert len(leader.cells) < 60
    assert leader.leo_x is not None and leader.hw_x is not None


def test_a_large_cluster_stays_legible_and_the_mirror_lists_everything() -> None:
    cluster = Cluster(brokers=9, seed=2)
    cluster.create_topic("big", partitions=200, replication_factor=3)
    cluster.advance(500)
    stage = build_stage(cluster)
    assert len(stage["rows"]) == MAX_ROWS
    assert stage["hidden_rows"] == 200 - MAX_ROWS
    assert len(build_mirror(cluster.snapshot())["partitions"]) == 200


@dataclass
class FakeRecord:
    offset: int
    key: bytes | None
    value: bytes | None


class FakeCluster:
    """A snapshot with compaction gaps, control markers, segments, a cut and a message."""

    def __init__(self, compact: bool) -> None:
        self.compact = compact

    def read(self, topic: str, partition: int, offset: int = 0, replica: Any = None) -> list[Any]:
        return [FakeRecord(o, b"k", b"v") for o in (0, 1, 3, 4) if o >= offset]


def fake_snapshot(compact: bool) -> dict[str, Any]:
    log = {
        "log_start_offset": 0,
        "log_end_offset": 5,
        "high_watermark": 4,
        "segments": [[0, 3, 100], [3, 5, 60]],
    }
    return {
        "now_ms": 1_001,
        "controllers": [{"id": 101, "alive": True, "is_active": True}],
        "brokers": [{"id": 1, "alive": True, "fenced": False}],
        "topics": {
            "t": {
                "internal": False,
                "config": {"cleanup.policy": ["compact"] if compact else ["delete"]},
                "partitions": [
                    {
                        "partition": 0,
                        "leader": 1,
                        "replicas": [1],
                        "isr": [1],
                        "high_watermark": 4,
                        "log_end_offset": 5,
                        "replica_logs": {"1": log},
                    }
                ],
            }
        },
        "network": {
            "groups": [["1"]],
            "in_flight": [
                {
                    "id": 1,
                    "from": "client-p",
                    "to": "1",
                    "kind": "produce",
                    "sent_ms": 1_000,
                    "arrives_ms": 1_002,
                }
            ],
        },
        "producers": [],
        "consumers": [],
        "apps": [],
        "groups": {},
    }


def test_gaps_markers_segments_cuts_and_messages_in_flight_are_drawn() -> None:
    for compact, gap_kind in ((True, "gap"), (False, "marker")):
        stage = build_stage(FakeCluster(compact), snap=fake_snapshot(compact))
        replica = stage["rows"][0]["replicas"][0]
        kinds = [c.kind for c in replica.cells]
        assert kinds == ["record", "record", gap_kind, "record", "uncommitted"]
        assert len(replica.segment_xs) == 1
        assert stage["cut_text"].startswith("network cut: {1}")
        assert stage["brokers"][0].cut
        (message,) = stage["in_flight"]
        assert message["kind"] == "produce"
        # halfway between its two ends after 1 of its 2 ms
        assert abs(message["x"] - (message["x1"] + message["x2"]) / 2) < 1e-6


def test_a_producer_faster_than_the_brokers_shows_its_buffer_filling_then_blocked() -> None:
    cluster = Cluster(brokers=1, seed=3)
    cluster.create_topic("t")
    app = cluster.services["apps"].producer_app(
        "t", rate_per_sec=1000, keys=0, value_bytes=1024, config={"buffer.memory": 64 * 1024}
    )
    cluster.advance(500)
    [calm] = build_stage(cluster)["producers"]
    assert 0 < calm["buffer_width"] < PRODUCER_BOX_WIDTH and not calm["buffer_blocked"]
    cluster.stop_broker(1)
    cluster.advance(2000)
    assert app.snapshot()["blocked_since_ms"] is not None
    [held] = build_stage(cluster)["producers"]
    assert held["buffer_width"] == PRODUCER_BOX_WIDTH
    assert held["buffer_blocked"]
    assert "buffer full: send() waits" in held["detail"]
    svg = render_fragments_for(cluster)
    assert 'class="producer is-blocked"' in svg and 'class="buffer-gauge"' in svg


def render_fragments_for(cluster: Cluster) -> str:
    from django.template.loader import render_to_string

    return render_to_string("sandbox/fragments/stage.html", {"stage": build_stage(cluster)})


def test_the_host_renders_numbers_without_asking_for_the_language_each_time(
    monkeypatch: Any,
) -> None:
    """Number localization was ~40 % of the host's rendering (py-spy, room benchmark): the
    fragments are rendered with it off, and are the same text Django's localized rendering
    gives (en-us, no thousand separator)."""
    from django.template import loader
    from django.utils import formats

    from webapp.engine_host import render as render_module

    runtime = sandbox()
    for i in range(30):
        runtime.apply(
            {"type": "produce", "topic": "orders", "key": f"k{i % 7}", "value": "v", "count": 1}
        )
        runtime.advance(250)
    clock = ClockView(now_ms=runtime.now_ms, paused=False, speed=1.0, viewers=1234)
    asked: list[None] = []
    real = formats.get_language

    def counted() -> str:
        asked.append(None)
        return real()

    monkeypatch.setattr(formats, "get_language", counted)
    fragments = render_fragments(runtime, clock)
    unlocalized_asks = len(asked)  # only `floatformat` still asks (it localizes by itself)
    asked.clear()
    monkeypatch.setattr(render_module, "render_to_string", loader.render_to_string)
    localized = render_fragments(runtime, clock)
    # Django's own rendering asks once per number printed (992 times here when written).
    assert unlocalized_asks * 10 < len(asked)
    assert fragments == localized
