"""WebSocket viewers of a running Kafka Dojo server, and the figures load tests report: one
client for the programs that watch a server from outside, as a browser would
(`scripts/bench/room.py`: N viewers of a workshop room; `scripts/loadtest_isolation.py`: two
visitors of one server; `tests/web/server_process_client.py`: a viewer of a server that gets
killed).

`client` holds the socket (`Viewer`, `open_viewer`; autobahn's asyncio flavour, so a process of
its own); this module the figures they print (`percentile`, `summary`: nearest rank, in ms;
`memory_growth`: is a server's memory flat?) and `free_port`, a loopback port for a server,
importable anywhere (pytest's process included).
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


def memory_growth(
    series: list[float | None], commands: int, watch: list[float | None]
) -> dict[str, float | None]:
    """Is memory flat? From the 10-s resident memory samples of the acting phase: how much it
    grew over that phase's second half (the first half holds the warm-up: imports, caches, the
    first renders and checkpoints), the same per command acted then (the room's own state grows
    with its records and its log), and how much it grew while nobody acted (`--watch`: viewers
    connected, frames still sent)."""
    found: dict[str, float | None] = {
        "second_half_mb": None,
        "second_half_kb_per_command": None,
        "watch_mb": None,
    }
    later = [
        (index, mb)
        for index, mb in enumerate(series)
        if mb is not None and index >= len(series) // 2
    ]
    if len(series) >= 3 and commands > 0 and len(later) >= 2:
        (first, start), (last, end) = later[0], later[-1]
        # Samples are 10 s apart and commands evenly spread: the commands between the two.
        acted = commands * (last - first) / (len(series) - 1)
        found["second_half_mb"] = round(end - start, 1)
        found["second_half_kb_per_command"] = round(1024 * (end - start) / max(1.0, acted), 2)
    watched = [mb for mb in watch if mb is not None]
    if len(watched) >= 2:
        found["watch_mb"] = round(watched[-1] - watched[0], 1)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
