"""Checkpoints are an optimisation only: a replay from the nearest checkpoint gives the same
runtime, prefix and command times as a replay from the start, at any moment of a log with
producer apps, groups, a standalone consumer and broker kills and restarts; and the store
stays within its bounds."""

from __future__ import annotations

import base64
import functools
import itertools
import json
import operator
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lessons.scenarios import checkpoints as cp
from lessons.scenarios import workloads
from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec
from lessons.scenarios.stress import StressConfig, stress_cluster

SPEC = ClusterSpec(seed=11)
SETUP = workloads.SETUP
PRODUCER = workloads.PRODUCER_APP
GROUP = workloads.GROUP_APP
# 24 s of a session: apps, a broker killed and restarted, a controlled shutdown, a produce
# command, a zero-length advance with a command logged after it at the same moment.
LOG: list[dict[str, Any]] = [
    *SETUP,
    PRODUCER,
    GROUP,
    {"type": "advance", "ms": 5_000},
    {"type": "stop_broker", "broker_id": 2},
    {"type": "advance", "ms": 4_330},
    {"type": "produce", "topic": "orders", "key": "k", "value": "hello", "count": 3},
    {"type": "advance", "ms": 0},
    {"type": "start_broker", "broker_id": 2},
    {"type": "advance", "ms": 6_670},
    {"type": "shutdown_broker", "broker_id": 3},
    {"type": "advance", "ms": 3_000},
    {"type": "start_broker", "broker_id": 3},
    {"type": "advance", "ms": 5_000},
]
END_MS = 24_000  # of advances (a controlled shutdown adds a few ms)


def state(runtime: ClusterRuntime) -> str:
    """Everything a replay leaves: the engine's snapshot and events, the host clients."""
    return json.dumps(
        {
            "now": runtime.now_ms,
            "snapshot": runtime.cluster.snapshot(),
            "events": [e.to_dict() for e in runtime.cluster.events],
            "notices": [(n.time_ms, n.level, n.text) for n in runtime.notices],
            "sends": [runtime.acked_sends, runtime.failed_sends, len(runtime.pending_sends)],
            "consumers": {
                name: [c.records_read, sorted(c.positions.items()), c.next_poll_ms, c.last_error]
                for name, c in runtime.consumers.items()
            },
            "applied": runtime.applied,
            "history": [repr(a) for a in runtime.cluster.history.acknowledged],
        },
        sort_keys=True,
        default=repr,
    )


def from_start(at_ms: int | None) -> cp.Replay:
    return cp.replay(SPEC, LOG, at_ms, store=cp.CheckpointStore(), keep=False)


@pytest.fixture(scope="module")
def end_ms() -> int:
    return from_start(None).runtime.now_ms


@pytest.fixture(scope="module")
def kept() -> cp.CheckpointStore:
    """A store filled by one replay of the whole log (checkpoints every 2 s, and at its end)."""
    store = cp.CheckpointStore()
    cp.replay(SPEC, LOG, store=store, work_per_dump=0)
    return store


def test_a_copy_is_independent_and_equal() -> None:
    runtime = ClusterRuntime.replay(SPEC, LOG[:6])
    copy = cp.copy_runtime(runtime)
    assert state(copy) == state(runtime)
    copy.advance(2_000)
    assert copy.now_ms == runtime.now_ms + 2_000  # the original did not move
    runtime.advance(2_000)
    assert state(copy) == state(runtime)


def test_replays_from_checkpoints_equal_replays_from_the_start(
    kept: cp.CheckpointStore, end_ms: int
) -> None:
    assert len(kept) >= END_MS // cp.CHECKPOINT_EVERY_MS
    targets = random.Random(19).sample(range(0, END_MS + 1, 10), 5)
    # Exact command moments: a stop, the produce, the zero advance and what follows it.
    targets += [5_000, 9_330, 16_000, end_ms, end_ms + 500]
    for at_ms in targets:
        fast = cp.replay(SPEC, LOG, at_ms, store=kept)
        slow = from_start(at_ms)
        if at_ms >= cp.CHECKPOINT_EVERY_MS:  # the first one is taken 2 s in
            assert fast.from_checkpoint_ms is not None, at_ms
            assert at_ms - fast.from_checkpoint_ms < cp.CHECKPOINT_EVERY_MS, at_ms
        assert fast.prefix == slow.prefix, at_ms
        assert fast.times == slow.times, at_ms
        assert state(fast.runtime) == state(slow.runtime), at_ms
        # The prefix rebuilds the same moment from the start, too.
        assert state(ClusterRuntime.replay(SPEC, fast.prefix)) == state(slow.runtime), at_ms


