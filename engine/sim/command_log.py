"""The command log: every call that changed a cluster, kept JSON-safe so it can be replayed.

`Cluster` records each state-changing call as one entry (`{"op": ..., **arguments}`);
`Cluster.export_log` hands the entries out and `Cluster.from_log` rebuilds an equal cluster by
dispatching them again. Every logged operation is dispatched here by name: `cluster.*`,
`producer.*`, `future.*`, `consumer.*`, `apps.*` (the app service the facade wires) and
`remote.request` (a real Kafka client's request, `engine.server.remote_requests`);
`admin.*` (the admin client, `cluster.admin()`).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from engine.common.records import TopicPartition
from engine.errors import KafkaError

if TYPE_CHECKING:
    from engine.cluster import Cluster

_PLAIN_TYPES = frozenset((str, int, float, bool, type(None)))
_LOGGED_AS_IS = _PLAIN_TYPES | {bytes}


def _jsonable(value: Any) -> Any:
    if type(value) in _PLAIN_TYPES:  # the common case, checked first: the log records every send
        return value
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = sorted(value, key=str) if isinstance(value, set) else value
        return [_jsonable(v) for v in items]
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


def logged_as_is(args: dict[str, Any]) -> bool:
    """Whether every argument is in its logged form already (plain values and bytes)."""
    return _LOGGED_AS_IS.issuperset(map(type, args.values()))


def log_entry(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """One log entry for a call, taken now so later changes to mutable arguments don't leak in."""
    # Plain values and bytes (immutable) are kept as they are and made JSON-safe by export_log;
    # anything mutable is copied into its JSON form now.
    entry = {"op": op, **args}  # the same keys in the same order; replaced in place if needed
    if not logged_as_is(args):
        for name, item in args.items():
            if type(item) not in _LOGGED_AS_IS:
                entry[name] = _jsonable(item)
    return entry


# An entry's shape: its op and argument names, in order; a log shares one tuple per kind of
# entry (`shape_of`, with the log's own table, bounded: past the bound a shape is not shared).
MAX_SHAPES = 1024
SEND_SHAPE = (
    "producer.send",
    "producer",
    "topic",
    "value",
    "key",
    "partition",
    "headers",
    "timestamp_ms",
)


def shape_of(
    op: str, args: dict[str, Any], shapes: dict[tuple[str, ...], tuple[str, ...]]
) -> tuple[str, ...]:
    shape = (op, *args)
    shared = shapes.get(shape)
    if shared is None:
        if len(shapes) >= MAX_SHAPES:
            return shape
        shared = shapes[shape] = shape
    return shared


class EntryRun:
    """A run of consecutive entries whose arguments are all in their logged form already: the
    clock's advances, a consumer's polls and keyed sends of bytes, which are nearly the whole
    log of a lesson or a room (a live host advances its cluster a few times a second whether or
    not anyone acts). Kept flat, each entry as its shape (a tuple shared by every entry of its
    kind) then its values, instead of one dict each: an advance costs two slots, a send eight.
    `entries()` gives back exactly the entries `log_entry` would have made, in order;
    `Cluster.export_log` hands those out, so an exported log is the same either way."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: list[Any] = []

    def __len__(self) -> int:
        return sum(1 for _ in self._starts())

    def _starts(self) -> Iterator[int]:
        fields = self.fields
        index, end = 0, len(fields)
        while index < end:
            yield index
            index += len(fields[index])

    def entries(self) -> Iterator[dict[str, Any]]:
        fields = self.fields
        for index in self._starts():
            shape = fields[index]
            entry = {"op": shape[0]}
            entry.update(zip(shape[1:], fields[index + 1 : index + len(shape)], strict=True))
            yield entry


def replay_entry(cluster: Cluster, entry: dict[str, Any]) -> None:
    """Re-apply one exported entry; an error it raised the first time changed nothing, so it is
    swallowed again."""
    args = _from_jsonable(dict(entry))
    op = args.pop("op")
    with contextlib.suppress(KafkaError, ValueError, TypeError):
        _dispatch(cluster, op, args)


def _dispatch(cluster: Cluster, op: str, args: dict[str, Any]) -> None:
    owner, _, method = op.partition(".")
    if owner == "cluster":
        renames = {
            "stop_broker": "broker_id",
            "start_broker": "broker_id",
            "shutdown_broker": "broker_id",
            "stop_controller": "controller_id",
            "start_controller": "controller_id",
        }
        if method in renames and "id" in args:
            args[renames[method]] = args.pop("id")
        if method == "partition_network":
            args["groups"] = [set(g) for g in args["groups"]]
        if method == "delete_group_offsets":
            args["partitions"] = [TopicPartition(t, p) for t, p in args["partitions"]]
        if method == "alter_group_offsets":
            args["offsets"] = {TopicPartition(t, p): o for t, p, o in args["offsets"]}
        getattr(cluster, method)(**args)
    elif owner == "producer":
        producer = cluster.producers[args.pop("producer") - 1]
        if method == "send":
            producer.send(**args)
        elif method == "send_offsets_to_transaction":
            producer.send_offsets_to_transaction(
                {TopicPartition(t, p): o for t, p, o in args["offsets"]}, args["group_id"]
            )
        elif method == "future.get":
            pass
        else:
            getattr(producer, method)(**args)
    elif owner == "future":
        producer = cluster.producers[args["producer"] - 1]
        future = producer._pending.get(args["future"])
        if future is not None:
            future.get(args.get("timeout_ms"))
    elif owner == "consumer":
        consumer = cluster.consumers[args.pop("consumer") - 1]
        if method in ("assign",):
            consumer.assign([TopicPartition(*tp) for tp in args["partitions"]])
        elif method == "seek":
            consumer.seek(TopicPartition(*args["tp"]), args["offset"])
        elif method == "seek_to":
            tps = [TopicPartition(*tp) for tp in args["tps"]]
            consumer._seek_to(args["where"], tps)
        elif method == "position":
            consumer.position(TopicPartition(*args["tp"]))
        elif method == "commit":
            offsets = args.get("offsets")
            consumer.commit(
                None if offsets is None else {TopicPartition(t, p): o for t, p, o in offsets}
            )
        else:
            getattr(consumer, method)(**args)
    elif owner == "apps" and method in ("consumer_app", "producer_app", "control"):
        getattr(cluster.apps, method)(**args)
    elif op == "remote.request":
        cluster.remote.request(**args)
    elif owner == "admin":
        cluster.admin().replay(method, args)
    else:
        raise ValueError(f"Unknown logged operation {op!r}.")
