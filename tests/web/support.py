"""Helpers shared by the web tests."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

from channels.testing import WebsocketCommunicator


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float = 5.0, interval_s: float = 0.02
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval_s)


async def receive_until(
    communicator: WebsocketCommunicator,
    predicate: Callable[[str], bool],
    *,
    timeout_s: float = 5.0,
) -> str:
    """Frames until one satisfies `predicate`; fails with the frames seen if none does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    seen: list[str] = []
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no matching frame in {timeout_s}s; saw: {seen[-5:]!r}")
        try:
            # A timeout here also stops the consumer (asgiref cancels it): it ends the test.
            text = await communicator.receive_from(timeout=remaining)
        except TimeoutError:
            raise AssertionError(f"no matching frame in {timeout_s}s; saw: {seen[-5:]!r}") from None
        if predicate(text):
            return text
        seen.append(text[:300])


def json_frame(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    frame = json.loads(text)
    return frame if isinstance(frame, dict) else None


async def receive_json_frame(
    communicator: WebsocketCommunicator, *, kind: str, timeout_s: float = 5.0
) -> dict[str, Any]:
    """The next JSON frame of type `kind`, skipping HTML state frames."""
    text = await receive_until(
        communicator,
        lambda t: (frame := json_frame(t)) is not None and frame.get("type") == kind,
        timeout_s=timeout_s,
    )
    frame = json_frame(text)
    assert frame is not None
    return frame
