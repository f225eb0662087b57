"""Benchmark: a workshop room's engine host in this process, without sockets.

    python -m scripts.bench.room_host                  # 30 s, the instructor acting at 2/s
    python -m scripts.bench.room_host --seconds 60 --rate 2
    python -m scripts.bench.room_host --seconds 60 --rate 0    # nobody acts, the clock runs

What the room benchmark (scripts/bench/room.py) measures end to end, less the sockets: a fresh
room (its own SQLite data folder), its cluster's host started by this process's registry as
the embedded default does, one member in the cluster's viewers group standing for every
viewer (each viewer gets each version's text), and the instructor producing one record `rate`
times a second, as room.py's does. Prints the state versions a second, the text per viewer a
second (frames and bytes), the fragments the versions carried, the process's CPU time per
command (the host's clock, renders and log writes: nothing else runs here) and the renders.

CPU time and counts are the figures to compare (run main and a branch one after the other,
on the same machine); the command -> version time is wall time and depends on the load.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

TOP_LEVEL_ID = re.compile(r'<(\w+)\b[^>]*?\bid="([^"]+)"')


def setup_django(folder: Path) -> None:
    for key in [k for k in os.environ if k.startswith(("DJANGO_", "REDIS_URL", "DATABASE_URL"))]:
        del os.environ[key]
    os.environ |= {
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "KAFKA_DOJO_DATA_DIR": str(folder),
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
    }
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def sent_elements(html: str) -> list[tuple[str, int]]:
    """A version's top-level elements (what htmx swaps) as (id, bytes), in order, after the
    version marker; the stage's replica parts (stage-row-N-bB) named stage-row-*."""
    from webapp.engine_host.render import element_end  # after setup_django

    found = []
    at = 0
    while (match := TOP_LEVEL_ID.search(html, at)) is not None:
        end = element_end(html, match.start(), match.group(1))
        found.append((match.group(2), len(html[match.start() : end].encode())))
        at = end
    return [(re.sub(r"^stage-row-\d+(-b\d+)?$", "stage-row-*", i), n) for i, n in found[1:]]


async def run(seconds: float, rate: float, cluster_id: str) -> dict[str, Any]:
    from webapp.engine_host.host import viewers_group
    from webapp.engine_host.registry import get_registry

    registry = get_registry()
    host = await registry.ensure(cluster_id)
    assert host is not None, "no host started"
    layer = registry.layer
    member = await layer.new_channel()
    await layer.group_add(viewers_group(cluster_id), member)
    host.viewers["bench-viewer"] = time.monotonic()

    versions: list[tuple[float, int, int]] = []  # (arrived, version, bytes)
    ids: collections.Counter[str] = collections.Counter()
    sizes: collections.Counter[str] = collections.Counter()
    arrived: dict[int, float] = {}
    renders = {"count": 0, "cpu_s": 0.0}
    render = host._render_runtime_fragments

    def counted() -> Any:
        result = render()
        renders["count"] += 1
        renders["cpu_s"] += result[1]
        return result

    host._render_runtime_fragments = counted  # type: ignore[method-assign]

    async def receive() -> None:
        while True:
            message = await layer.receive(member)
            if message.get("type") != "cluster.state":
                continue
            html = str(message["html"])
            now = time.monotonic()
            versions.append((now, int(message["version"]), len(html.encode())))
            arrived[int(message["version"])] = now
            for element_id, size in sent_elements(html):
                ids[element_id] += 1
                sizes[element_id] += size

    receiver = asyncio.create_task(receive())
    await asyncio.sleep(2.0)  # the host's first versions (the clock starting) are not counted
    versions.clear()
    ids.clear()
    sizes.clear()
    renders.update(count=0, cpu_s=0.0)
    delays: list[float] = []
    pending: list[tuple[float, int]] = []
    cpu_start, wall_start = time.process_time(), time.monotonic()
    commands = 0
    seq = 0
    while rate <= 0 and time.monotonic() - wall_start < seconds:
        # Nobody acts: the room's clock runs and its versions reach the viewer, that is all.
        host.viewers["bench-viewer"] = time.monotonic()
        await asyncio.sleep(min(1.0, max(0.0, wall_start + seconds - time.monotonic())))
    while rate > 0 and time.monotonic() - wall_start < seconds:
        host.viewers["bench-viewer"] = time.monotonic()
        seq += 1
        started = time.monotonic()
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
        commands += 1
        pending.append((started, int(frame["visible_in"])))
        await asyncio.sleep(max(0.0, started + 1 / rate - time.monotonic()))
        for sent_at, visible_in in list(pending):
            seen = [at for version, at in arrived.items() if version >= visible_in]
            if seen:
                delays.append(1000 * (min(seen) - sent_at))
                pending.remove((sent_at, visible_in))
    await asyncio.sleep(1.0)
    cpu = time.process_time() - cpu_start
    wall = time.monotonic() - wall_start
    receiver.cancel()
    await registry.shutdown()
    counted_versions = [v for v in versions if v[0] <= wall_start + wall]
    total_bytes = sum(b for _, _, b in counted_versions)
    delays.sort()
    return {
        "seconds": round(wall, 1),
        "commands": commands,
        "versions_per_s": round(len(counted_versions) / wall, 2),
        "frames_per_viewer_per_s": round(len(counted_versions) / wall, 2),
        "kb_per_viewer_per_s": round(total_bytes / wall / 1024, 1),
        "mean_version_kb": round(total_bytes / max(1, len(counted_versions)) / 1024, 2),
        "process_cpu_ms_per_command": round(1000 * cpu / max(1, commands), 1),
        "process_cpu_percent_of_a_core": round(100 * cpu / wall, 1),
        "renders": renders["count"],
        "render_cpu_ms_per_command": round(1000 * renders["cpu_s"] / max(1, commands), 1),
        "command_to_version_ms_p50": round(statistics.median(delays), 1) if delays else None,
        "command_to_version_ms_p95": (
            round(delays[int(0.95 * (len(delays) - 1))], 1) if delays else None
        ),
        # Per version: how many of each element were sent, and their KB.
        "elements_per_version": {
            key: [
                round(n / max(1, len(counted_versions)), 2),
                round(sizes[key] / max(1, len(counted_versions)) / 1024, 2),
            ]
            for key, n in ids.most_common(16)
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--rate", type=float, default=2.0, help="instructor commands a second (0: nobody acts)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dojo-room-host-") as folder:
        setup_django(Path(folder))
        from django.contrib.auth import get_user_model

        from webapp.workshops import services

        teacher = get_user_model().objects.create_user(
            "bench-teacher", password="bench-password-1", is_staff=True
        )
        workshop = services.workshop_create(owner=teacher, title="Room host benchmark")
        result = asyncio.run(run(args.seconds, args.rate, workshop.cluster_id))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
