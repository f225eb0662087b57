"""An engine-host worker: a process that runs live clusters for the Daphne processes.

Scaled mode (KAFKA_DOJO_HOSTS=worker, REDIS_URL set) keeps the engine off the web processes.
A worker (`manage.py run_engine_hosts`) listens on the channel layer's WORKERS_GROUP; a Daphne
process that needs a cluster asks there ("engine.ensure"). Every worker that hears it tries the
cluster's Redis lease: the one that gets it replays the command log and starts the host, the
others stay silent, and the owner answers "engine.ready" once its host listens on the cluster's
group. From then on the Daphne processes reach the host through that group, as in any mode.

A worker started with `--name` owns leases as `name/<token>`: restarted under the same name
after a crash (kill -9), it adopts the leases its dead run still holds and replays their
clusters at once, instead of leaving them dark until the leases expire (LEASE_TTL_S). Each
worker needs a name of its own; two live workers with one name would take each other's leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from channels.layers import BaseChannelLayer

from webapp.engine_host.host import LEASE_TTL_S
from webapp.engine_host.leases import RedisLeaseStore
from webapp.engine_host.registry import WORKERS_GROUP, HostRegistry, TooManyHosts

logger = logging.getLogger(__name__)

# channels_redis forgets group members after a day; a worker renews its place well before.
GROUP_REFRESH_S = 3600.0


class EngineWorker:
    def __init__(self, registry: HostRegistry, *, name: str | None = None) -> None:
        if not registry.hosts_here:
            raise ValueError("an engine-host worker's registry must host clusters")
        self.registry = registry
        self.layer: BaseChannelLayer = registry.layer
        self.name = name
        if name:
            registry.owner_id = f"{name}/{secrets.token_hex(4)}"
        self.channel = ""
        self._tasks: set[asyncio.Task[None]] = set()

    async def adopt(self) -> list[str]:
        """Start the clusters an earlier run under this worker's name was hosting."""
        leases = self.registry.leases
        if not self.name or not isinstance(leases, RedisLeaseStore):
            return []
        adopted = await leases.adopt(self.name, self.registry.owner_id, LEASE_TTL_S)
        for cluster_id in adopted:
            try:
                await self.registry.ensure(cluster_id)
                logger.info("worker %s took back %s", self.registry.owner_id, cluster_id)
            except Exception:
                logger.exception("worker %s could not take back %s", self.name, cluster_id)
        return adopted

    async def run(self, ready: asyncio.Event | None = None) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(WORKERS_GROUP, self.channel)
        refresher = asyncio.create_task(self._refresh_group())
        try:
            await self.adopt()
            logger.info("engine-host worker %s ready", self.registry.owner_id)
            if ready is not None:
                ready.set()
            while True:
                message = await self.layer.receive(self.channel)
                if message.get("type") == "engine.ensure":
                    task = asyncio.create_task(self._ensure(message))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                else:
                    logger.warning("worker ignored a message of type %r", message.get("type"))
        finally:
            refresher.cancel()
            with contextlib.suppress(Exception):
                await self.layer.group_discard(WORKERS_GROUP, self.channel)

    async def _refresh_group(self) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_S)
            await self.layer.group_add(WORKERS_GROUP, self.channel)

    async def _ensure(self, message: dict[str, Any]) -> None:
        cluster_id = str(message.get("cluster_id") or "")
        reply_to = message.get("reply_to")
        answer: dict[str, Any] | None
        try:
            host = await self.registry.ensure(cluster_id)
            # None: another worker holds the lease; it answers when its host listens.
            answer = None if host is None else {"owner": self.registry.owner_id}
            if answer is not None:
                answer["type"] = "engine.ready"
        except TooManyHosts as full:
            answer = {"type": "engine.full", "message": full.message}
        except Exception as error:
            logger.exception("worker could not start %s", cluster_id)
            answer = {"type": "engine.error", "message": f"{type(error).__name__}: {error}"}
        if answer is not None and reply_to:
            with contextlib.suppress(Exception):
                await self.layer.send(str(reply_to), answer)
