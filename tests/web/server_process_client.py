"""The viewer side of tests/web/test_server_process.py, run as its own process (autobahn's
asyncio flavour cannot share pytest's process, where txaio is bound to Twisted already), on the
shared WebSocket viewer of scripts/bench/ws_viewers/.

    python tests/web/server_process_client.py MODE PORT CLUSTER_ID COOKIE SERVER_PID [TOKEN]

MODE `kill`: watch, start a producer app, SIGKILL the server; `term`: build a heavy cluster,
open share links, SIGTERM the server; `first`: what a new viewer is shown first. Prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: the shared viewer lives under scripts/

from scripts.bench.ws_viewers.client import Viewer, open_viewer  # noqa: E402

NOW_MS = re.compile(r'<span class="time" data-now-ms="(\d+)"')
HW = re.compile(r'<li data-partition="orders-(\d+)">[^<]*?HW (\d+),')
APP = {"type": "start_producer", "topic": "orders", "rate": "50", "keys": "10", "acks": "all"}


class StageViewer(Viewer):
    """Keeps the latest clock time and per-partition high watermark it was shown."""

    def onConnect(self, response: Any) -> None:  # noqa: N802 (autobahn's names)
        super().onConnect(response)
        self.seen: dict[str, Any] = {"now_ms": -1, "hw": {}}

    def on_fragment(self, payload: bytes, now: float) -> None:
        text = payload.decode(errors="replace")
        for match in NOW_MS.finditer(text):
            self.seen["now_ms"] = int(match.group(1))
        for partition, hw in HW.findall(text):
            self.seen["hw"][partition] = int(hw)


async def open_stage(port: int, cluster_id: str, cookie: str) -> StageViewer:
    viewer: StageViewer = await open_viewer(
        f"http://127.0.0.1:{port}",
        f"/ws/clusters/{cluster_id}/",
        cookie,
        protocol=StageViewer,
        timeout_s=15,
    )
    return viewer


async def send_command(viewer: StageViewer, seq: int, body: dict[str, Any]) -> dict[str, Any]:
    _, frame = await viewer.command(seq, {**body, "client": "viewer-1"}, timeout_s=30)
    return frame


async def first_full_state(port: int, cluster_id: str, cookie: str) -> dict[str, Any]:
    """What a new viewer is shown first: the host's state right after it replayed the log."""
    viewer = await open_stage(port, cluster_id, cookie)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while viewer.seen["now_ms"] < 0 or not viewer.seen["hw"]:
        assert loop.time() < deadline, "the restarted server sent no state"
        await asyncio.sleep(0.01)
    seen = {"now_ms": viewer.seen["now_ms"], "hw": dict(viewer.seen["hw"])}
    viewer.sendClose()
    return seen


async def watch_then_kill(port: int, cluster_id: str, cookie: str, pid: int) -> dict[str, Any]:
    viewer = await open_stage(port, cluster_id, cookie)
    assert (await send_command(viewer, 1, APP))["type"] == "ack"
    await asyncio.sleep(4.0)  # the app produces; the viewer is sent up to 10 states a second
    os.kill(pid, signal.SIGKILL)  # no flush, no lease release, no goodbye
    await viewer.wait_closed(15)
    return {"now_ms": viewer.seen["now_ms"], "hw": viewer.seen["hw"]}


HEAVY: list[dict[str, Any]] = [{"type": "speed", "speed": "20"}]
HEAVY += [{**APP, "rate": "200"}] * 2
HEAVY += [
    {
        "type": "add_group_consumer",
        "group": f"g{i}",
        "topic": "orders",
        "commit": "after",
        "strategy": "range",
        "isolation": "read_uncommitted",
    }
    for i in range(4)
]


async def load_then_terminate(
    port: int, cluster_id: str, cookie: str, pid: int, token: str
) -> dict[str, Any]:
    viewer = await open_stage(port, cluster_id, cookie)
    for seq, body in enumerate(HEAVY, start=1):
        assert (await send_command(viewer, seq, body))["type"] == "ack"
    # Share links with the longest log the replay budget admits, opened while it runs.
    loop = asyncio.get_running_loop()
    url = f"http://127.0.0.1:{port}/s/{token}/"
    opens = [
        loop.run_in_executor(None, lambda: urllib.request.urlopen(url, timeout=90).read())
        for _ in range(3)
    ]
    await asyncio.sleep(3.0)
    seen_at = viewer.seen["now_ms"]
    terminated = time.time()
    os.kill(pid, signal.SIGTERM)
    await asyncio.gather(*opens, return_exceptions=True)
    await asyncio.gather(viewer.wait_closed(30), return_exceptions=True)
    return {"seen_at_term_ms": seen_at, "last_shown_ms": viewer.seen["now_ms"], "at": terminated}


def main() -> None:
    mode, port, cluster_id, cookie, pid = sys.argv[1:6]
    if mode == "kill":
        result = asyncio.run(watch_then_kill(int(port), cluster_id, cookie, int(pid)))
    elif mode == "term":
        result = asyncio.run(
            load_then_terminate(int(port), cluster_id, cookie, int(pid), sys.argv[6])
        )
    else:
        result = asyncio.run(first_full_state(int(port), cluster_id, cookie))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
