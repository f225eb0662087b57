"""How a cluster's memory grows with the records it holds (calibrates the host memory bound).

Runs one sandbox (2 producer apps at 200/s, a group consumer app) in this process and prints,
every step of cluster time, the process's resident memory and the runtime's own estimate
(`webapp.engine_host.memory.cluster_memory_bytes`), so the estimate's factor can be checked:

    .venv/bin/python scripts/measure_host_memory.py --minutes 4
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--step-s", type=float, default=30.0)
    args = parser.parse_args()
    import django

    django.setup()
    from lessons.scenarios import ClusterRuntime, ClusterSpec
    from webapp.engine_host.memory import (
        PYTHON_BYTES_PER_RECORD,
        cluster_memory_bytes,
        stored_record_bytes,
        stored_records,
    )
    from webapp.services import sandbox_setup_commands

    log = list(sandbox_setup_commands(brokers=3))
    app = {"type": "start_producer", "topic": "orders", "rate": 200.0, "keys": 10, "acks": "all"}
    log += [app, app]
    log.append(
        {
            "type": "add_group_consumer",
            "group": "g",
            "topic": "orders",
            "commit": "after",
            "strategy": "range",
            "isolation": "read_uncommitted",
        }
    )
    runtime = ClusterRuntime.replay(ClusterSpec(seed=7), log)
    gc.collect()
    base_rss, base_est = rss_bytes(), cluster_memory_bytes(runtime)
    base_records, base_bytes = stored_records(runtime), stored_record_bytes(runtime)
    rows = []
    for _ in range(int(args.minutes * 60 / args.step_s)):
        runtime.advance(int(args.step_s * 1000))
        gc.collect()
        grown_rss = rss_bytes() - base_rss
        grown_est = cluster_memory_bytes(runtime) - base_est
        rows.append(
            {
                "cluster_s": runtime.now_ms / 1000,
                "stored_records": stored_records(runtime),
                "stored_record_mib": round(stored_record_bytes(runtime) / 2**20, 2),
                # What each stored record costs beyond its Kafka bytes (resident memory).
                "python_bytes_per_record": round(
                    (grown_rss - stored_record_bytes(runtime) + base_bytes)
                    / max(1, stored_records(runtime) - base_records)
                ),
                "rss_growth_mib": round(grown_rss / 2**20, 1),
                "estimate_growth_mib": round(grown_est / 2**20, 1),
                "estimate_over_rss": round(grown_est / grown_rss, 2) if grown_rss > 0 else None,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print("PYTHON_BYTES_PER_RECORD in use:", PYTHON_BYTES_PER_RECORD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
