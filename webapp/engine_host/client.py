"""How WebSocket consumers and views reach a cluster's host: through the channel layer."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import get_channel_layer

from webapp.engine_host.host import host_group
from webapp.engine_host.registry import get_registry


async def host_ensure(cluster_id: str) -> None:
    """Start the cluster's host here unless another process owns it."""
    await get_registry().ensure(cluster_id)


async def host_send(cluster_id: str, message: dict[str, Any]) -> None:
    await host_ensure(cluster_id)
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(host_group(cluster_id), message)


async def host_request(
    cluster_id: str, message: dict[str, Any], *, timeout_s: float = 5.0
) -> dict[str, Any] | None:
    """Send a message to the host and wait for its reply frame (None on timeout)."""
    layer = get_channel_layer()
    assert layer is not None
    reply_channel = await layer.new_channel(prefix="dojo.reply")
    await host_send(cluster_id, {**message, "reply_to": reply_channel})
    try:
        reply = await asyncio.wait_for(layer.receive(reply_channel), timeout_s)
    except TimeoutError:
        return None
    frame = reply.get("frame")
    return frame if isinstance(frame, dict) else None
