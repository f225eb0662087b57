"""WebSocket viewers of a running Kafka Dojo server, and the figures load tests report: one
client for the programs that watch a server from outside, as a browser would
(`scripts/bench/room.py`: N viewers of a workshop room; `scripts/loadtest_isolation.py`: two
visitors of one server; `tests/web/server_process_client.py`: a viewer of a server that gets
killed).

`client` holds the socket (`Viewer`, `open_viewer`; autobahn's asyncio flavour, so a process of
its own); this module the figures they print (`percentile`, `summary`: nearest rank, in ms) and
`free_port`, a loopback port for a server, importable anywhere (pytest's process included).
"""

from __future__ import annotations

import socket
from typing import Any


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank value below which `share` of `values` lie (None for no values)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def summary(values: list[float], shares: tuple[float, ...] = (0.50, 0.95, 0.99)) -> dict[str, Any]:
    """n, the percentiles (p50, p95, ...) and max of durations in seconds, in ms (0.1 ms)."""
    figures: dict[str, Any] = {"n": len(values)}
    for share in (*shares, 1.0):
        value = percentile(values, share)
        key = "max" if share == 1.0 else f"p{round(share * 100):d}"
        figures[key] = None if value is None else round(value * 1000, 1)
    return figures


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
