"""The room's push slots: at most one histogram push per room per interval, across every
process that takes votes for the room (and likewise one leaderboard push for the learners joining).

A vote is saved, then its process asks for the room's slot. The process that gets it waits one
interval, renders the histogram from the database (every vote saved so far, whichever process
took it) and pushes it to the room's group; a vote that comes while the slot is held only marks
the room dirty, and the holder pushes once more after another interval. So a burst of votes
through any number of Daphne processes gives one push per interval, and the last vote is always
in a push.

In scaled mode the slot is a Redis key (SET NX with a TTL, so a holder that dies frees it);
embedded, one process takes every vote and a dict does.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from django.conf import settings

# A holder that died (kill -9 of its Daphne) frees the slot after this long at the latest.
SLOT_TTL_MS = 10_000

# KEYS[1] slot, KEYS[2] dirty; ARGV[1] TTL ms. 1: claimed (push later); 0: held elsewhere.
CLAIM_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return 0
"""
# The holder is about to render: what is dirty now is in this push.
BEGIN_SCRIPT = """
redis.call('DEL', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
# The holder pushed: 1 if votes came meanwhile (keep the slot, push again), else free it.
AGAIN_SCRIPT = """
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return 1
end
redis.call('DEL', KEYS[1])
return 0
"""


class PushSlot(Protocol):
    async def claim(self, room: int) -> bool: ...
    async def begin(self, room: int) -> None: ...
    async def again(self, room: int) -> bool: ...


class LocalPushSlot:
    """One process's slots (the embedded default: every socket of a room is in this process)."""

    def __init__(self) -> None:
        self._dirty: dict[int, bool] = {}  # held rooms -> a vote came since the render began

    async def claim(self, room: int) -> bool:
        if room in self._dirty:
            self._dirty[room] = True
            return False
        self._dirty[room] = False
        return True

    async def begin(self, room: int) -> None:
        self._dirty[room] = False

    async def again(self, room: int) -> bool:
        if self._dirty.get(room):
            self._dirty[room] = False
            return True
        self._dirty.pop(room, None)
        return False


class RedisPushSlot:
    """The slots as Redis keys shared by every process of the deployment."""

    def __init__(self, url: str, prefix: str = "dojo:workshop-histogram:") -> None:
        self._url = url
        self._prefix = prefix
        self._clients: dict[int, Any] = {}  # one client per event loop (tests run several)

    def _redis(self) -> Any:
        import redis.asyncio as redis_asyncio

        loop = id(asyncio.get_running_loop())
        client = self._clients.get(loop)
        if client is None:
            client = redis_asyncio.Redis.from_url(self._url)
            self._clients = {loop: client}
        return client

    def _keys(self, room: int) -> tuple[str, str]:
        return f"{self._prefix}{room}", f"{self._prefix}{room}:dirty"

    async def _run(self, script: str, room: int) -> int:
        return int(await self._redis().eval(script, 2, *self._keys(room), SLOT_TTL_MS))

    async def claim(self, room: int) -> bool:
        return await self._run(CLAIM_SCRIPT, room) == 1

    async def begin(self, room: int) -> None:
        await self._run(BEGIN_SCRIPT, room)

    async def again(self, room: int) -> bool:
        return await self._run(AGAIN_SCRIPT, room) == 1


_slots: dict[str, PushSlot] = {}
_slot_url: str | None = None


def push_slot(purpose: str = "histogram") -> PushSlot:
    """This process's slot store for one kind of push ("histogram", "leaderboard"), from the
    settings (Redis when REDIS_URL is set)."""
    global _slot_url
    url = settings.DOJO_REDIS_URL
    if url != _slot_url:
        _slots.clear()
        _slot_url = url
    slot = _slots.get(purpose)
    if slot is None:
        prefix = f"dojo:workshop-{purpose}:"
        slot = _slots[purpose] = RedisPushSlot(url, prefix) if url else LocalPushSlot()
    return slot
