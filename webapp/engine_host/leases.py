"""Who owns a live cluster: one engine host per cluster, held by a renewable lease.

Embedded mode keeps leases in the process (every cluster is owned here). Scaled mode keeps them
in Redis, so exactly one of several host processes runs a given cluster; a host that cannot
renew its lease stops, and the next process to be asked for the cluster takes it over by replay.
"""

from __future__ import annotations

import time
from typing import Protocol

RENEW_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


ADOPT_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 0
"""


class LeaseStore(Protocol):
    async def acquire(self, cluster_id: str, owner: str, ttl_s: float) -> bool: ...

    async def renew(self, cluster_id: str, owner: str, ttl_s: float) -> bool: ...

    async def release(self, cluster_id: str, owner: str) -> None: ...

    async def owner(self, cluster_id: str) -> str | None: ...


class LocalLeaseStore:
    """Leases held in this process: the embedded deployment has one host process."""

    def __init__(self) -> None:
        self._leases: dict[str, tuple[str, float]] = {}

    def _current(self, cluster_id: str) -> str | None:
        lease = self._leases.get(cluster_id)
        if lease is None or lease[1] < time.monotonic():
            return None
        return lease[0]

    async def acquire(self, cluster_id: str, owner: str, ttl_s: float) -> bool:
        if self._current(cluster_id) not in (None, owner):
            return False
        self._leases[cluster_id] = (owner, time.monotonic() + ttl_s)
        return True

    async def renew(self, cluster_id: str, owner: str, ttl_s: float) -> bool:
        if self._current(cluster_id) != owner:
            return False
        self._leases[cluster_id] = (owner, time.monotonic() + ttl_s)
        return True

    async def release(self, cluster_id: str, owner: str) -> None:
        if self._current(cluster_id) == owner:
            del self._leases[cluster_id]

    async def owner(self, cluster_id: str) -> str | None:
        return self._current(cluster_id)


class RedisLeaseStore:
    """Leases as Redis keys set with NX and a TTL; renew and release only by their owner."""

    def __init__(self, url: str, prefix: str = "dojo:host-lease:") -> None:
        import redis.asyncio as redis_asyncio

        self._redis = redis_asyncio.Redis.from_url(url, decode_responses=True)
        self._prefix = prefix

    def _key(self, cluster_id: str) -> str:
        return f"{self._prefix}{cluster_id}"

    async def acquire(self, cluster_id: str, owner: str, ttl_s: float) -> bool:
        key = self._key(cluster_id)
        if await self._redis.set(key, owner, nx=True, px=int(ttl_s * 1000)):
            return True
        return await self.renew(cluster_id, owner, ttl_s)

    async def renew(self, cluster_id: str, owner: str, ttl_s: float) -> bool:
        result = await self._redis.eval(  # type: ignore[misc]
            RENEW_SCRIPT, 1, self._key(cluster_id), owner, int(ttl_s * 1000)
        )
        return bool(result)

    async def release(self, cluster_id: str, owner: str) -> None:
        await self._redis.eval(RELEASE_SCRIPT, 1, self._key(cluster_id), owner)  # type: ignore[misc]

    async def owner(self, cluster_id: str) -> str | None:
        value = await self._redis.get(self._key(cluster_id))
        return str(value) if value is not None else None

    async def adopt(self, name: str, owner: str, ttl_s: float) -> list[str]:
        """Take over the leases an earlier run of the worker called `name` still holds (owners
        are `name/<token>`; a worker killed with -9 leaves its leases until they expire).
        Returns the clusters now leased to `owner`, which must start their hosts."""
        adopted: list[str] = []
        async for key in self._redis.scan_iter(match=f"{self._prefix}*", count=500):
            held = await self._redis.get(key)
            if held is None or held == owner or not str(held).startswith(f"{name}/"):
                continue
            swapped = await self._redis.eval(  # type: ignore[misc]
                ADOPT_SCRIPT, 1, key, held, owner, int(ttl_s * 1000)
            )
            if swapped:
                adopted.append(str(key)[len(self._prefix) :])
        return sorted(adopted)

    async def close(self) -> None:
        await self._redis.aclose()
