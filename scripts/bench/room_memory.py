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
import contextlib
import ctypes
import ctypes.util
import functools
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


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    return libc


@functools.cache
def _sqlite() -> ctypes.CDLL:
    sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    return sqlite


def breakdown() -> dict[str, float]:
    """Where this process's memory is, in MB: what glibc's malloc has handed out and still
    holds (`mallinfo2`: in use, and held free in its heaps), what SQLite's own allocator has in
    use (its page caches included: `sqlite3_memory_used`), and pymalloc's blocks in use (Python
    objects of up to 512 bytes, `sys.getallocatedblocks`, a count)."""
    found: dict[str, float] = {}
    try:
        info = _libc().mallinfo2()
        found["malloc_in_use_mb"] = round((info.uordblks + info.hblkhd) / 2**20, 1)
        found["malloc_free_held_mb"] = round(info.fordblks / 2**20, 1)
    except (OSError, AttributeError):
        pass
    with contextlib.suppress(OSError, AttributeError):
        found["sqlite_in_use_mb"] = round(_sqlite().sqlite3_memory_used() / 2**20, 1)
    found["python_blocks_k"] = round(sys.getallocatedblocks() / 1000, 1)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", choices=("on", "off"), default="on")
    parser.add_argument("--seconds", type=float, default=70.0)
    parser.add_argument(
        "--rate", type=float, default=2.0, help="instructor commands a second (0: nobody acts)"
    )
    parser.add_argument("--max-kept", type=int, help="checkpoints a live host keeps of its own")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also sample malloc's, SQLite's and pymalloc's memory every 10 s",
    )
    args = parser.parse_args()
    from lessons.scenarios import checkpoints

    if args.max_kept is not None:
        checkpoints.MAX_LIVE_CHECKPOINTS = args.max_kept

    if args.checkpoints == "off":
        empty = checkpoints.CheckpointStore(max_bytes=1)
        checkpoints.default_store = lambda: empty  # type: ignore[assignment]
    samples: list[float] = []
    parts: list[dict[str, float]] = []

    def sample() -> None:
        while True:
            samples.append(round(rss_mb(), 1))
            if args.breakdown:
                parts.append(breakdown())
            time.sleep(10)

    threading.Thread(target=sample, daemon=True).start()
    from scripts.bench import room_host

    sys.argv = ["room_host", "--seconds", str(args.seconds), "--rate", str(args.rate)]
    room_host.main()
    store = checkpoints.default_store()
    print(
        json.dumps(
            {
                "checkpoints": args.checkpoints,
                "rss_mb_every_10_s": samples,
                **({key: [part.get(key) for part in parts] for key in parts[0]} if parts else {}),
                "checkpoints_kept": len(store),
                "checkpoint_store_mib": round(store.size_bytes / 2**20, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
