"""Checkpoints for time travel: copies of a `ClusterRuntime` kept in memory, so a scrub, a fork
or a share link replays a log from the nearest checkpoint at or before its target instead of
from the start.

A cluster is its seed plus its command log, so a checkpoint is named by where in a log it
stands: `LogPosition(digest, into_ms)`, the digest of the spec and of every command applied
before it, and how far into the next command (an `advance`) the clock had run. Any log with
the same spec and the same commands up to that point reaches the same state there, whoever
replayed it: the host running the cluster live, a scrub's replay or a share link's. Advances
are cut on TICK_MS boundaries only, where `advance(a) + advance(b)` equals `advance(a + b)`.

A checkpoint is an optimisation only: a replay from it gives the same runtime as a replay from
the start (tested, with broker kills and restarts, groups and producer apps). The store is
bounded by count and by bytes and drops the least recently used checkpoint first.

Copies are pickles made in this process for this process: the engine's timers hold closures
(lambdas over their request), which the standard pickler refuses, so `copy_runtime`'s pickler
reduces a closure to its code object (kept in a process-wide table, never serialised), its real
module globals, its defaults and its cells. Cells are pickled like any object, so two closures
sharing a variable still share it in the copy, and the engine stays exactly as deterministic.
The bytes are never written anywhere and mean nothing to another process.

Most of a long session's state is data that never changes once stored: the batches of every
replica's log, the engine's own command log, what the checker saw acknowledged and consumed
(`SHARED_ATTRIBUTES`). A copy does not pickle those items: it keeps a shallow snapshot of each
such container (a tuple of the same items) beside its bytes, and a restore makes a new
container of the same items. The copy owns its containers, shares their immutable items; a
10-minute session restores in a few ms instead of unpickling ~7 MiB. The store counts each
shared item once (`CheckpointStore.size_bytes`).
"""

from __future__ import annotations

import contextlib
import copyreg
import gc
import hashlib
import io
import itertools
import json
import logging
import operator
import pickle
import sys
import threading
import time
import types
import zlib
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.checker import History
from engine.clients.apps.consumer_app import ConsumerApp
from engine.cluster import Cluster
from engine.common.records import RecordBatch
from engine.sim.command_log import EntryRun
from engine.storage.log import LogSegment
from lessons.scenarios.limits import TICK_MS
from lessons.scenarios.runtime import ClusterRuntime, ClusterSpec

logger = logging.getLogger(__name__)

# Taken every this many ms of cluster time by the host and by replays (the longest stretch a
# scrub replays after restoring one).
CHECKPOINT_EVERY_MS = 2_000
# A checkpoint is kept once the work since the last one is this many times what that one cost
# to take: keeping them never costs more than half as much again as the work itself.
WORK_PER_DUMP = 2.0
# ... and at the latest once the engine ran this many timers since the last one, however much
# a copy cost to take: what a first scrub replays from the nearest checkpoint stays bounded by
# work (about 50 ms here at ~24 us a timer; ~9 s of a lesson session's cluster time), counted
# deterministically, so where checkpoints stand never depends on the machine's speed or load.
MAX_REPLAY_TIMERS = 2_000
MAX_CHECKPOINTS = 600
MAX_CHECKPOINT_BYTES = 512 * 1024 * 1024


# -- copying a runtime --------------------------------------------------------------------------

# Code objects of the closures copied so far, by id (kept alive here, so an id stays unique).
_CODES: dict[int, types.CodeType] = {}
_CODES_LOCK = threading.Lock()


def _code_key(code: types.CodeType) -> int:
    key = id(code)
    if key not in _CODES:
        with _CODES_LOCK:
            _CODES.setdefault(key, code)
    return key


def _make_function(
    code_key: int,
    module: str,
    name: str,
    qualname: str,
    defaults: tuple[Any, ...] | None,
    closure: tuple[types.CellType, ...] | None,
) -> types.FunctionType:
    function = types.FunctionType(
        _CODES[code_key], vars(sys.modules[module]), name, defaults, closure
    )
    function.__qualname__ = qualname
    return function


def _set_function_state(function: types.FunctionType, state: tuple[Any, Any]) -> None:
    kwdefaults, attributes = state
    function.__kwdefaults__ = kwdefaults
    if attributes:
        function.__dict__.update(attributes)


_EMPTY = object()  # a cell not yet assigned (a local function referring to a later variable)


def _set_cell(cell: types.CellType, contents: Any) -> None:
    if contents is not _EMPTY:
        cell.cell_contents = contents


def _empty_marker() -> object:
    return _EMPTY


def _new_cell() -> types.CellType:
    return types.CellType()


def _reduce_cell(cell: types.CellType) -> tuple[Any, ...]:
    try:
        contents = cell.cell_contents
    except ValueError:
        contents = _EMPTY
    # Made empty, memoised, then filled: a closure whose own cell refers to it copies fine.
    return (_new_cell, (), contents, None, None, _set_cell)


def _shared_attributes() -> dict[type, tuple[str, ...]]:
    """Containers whose items are never changed once in them (items are only appended or
    removed, or the container replaced; a list only appended to or with a prefix deleted): a
    copy shares their items. A log segment's batches (a truncation replaces a batch it
    shortens, the cleaner writes new segments) with their last offsets and index entries; the
    engine's command log (entries copied in as logged) and its events (frozen); the checker's
    history (frozen acknowledgements, tuples of consumed records, tuples by offset); the
    records a consumer app has seen (tuples)."""
    return {
        LogSegment: ("batches", "last_offsets", "index"),
        ConsumerApp: ("seen",),
        Cluster: ("_log", "_events"),
        History: ("acknowledged", "consumed", "read_committed_consumed", "offset_owner"),
    }


