"""Benchmark: a workshop room's host in this process, its resident memory every 10 s, with the
process's checkpoint store or without it.

    python -m scripts.bench.room_memory --checkpoints on --seconds 70
    python -m scripts.bench.room_memory --checkpoints off --seconds 70
    python -m scripts.bench.room_memory --seconds 420 --max-kept 32   # a live host's cap, lower

It runs `scripts.bench.room_host` (a room, its host, the instructor producing twice a second,
no sockets) and samples this process's VmRSS every 10 s; with `--checkpoints off` the host's
checkpoint store keeps nothing (a store bounded at one byte), so the two runs tell how much of
the host's growth is its time-travel checkpoints. Run both, alternating, on the same machine.
`--max-kept N` sets how many checkpoints a live host keeps of its own (`MAX_LIVE_CHECKPOINTS`)
so a shorter run reaches the cap and shows the resident memory once the count stops growing.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", choices=("on", "off"), default="on")
    parser.add_argument("--seconds", type=float, default=70.0)
    parser.add_argument("--max-kept", type=int, help="checkpoints a live host keeps of its own")
    args = parser.parse_args()
    from lessons.scenarios import checkpoints

    if args.max_kept is not None:
        checkpoints.MAX_LIVE_CHECKPOINTS = args.max_kept

    if args.checkpoints == "off":
        empty = checkpoints.CheckpointStore(max_bytes=1)
        checkpoints.default_store = lambda: empty  # type: ignore[assignment]
    samples: list[float] = []

    def sample() -> None:
        while True:
            samples.append(round(rss_mb(), 1))
            time.sleep(10)

    threading.Thread(target=sample, daemon=True).start()
    from scripts.bench import room_host

    sys.argv = ["room_host", "--seconds", str(args.seconds)]
    room_host.main()
    store = checkpoints.default_store()
    print(
        json.dumps(
            {
                "checkpoints": args.checkpoints,
                "rss_mb_every_10_s": samples,
                "checkpoints_kept": len(store),
                "checkpoint_store_mib": round(store.size_bytes / 2**20, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
