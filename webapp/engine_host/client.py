"""How WebSocket consumers and views reach a cluster's host: through the channel layer."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from webapp.engine_host.host import host_group
from webapp.engine_host.registry import get_registry

# How long a sender waits for room in a busy host's inbox before it gives up (back-pressure:
# the socket stops reading meanwhile, so its browser slows down instead of losing commands).
BUSY_WAIT_S = 2.0
# How long flush_host waits for the host to say the time it ran is logged.
FLUSH_TIMEOUT_S = 2.0


# How many host_send calls of one process talk to the channel layer at once; the others wait
# their turn. redis-py's pool (channels-redis's and the leases') holds at most 100 connections
# and refuses the 101st at once ("Too many connections"): a room of a few hundred sockets
# connecting, leaving or sending keepalives together went past it, and those joins and
# keepalives were lost (measured: scripts/bench/room.py, 500 viewers over 2 Daphne + Redis).
HOST_SEND_CONCURRENCY = 32

_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


class HostBusy(Exception):
    """The host's inbox stayed full for BUSY_WAIT_S: the message was not delivered."""


def _turn() -> asyncio.Semaphore:
    """This event loop's bound on concurrent sends (one per loop: tests run several)."""
    loop = asyncio.get_running_loop()
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = asyncio.Semaphore(HOST_SEND_CONCURRENCY)
    return turn


async def host_send(cluster_id: str, message: dict[str, Any]) -> None:
    """Deliver `message` to the cluster's host. A host in this process gets it on its own
    channel, waiting while its inbox is full (a group send would drop it silently); a host in
    another process is reached through its group. At most HOST_SEND_CONCURRENCY at once."""
    async with _turn():
        await _host_send(cluster_id, message)


async def _host_send(cluster_id: str, message: dict[str, Any]) -> None:
    registry = get_registry()
    host = await registry.ensure(cluster_id)
    layer = get_channel_layer()
    assert layer is not None
    if host is None or not host.channel:
        await layer.group_send(host_group(cluster_id), message)
        return
    deadline = asyncio.get_running_loop().time() + BUSY_WAIT_S
    delay = 0.005
    while True:
        try:
            await layer.send(host.channel, message)
            return
        except ChannelFull:
            if asyncio.get_running_loop().time() >= deadline:
                raise HostBusy(cluster_id) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)


async def host_request(
    cluster_id: str, message: dict[str, Any], *, timeout_s: float = 5.0
) -> dict[str, Any] | None:
    """Send a message to the host and wait for its reply frame (None on timeout)."""
    layer = get_channel_layer()
    assert layer is not None
    reply_channel = await layer.new_channel()
    await host_send(cluster_id, {**message, "reply_to": reply_channel})
    try:
        reply = await asyncio.wait_for(layer.receive(reply_channel), timeout_s)
    except TimeoutError:
        return None
    frame = reply.get("frame")
    return frame if isinstance(frame, dict) else None


async def flush_host(cluster_id: str) -> None:
    """Ask the cluster's host, if one runs anywhere, to log the time its clock already ran, so
    a reader of the command log (a share link, the timeline, a fork) sees all of it. No host:
    the log is complete; no answer in FLUSH_TIMEOUT_S: what is logged is used."""
    if await get_registry().leases.owner(cluster_id) is None:
        return
    layer = get_channel_layer()
    assert layer is not None
    reply_channel = await layer.new_channel()
    await layer.group_send(
        host_group(cluster_id), {"type": "host.flush", "reply_to": reply_channel}
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(layer.receive(reply_channel), FLUSH_TIMEOUT_S)
