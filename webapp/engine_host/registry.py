"""The process's engine hosts: starts a host on demand when this process wins the lease.

KAFKA_DOJO_HOSTS picks where hosts run. `process` (the default): in the process that is asked
(embedded mode, one Daphne). `worker` (scaled mode): only in engine-host workers
(`manage.py run_engine_hosts`, webapp/engine_host/worker.py); a Daphne process then owns no
cluster and asks the workers, over the channel layer, to make sure one of them hosts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import sys
import threading
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from lessons.scenarios import checkpoints
from webapp.engine_host import replay_pool, store
from webapp.engine_host.host import LEASE_TTL_S, ClusterHost, HostSettings
from webapp.engine_host.leases import LeaseStore, LocalLeaseStore, RedisLeaseStore

logger = logging.getLogger(__name__)

# The group every engine-host worker listens on for "engine.ensure" requests.
WORKERS_GROUP = "dojo.engine-workers"
# How long a Daphne process waits for a worker to start (replay) a cluster.
WORKER_START_TIMEOUT_S = 30.0
# After a worker said it is full, how long to wait for another that may have room.
WORKER_FULL_GRACE_S = 1.0


class TooManyHosts(Exception):
    """This process runs as many live clusters as it may."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This server already runs {limit} live clusters, its limit; yours starts as soon "
            "as one goes idle (a minute without viewers). Try again shortly."
        )
        self.message = str(self)


# A controlled shutdown (SIGTERM) waits at most this long for hosts to flush and let go.
SHUTDOWN_TIMEOUT_S = 8.0