SHARED_ATTRIBUTES = _shared_attributes()
# A shared container's snapshot: its chunks (a list's items, a dict's (key, value) pairs, a
# set's items), shared with the snapshots of the same container taken before and after it.
Snapshot = tuple[Any, ...]
_LOADING = threading.local()  # the snapshots of the copy being loaded (on this thread)


def _unshare(index: int) -> Any:
    """A new container holding the items of the snapshot `index` of the copy being loaded."""
    snapshot = _LOADING.shared[index]
    kind = type(snapshot)
    items = itertools.chain.from_iterable(snapshot)
    restored: Any = (
        dict(items) if kind is _DictChunks else set(items) if kind is _SetChunks else list(items)
    )
    # Its chunks are known: a copy of the restored runtime (a scrub's replay keeping one on
    # its way) adds a chunk of what was added since instead of chunking every item again.
    _remember(restored, tuple(snapshot))
    return restored


class _Chunk(tuple):  # type: ignore[type-arg]
    """A run of a shared list's items, itself shared by the snapshots taken after it, with
    the estimate of the memory its items hold (`_item_bytes`, summed once)."""

    bytes: int

    @classmethod
    def of(cls, items: Iterable[Any], known: int | None = None) -> _Chunk:
        chunk = cls(items)
        chunk.bytes = sum(map(_item_bytes, chunk)) if known is None else known
        return chunk


class _DictChunks(tuple):  # type: ignore[type-arg]
    """A dict's snapshot: chunks of its (key, value) pairs, in its order."""


class _SetChunks(tuple):  # type: ignore[type-arg]
    """A set's snapshot: chunks of its items."""


# The chunks of the containers last snapshotted, by id: (the container, its chunks, how many
# items they hold). A later snapshot of the same list whose first and last chunked items are
# still in place (it was only appended to), of the same dict whose first pairs are still the
# same (only added to), of the same set still holding all of them, adds a chunk of its new
# items; anything else (a prefix deleted, a pair replaced) starts over. The container is held
# here, so its id is not reused meanwhile; the least recently snapshotted (or restored) go
# first, past MAX_CHUNKED_LISTS containers or MAX_CHUNKED_ITEMS items in all (a few long
# sessions' worth, a host's and the copies scrubs restored: what it keeps alive beyond the
# store and the runtimes stays small).
_CHUNKS: OrderedDict[int, tuple[list[Any], tuple[_Chunk, ...], int]] = OrderedDict()
_CHUNKS_LOCK = threading.Lock()
_chunked_items = 0
MAX_CHUNKED_LISTS = 8_192
MAX_CHUNKED_ITEMS = 600_000


# A chunk of this many items or more is never merged again: every later snapshot shares it.
BLOCK_ITEMS = 1_024


def _appended(before: tuple[_Chunk, ...], new: Iterable[Any]) -> tuple[_Chunk, ...]:
    """`before` and a chunk of the `new` items, the last two chunks merged while the last holds
    at least half as many items as the one before it and that one is not yet a block (under
    BLOCK_ITEMS items). So a snapshot is some blocks, then chunks each under half the one
    before it (at most n / BLOCK_ITEMS + log2(BLOCK_ITEMS) + 1 chunks of n items); a merge
    copies recent items only, an item takes part in about log2(BLOCK_ITEMS) merges, and the
    snapshots kept along a long session share every block instead of each holding a whole
    copy of the container's slots (a merge of every chunk into one, every few snapshots, did
    that)."""
    chunks = [*before, _Chunk.of(new)]
    while (
        len(chunks) > 1 and len(chunks[-2]) < BLOCK_ITEMS and 2 * len(chunks[-1]) >= len(chunks[-2])
    ):
        last = chunks.pop()
        first = chunks.pop()
        chunks.append(_Chunk.of(itertools.chain(first, last), first.bytes + last.bytes))
    return tuple(chunks)


def _chunks(value: list[Any]) -> tuple[_Chunk, ...]:
    """A snapshot of a shared list: chunks of its items, reusing those of its last snapshot."""
    key = id(value)
    with _CHUNKS_LOCK:
        last = _CHUNKS.get(key)
    chunks: tuple[_Chunk, ...] = ()
    if last is not None and last[0] is value:
        _, before, count = last
        if len(value) >= count and (
            not count or (value[0] is before[0][0] and value[count - 1] is before[-1][-1])
        ):
            chunks = before if len(value) == count else _appended(before, value[count:])
    if not chunks and value:
        chunks = (_Chunk.of(value),)
    _remember(value, chunks)
    return chunks


def _last_chunks(value: Any) -> tuple[tuple[_Chunk, ...], int] | None:
    with _CHUNKS_LOCK:
        last = _CHUNKS.get(id(value))
    if last is None or last[0] is not value:
        return None
    return last[1], last[2]