def test_the_end_of_the_log_and_its_times_come_from_a_checkpoint(
    kept: cp.CheckpointStore, end_ms: int
) -> None:
    fast, slow = cp.replay(SPEC, LOG, store=kept), from_start(None)
    assert fast.from_checkpoint_ms == end_ms
    assert fast.times == slow.times
    assert state(fast.runtime) == state(slow.runtime)


def test_a_longer_last_advance_starts_where_the_shorter_log_ended(end_ms: int) -> None:
    """A live host lengthens its last advance: the checkpoint at the old end still serves."""
    store = cp.CheckpointStore()
    cp.replay(SPEC, LOG, store=store, every_ms=10**9)  # only the end of the log is kept
    assert len(store) == 1
    longer = [*LOG[:-1], {"type": "advance", "ms": 7_500}]
    fast = cp.replay(SPEC, longer, store=store, keep=False)
    slow = cp.replay(SPEC, longer, store=cp.CheckpointStore(), keep=False)
    assert fast.from_checkpoint_ms == end_ms
    assert state(fast.runtime) == state(slow.runtime)
    # A different log of the same length shares nothing after its first difference.
    other = [*LOG[:-2], {"type": "start_broker", "broker_id": 1}, LOG[-1]]
    assert cp.replay(SPEC, other, store=store, keep=False).from_checkpoint_ms is None


def test_an_engine_log_replays_the_same_from_checkpoints() -> None:
    """A Stress it run opened on the stage is a log of engine entries (kept whole)."""
    cluster = stress_cluster(StressConfig(), 5, until_ms=6_000)
    commands = [{"type": "engine", "entry": entry} for entry in cluster.export_log()[1:]]
    spec = ClusterSpec(seed=5)
    store = cp.CheckpointStore()
    cp.replay(spec, commands, store=store, work_per_dump=0)
    assert len(store) >= 2
    for at_ms in (2_550, 4_100, 5_990):
        fast = cp.replay(spec, commands, at_ms, store=store)
        slow = cp.replay(spec, commands, at_ms, store=cp.CheckpointStore(), keep=False)
        assert fast.from_checkpoint_ms is not None
        assert fast.prefix == slow.prefix
        assert state(fast.runtime) == state(slow.runtime)
        assert fast.runtime.cluster.export_log() == slow.runtime.cluster.export_log()


def shared_items(kept: Any) -> list[Any]:
    """Every item the checkpoints share, once (by identity)."""
    items: dict[int, Any] = {}
    for checkpoint in kept:
        for snapshot in checkpoint.copy.shared:
            dictionary = isinstance(snapshot, dict)
            for part in [snapshot.keys(), snapshot.values()] if dictionary else [snapshot]:
                items.update((id(item), item) for item in part)
    return list(items.values())


def accounted(store: cp.CheckpointStore) -> int:
    """What the store should count: each checkpoint's own bytes, each shared item once."""
    kept = list(store._items.values())
    own = sum(c.copy.own_bytes for c in kept)
    return own + sum(map(cp._item_bytes, shared_items(kept)))


def test_a_checkpoint_shares_stored_data_and_counts_it_once() -> None:
    """The batches of the logs, the engine's log and the checker's history are shared with
    the runtime copied, not pickled; the store counts an item two checkpoints share once."""
    store = cp.CheckpointStore()
    cp.replay(SPEC, LOG, store=store, work_per_dump=0)
    kept = list(store._items.values())
    assert len(kept) >= 2
    chunks = [i for i in shared_items(kept) if isinstance(i, tuple)]
    batches = [i for chunk in chunks for i in chunk if type(i).__name__ == "RecordBatch"]
    assert len(batches) > 100
    last = kept[-1]
    one, other = last.restore(), last.restore()
    assert one.cluster._log == other.cluster._log and one.cluster._log is not other.cluster._log
    assert all(a is b for a, b in zip(one.cluster._log, other.cluster._log, strict=True))
    assert store.size_bytes == accounted(store)
    assert store.size_bytes < sum(c.copy.own_bytes for c in kept) + sum(
        sum(map(cp._item_bytes, shared_items([c]))) for c in kept
    )
    # Dropping them all uncounts everything.
    store.max_count = 0
    store.put(cp.LogPosition(b"x"), last.restore(), index=0, times=[])
    assert len(store) == 0 and store.size_bytes == 0 and not store._held and not store._counts


