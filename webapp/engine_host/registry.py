"""The process's engine hosts: starts a host on demand when this process wins the lease."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from lessons.scenarios import checkpoints
from webapp.engine_host import store
from webapp.engine_host.host import LEASE_TTL_S, ClusterHost, HostSettings
from webapp.engine_host.leases import LeaseStore, LocalLeaseStore, RedisLeaseStore

logger = logging.getLogger(__name__)


class TooManyHosts(Exception):
    """This process runs as many live clusters as it may."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This server already runs {limit} live clusters, its limit; yours starts as soon "
            "as one goes idle (a minute without viewers). Try again shortly."
        )
        self.message = str(self)


class HostRegistry:
    """The engine hosts that run in this process, one per owned cluster, on one event loop."""

    def __init__(
        self,
        *,
        layer: BaseChannelLayer,
        leases: LeaseStore,
        publish_max_hz: float = 10.0,
        idle_seconds: float = 60.0,
        kafka_listeners: bool = False,
        max_hosts: int = 40,
    ) -> None:
        self.layer = layer
        # KAFKA_DOJO_KAFKA_LISTENERS: every host opens Kafka listeners for real clients.
        self.kafka_listeners = kafka_listeners
        self.leases = leases
        self.owner_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.publish_max_hz = publish_max_hz
        self.idle_seconds = idle_seconds
        self.max_hosts = max_hosts
        self.hosts: dict[str, ClusterHost] = {}
        self._starting: dict[str, asyncio.Task[ClusterHost | None]] = {}
        self.loop = asyncio.get_running_loop()

    async def ensure(self, cluster_id: str) -> ClusterHost | None:
        """The local host of the cluster, started if this process may own it, else None.
        Raises TooManyHosts when this process already runs `max_hosts` live clusters."""
        host = self.hosts.get(cluster_id)
        if host is not None and host.running:
            return host
        if cluster_id not in self._starting and len(self.hosts) >= self.max_hosts:
            raise TooManyHosts(self.max_hosts)
        task = self._starting.get(cluster_id)
        if task is None:
            task = asyncio.create_task(self._start(cluster_id))
            self._starting[cluster_id] = task
            task.add_done_callback(lambda _: self._starting.pop(cluster_id, None))
        return await asyncio.shield(task)

    async def _start(self, cluster_id: str) -> ClusterHost | None:
        if not await self.leases.acquire(cluster_id, self.owner_id, LEASE_TTL_S):
            return None  # another process owns it; the channel layer reaches that host
        try:
            stored = await database_sync_to_async(store.cluster_load)(cluster_id=cluster_id)
            # Replaying a long log is CPU work: keep it off the event loop.
            # From the nearest checkpoint this process keeps (a fork, a share link, a reload).
            replayed = await asyncio.to_thread(checkpoints.replay, stored.spec, stored.commands)
            host = ClusterHost(
                cluster_id=cluster_id,
                runtime=replayed.runtime,
                stored=stored,
                times=replayed.times,
                layer=self.layer,
                leases=self.leases,
                settings=HostSettings(
                    publish_max_hz=self.publish_max_hz,
                    idle_seconds=self.idle_seconds,
                    owner_id=self.owner_id,
                    max_apps=int(getattr(settings, "DOJO_MAX_APPS_PER_CLUSTER", 8)),
                    max_app_rate=float(getattr(settings, "DOJO_MAX_APP_RATE_PER_CLUSTER", 400)),
                ),
                on_stop=self._forget,
            )
            host.wire_enabled = self.kafka_listeners
            await host.start()
        except BaseException:
            await self.leases.release(cluster_id, self.owner_id)
            raise
        self.hosts[cluster_id] = host
        logger.info("replayed %d commands of %s", len(stored.commands), cluster_id)
        return host

    def _forget(self, host: ClusterHost) -> None:
        if self.hosts.get(host.cluster_id) is host:
            del self.hosts[host.cluster_id]

    async def shutdown(self) -> None:
        for host in list(self.hosts.values()):
            await host.stop("shutdown")
        self.hosts.clear()
        close = getattr(self.leases, "close", None)
        if close is not None:
            await close()


def build_registry() -> HostRegistry:

    leases: LeaseStore
    if settings.DOJO_REDIS_URL:
        leases = RedisLeaseStore(settings.DOJO_REDIS_URL)
    else:
        leases = LocalLeaseStore()
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS has no default layer: the engine host needs one.")
    return HostRegistry(
        layer=layer,
        leases=leases,
        publish_max_hz=settings.DOJO_PUBLISH_MAX_HZ,
        idle_seconds=settings.DOJO_HOST_IDLE_SECONDS,
        kafka_listeners=settings.DOJO_KAFKA_LISTENERS,
        max_hosts=int(settings.DOJO_MAX_LIVE_HOSTS),
    )


def get_registry() -> HostRegistry:
    """This process's registry for the running event loop (kept on the app config)."""
    from django.apps import apps

    app_config = apps.get_app_config("webapp")
    registry: HostRegistry | None = getattr(app_config, "host_registry", None)
    if registry is None or registry.loop is not asyncio.get_running_loop():
        registry = build_registry()
        app_config.host_registry = registry  # type: ignore[attr-defined]
    return registry
