"""Benchmark: what a workshop room's host keeps per record the instructor produces, in cluster
time (no waiting on the wall clock), with its time-travel checkpoints and without them.

    python -m scripts.bench.checkpoint_memory                       # 12 cluster minutes, both
    python -m scripts.bench.checkpoint_memory --minutes 20 --max-kept 8 --top 12

A fresh room (its own SQLite data folder) and its cluster's host, started by this process's
registry as the embedded default does, with nobody watching (so its own clock stands still);
the benchmark drives it as a room's clock and instructor would: every 500 cluster ms one
produce, and the clock run forward 100 ms at a time (each tick a chance for a live checkpoint,
as `Host.advance_live` gives it). After the first `--skip` cluster minutes, tracemalloc counts
what the rest of the run keeps: bytes per record produced. The same run is done twice in this
process, with the process's checkpoint store and with a store that keeps nothing (bounded at
one byte); the difference is what the checkpoints keep per record. `--max-kept` sets how many
checkpoints the host keeps of its own (`MAX_LIVE_CHECKPOINTS`), so the run measures the
checkpoints' growth once their count stops growing, not their filling up.

Memory, not time: tracemalloc counts Python's allocations, which the machine's load does not
move (SQLite's own allocations are not counted; `room_memory` samples the resident memory).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

PRODUCE_EVERY_MS = 500
TICK_MS = 100


async def drive(cluster_id: str, minutes: float, skip: float, top: int) -> dict[str, Any]:
    from webapp.engine_host.registry import get_registry

    registry = get_registry()
    host = await registry.ensure(cluster_id)
    assert host is not None, "no host started"
    produced = 0
    seq = 0
    measured_from: tuple[int, int, tracemalloc.Snapshot | None] | None = None
    end_ms = int(minutes * 60_000)
    try:
        while host.runtime.now_ms < end_ms:
            if measured_from is None and host.runtime.now_ms >= skip * 60_000:
                gc.collect()
                snapshot = tracemalloc.take_snapshot() if top else None
                measured_from = (tracemalloc.get_traced_memory()[0], produced, snapshot)
            seq += 1
            frame = await host.command(
                {
                    "type": "produce",
                    "topic": "orders",
                    "key": f"k{seq % 7}",
                    "value": f"bench-{seq}",
                    "count": 1,
                },
                client_id="bench-instructor",
                client_seq=seq,
            )
            assert frame["type"] == "ack", frame
            produced += 1
            for _ in range(PRODUCE_EVERY_MS // TICK_MS):
                await host.advance_live(TICK_MS)
        gc.collect()
        assert measured_from is not None, "--skip is past the run's end"
        traced, produced_before, before = measured_from
        kept = tracemalloc.get_traced_memory()[0] - traced
        records = produced - produced_before
        lines: list[str] = []
        if before is not None:
            after = tracemalloc.take_snapshot()
            lines = [str(stat) for stat in after.compare_to(before, "lineno")[:top]]
        live = host.checkpoints
        return {
            "records_measured": records,
            "kept_bytes": kept,
            "bytes_per_record": round(kept / max(records, 1), 1),
            "checkpoints_kept_by_the_host": 0 if live is None else len(live.mine),
            "checkpoints_kept_in_all": 0 if live is None else live.kept,
            "top_lines": lines,
        }
    finally:
        await registry.shutdown()


def measure(checkpoints_on: bool, minutes: float, skip: float, max_kept: int, top: int) -> Any:
    from django.contrib.auth import get_user_model

    from lessons.scenarios import checkpoints
    from webapp.workshops import services

    checkpoints.MAX_LIVE_CHECKPOINTS = max_kept
    saved = checkpoints.default_store
    empty = checkpoints.CheckpointStore(max_bytes=1)
    own = checkpoints.CheckpointStore()
    checkpoints.default_store = (lambda: own) if checkpoints_on else (lambda: empty)  # type: ignore[assignment]
    try:
        teacher = get_user_model().objects.create_user(
            f"bench-teacher-{int(checkpoints_on)}", password="bench-password-1", is_staff=True
        )
        workshop = services.workshop_create(owner=teacher, title="Checkpoint memory benchmark")
        tracemalloc.start(1)
        try:
            return asyncio.run(drive(workshop.cluster_id, minutes, skip, top))
        finally:
            tracemalloc.stop()
    finally:
        checkpoints.default_store = saved  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="cluster minutes in all")
    parser.add_argument("--skip", type=float, default=2.0, help="cluster minutes not counted")
    parser.add_argument(
        "--max-kept", type=int, default=8, help="checkpoints the host keeps of its own"
    )
    parser.add_argument("--top", type=int, default=0, help="allocating lines shown (slower)")
    args = parser.parse_args()
    from scripts.bench.room_host import setup_django

    with tempfile.TemporaryDirectory(prefix="dojo-checkpoint-memory-") as folder:
        setup_django(Path(folder))
        results = {
            side: measure(side == "on", args.minutes, args.skip, args.max_kept, args.top)
            for side in ("on", "off")
        }
    on, off = results["on"], results["off"]
    for side, result in results.items():
        lines = result.pop("top_lines")
        print(f"checkpoints {side}: {json.dumps(result)}")
        for line in lines:
            print(f"    {line}")
    print(
        json.dumps(
            {
                "bytes_per_record_with_checkpoints": on["bytes_per_record"],
                "bytes_per_record_without": off["bytes_per_record"],
                "checkpoints_bytes_per_record": round(
                    on["bytes_per_record"] - off["bytes_per_record"], 1
                ),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
