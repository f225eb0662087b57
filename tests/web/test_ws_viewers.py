"""The shared figures of the WebSocket load tests (scripts/bench/ws_viewers.py); its `Viewer`
runs in tests/web/test_server_process.py and in the room benchmark's test (test_fanout.py)."""

from __future__ import annotations

import socket

from scripts.bench.ws_viewers import free_port, percentile, summary


def test_percentile_is_the_nearest_rank_value() -> None:
    values = [0.004, 0.001, 0.003, 0.002]
    assert percentile(values, 0.50) == 0.003
    assert percentile(values, 0.95) == 0.004
    assert percentile(values, 1.0) == 0.004
    assert percentile(values, 0.0) == 0.001
    assert percentile([], 0.5) is None


def test_summary_is_in_ms_with_the_asked_percentiles_and_max() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    assert summary(values) == {"n": 100, "p50": 51.0, "p95": 96.0, "p99": 100.0, "max": 100.0}
    assert summary(values, (0.50, 0.95)) == {"n": 100, "p50": 51.0, "p95": 96.0, "max": 100.0}
    assert summary([]) == {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
