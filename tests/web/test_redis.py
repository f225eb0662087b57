"""Scaled mode's Redis pieces, against a real redis-server started on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from channels_redis.core import RedisChannelLayer

from tests.scaled.servers import redis_server
from webapp import config, services
from webapp.engine_host.host import host_group
from webapp.engine_host.leases import RedisLeaseStore
from webapp.engine_host.registry import HostRegistry

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A redis-server of its own on a free loopback port (the scaled tests' helper)."""
    with redis_server() as url:
        yield url


def redis_layer(url: str) -> RedisChannelLayer:
    settings = config.channel_layers(url)["default"]
    assert settings["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    return RedisChannelLayer(**settings["CONFIG"])


@pytest.mark.asyncio
async def test_the_redis_channel_layer_carries_messages_and_groups(redis_url: str) -> None:
    sender, receiver = redis_layer(redis_url), redis_layer(redis_url)  # two "processes"
    channel = await receiver.new_channel()
    await sender.send(channel, {"type": "hello", "text": "over redis"})
    assert await asyncio.wait_for(receiver.receive(channel), 5) == {
        "type": "hello",
        "text": "over redis",
    }
    await receiver.group_add("dojo.cluster.test", channel)
    await sender.group_send("dojo.cluster.test", {"type": "cluster.state", "version": 3})
    assert (await asyncio.wait_for(receiver.receive(channel), 5))["version"] == 3
    await sender.flush()


@pytest.mark.asyncio
async def test_only_one_process_holds_a_cluster_lease(redis_url: str) -> None:
    leases = RedisLeaseStore(redis_url, prefix="test-lease:")
    try:
        assert await leases.acquire("c1", "process-a", 5)
        assert not await leases.acquire("c1", "process-b", 5)
        assert await leases.renew("c1", "process-a", 5)
        assert not await leases.renew("c1", "process-b", 5)
        assert await leases.owner("c1") == "process-a"
        await leases.release("c1", "process-b")  # not the owner: no effect
        assert await leases.owner("c1") == "process-a"
        await leases.release("c1", "process-a")
        assert await leases.acquire("c1", "process-b", 0.2)
        await asyncio.sleep(0.4)  # an owner that stops renewing loses the lease
        assert await leases.acquire("c1", "process-a", 5)
    finally:
        await leases.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_host_owned_through_redis_answers_commands_sent_through_redis(
    redis_url: str,
) -> None:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    owner = HostRegistry(layer=redis_layer(redis_url), leases=RedisLeaseStore(redis_url))
    other = HostRegistry(layer=redis_layer(redis_url), leases=RedisLeaseStore(redis_url))
    try:
        assert await owner.ensure(sandbox.id) is not None
        assert await other.ensure(sandbox.id) is None  # owned elsewhere: reach it via Redis
        reply_to = await other.layer.new_channel()
        await other.layer.group_send(
            host_group(sandbox.id),
            {
                "type": "host.command",
                "reply_to": reply_to,
                "client": "client-0001",
                "seq": 1,
                "command": {
                    "type": "produce",
                    "topic": "orders",
                    "key": "k",
                    "value": "v",
                    "count": 1,
                },
            },
        )
        reply = await asyncio.wait_for(other.layer.receive(reply_to), 10)
        assert reply["frame"]["type"] == "ack", reply
    finally:
        await owner.shutdown()
        await other.shutdown()
