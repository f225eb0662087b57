"""Limits per visitor: how many sandboxes one session and one address may make in a window,
so one visitor (or a script) cannot fill the server with live clusters. Counted in Django's
cache (per process in the embedded mode, shared through Redis when the cache is)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

WINDOW_S = 600


def _address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _recent(key: str, now: float) -> list[float]:
    stamps = cache.get(key) or []
    return [t for t in stamps if now - t < WINDOW_S]


def sandbox_refusal(request: HttpRequest, session_key: str) -> str | None:
    """Why this visitor may not make another sandbox now (None: they may; it is counted)."""
    now = time.time()
    per_session = int(settings.DOJO_SANDBOXES_PER_SESSION)
    per_address = int(settings.DOJO_SANDBOXES_PER_ADDRESS)
    session = f"dojo:sandboxes:session:{session_key}"
    address = f"dojo:sandboxes:address:{_address(request)}"
    by_session, by_address = _recent(session, now), _recent(address, now)
    minutes = WINDOW_S // 60
    if len(by_session) >= per_session:
        return (
            f"You made {per_session} sandboxes in the last {minutes} minutes: that is the "
            "limit. Keep using the ones you have, or try again in a few minutes."
        )
    if len(by_address) >= per_address:
        return (
            f"{per_address} sandboxes were made from your network in the last {minutes} "
            "minutes: that is the limit. Try again in a few minutes."
        )
    cache.set(session, [*by_session, now], WINDOW_S)
    cache.set(address, [*by_address, now], WINDOW_S)
    return None
