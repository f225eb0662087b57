"""Run a Python module under tracemalloc, dumping a snapshot every so often: where a server's
memory grows (`scripts.bench.room --trace-server DIR` runs its Daphne this way).

    python -m scripts.bench.traced DIR SECONDS -m daphne ...   # snapshot-000.pickle, ...
    python -m scripts.bench.traced --report DIR                # growth first -> last, by line

Diagnostics only: tracemalloc slows the traced process and takes memory of its own, so a
traced run's latency and resident memory are not the untraced server's figures.
"""

from __future__ import annotations

import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path

FRAMES = 12


def _dump_every(folder: Path, seconds: float) -> None:
    index = 0
    while True:
        time.sleep(seconds)
        tracemalloc.take_snapshot().dump(str(folder / f"snapshot-{index:03d}.pickle"))
        index += 1


def report(folder: Path, top: int = 20, skip: int = 1) -> str:
    """Growth from the `skip`-th snapshot to the last, by allocating line and by file."""
    paths = sorted(folder.glob("snapshot-*.pickle"))
    if len(paths) <= skip:
        return f"{len(paths)} snapshots in {folder}: too few to compare"
    first = tracemalloc.Snapshot.load(str(paths[skip]))
    last = tracemalloc.Snapshot.load(str(paths[-1]))
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<*")]
    first, last = first.filter_traces(ignore), last.filter_traces(ignore)
    lines = [f"growth from {paths[skip].name} to {paths[-1].name}:"]
    total = sum(s.size_diff for s in last.compare_to(first, "filename"))
    lines.append(f"  total {total / 1024:+,.1f} KiB")
    lines.append("  by file:")
    for stat in last.compare_to(first, "filename")[:top]:
        name = stat.traceback[0].filename
        lines.append(f"    {stat.size_diff / 1024:+10,.1f} KiB {stat.count_diff:+8,d}  {name}")
    lines.append("  by place (innermost frames):")
    for stat in last.compare_to(first, "traceback")[:top]:
        where = " <- ".join(
            f"{Path(f.filename).name}:{f.lineno}" for f in list(stat.traceback)[-1:-5:-1]
        )
        lines.append(f"    {stat.size_diff / 1024:+10,.1f} KiB {stat.count_diff:+8,d}  {where}")
    return "\n".join(lines)


def main() -> int:
    if sys.argv[1:2] == ["--report"]:
        print(report(Path(sys.argv[2])))
        return 0
    folder, seconds, flag, module, *rest = sys.argv[1:]
    if flag != "-m":
        raise SystemExit(__doc__)
    Path(folder).mkdir(parents=True, exist_ok=True)
    tracemalloc.start(FRAMES)
    threading.Thread(
        target=_dump_every, args=(Path(folder), float(seconds)), daemon=True, name="tracemalloc"
    ).start()
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
