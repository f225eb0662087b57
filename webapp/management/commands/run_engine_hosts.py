"""`manage.py run_engine_hosts [--name NAME]`: an engine-host worker (scaled mode).

Runs live clusters for the Daphne processes (KAFKA_DOJO_HOSTS=worker) over the Redis channel
layer; see webapp/engine_host/worker.py. Stops on SIGTERM or SIGINT, logging the time its
clocks ran and releasing its leases, so another worker takes the clusters over at once.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.engine_host.registry import build_registry
from webapp.engine_host.worker import EngineWorker


class Command(BaseCommand):
    help = "Run an engine-host worker: it hosts live clusters for the Daphne processes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--name",
            default="",
            help="this worker's name, unique among the workers: restarted under the same "
            "name, it takes back at once the clusters it was hosting",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DOJO_REDIS_URL:
            raise CommandError("run_engine_hosts needs REDIS_URL (scaled mode).")
        asyncio.run(self._main(str(options["name"] or "")))

    async def _main(self, name: str) -> None:
        registry = build_registry(worker=True)
        # Code in this process that asks for a cluster (a host's own helpers) finds this one.
        apps.get_app_config("webapp").host_registry = registry  # type: ignore[attr-defined]
        worker = EngineWorker(registry, name=name or None)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        ready = asyncio.Event()
        running = asyncio.create_task(worker.run(ready))
        await asyncio.wait(
            [running, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        if ready.is_set():
            self.stdout.write(f"engine-host worker {registry.owner_id} stopping")
        running.cancel()
        await registry.shutdown()
        if running.done() and not running.cancelled() and running.exception() is not None:
            raise CommandError(f"the worker failed: {running.exception()}")
