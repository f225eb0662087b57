"""Logs exported by earlier versions of the engine still replay."""

from __future__ import annotations

import json
from pathlib import Path

from engine import Cluster

DATA = Path(__file__).parent / "data"


def test_a_log_exported_before_the_engine_was_split_into_packages_still_replays() -> None:
    # Exported by the engine as it was before its modules moved into subpackages and lost their
    # import-time registration: topics, an idempotent and a transactional producer, a group,
    # apps (started, crashed, restarted), a broker stop, a network partition, lost responses.
    log = json.loads((DATA / "log_before_engine_layout.json").read_text())
    cluster = Cluster.from_log(log)
    assert cluster.export_log() == log
    assert Cluster.from_log(log).snapshot() == cluster.snapshot()
    assert [app["kind"] for app in cluster.snapshot()["apps"]] == ["consumer", "producer"]
    assert sum(p.log_end_offset for p in cluster.describe_topic("orders").partitions) > 20