def _dict_chunks(value: dict[Any, Any]) -> _DictChunks:
    """A snapshot of a shared dict: chunks of its pairs, reusing those of its last snapshot
    while its first pairs are still the same (compared in C: the same objects, mostly)."""
    last = _last_chunks(value)
    chunks: tuple[_Chunk, ...] = ()
    if last is not None and len(value) >= last[1]:
        before, count = last
        head = itertools.islice(value.items(), count)
        if all(map(operator.eq, head, itertools.chain.from_iterable(before))):
            if len(value) == count:
                chunks = before
            else:
                chunks = _appended(before, itertools.islice(value.items(), count, None))
    if not chunks and value:
        chunks = (_Chunk.of(value.items()),)
    _remember(value, chunks)
    return _DictChunks(chunks)


def _set_chunks(value: set[Any]) -> _SetChunks:
    """A snapshot of a shared set: chunks of its items, reusing those of its last snapshot
    while it still holds all of their items."""
    last = _last_chunks(value)
    chunks: tuple[_Chunk, ...] = ()
    if last is not None and last[1] and len(value) >= last[1]:
        before, count = last
        new = value.difference(*before)
        if len(value) - len(new) == count:  # every earlier item still in it
            chunks = _appended(before, new) if new else before
    if not chunks and value:
        chunks = (_Chunk.of(value),)
    _remember(value, chunks)
    return _SetChunks(chunks)


def _remember(value: Any, chunks: tuple[_Chunk, ...]) -> None:
    """`chunks` hold exactly the items of `value` (a list, a dict, a set), for its next
    snapshot."""
    global _chunked_items
    key = id(value)
    with _CHUNKS_LOCK:
        replaced = _CHUNKS.pop(key, None)
        _chunked_items += len(value) - (replaced[2] if replaced else 0)
        _CHUNKS[key] = (value, chunks, len(value))
        while len(_CHUNKS) > MAX_CHUNKED_LISTS or _chunked_items > MAX_CHUNKED_ITEMS:
            _, (_, _, count) = _CHUNKS.popitem(last=False)
            _chunked_items -= count


def _new_object(cls: type) -> Any:
    return cls.__new__(cls)


def _set_attributes(obj: Any, state: dict[str, Any]) -> None:
    if hasattr(obj, "__dict__"):
        obj.__dict__.update(state)
    else:
        for name, value in state.items():
            object.__setattr__(obj, name, value)


class _Shared:
    """A container's snapshot, in a state being pickled (pickled as `_unshare(index)`)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class _RuntimePickler(pickle.Pickler):
    dispatch_table = copyreg.dispatch_table.copy()
    dispatch_table[types.CellType] = _reduce_cell

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared: list[Snapshot] = []

    def _sharing(self, obj: Any, names: tuple[str, ...]) -> Any:
        if type(obj) is LogSegment:
            # Its fingerprint folded in now (in the runtime copied, too: a cache of the same
            # value), so a snapshot of a restored copy does not fold every batch again.
            obj.digest  # noqa: B018
        elif type(obj) is Cluster:
            # The log's items are shared from here on: its open run of sends must not grow
            # under this copy (nor the copy's under the original).
            obj.seal_log()
        if hasattr(obj, "__dict__"):
            state = dict(obj.__dict__)
        else:
            state = {n: getattr(obj, n) for n in type(obj).__slots__ if hasattr(obj, n)}
        for name in names:
            value = state.get(name)
            if type(value) is list:
                self.shared.append(_chunks(value))
            elif type(value) is dict:
                self.shared.append(_dict_chunks(value))
            elif type(value) is set:
                self.shared.append(_set_chunks(value))
            else:
                continue
            state[name] = _Shared(len(self.shared) - 1)
        return (_new_object, (type(obj),), state, None, None, _set_attributes)

    def reducer_override(self, obj: Any) -> Any:
        if obj is _EMPTY:
            return (_empty_marker, ())
        kind = type(obj)
        if kind is _Shared:
            return (_unshare, (obj.index,))
        names = SHARED_ATTRIBUTES.get(kind)
        if names is not None:
            return self._sharing(obj, names)
        if kind is not types.FunctionType:
            return NotImplemented
        if "<" not in obj.__qualname__:  # a module-level function: pickled by name
            return NotImplemented
        return (
            _make_function,
            (
                _code_key(obj.__code__),
                obj.__module__,
                obj.__name__,
                obj.__qualname__,
                obj.__defaults__,
                obj.__closure__,
            ),
            (obj.__kwdefaults__, obj.__dict__ or None),
            None,
            None,
            _set_function_state,
        )


# How many `no_gc` blocks run now (in any thread), and whether the collector was on before.
_NO_GC_LOCK = threading.Lock()
_no_gc_depth = 0
_gc_was_enabled = False


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic collector off meanwhile, back on (if it was) once no such block runs in any
    thread. Pickling and replaying allocate tens of thousands of objects that nearly all live
    on (a copy's objects, a log's batches, timers): the collector would walk the whole heap
    again and again meanwhile, finding next to nothing (it more than doubles a copy's time)."""
    global _no_gc_depth, _gc_was_enabled
    with _NO_GC_LOCK:
        if not _no_gc_depth:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _no_gc_depth += 1
    try:
        yield
    finally:
        with _NO_GC_LOCK:
            _no_gc_depth -= 1
            if not _no_gc_depth and _gc_was_enabled:
                gc.enable()


# A kept checkpoint's pickle is compressed (zlib at this level): a lesson cluster's pickle is
# tens of thousands of small objects' fields and names, about 2.5 times smaller compressed, for
# under a millisecond to compress and a few tenths to decompress on a restore
# (`python -m scripts.bench.checkpoint_memory` measures what a room's host keeps). A copy made
# and restored at once (`copy_runtime`: a fork) is not compressed.
COMPRESS_LEVEL = 1