async def replay_in_daemon_thread(spec: Any, commands: list[dict[str, Any]]) -> checkpoints.Replay:
    """`checkpoints.replay` (from the nearest checkpoint) in a daemon thread: like
    `asyncio.to_thread`, except that the interpreter's exit does not join it (the default
    executor's threads are joined, which made a SIGTERM wait for minutes behind a long
    replay)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[checkpoints.Replay] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def work() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = checkpoints.replay(spec, commands)
        except BaseException as failure:  # handed to the awaiting task, raised there
            error = failure
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="dojo-host-replay", daemon=True).start()
    return await done


def _stop_on_reactor_shutdown(registry: HostRegistry) -> None:
    """Under Daphne (a Twisted reactor runs this loop), SIGTERM stops the reactor: stop the
    hosts first, so no clock keeps running cluster time while the server winds down."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not getattr(reactor, "running", False):
        return
    if getattr(reactor, "_asyncioEventloop", None) is not registry.loop:
        return
    from twisted.internet import defer

    def before_shutdown() -> Any:
        return defer.Deferred.fromFuture(asyncio.ensure_future(registry.shutdown()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
    # Once the reactor has shut down (hosts stopped, their logs written and committed), the
    # process ends at once: the interpreter's own finalization garbage-collected live engine
    # runtimes and asyncio queues and crashed the process (SIGSEGV, faulthandler: "Garbage-
    # collecting" in asyncio/queues.py, tests/web/test_server_process.py under load), and it
    # would also join worker threads still running an engine tick.
    reactor.addSystemEventTrigger("after", "shutdown", _exit_now)
    replay_pool.warm()  # a server: its replay workers start now, not on the first share link


class NoEngineHost(TooManyHosts):
    """Scaled mode: no engine-host worker took the cluster in time."""

    def __init__(self, detail: str) -> None:
        Exception.__init__(self, detail)
        self.message = detail


def _exit_now() -> None:
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


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
        hosts_here: bool = True,
        announce_start: bool = False,
    ) -> None:
        self.layer = layer
        # False: this process hosts nothing; workers do (see the module docstring).
        self.hosts_here = hosts_here
        # True (workers): a started host tells the cluster's sockets to join it again, so
        # sockets watching a host that died see its successor at once.
        self.announce_start = announce_start
        # Scaled mode, this process: which owner last said it hosts a cluster.
        self._ready_owner: dict[str, str] = {}
        self._asking: dict[str, asyncio.Task[None]] = {}
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
        # Set by `shutdown`: no new host starts, and every clock has stopped.
        self.closing = False

    async def ensure(self, cluster_id: str) -> ClusterHost | None:
        """The local host of the cluster, started if this process may own it, else None.
        Raises TooManyHosts when this process already runs `max_hosts` live clusters."""
        if not self.hosts_here:
            await self._ensure_elsewhere(cluster_id)
            return None
        host = self.hosts.get(cluster_id)
        if host is not None and host.running:
            return host
        if self.closing:
            return None  # shutting down: nothing starts (the socket is told to reload)
        if cluster_id not in self._starting and len(self.hosts) >= self.max_hosts:
            raise TooManyHosts(self.max_hosts)
        task = self._starting.get(cluster_id)
        if task is None:
            task = asyncio.create_task(self._start(cluster_id))
            self._starting[cluster_id] = task
            task.add_done_callback(lambda _: self._starting.pop(cluster_id, None))
        return await asyncio.shield(task)

    async def _ensure_elsewhere(self, cluster_id: str) -> None:
        """Scaled mode: make sure a worker hosts the cluster. One Redis read when the owner is
        the one that last said it was ready; else ask the workers and wait for the answer."""
        owner = await self.leases.owner(cluster_id)
        if owner is not None and self._ready_owner.get(cluster_id) == owner:
            return
        task = self._asking.get(cluster_id)
        if task is None:
            task = asyncio.create_task(self._ask_workers(cluster_id))
            self._asking[cluster_id] = task
            task.add_done_callback(lambda _: self._asking.pop(cluster_id, None))
        await asyncio.shield(task)

    async def _ask_workers(self, cluster_id: str) -> None:
        reply_channel = await self.layer.new_channel()
        await self.layer.group_send(
            WORKERS_GROUP,
            {"type": "engine.ensure", "cluster_id": cluster_id, "reply_to": reply_channel},
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WORKER_START_TIMEOUT_S
        full: str | None = None
        while True:
            try:
                answer = await asyncio.wait_for(
                    self.layer.receive(reply_channel), max(deadline - loop.time(), 0.01)
                )
            except TimeoutError:
                if full is not None:
                    raise NoEngineHost(full) from None
                raise NoEngineHost(
                    "No engine-host worker answered: the cluster cannot start now. "
                    "(Operators: start one with `manage.py run_engine_hosts`.)"
                ) from None
            kind = answer.get("type")
            if kind == "engine.ready":
                self._ready_owner[cluster_id] = str(answer["owner"])
                return
            if kind == "engine.full":
                full = str(answer.get("message") or "Every engine-host worker is full.")
                deadline = min(deadline, loop.time() + WORKER_FULL_GRACE_S)
            elif kind == "engine.error":
                raise RuntimeError(f"engine-host worker failed on {cluster_id}: {answer}")

    async def _start(self, cluster_id: str) -> ClusterHost | None:
        if not await self.leases.acquire(cluster_id, self.owner_id, LEASE_TTL_S):
            return None  # another process owns it; the channel layer reaches that host
        try:
            stored = await database_sync_to_async(store.cluster_load)(cluster_id=cluster_id)
            # Replaying a long log is CPU work: keep it off the event loop, from the nearest
            # checkpoint this process keeps (a fork, a share link, a reload). (A live runtime
            # cannot cross to a replay process: it holds closures. A daemon thread, so a
            # SIGTERM never waits for a long replay to finish.)
            replayed = await replay_in_daemon_thread(stored.spec, stored.commands)
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
                    memory_bound_bytes=int(
                        float(getattr(settings, "DOJO_HOST_MEMORY_MB", 256)) * 2**20
                    ),
                    max_checkpoints=getattr(settings, "DOJO_LIVE_CHECKPOINTS", None),
                ),
                on_stop=self._forget,
            )
            host.wire_enabled = self.kafka_listeners or stored.kafka_listeners
            host.wire_ports = dict(stored.kafka_listener_ports or {})
            await host.start()
            if self.announce_start:
                await host.announce_start()
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
        """Stop every host: first every clock at once (no cluster time runs past the moment
        shutdown began), then each host flushes its log and releases its lease, in parallel
        and bounded; replay workers are killed, not waited for."""
        self.closing = True
        hosts = list(self.hosts.values())
        for host in hosts:
            host.freeze()
        if hosts:
            stops = [asyncio.ensure_future(host.stop("shutdown")) for host in hosts]
            _, stuck = await asyncio.wait(stops, timeout=SHUTDOWN_TIMEOUT_S)
            if stuck:
                logger.warning("shutdown: %d hosts did not stop in time", len(stuck))
        self.hosts.clear()
        replay_pool.shutdown()
        close = getattr(self.leases, "close", None)
        if close is not None:
            await close()


def build_registry(*, worker: bool = False) -> HostRegistry:
    """This process's registry from the settings; `worker`: an engine-host worker's (it hosts
    clusters whatever KAFKA_DOJO_HOSTS says, and announces each host it starts)."""
    # Engine work (clock ticks, rendering) runs in worker threads that share the GIL with the
    # event loop; each time the loop thread waits on a socket it must win the GIL back, which
    # a busy thread holds for up to the switch interval (5 ms by default, many times per
    # request). A shorter interval hands it back sooner (KAFKA_DOJO_GIL_SWITCH_INTERVAL_MS).
    sys.setswitchinterval(float(getattr(settings, "DOJO_GIL_SWITCH_INTERVAL_MS", 1.0)) / 1000)

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
        hosts_here=worker or settings.DOJO_HOSTS == "process",
        announce_start=worker,
    )


def get_registry() -> HostRegistry:
    """This process's registry for the running event loop (kept on the app config)."""
    from django.apps import apps

    app_config = apps.get_app_config("webapp")
    registry: HostRegistry | None = getattr(app_config, "host_registry", None)
    if registry is None or registry.loop is not asyncio.get_running_loop():
        registry = build_registry()
        app_config.host_registry = registry  # type: ignore[attr-defined]
        _stop_on_reactor_shutdown(registry)
    return registry