def test_a_kept_checkpoint_is_compressed_and_restores_equal() -> None:
    """A kept checkpoint's pickle is compressed (a room's host keeps up to 128 of them, the
    process up to 600); a copy made to be restored at once is not."""
    runtime = ClusterRuntime.replay(SPEC, [*SETUP, PRODUCER, GROUP])
    runtime.advance(3_000)
    store = cp.CheckpointStore()
    kept = store.put(cp.LogPosition(b"compressed"), runtime, index=0, times=[])
    assert kept is not None
    plain = cp.dump_runtime(runtime)
    assert kept.copy.compressed and not plain.compressed
    assert 2 * len(kept.copy.data) < len(plain.data)
    assert store.size_bytes == accounted(store)
    assert state(kept.restore()) == state(runtime) == state(cp.load_runtime(plain))


def assert_halving(chunks: tuple[Any, ...]) -> None:
    """Some blocks, then chunks each under half of the one before it."""
    blocks = list(itertools.takewhile(lambda c: len(c) >= cp.BLOCK_ITEMS, chunks))
    tail = chunks[len(blocks) :]
    assert all(len(chunk) < cp.BLOCK_ITEMS for chunk in tail)
    assert all(2 * len(later) < len(earlier) for earlier, later in itertools.pairwise(tail))


def test_snapshots_along_a_growing_list_share_their_big_chunks() -> None:
    """A host's checkpoints are snapshots of the same lists as they grow, kept for the whole
    session: the slots of the chunks they hold between them stay within a small multiple of
    the list's length, not one copy of the list per snapshot (a merge of every chunk into one
    every few snapshots made each kept snapshot hold its own)."""
    items: list[Any] = []
    kept = []
    for step in range(2_000):
        items.extend(object() for _ in range(1 + step % 3))
        snapshot = cp._chunks(items)
        assert_halving(snapshot)
        if step % 50 == 0:  # kept along the whole session, as a host thins its own
            kept.append(snapshot)
    distinct = {id(chunk): len(chunk) for snapshot in kept for chunk in snapshot}
    assert len(kept) == 40
    assert sum(distinct.values()) < 4 * len(items)
    assert max(map(len, kept)) <= len(items) // cp.BLOCK_ITEMS + cp.BLOCK_ITEMS.bit_length()


def test_checkpoints_share_the_times_of_the_list_they_were_kept_from() -> None:
    store = cp.CheckpointStore()
    runtime = ClusterRuntime.replay(SPEC, SETUP)
    times = [0] * len(SETUP)
    kept = []
    for step in range(1, 40):
        runtime.apply({"type": "advance", "ms": 100})
        times.append(100 * step)
        checkpoint = store.put(
            cp.LogPosition(bytes([step])), runtime, index=len(times) - 1, times=times
        )
        assert checkpoint is not None
        assert checkpoint.times == tuple(times[:-1])  # its first `index` items only
        kept.append(checkpoint)
    # Their chunks are shared: a fraction of 39 copies of a growing tuple between them.
    distinct = {id(chunk): len(chunk) for c in kept for chunk in c.time_chunks}
    copies = sum(len(c.times) for c in kept)
    assert 4 * sum(distinct.values()) < copies
    with pytest.raises(ValueError, match="command times"):
        store.put(cp.LogPosition(b"short"), runtime, index=len(times) + 1, times=times)