@dataclass(frozen=True)
class RuntimeCopy:
    """What `load_runtime` rebuilds an independent, equal runtime from (in this process only):
    the pickle (zlib-compressed if `compressed`) and the snapshots of the containers whose
    items it shares (see the module)."""

    data: bytes
    shared: tuple[Snapshot, ...]
    compressed: bool = False

    @property
    def own_bytes(self) -> int:
        """The bytes this copy holds by itself (its pickle, its snapshots' slots)."""
        return len(self.data) + sum(sys.getsizeof(s) for s in self.shared)


def dump_runtime(runtime: ClusterRuntime, *, compress: bool = False) -> RuntimeCopy:
    """The runtime as a `RuntimeCopy` that `load_runtime` turns into an independent, equal
    runtime (in this process only); its pickle compressed if `compress` (one to keep)."""
    buffer = io.BytesIO()
    with no_gc():
        pickler = _RuntimePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dump(runtime)
    data = buffer.getvalue()
    if compress:
        return RuntimeCopy(zlib.compress(data, COMPRESS_LEVEL), tuple(pickler.shared), True)
    return RuntimeCopy(data, tuple(pickler.shared))


def load_runtime(copy: RuntimeCopy) -> ClusterRuntime:
    _LOADING.shared = copy.shared
    try:
        with no_gc():
            runtime = pickle.loads(zlib.decompress(copy.data) if copy.compressed else copy.data)
    finally:
        _LOADING.shared = ()
    assert isinstance(runtime, ClusterRuntime)
    return runtime


def copy_runtime(runtime: ClusterRuntime) -> ClusterRuntime:
    """An independent copy: advancing either never changes the other."""
    return load_runtime(dump_runtime(runtime))


# -- where in a log ----------------------------------------------------------------------------


