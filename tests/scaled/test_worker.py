"""The engine-host worker's pieces against a real redis-server: lease adoption after a crash,
and a Daphne-side registry that hosts nothing."""

from __future__ import annotations

import pytest
from channels_redis.core import RedisChannelLayer

from webapp import config
from webapp.engine_host import registry as registry_module
from webapp.engine_host.leases import RedisLeaseStore
from webapp.engine_host.registry import HostRegistry, NoEngineHost

pytestmark = [pytest.mark.scaled, pytest.mark.redis]


@pytest.mark.asyncio
async def test_a_restarted_worker_adopts_only_its_own_earlier_leases(redis_url: str) -> None:
    leases = RedisLeaseStore(redis_url, prefix="adopt-test:")
    try:
        assert await leases.acquire("c1", "engine-1/dead", 30)
        assert await leases.acquire("c2", "engine-1/dead", 30)
        assert await leases.acquire("c3", "engine-2/alive", 30)
        assert await leases.acquire("c4", "engine-10/alive", 30)  # a prefix, not the name
        assert await leases.adopt("engine-1", "engine-1/new", 30) == ["c1", "c2"]
        assert await leases.owner("c1") == "engine-1/new"
        assert await leases.owner("c3") == "engine-2/alive"
        assert await leases.owner("c4") == "engine-10/alive"
        assert await leases.renew("c2", "engine-1/new", 30)
        assert not await leases.renew("c2", "engine-1/dead", 30)  # the dead run lost it
        assert await leases.adopt("engine-1", "engine-1/new", 30) == []  # already its own
    finally:
        await leases.close()


@pytest.mark.asyncio
async def test_a_web_process_hosts_nothing_and_says_so_when_no_worker_answers(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_module, "WORKER_START_TIMEOUT_S", 0.5)
    layer = RedisChannelLayer(**config.channel_layers(redis_url)["default"]["CONFIG"])
    leases = RedisLeaseStore(redis_url, prefix="noworker-test:")
    web = HostRegistry(layer=layer, leases=leases, hosts_here=False)
    try:
        with pytest.raises(NoEngineHost, match="run_engine_hosts"):
            await web.ensure("some-cluster")
        assert web.hosts == {}
        assert await leases.owner("some-cluster") is None  # it never took the lease
    finally:
        await web.shutdown()
        await layer.flush()
