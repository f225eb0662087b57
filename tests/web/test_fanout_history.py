"""The relay's history: a socket that is behind is brought up to date from the changes the
relay already passed on (no whole state from the host), a gap the history does not cover
asks the host once (not on every later version), and a socket's whole state arriving late is
followed at once by the versions passed on meanwhile."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
from channels.layers import get_channel_layer

from tests.web.test_fanout import FakeProtocol, FakeSink, fake_handle_reply, parse_frame
from webapp.engine_host import fanout


def state(version: int) -> dict[str, Any]:
    return {"type": "cluster.state", "version": version, "base": version - 1, "html": f"v{version}"}


async def settle(layer: Any, group: str) -> None:
    """Until the relay has taken every message sent to it."""
    relay = fanout._relays[group]
    for _ in range(200):
        inbox = layer.channels.get(relay.channel)
        if inbox is None or inbox.empty():
            await asyncio.sleep(0.01)  # the one taken is being delivered
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the relay did not read its messages")


@pytest.mark.asyncio
async def test_a_socket_behind_gets_the_kept_changes_in_order_and_no_whole_state() -> None:
    layer = get_channel_layer()
    group = "dojo.cluster.history-test"
    protocol = FakeProtocol()
    ahead = FakeSink("socket-ahead", version=0)
    scope = {fanout.SERVER_SEND_KEY: functools.partial(fake_handle_reply, protocol)}
    await fanout.subscribe(group, ahead, scope)
    for version in (1, 2, 3):
        await layer.group_send(group, state(version))
    await settle(layer, group)
    assert [parse_frame(f)[1] for f in protocol.transport.written] == ["v1", "v2", "v3"]

    late = FakeSink("socket-late", version=None)  # its whole state (version 1) is on its way
    await fanout.subscribe(group, late, {})
    await layer.group_send(group, state(4))
    await settle(layer, group)
    assert late.texts == [] and late.version is None  # nothing before its whole state

    late.version = 1  # the whole state of version 1 arrived through its own channel
    await fanout.catch_up(group, late)
    assert late.texts == ["v2", "v3", "v4"] and late.version == 4
    assert late.resyncs == 0

    behind = FakeSink("socket-behind", version=2)  # e.g. it skipped versions while closing
    await fanout.subscribe(group, behind, {})
    await layer.group_send(group, state(5))
    await settle(layer, group)
    assert behind.texts == ["v3", "v4", "v5"] and behind.version == 5 and behind.resyncs == 0
    assert late.texts[-1] == "v5" and ahead.version == 5
    # Direct writes reuse the frames built once per version.
    relay = fanout._relays[group]
    assert protocol.transport.written[-1] is relay.changes[4].frame

    for sink in (ahead, late, behind):
        await fanout.unsubscribe(group, sink)


@pytest.mark.asyncio
async def test_a_gap_the_history_does_not_cover_asks_for_the_whole_state_once() -> None:
    layer = get_channel_layer()
    group = "dojo.cluster.history-gap"
    first = FakeSink("socket-first", version=100)
    await fanout.subscribe(group, first, {})
    await layer.group_send(group, state(101))
    await settle(layer, group)
    lost = FakeSink("socket-lost", version=3)  # far behind: versions 4..100 were never kept
    await fanout.subscribe(group, lost, {})
    for version in range(102, 112):
        await layer.group_send(group, state(version))
    await settle(layer, group)
    for _ in range(20):  # the resync runs in a task of its own
        await asyncio.sleep(0)
    assert lost.resyncs == 1, "one request for the whole state, not one per version"
    assert lost.texts == [] and first.version == 111

    lost.version = 108  # its whole state came, older than what the relay passed on since
    await fanout.catch_up(group, lost)
    assert lost.texts == ["v109", "v110", "v111"] and lost.version == 111
    assert fanout._relays[group].resyncing == {}

    # Past RESYNC_RETRY_S a socket still stuck asks again (a whole state may have been lost).
    stuck = FakeSink("socket-stuck", version=1)
    await fanout.subscribe(group, stuck, {})
    relay = fanout._relays[group]
    await layer.group_send(group, state(112))
    await settle(layer, group)
    relay.resyncing[stuck.channel_name] -= fanout.RESYNC_RETRY_S + 1
    await layer.group_send(group, state(113))
    await settle(layer, group)
    for _ in range(20):
        await asyncio.sleep(0)
    assert stuck.resyncs == 2

    for sink in (first, lost, stuck):
        await fanout.unsubscribe(group, sink)


@pytest.mark.asyncio
async def test_the_history_is_bounded_and_a_new_host_starts_it_again() -> None:
    layer = get_channel_layer()
    group = "dojo.cluster.history-bound"
    sink = FakeSink("socket-one", version=0)
    await fanout.subscribe(group, sink, {})
    for version in range(1, fanout.HISTORY + 21):
        await layer.group_send(group, state(version))
    await settle(layer, group)
    relay = fanout._relays[group]
    assert len(relay.changes) == fanout.HISTORY
    assert min(c.version for c in relay.changes.values()) == 21
    assert sink.version == fanout.HISTORY + 20

    # Big changes: the text kept stays under HISTORY_BYTES (the newest is always kept).
    big = "x" * (fanout.HISTORY_BYTES // 3)
    start = fanout.HISTORY + 20
    for version in range(start + 1, start + 6):
        await layer.group_send(
            group, {"type": "cluster.state", "version": version, "base": version - 1, "html": big}
        )
    await settle(layer, group)
    assert sum(len(c.html) for c in relay.changes.values()) == relay.kept_bytes
    assert relay.kept_bytes <= fanout.HISTORY_BYTES and len(relay.changes) == 3
    assert sink.version == start + 5
    huge = "y" * (2 * fanout.HISTORY_BYTES)
    await layer.group_send(
        group, {"type": "cluster.state", "version": start + 6, "base": start + 5, "html": huge}
    )
    await settle(layer, group)
    assert list(relay.changes) == [start + 5] and sink.version == start + 6

    # A restarted host numbers from 1 again; the relay forgets the old numbers.
    sink.version = None
    await layer.group_send(group, {"type": "cluster.rehosted"})
    await settle(layer, group)
    assert relay.changes == {} and relay.latest is None and relay.kept_bytes == 0
    await layer.group_send(group, state(2))
    await settle(layer, group)
    sink.version = 1
    await fanout.catch_up(group, sink)
    assert sink.version == 2 and sink.texts[-1] == "v2"
    await fanout.unsubscribe(group, sink)