def spec_digest(spec: ClusterSpec) -> bytes:
    text = json.dumps(
        [spec.seed, spec.brokers, spec.controllers, dict(spec.config or {})],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.blake2b(b"spec:" + text.encode(), digest_size=20).digest()


def command_digest(previous: bytes, payload: Mapping[str, Any]) -> bytes:
    """The digest of a log prefix one command longer."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(previous + text.encode(), digest_size=20).digest()


def log_digests(spec: ClusterSpec, commands: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """digests[i]: the position before command i (len(commands) + 1 entries)."""
    digests = [spec_digest(spec)]
    for payload in commands:
        digests.append(command_digest(digests[-1], payload))
    return digests


def advance_ms(payload: Mapping[str, Any]) -> int | None:
    """How far a log entry moves the clock by itself: the ms of an `advance`, the ms of an
    engine log's `cluster.advance`, None for other commands."""
    if payload.get("type") == "advance":
        return int(payload["ms"])
    entry = payload.get("entry")
    if not isinstance(entry, Mapping) or payload.get("type") != "engine":
        return None
    return int(entry["ms"]) if entry.get("op") == "cluster.advance" else None


def splittable(payload: Mapping[str, Any]) -> bool:
    """Whether a checkpoint may stand inside this command: a host `advance` only (an engine
    log's advance is kept whole, as its entry is copied into the engine's own log)."""
    return payload.get("type") == "advance"


@dataclass(frozen=True)
class LogPosition:
    digest: bytes  # of the spec and the commands applied before this position
    into_ms: int = 0  # how far into the next command (an advance) the clock ran


@dataclass(frozen=True)
class Checkpoint:
    position: LogPosition
    index: int  # how many commands were applied whole before it
    time_ms: int
    copy: RuntimeCopy
    # When each of those commands was applied: the first `index` items of these chunks (those
    # of the list the host or the replay appends its times to, shared with the checkpoints
    # kept before and after this one).
    time_chunks: tuple[_Chunk, ...]

    @property
    def times(self) -> tuple[int, ...]:
        return tuple(itertools.islice(itertools.chain.from_iterable(self.time_chunks), self.index))

    def restore(self) -> ClusterRuntime:
        return load_runtime(self.copy)


def normalised(runtime: ClusterRuntime, applied: int) -> ClusterRuntime:
    """What a replay of the log to this moment would hold, for the parts of a live runtime a
    replay never fills: slow motion off, nothing in flight watched, no console tail."""
    runtime.watch_messages = False
    runtime.recent_messages = {}
    runtime.console_output = []
    runtime.applied = applied
    return runtime


# Attributes the stage's rendering sets on a runtime it renders (webapp/metrics.py).
RENDER_ATTRIBUTES = frozenset({"stage_metrics"})


def _item_bytes(item: Any) -> int:
    """An estimate of the memory one shared item holds (a batch with its records and their
    keys and values, an entry of the engine's log, a tuple or an acknowledgement)."""
    kind = type(item)
    if kind is RecordBatch:
        return 200 + 150 * len(item.records) + int(item.size)
    if kind is _Chunk:
        return sys.getsizeof(item) + int(item.bytes)
    if kind is dict or kind is tuple:
        return sys.getsizeof(item) + 80 * len(item)
    if kind is int:
        return sys.getsizeof(item)
    if kind is EntryRun:  # shapes, small ints and strings shared; bytes (keys, values) not
        fields = item.fields
        return sys.getsizeof(fields) + sum(len(v) + 33 for v in fields if type(v) is bytes)
    return sys.getsizeof(item) + 120


def _items(snapshot: Snapshot) -> Iterable[Any]:
    """What a snapshot shares: its chunks."""
    return snapshot


class CheckpointStore:
    """Checkpoints by log position, bounded by count and by bytes (least recently used out).

    `size_bytes` counts every checkpoint's own bytes (`RuntimeCopy.own_bytes`) and, once for
    the whole store, every item its checkpoints share (`_item_bytes`, an estimate)."""

    def __init__(
        self, *, max_count: int = MAX_CHECKPOINTS, max_bytes: int = MAX_CHECKPOINT_BYTES
    ) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._items: OrderedDict[LogPosition, Checkpoint] = OrderedDict()
        self._by_digest: dict[bytes, dict[int, LogPosition]] = {}
        self._bytes = 0
        # Items the kept checkpoints share, by id: (the item, its bytes), and how many of the
        # checkpoints' snapshots hold each.
        self._held: dict[int, tuple[Any, int]] = {}
        self._counts: Counter[int] = Counter()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.put_s = 0.0  # the CPU seconds the last checkpoint kept took to copy and count

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._by_digest.clear()
            self._held.clear()
            self._counts.clear()
            self._bytes = 0

    def __contains__(self, position: object) -> bool:
        return position in self._items

    def put(
        self,
        position: LogPosition,
        runtime: ClusterRuntime,
        *,
        index: int,
        times: Sequence[int],
    ) -> Checkpoint | None:
        """Keep a copy of `runtime` at `position` (a runtime exactly as a replay of the log to
        there leaves it), after `index` commands applied whole, the first `index` items of
        `times` when each was applied (a list only ever appended to, such as a host's own: the
        checkpoint shares its items). Returns None when it is already kept or alone exceeds
        the bound."""
        if position in self._items:
            with self._lock:
                if position in self._items:
                    self._items.move_to_end(position)
            return None
        started = time.thread_time()
        try:
            copy = dump_runtime(runtime, compress=True)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            # A live object a replay never holds (say, a connected console): no checkpoint.
            logger.info("no checkpoint at %d ms: %s", runtime.now_ms, error)
            return None
        if copy.own_bytes > self.max_bytes:
            return None
        if len(times) < index:
            raise ValueError(f"{len(times)} command times for a checkpoint after {index} commands")
        # An appended list's chunks are reused (see _CHUNKS); a long session's checkpoints
        # would otherwise each hold a copy of every command's time.
        time_chunks = _chunks(times) if type(times) is list else (_Chunk.of(times[:index]),)
        checkpoint = Checkpoint(position, index, runtime.now_ms, copy, time_chunks)
        with self._lock:
            if position in self._items:
                return None
            self._items[position] = checkpoint
            self._by_digest.setdefault(position.digest, {})[position.into_ms] = position
            self._bytes += copy.own_bytes + self._hold(copy)
            self.put_s = time.thread_time() - started
            while self._items and (
                len(self._items) > self.max_count or self._bytes > self.max_bytes
            ):
                _, dropped = self._items.popitem(last=False)
                self._forget(dropped)
        return checkpoint

    def _hold(self, copy: RuntimeCopy) -> int:
        """Count the items a new checkpoint shares; the bytes of those no other one held.
        (In C loops: a long session's checkpoint shares ~10^5 items, nearly all held already.)"""
        items = list(itertools.chain.from_iterable(map(_items, copy.shared)))
        ids = list(map(id, items))
        counts = self._counts
        fresh = list(itertools.compress(items, map(operator.not_, map(counts.__contains__, ids))))
        counts.update(ids)
        added = 0
        for item in fresh:
            size = _item_bytes(item)
            self._held[id(item)] = (item, size)  # kept alive here: its id stays its own
            added += size
        return added

    def _release(self, copy: RuntimeCopy) -> int:
        """Uncount a dropped checkpoint's items; the bytes of those no other one holds."""
        counts, freed = self._counts, 0
        for key in map(id, itertools.chain.from_iterable(map(_items, copy.shared))):
            left = counts[key] - 1
            if left:
                counts[key] = left
            else:
                del counts[key]
                freed += self._held.pop(key)[1]
        return freed

    def discard(self, position: LogPosition) -> None:
        """Drop the checkpoint at `position`, if kept (a live host thinning its own)."""
        with self._lock:
            dropped = self._items.pop(position, None)
            if dropped is not None:
                self._forget(dropped)

    def _forget(self, dropped: Checkpoint) -> None:
        self._bytes -= dropped.copy.own_bytes + self._release(dropped.copy)
        into = self._by_digest.get(dropped.position.digest)
        if into is not None:
            into.pop(dropped.position.into_ms, None)
            if not into:
                del self._by_digest[dropped.position.digest]

    def nearest(
        self,
        commands: Sequence[Mapping[str, Any]],
        digests: Sequence[bytes],
        at_ms: int | None,
    ) -> Checkpoint | None:
        """The latest checkpoint of this log at or before `at_ms` (None: the log's end)."""
        best: Checkpoint | None = None
        with self._lock:
            for index, digest in enumerate(digests):
                into = self._by_digest.get(digest)
                if not into:
                    continue
                stop = False
                for into_ms in sorted(into):
                    checkpoint = self._items[into[into_ms]]
                    if at_ms is not None and checkpoint.time_ms > at_ms:
                        stop = True  # the clock only moves on: nothing later can be earlier
                        break
                    if into_ms:
                        if index >= len(commands) or not splittable(commands[index]):
                            continue
                        if (advance_ms(commands[index]) or 0) < into_ms:
                            continue  # this log's advance is shorter than the checkpoint's
                    elif checkpoint.time_ms == at_ms and _stopped_earlier(
                        commands, checkpoint, at_ms
                    ):
                        continue
                    best = checkpoint
                if stop:
                    break
            if best is not None:
                self._items.move_to_end(best.position)
                self.hits += 1
            else:
                self.misses += 1
        return best


def _stopped_earlier(
    commands: Sequence[Mapping[str, Any]], checkpoint: Checkpoint, at_ms: int
) -> bool:
    """Whether a replay to `at_ms` stops before this checkpoint's position: at an advance
    (of 0 ms) applied at `at_ms` itself, with more commands logged after it."""
    times = checkpoint.times  # (built from its chunks: once, not per command)
    for index in range(checkpoint.index - 1, -1, -1):
        if times[index] < at_ms:
            return False
        if advance_ms(commands[index]) is not None:
            return True
    return False


_STORE = CheckpointStore()


def default_store() -> CheckpointStore:
    """The store this process keeps (hosts, scrubs, forks and share links share it)."""
    return _STORE


# -- replaying from a checkpoint --------------------------------------------------------------


@dataclass
class Replay:
    runtime: ClusterRuntime
    prefix: list[dict[str, Any]]  # the log that rebuilds exactly this moment
    times: list[int]  # when each command of the prefix was applied
    from_checkpoint_ms: int | None  # where the replay started (None: from the start)


def replay(
    spec: ClusterSpec,
    commands: Sequence[Mapping[str, Any]],
    at_ms: int | None = None,
    *,
    store: CheckpointStore | None = None,
    every_ms: int = CHECKPOINT_EVERY_MS,
    keep: bool = True,
    keep_end: bool = False,
    work_per_dump: float | None = None,
    max_replay_timers: int = 2 * MAX_REPLAY_TIMERS,
) -> Replay:
    """The runtime at logical time `at_ms` (None: the end of the log), the log prefix that
    rebuilds it and its commands' times: from the nearest checkpoint of `store`, keeping new
    ones (`keep`) at its end and on the way, on `every_ms` boundaries of cluster time once the
    replay's work since the last is `work_per_dump` times what that one cost (default
    WORK_PER_DUMP; 0: at every boundary), so keeping them never costs more than a share of
    the replay, or once it ran `max_replay_timers` engine timers since the last (by default
    twice a live host's bound: a first scrub's replay from a live checkpoint, at most one
    bound long, keeps no copy its pace did not pay for). `keep_end`:
    keep the end whatever the pace says (a fork's or a share link's new host replays exactly
    this log next: it restores the copy instead of replaying it again).

    The rules of a replay from the start: commands logged at exactly `at_ms` are included, an
    advance that starts at `at_ms` is not, and the advance that crosses `at_ms` is cut there.
    The console's tail is dropped (a replay's console printed to nobody)."""
    if every_ms <= 0 or every_ms % TICK_MS:
        raise ValueError(f"checkpoints are taken on TICK_MS ({TICK_MS} ms) boundaries")
    with no_gc():
        return _replay(
            spec,
            commands,
            at_ms,
            store=default_store() if store is None else store,
            every_ms=every_ms,
            keep=keep,
            keep_end=keep_end,
            pace=_Pace(
                WORK_PER_DUMP if work_per_dump is None else work_per_dump, max_replay_timers
            ),
        )


def _replay(
    spec: ClusterSpec,
    commands: Sequence[Mapping[str, Any]],
    at_ms: int | None,
    *,
    store: CheckpointStore,
    every_ms: int,
    keep: bool,
    keep_end: bool,
    pace: _Pace,
) -> Replay:
    digests = log_digests(spec, commands)
    found = store.nearest(commands, digests, at_ms)
    prefix: list[dict[str, Any]]
    if found is None:
        runtime = ClusterRuntime(spec)
        start, into, times, prefix = 0, 0, [], []
        pace.started(runtime)
    else:
        restored_at = time.thread_time()
        runtime = found.restore()
        # What keeping one costs: as the store last measured it, else about two loads.
        pace.dump_s = store.put_s or 2 * (time.thread_time() - restored_at)
        pace.started(runtime)
        start, into, times = found.index, found.position.into_ms, list(found.times)
        prefix = [dict(c) for c in commands[:start]]
    next_keep = (runtime.now_ms // every_ms + 1) * every_ms
    end: LogPosition | None = LogPosition(digests[len(commands)])
    for index in range(start, len(commands)):
        payload = commands[index]
        ms = advance_ms(payload)
        began = runtime.now_ms - into  # when this command was applied
        if (
            at_ms is not None
            and not into
            and (runtime.now_ms > at_ms or (ms is not None and runtime.now_ms >= at_ms))
        ):
            end = LogPosition(digests[index])
            break
        times.append(began)
        if ms is None:
            runtime.apply(payload)
            prefix.append(dict(payload))
            continue
        total = ms if at_ms is None else min(ms, at_ms - began)
        cut = total < ms
        entry = _with_advance_ms(payload, total) if cut else dict(payload)
        prefix.append(entry)
        if splittable(payload):
            first = not into
            while keep and runtime.now_ms < next_keep <= began + total:
                _advance_stretch(runtime, next_keep - runtime.now_ms, first)
                first = False
                if pace.due(runtime):
                    with pace.dumping(runtime):
                        store.put(
                            LogPosition(digests[index], runtime.now_ms - began),
                            runtime,
                            index=index,
                            times=times,
                        )
                next_keep += every_ms
            if first or runtime.now_ms < began + total:
                _advance_stretch(runtime, began + total - runtime.now_ms, first)
        else:
            runtime.apply(entry)
            if keep and not cut and runtime.now_ms >= next_keep and pace.due(runtime):
                # An engine log's advance is kept whole: a checkpoint after it.
                with pace.dumping(runtime):
                    store.put(
                        LogPosition(digests[index + 1]), runtime, index=index + 1, times=times
                    )
        into = 0
        while next_keep <= runtime.now_ms:
            next_keep += every_ms
        if cut:
            end = LogPosition(digests[index], total) if splittable(payload) else None
            break
    else:
        last = commands[-1] if commands else None
        if last is not None and splittable(last) and (advance_ms(last) or 0) > 0:
            # The log's last advance may be lengthened later (a live host's clock): kept as a
            # position inside it, the checkpoint serves the longer log too.
            end = LogPosition(digests[len(commands) - 1], int(advance_ms(last) or 0))
    runtime.console_output.clear()
    if keep and end is not None and (keep_end or found is None or pace.due(runtime)):
        # (From a checkpoint, a replay shorter than keeping its end would take is kept by
        # none: doing it again costs less than the copy, and the past page waits for neither.)
        whole = len(prefix) - (1 if end.into_ms else 0)
        store.put(end, runtime, index=whole, times=times)
    return Replay(runtime, prefix, times, None if found is None else found.time_ms)


class _Pace:
    """Work done since the last checkpoint kept, against what keeping that one cost, and the
    engine timers run since (at most `max_timers`)."""

    def __init__(self, work_per_dump: float, max_timers: int) -> None:
        self.work_per_dump = work_per_dump
        self.max_timers = max_timers
        self.dump_s = 0.0
        self._since = time.thread_time()
        self._timers = 0

    def started(self, runtime: ClusterRuntime) -> None:
        self._timers = timers_run(runtime)

    def due(self, runtime: ClusterRuntime) -> bool:
        return (
            timers_run(runtime) - self._timers >= self.max_timers
            or time.thread_time() - self._since >= self.work_per_dump * self.dump_s
        )

    @contextlib.contextmanager
    def dumping(self, runtime: ClusterRuntime) -> Iterator[None]:
        started = time.thread_time()
        yield
        self._since = time.thread_time()
        self.dump_s = self._since - started
        self._timers = timers_run(runtime)


def timers_run(runtime: ClusterRuntime) -> int:
    """How many engine timers the runtime's cluster has run: its replay work, counted."""
    return int(runtime.cluster.scheduler.executed)


def _advance_stretch(runtime: ClusterRuntime, ms: int, first: bool) -> None:
    """One stretch of a logged advance, applied as the command is (counted once)."""
    runtime.apply({"type": "advance", "ms": ms})
    if not first:
        runtime.applied -= 1


def _with_advance_ms(payload: Mapping[str, Any], ms: int) -> dict[str, Any]:
    if payload.get("type") == "advance":
        return {**payload, "ms": ms}
    return {**payload, "entry": {**payload["entry"], "ms": ms}}


# -- a host's live runtime ------------------------------------------------------------------------

# A live host keeps a checkpoint at most every this many ms of cluster time, and only once the
# engine work since the last one is at least WORK_PER_DUMP times what that one cost to take,
# so checkpoints never cost more than 1 / WORK_PER_DUMP of the cluster's own work; or once the
# engine ran MAX_REPLAY_TIMERS timers since the last, so a scrub's replay stays short.
LIVE_EVERY_MS = 2_000
# A live host keeps at most this many checkpoints of its own (a 10-minute lesson session keeps
# about 95, so it never thins); past it, the one whose removal leaves the narrowest gap (in
# engine timers, what a scrub replays) goes, never the first nor the newest KEEP_NEWEST: a
# long room's checkpoints stop growing, recent moments stay near one and older gaps widen
# evenly.
MAX_LIVE_CHECKPOINTS = 128
KEEP_NEWEST = 4


class LiveCheckpoints:
    """Where a host's live runtime stands in its command log, and when to keep a copy of it.

    The host tells it every command it logs (`logged`) and every time it lengthens its own last
    advance (`extended`); after each live advance, `maybe_keep` keeps a checkpoint when due."""

    def __init__(
        self,
        spec: ClusterSpec,
        commands: Sequence[Mapping[str, Any]],
        times: Sequence[int],
        *,
        store: CheckpointStore | None = None,
        every_ms: int = LIVE_EVERY_MS,
        work_per_dump: float = WORK_PER_DUMP,
        max_replay_timers: int = MAX_REPLAY_TIMERS,
        max_kept: int | None = None,
    ) -> None:
        if len(times) != len(commands):
            raise ValueError("every logged command needs its time")
        self.store = default_store() if store is None else store
        self.every_ms = every_ms
        self.work_per_dump = work_per_dump
        self.max_replay_timers = max_replay_timers
        digests = log_digests(spec, commands)
        self._digest = digests[-1]  # of the whole log as logged
        self._before_last = digests[-2] if commands else digests[-1]
        self._last: dict[str, Any] | None = dict(commands[-1]) if commands else None
        self._times = list(times)
        self._last_kept_ms = -every_ms
        self._work_s = 0.0
        self._dump_s = 0.0
        self._timers_kept: int | None = None  # timers run at the last checkpoint kept
        self.kept = 0
        self.max_kept = MAX_LIVE_CHECKPOINTS if max_kept is None else max_kept
        self.mine: list[tuple[LogPosition, int]] = []  # kept here, oldest first: (at, timers)

    def logged(self, payload: Mapping[str, Any], time_ms: int) -> None:
        self._before_last = self._digest
        self._last = dict(payload)
        self._digest = command_digest(self._digest, self._last)
        self._times.append(int(time_ms))

    def extended(self, ms: int) -> None:
        """The log's last entry, an advance, was lengthened by `ms`."""
        if self._last is None or self._last.get("type") != "advance":
            raise ValueError("only an advance is lengthened")
        self._last = {**self._last, "ms": int(self._last["ms"]) + int(ms)}
        self._digest = command_digest(self._before_last, self._last)

    def position(self, unlogged_ms: int, extends_last: bool) -> tuple[LogPosition, int]:
        """The live runtime's position and how many commands it applied whole, given the ms it
        ran that are not logged yet and whether they will lengthen the log's last advance."""
        whole = len(self._times)
        if not unlogged_ms:
            return LogPosition(self._digest), whole
        if extends_last:
            assert self._last is not None
            return LogPosition(self._before_last, int(self._last["ms"]) + unlogged_ms), whole - 1
        return LogPosition(self._digest, unlogged_ms), whole

    def maybe_keep(
        self,
        runtime: ClusterRuntime,
        *,
        unlogged_ms: int,
        extends_last: bool,
        work_s: float,
        allowed: bool = True,
    ) -> float:
        """Keep a checkpoint of `runtime` when one is due; returns the seconds it took."""
        self._work_s += work_s
        if (
            not allowed
            or runtime.watch_messages  # slow motion: 1 ms quanta, a moment a replay never stops at
            or runtime.now_ms % TICK_MS
            or runtime.now_ms - self._last_kept_ms < self.every_ms
            or (
                self._work_s < self.work_per_dump * self._dump_s
                and self._timers_kept is not None
                and timers_run(runtime) - self._timers_kept < self.max_replay_timers
            )
        ):
            return 0.0
        position, whole = self.position(unlogged_ms, extends_last)
        started = time.thread_time()
        applied = whole + (1 if position.into_ms else 0)
        kept = keep_normalised(self.store, position, runtime, applied, whole, self._times)
        return self._kept(runtime, started, kept, position)

    def keep_end(self, runtime: ClusterRuntime, *, allowed: bool = True) -> float:
        """Keep `runtime` at the end of the log, all of its clock logged, whatever the pace:
        a reader of the log (the past page, a fork, a share link) flushed it to replay to
        here next. Returns the seconds it took (0 when kept already or not allowed)."""
        if not allowed or runtime.watch_messages or runtime.now_ms % TICK_MS:
            return 0.0
        last, whole = self._last, len(self._times)
        position = LogPosition(self._digest)
        if last is not None and splittable(last) and int(last["ms"]) > 0:
            # Inside the last advance, as a replay keeps its end: a host's longer log uses it.
            position, whole = LogPosition(self._before_last, int(last["ms"])), whole - 1
        if position in self.store:
            return 0.0
        started = time.thread_time()
        kept = keep_normalised(self.store, position, runtime, len(self._times), whole, self._times)
        return self._kept(runtime, started, kept, position)

    def _kept(
        self, runtime: ClusterRuntime, started: float, kept: bool, position: LogPosition
    ) -> float:
        self._timers_kept = timers_run(runtime)
        if kept:
            self.mine.append((position, self._timers_kept))
            self._thin()
        self._dump_s = time.thread_time() - started
        self._work_s = 0.0
        self._last_kept_ms = runtime.now_ms
        self.kept += kept
        return self._dump_s

    def _thin(self) -> None:
        mine = self.mine
        while len(mine) > max(self.max_kept, KEEP_NEWEST + 1):
            drop = min(
                range(1, len(mine) - KEEP_NEWEST), key=lambda i: mine[i + 1][1] - mine[i - 1][1]
            )
            self.store.discard(mine.pop(drop)[0])


def keep_normalised(
    store: CheckpointStore,
    position: LogPosition,
    runtime: ClusterRuntime,
    applied: int,
    index: int,
    times: Sequence[int],
) -> bool:
    """Keep a checkpoint of a live runtime as a replay to the same moment would hold it (see
    `normalised`), without changing the live runtime, after `index` commands applied whole
    (their times the first `index` of `times`). False if it could not be copied (a live object
    a replay never has, such as a connected console)."""
    saved = (
        runtime.watch_messages,
        runtime.recent_messages,
        runtime.console_output,
        runtime.applied,
    )
    # What the stage's rendering hung on the runtime (its metrics tracker, fed at each
    # publish): a replay has rendered nothing yet.
    rendered = {k: v for k, v in vars(runtime).items() if k in RENDER_ATTRIBUTES}
    try:
        normalised(runtime, applied)
        for name in rendered:
            delattr(runtime, name)
        return store.put(position, runtime, index=index, times=times) is not None
    finally:
        for name, value in rendered.items():
            setattr(runtime, name, value)
        (
            runtime.watch_messages,
            runtime.recent_messages,
            runtime.console_output,
            runtime.applied,
        ) = saved