def test_a_list_snapshot_reuses_its_chunks_only_while_appended_to() -> None:
    items = [object() for _ in range(5)]
    first = cp._chunks(items)
    assert list(itertools.chain.from_iterable(first)) == items
    items += [object(), object()]
    second = cp._chunks(items)
    assert second[0] is first[0] and list(itertools.chain.from_iterable(second)) == items
    assert cp._chunks(items) == second  # unchanged: the same chunks
    del items[:2]  # a prefix deleted (the checker's window): starts over
    third = cp._chunks(items)
    assert len(third) == 1 and list(third[0]) == items
    items[-1] = object()  # the last chunked item replaced (a truncation and an append)
    items.append(object())
    assert list(itertools.chain.from_iterable(cp._chunks(items))) == items
    for _ in range(100):  # many snapshots: their chunks merged, bytes kept
        items.append((object(), 1))
        chunks = cp._chunks(items)
        assert_halving(chunks)
        assert list(itertools.chain.from_iterable(chunks)) == items
        assert sum(c.bytes for c in chunks) == sum(map(cp._item_bytes, items))
    items.clear()
    assert cp._chunks(items) == ()
    # The cache of chunked lists stays within its bounds.
    lists = [[object()] * 10 for _ in range(cp.MAX_CHUNKED_ITEMS // 10 + 5)]
    for listed in lists:
        cp._chunks(listed)
    assert cp._chunked_items == sum(count for _, _, count in cp._CHUNKS.values())
    assert cp._chunked_items <= cp.MAX_CHUNKED_ITEMS
    assert len(cp._CHUNKS) <= cp.MAX_CHUNKED_LISTS


def test_a_dict_or_set_snapshot_reuses_its_chunks_only_while_added_to() -> None:
    """The checker's offset owners (a dict) and an app's records seen (a set) grow by a few
    items between two checkpoints: a snapshot shares the chunks of the last one and adds one
    of the new items, instead of copying every item again."""
    owners = {(f"t{i}", 0, i): (b"k", b"v", i) for i in range(5)}
    first = cp._dict_chunks(owners)
    assert dict(itertools.chain.from_iterable(first)) == owners
    owners[("t9", 0, 9)] = (b"k", b"v", 9)
    second = cp._dict_chunks(owners)
    assert second[0] is first[0] and len(second) == 2
    assert dict(itertools.chain.from_iterable(second)) == owners
    assert cp._dict_chunks(owners) == second  # unchanged: the same chunks
    owners[("t1", 0, 1)] = (b"k2", b"v2", 1)  # a pair replaced: starts over
    third = cp._dict_chunks(owners)
    assert len(third) == 1 and dict(third[0]) == owners
    del owners[("t0", 0, 0)]  # removed (the checker's window): starts over
    assert dict(itertools.chain.from_iterable(cp._dict_chunks(owners))) == owners
    seen = {("orders", 0, i) for i in range(5)}
    before = cp._set_chunks(seen)
    seen |= {("orders", 1, 0), ("orders", 1, 1)}
    after = cp._set_chunks(seen)
    assert after[0] is before[0] and set(after[1]) == {("orders", 1, 0), ("orders", 1, 1)}
    seen.discard(("orders", 0, 0))
    seen.add(("orders", 2, 0))  # as many items, not the same ones: starts over
    assert set(itertools.chain.from_iterable(cp._set_chunks(seen))) == seen
    for _ in range(40):
        seen.add(object())
        chunks = cp._set_chunks(seen)
        assert_halving(chunks)
        assert set(itertools.chain.from_iterable(chunks)) == seen
    for i in range(40):
        owners[("t8", 0, i)] = (b"k", b"v", i)
        pairs = cp._dict_chunks(owners)
        assert_halving(pairs)
        assert dict(itertools.chain.from_iterable(pairs)) == owners


def test_a_copy_of_a_restored_runtime_reuses_the_chunks_it_was_restored_from() -> None:
    """A scrub's replay restores a copy, runs on and keeps another: the lists it restored
    are chunked already (only what was appended since is new), not chunked item by item
    again."""
    runtime = ClusterRuntime.replay(SPEC, [*SETUP, PRODUCER, GROUP])
    runtime.advance(3_000)
    first = cp.dump_runtime(runtime)
    restored = cp.load_runtime(first)
    again = cp.dump_runtime(restored)
    lists = [i for i, snapshot in enumerate(first.shared) if type(snapshot) is tuple and snapshot]
    assert len(lists) > 10
    for i in lists:
        assert again.shared[i] == first.shared[i]
        assert all(map(operator.is_, again.shared[i], first.shared[i])), i
    restored.advance(1_000)
    later = cp.dump_runtime(restored)
    # The logs appended to: a chunk more each, their earlier chunks the same objects, but
    # where the new chunk was long enough to be merged with the one before it (_appended).
    before = [chunk for i in lists for chunk in first.shared[i]]
    after = {id(c): c for snapshot in later.shared if type(snapshot) is tuple for c in snapshot}
    assert len(after) > len(before)
    merged = [chunk for chunk in before if id(chunk) not in after]
    for chunk in merged:  # its items, the same objects, the start or the end of a longer one
        assert any(
            len(into) > len(chunk)
            and (
                all(map(operator.is_, into[: len(chunk)], chunk))
                or all(map(operator.is_, into[-len(chunk) :], chunk))
            )
            for into in after.values()
        )
    assert sum(map(len, merged)) * 4 < sum(map(len, before))
    assert state(cp.load_runtime(later)) == state(restored)


def test_the_store_keeps_within_its_count_and_bytes(end_ms: int) -> None:
    by_count = cp.CheckpointStore(max_count=3)
    cp.replay(SPEC, LOG, store=by_count, work_per_dump=0)
    assert len(by_count) == 3
    assert by_count.size_bytes == accounted(by_count)
    one = next(iter(by_count._items.values()))
    alone = one.copy.own_bytes + sum(map(cp._item_bytes, shared_items([one])))
    by_bytes = cp.CheckpointStore(max_bytes=int(alone * 1.5))
    cp.replay(SPEC, LOG, store=by_bytes, work_per_dump=0)
    every = cp.CheckpointStore()
    cp.replay(SPEC, LOG, store=every, work_per_dump=0)
    assert 1 <= len(by_bytes) < len(every)
    assert by_bytes.size_bytes == accounted(by_bytes) <= by_bytes.max_bytes
    # The newest survive (least recently used go first): the end of the log is kept.
    assert cp.replay(SPEC, LOG, store=by_bytes, keep=False).from_checkpoint_ms == end_ms
    tiny = cp.CheckpointStore(max_bytes=1_000)
    cp.replay(SPEC, LOG, store=tiny, work_per_dump=0)
    assert len(tiny) == 0 and tiny.size_bytes == 0 and not tiny._held


def test_a_live_host_keeps_checkpoints_a_replay_uses() -> None:
    """The host's clock runs in ticks it logs later as one advance, lengthened as it goes;
    its checkpoints stand where a replay of that log passes."""
    store = cp.CheckpointStore()
    setup = [*SETUP, PRODUCER, GROUP]
    runtime = ClusterRuntime.replay(SPEC, setup)
    live = cp.LiveCheckpoints(
        SPEC, setup, [0] * len(setup), store=store, every_ms=1_000, work_per_dump=0
    )
    log = [dict(c) for c in setup]
    unlogged, extends = 0, False

    def flush() -> None:  # as the host's `_flush_advance_locked`
        nonlocal unlogged, extends
        if not unlogged:
            return
        if extends:
            log[-1] = {"type": "advance", "ms": log[-1]["ms"] + unlogged}
            live.extended(unlogged)
        else:
            log.append({"type": "advance", "ms": unlogged})
            live.logged(log[-1], runtime.now_ms - unlogged)
        unlogged, extends = 0, True

    rng = random.Random(3)
    while runtime.now_ms < 12_000:
        ms = rng.choice((50, 100, 250, 700))
        runtime.advance(ms)
        unlogged += ms
        live.maybe_keep(runtime, unlogged_ms=unlogged, extends_last=extends, work_s=0.01)
        if rng.random() < 0.2:
            flush()
        if runtime.now_ms > 6_000 and len(log) < 8:  # a command between two advances
            flush()
            command = {"type": "stop_broker", "broker_id": 1}
            live.logged(command, runtime.now_ms)
            runtime.apply(command)
            log.append(command)
            extends = False
    flush()
    assert live.kept >= 8
    for at_ms in (2_000, 6_500, 9_000, runtime.now_ms):
        fast = cp.replay(SPEC, log, at_ms, store=store, keep=False)
        slow = cp.replay(SPEC, log, at_ms, store=cp.CheckpointStore(), keep=False)
        assert fast.from_checkpoint_ms is not None and fast.from_checkpoint_ms > at_ms - 2_000
        assert fast.times == slow.times
        assert state(fast.runtime) == state(slow.runtime), at_ms
    runtime.applied = len(log)  # a live runtime runs its clock without applying advances
    assert state(cp.replay(SPEC, log, store=store, keep=False).runtime) == state(runtime)


def test_a_live_runtime_is_kept_as_a_replay_holds_it() -> None:
    store = cp.CheckpointStore()
    runtime = ClusterRuntime.replay(SPEC, SETUP)
    runtime.advance(1_000)
    runtime.watch_messages = True
    runtime.console_output.append("printed to a viewer")
    runtime.stage_metrics = {"fed by": "the stage's rendering"}  # type: ignore[attr-defined]
    position = cp.LogPosition(cp.log_digests(SPEC, SETUP)[-1], 1_000)
    assert cp.keep_normalised(store, position, runtime, len(SETUP) + 1, len(SETUP), [0, 0])
    assert runtime.watch_messages and runtime.console_output  # the live one is untouched
    assert runtime.stage_metrics
    kept = cp.replay(SPEC, [*SETUP, {"type": "advance", "ms": 1_000}], store=store, keep=False)
    assert kept.from_checkpoint_ms == 1_000
    assert not kept.runtime.watch_messages and not kept.runtime.console_output
    assert not hasattr(kept.runtime, "stage_metrics")
    assert kept.runtime.applied == len(SETUP) + 1


def test_a_replay_keeps_checkpoints_at_a_pace_its_work_pays_for() -> None:
    """By default a checkpoint on the way is kept only once the replay worked twice as long
    as keeping the last one took: fewer than at every boundary, never none."""
    paced, dense = cp.CheckpointStore(), cp.CheckpointStore()
    cp.replay(SPEC, LOG, store=paced)
    cp.replay(SPEC, LOG, store=dense, work_per_dump=0)
    assert 2 <= len(paced) <= len(dense)
    assert cp.replay(SPEC, LOG, store=paced, keep=False).times == from_start(None).times


def test_checkpoints_only_on_tick_boundaries() -> None:
    with pytest.raises(ValueError, match="TICK_MS"):
        cp.replay(SPEC, LOG, store=cp.CheckpointStore(), every_ms=1_005)


def test_a_short_replay_from_a_checkpoint_keeps_no_copy_of_its_end() -> None:
    """Keeping the end of a replay costs what the store last measured a copy to cost: a replay
    from a checkpoint that worked less than WORK_PER_DUMP times that keeps none; one from the
    start always does."""
    store = cp.CheckpointStore()
    cp.replay(SPEC, LOG, 4_000, store=store, work_per_dump=0)
    count = len(store)
    store.put_s = 3_600.0  # as if a copy took an hour: no replay is worth one
    short = cp.replay(SPEC, LOG, 4_500, store=store)
    assert short.from_checkpoint_ms == 4_000 and len(store) == count
    assert state(short.runtime) == state(from_start(4_500).runtime)
    store.put_s = 1e-9  # a copy costs next to nothing: any replay is worth one
    cp.replay(SPEC, LOG, 4_500, store=store)
    assert len(store) == count + 1
    fresh = cp.CheckpointStore()
    fresh.put_s = 3_600.0
    cp.replay(SPEC, LOG, 1_000, store=fresh)
    assert len(fresh) == 1


def run_live(live: cp.LiveCheckpoints, until_ms: int, tick_ms: int = 500) -> ClusterRuntime:
    """A host's clock in ticks, logged as one advance lengthened every 2 s (as the host does)."""
    runtime = ClusterRuntime.replay(SPEC, [*SETUP, PRODUCER, GROUP])
    unlogged, extends, since_flush = 0, False, 0
    while runtime.now_ms < until_ms:
        runtime.advance(tick_ms)
        unlogged += tick_ms
        live.maybe_keep(runtime, unlogged_ms=unlogged, extends_last=extends, work_s=1e-6)
        since_flush += tick_ms
        if since_flush >= 2_000:
            if extends:
                live.extended(unlogged)
            else:
                live.logged({"type": "advance", "ms": unlogged}, runtime.now_ms - unlogged)
            unlogged, extends, since_flush = 0, True, 0
    if unlogged:  # the rest logged (the host's flush)
        if extends:
            live.extended(unlogged)
        else:
            live.logged({"type": "advance", "ms": unlogged}, runtime.now_ms - unlogged)
    return runtime


def test_a_live_host_keeps_a_checkpoint_every_so_many_timers_whatever_copies_cost() -> None:
    """However dear a copy seems (the work it pays for never reached), a live host keeps one
    once the engine ran `max_replay_timers` timers since the last: where they stand is counted,
    not timed, so two runs of the same session keep them at the same moments."""
    setup = [*SETUP, PRODUCER, GROUP]
    kept_at: list[list[int]] = []
    for _ in range(2):
        store = cp.CheckpointStore()
        live = cp.LiveCheckpoints(
            SPEC, setup, [0] * len(setup), store=store, work_per_dump=1e9, max_replay_timers=600
        )
        run_live(live, 20_000)
        kept_at.append(sorted(c.time_ms for c in store._items.values()))
        timers = [timers_at(ms) for ms in kept_at[-1]]
    assert kept_at[0] == kept_at[1]
    assert len(kept_at[0]) >= 4, kept_at[0]
    # Never more than the cap (plus the one 500 ms tick that crossed it) between two.
    ticks = [timers_at(ms) for ms in range(0, 20_001, 500)]
    per_tick = max(b - a for a, b in itertools.pairwise(ticks))
    assert all(b - a <= 600 + per_tick for a, b in itertools.pairwise(timers)), timers
    assert timers_at(kept_at[0][0]) <= 600 + per_tick


@functools.cache
def _timers_by_moment() -> dict[int, int]:
    runtime = ClusterRuntime.replay(SPEC, [*SETUP, PRODUCER, GROUP])
    counted = {0: cp.timers_run(runtime)}
    while runtime.now_ms < 20_000:
        runtime.advance(500)
        counted[runtime.now_ms] = cp.timers_run(runtime)
    return counted


def timers_at(ms: int) -> int:
    return _timers_by_moment()[ms]


def test_a_replay_keeps_a_checkpoint_every_so_many_timers_whatever_copies_cost() -> None:
    """However dear a copy seems (the work it pays for never reached: the pace alone keeps the
    first one only), a replay keeps one once it ran `max_replay_timers` timers since the last."""
    store = cp.CheckpointStore()
    cp.replay(SPEC, LOG, store=store, work_per_dump=1e9, max_replay_timers=500)
    assert len(store) >= 6
    again = cp.CheckpointStore()
    cp.replay(SPEC, LOG, store=again, work_per_dump=1e9, max_replay_timers=500)
    assert set(store._items) == set(again._items)  # counted, not timed
    assert state(cp.replay(SPEC, LOG, 12_345, store=store).runtime) == state(
        from_start(12_345).runtime
    )


def test_a_replay_for_a_fork_keeps_its_end_for_the_new_host() -> None:
    """A fork's (or a share link's) new host replays exactly the prefix next: kept whatever the
    pace says, it restores instead of replaying it again."""
    store = cp.CheckpointStore()
    cp.replay(SPEC, LOG, 4_000, store=store, work_per_dump=0)
    store.put_s = 3_600.0
    plain = cp.replay(SPEC, LOG, 4_500, store=store)
    assert cp.replay(SPEC, plain.prefix, store=store, keep=False).from_checkpoint_ms == 4_000
    forked = cp.replay(SPEC, LOG, 5_500, store=store, keep_end=True)
    host = cp.replay(SPEC, forked.prefix, store=store, keep=False)
    assert host.from_checkpoint_ms == 5_500
    assert state(host.runtime) == state(from_start(5_500).runtime)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(at_ms=st.integers(min_value=0, max_value=END_MS + 600))
def test_a_replay_from_the_nearest_checkpoint_equals_one_from_the_start(
    kept: cp.CheckpointStore, at_ms: int
) -> None:
    fast = cp.replay(SPEC, LOG, at_ms, store=kept, keep=False)
    slow = from_start(at_ms)
    assert fast.prefix == slow.prefix
    assert fast.times == slow.times
    assert state(fast.runtime) == state(slow.runtime)


def test_a_live_host_keeps_the_end_of_its_log_when_a_reader_flushed_it() -> None:
    """A reader of the log (the past page, a fork, a share link) has the host log its clock,
    then replays to the end: the host keeps its live runtime there, whatever the pace, where
    a replay of that log (or of a longer one: its last advance lengthened) starts."""
    setup = [*SETUP, PRODUCER, GROUP]
    store = cp.CheckpointStore()
    live = cp.LiveCheckpoints(
        SPEC, setup, [0] * len(setup), store=store, work_per_dump=1e9, max_replay_timers=10**9
    )
    runtime = run_live(live, 6_000)  # one kept at its first tick only, then none
    assert sorted(c.time_ms for c in store._items.values()) == [500]
    log = [*setup, {"type": "advance", "ms": 6_000}]
    assert live.keep_end(runtime) > 0
    assert live.keep_end(runtime) == 0.0  # kept already
    fast = cp.replay(SPEC, log, store=store, keep=False)
    slow = cp.replay(SPEC, log, store=cp.CheckpointStore(), keep=False)
    assert fast.from_checkpoint_ms == 6_000
    assert fast.times == slow.times and state(fast.runtime) == state(slow.runtime)
    longer = [*setup, {"type": "advance", "ms": 7_000}]
    assert cp.replay(SPEC, longer, store=store, keep=False).from_checkpoint_ms == 6_000
    assert live.keep_end(runtime, allowed=False) == 0.0


def test_a_long_live_session_thins_its_checkpoints_evenly_and_replays_the_same() -> None:
    """Past `max_kept`, a live host drops its checkpoint whose removal leaves the narrowest
    gap in timers: never the first nor the newest few, so their count stops growing, the
    gaps stay even and a replay from what is left equals one from the start."""
    setup = [*SETUP, PRODUCER, GROUP]

    def live_of(store: cp.CheckpointStore, max_kept: int | None = None) -> cp.LiveCheckpoints:
        return cp.LiveCheckpoints(
            SPEC,
            setup,
            [0] * len(setup),
            store=store,
            work_per_dump=1e9,
            max_replay_timers=150,
            every_ms=500,
            max_kept=max_kept,
        )

    live = live_of(cp.CheckpointStore())
    run_live(live, 20_000)
    every = [timers for _, timers in live.mine]
    assert len(every) >= 20, every  # enough to thin below
    first = live.mine[0]

    store = cp.CheckpointStore()
    live = live_of(store, max_kept=8)
    runtime = run_live(live, 20_000)
    assert len(store) == len(live.mine) == 8
    assert store.size_bytes == accounted(store)
    kept = [timers for _, timers in live.mine]
    assert live.mine[0] == first  # the first stays
    assert kept[-cp.KEEP_NEWEST :] == every[-cp.KEEP_NEWEST :]  # and the newest
    # Even: no gap among the thinned ones is more than twice as wide as an even spread's.
    thinned = kept[: -cp.KEEP_NEWEST + 1]
    even = (thinned[-1] - thinned[0]) / (len(thinned) - 1)
    assert max(b - a for a, b in itertools.pairwise(thinned)) <= 2 * even, kept
    log = [*setup, {"type": "advance", "ms": runtime.now_ms}]
    for at_ms in (3_000, 11_000, 19_000):
        fast = cp.replay(SPEC, log, at_ms, store=store, keep=False)
        slow = cp.replay(SPEC, log, at_ms, store=cp.CheckpointStore(), keep=False)
        assert fast.from_checkpoint_ms is not None
        assert state(fast.runtime) == state(slow.runtime), at_ms


def test_a_copy_taken_amid_a_run_of_sends_keeps_its_own_engine_log() -> None:
    """The engine logs consecutive sends as one run it grows in place, and a copy shares the
    log's items: once copied, the run is closed, so the original's later sends do not show in
    the copy's log nor the copy's in the original's, and each log rebuilds its own cluster."""
    from engine import Cluster

    runtime = ClusterRuntime(SPEC)
    cluster = runtime.cluster
    cluster.create_topic("t", 1, 1)
    producer = cluster.producer({"linger.ms": 0})
    for index in range(3):
        producer.send("t", value=b"before-%d" % index, key=b"k")
    at_copy = cluster.export_log()
    copy = cp.load_runtime(cp.dump_runtime(runtime))
    for index in range(5):
        producer.send("t", value=b"after-%d" % index, key=b"k")
    copied = copy.cluster
    assert copied.export_log() == at_copy
    copied_producer = copied.producer({"linger.ms": 0})
    copied_producer.send("t", value=b"copy's own", key=b"k")
    cluster.advance(500)
    copied.advance(500)
    assert len(cluster.export_log()) == len(at_copy) + 6  # five sends, one advance
    own = {"$bytes": base64.b64encode(b"copy's own").decode()}
    assert all(entry.get("value") != own for entry in cluster.export_log())
    added = copied.export_log()[len(at_copy) :]
    assert [(e["op"], e.get("value")) for e in added] == [
        ("cluster.producer", None),
        ("producer.send", own),
        ("cluster.advance", None),
    ]
    for one in (cluster, copied):
        assert Cluster.from_log(one.export_log()).snapshot() == one.snapshot()


def test_a_copy_taken_amid_a_run_of_advances_keeps_its_own_engine_log() -> None:
    """Consecutive advances are one run grown in place, too: a copy closes it, so neither the
    original's later ticks nor the copy's show in the other's log."""
    from engine import Cluster

    runtime = ClusterRuntime(SPEC)
    cluster = runtime.cluster
    for _ in range(3):
        cluster.advance(250)
    at_copy = cluster.export_log()
    copy = cp.load_runtime(cp.dump_runtime(runtime))
    for _ in range(4):
        cluster.advance(250)
    copied = copy.cluster
    assert copied.export_log() == at_copy
    copied.advance(40)
    assert cluster.export_log() == at_copy + [{"op": "cluster.advance", "ms": 250}] * 4
    assert copied.export_log() == at_copy + [{"op": "cluster.advance", "ms": 40}]
    for one in (cluster, copied):
        assert Cluster.from_log(one.export_log()).snapshot() == one.snapshot()
