"""The listeners' way into an engine host: each request becomes a logged `wire_request` command.

The host writes the command to the cluster's log before applying it, at the moment its clock
has reached (a multiple of the 10 ms tick), exactly as for a click on the stage; replaying the
log therefore makes the same engine calls at the same cluster times, and a share link or a
scrub rebuilds a cluster a real client changed. Answers reach the client through the engine's
`remote` service sink, which only the live host sets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async

from engine.server.remote_requests import to_json
from lessons.scenarios import COMMANDS, Limits, validate
from lessons.scenarios.commands import errors_text
from webapp.engine_host import store
from webapp.kafka_listener.server import ClusterListeners

if TYPE_CHECKING:
    from webapp.engine_host.host import ClusterHost

logger = logging.getLogger(__name__)


class HostGateway:
    def __init__(self, host: ClusterHost) -> None:
        self.host = host

    async def submit(self, connection: int, broker_id: int, request: dict[str, Any]) -> None:
        spec = self.host.runtime.spec
        payload, errors = validate(
            COMMANDS["wire_request"],
            {"connection": connection, "broker_id": broker_id, "request": to_json(request)},
            runtime_limits=Limits(brokers=spec.brokers, controllers=spec.controllers),
        )
        if errors:  # the listener only builds valid requests: this is a bug, logged, not applied
            logger.error(
                "cluster %s: invalid wire request: %s", self.host.cluster_id, errors_text(errors)
            )
            return
        frame = await self.host.command(payload)
        if frame.get("type") != "ack":
            logger.warning(
                "cluster %s: wire request %s refused: %s",
                self.host.cluster_id,
                request.get("api"),
                frame.get("message"),
            )


def start_listeners(host: ClusterHost) -> ClusterListeners:
    """Listeners for the host's cluster, wired to its engine; `host.enable_wire` opens them."""
    from django.conf import settings

    remote = host.runtime.cluster.remote
    saved = getattr(host, "wire_ports", None) or {}
    listeners = ClusterListeners(
        HostGateway(host),
        cluster_id=host.cluster_id,
        host=getattr(settings, "DOJO_KAFKA_LISTENER_HOST", "127.0.0.1"),
        first_connection_id=max(remote.connections, default=0) + 1,
        on_change=host._mark_dirty,
        ports={int(b): int(p) for b, p in saved.items()},
        on_ports=lambda ports: _remember_ports(host.cluster_id, ports),
    )
    remote.sink = listeners.deliver
    return listeners


_saving: set[asyncio.Task[None]] = set()


def _remember_ports(cluster_id: str, ports: dict[int, int]) -> None:
    """Store the listeners' ports on the sandbox's row (in the background)."""

    async def save() -> None:
        try:
            await database_sync_to_async(store.cluster_kafka_listeners_save)(
                cluster_id=cluster_id, ports=ports
            )
        except Exception:
            logger.exception("cluster %s: could not store its listener ports", cluster_id)

    task = asyncio.get_running_loop().create_task(save())
    _saving.add(task)
    task.add_done_callback(_saving.discard)
