"""Scaled mode's Redis pieces, against a real redis-server started on a free loopback port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

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


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_poll_histogram_rate_bound_holds_per_room_across_processes(
    redis_url: str, settings: Any
) -> None:
    """Votes for one room through two processes (two Redis clients and channel layers, as two
    Daphnes have): the histogram is pushed at most once an interval in all, never once per
    process, and the last push counts every vote."""
    from django.contrib.auth import get_user_model

    from webapp.workshops import consumers as room_consumers
    from webapp.workshops import services as room_services
    from webapp.workshops.pushes import RedisPushSlot

    settings.DOJO_WORKSHOP_HISTOGRAM_HZ = 5.0
    interval = 1 / 5.0

    def room() -> tuple[int, list[int]]:
        teacher = get_user_model().objects.create_user("t", password="pw-long-1", is_staff=True)
        workshop = room_services.workshop_create(owner=teacher, title="two daphnes")
        room_services.poll_push(workshop=workshop, source="drill:kafka-vs-kinesis-cost")
        learners = [
            room_services.join(workshop=workshop, name=f"learner {i}", token=None).pk
            for i in range(6)
        ]
        return workshop.pk, learners

    workshop_id, learners = await database_sync_to_async(room)()
    sent: list[float] = []

    class Recorded(RedisChannelLayer):
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            sent.append(time.monotonic())
            await super().group_send(group, message)

    layer_config = config.channel_layers(redis_url)["default"]["CONFIG"]
    processes = [
        (RedisPushSlot(redis_url, prefix="test-histogram:"), Recorded(**layer_config))
        for _ in range(2)
    ]
    watcher = redis_layer(redis_url)
    channel = await watcher.new_channel()
    await watcher.group_add(room_consumers.room_group(workshop_id), channel)

    started = time.monotonic()
    for turn in range(30):  # 30 votes over ~1.5 s, alternating processes, minds changing
        slot, layer = processes[turn % 2]
        await database_sync_to_async(room_services.vote)(
            participant_id=learners[turn % len(learners)], choice=turn % 2
        )
        room_consumers.schedule_histogram(workshop_id, slot, layer)
        await asyncio.sleep(0.05)
    while room_consumers._pending:
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started

    assert len(sent) >= 2
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert min(gaps) >= interval * 0.95, gaps  # one slot per room, whichever process votes
    assert len(sent) <= elapsed / interval + 1
    last = None
    while True:
        try:
            last = await asyncio.wait_for(watcher.receive(channel), 0.5)
        except TimeoutError:
            break
    assert last is not None and "<h2>Answers (6)</h2>" in last["html"]
    await watcher.flush()
