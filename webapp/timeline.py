"""Time travel and share links: a cluster is its seed plus its command log, so any earlier
moment is a replay of a prefix of that log, and any state travels as (seed, log).

- `replay_until(spec, commands, at_ms)`: the runtime as it was at `at_ms` and the log prefix
  that rebuilds exactly that moment (the advance that crosses `at_ms` is cut there).
- `sandbox_fork(...)`: a new sandbox whose log is that prefix; the original is untouched.
- `share_token_encode` / `share_token_decode`: (spec, log) as a compressed, URL-safe token;
  `share_link_create` falls back to a saved `SharedState` row when the token would be long.
- `sandbox_from_log(...)`: a new (paused) sandbox whose command log is the given one.

Plain functions with keyword-only arguments (services and selectors); views call them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from engine.common import config as engine_config
from lessons.scenarios import (
    COMMANDS,
    LOGGED_COMMANDS,
    ClusterRuntime,
    ClusterSpec,
    Limits,
    checkpoints,
    errors_text,
    validate,
)
from lessons.scenarios.limits import TICK_MS
from lessons.scenarios.runtime import CLOCK_MOVING_COMMANDS
from webapp import safe_json
from webapp.engine_host import store
from webapp.models import ClusterCommand, LiveCluster, SharedState
from webapp.narration import narrate

TOKEN_PREFIX = "v1."
# Longer tokens are saved server-side (a URL of a few KiB still works, but gets mangled in chat).
MAX_TOKEN_CHARS = 1_500
MAX_SHARED_COMMANDS = 20_000
MAX_SHARED_JSON_BYTES = 4 * 1024 * 1024
MAX_SHARED_TIME_MS = 6 * 60 * 60 * 1000
MAX_TIMELINE_POINTS = 400


class ShareError(ValueError):
    """A share token or saved state that cannot be opened; the message says why."""


# -- replay to a moment ------------------------------------------------------------------------


# How far a log entry moves the clock by itself (None for other commands).
_advance_ms = checkpoints.advance_ms


def replay_until(
    *, spec: ClusterSpec, commands: Sequence[Mapping[str, Any]], at_ms: int | None = None
) -> tuple[ClusterRuntime, list[dict[str, Any]]]:
    """The runtime at logical time `at_ms` (None: the end of the log) and the log prefix that
    rebuilds it. Commands logged at exactly `at_ms` are included. Replays from the nearest
    checkpoint this process keeps (lessons/scenarios/checkpoints.py), keeping new ones."""
    replayed = checkpoints.replay(spec, commands, at_ms)
    return replayed.runtime, replayed.prefix


# Commands that move the clock by an amount only a replay knows (a controlled shutdown runs
# until its brokers have moved their leaders; an engine log's entries other than advances).
_CLOCK_MOVED_BY_REPLAY = CLOCK_MOVING_COMMANDS - {"advance"}


def logged_times(commands: Sequence[Mapping[str, Any]]) -> list[int] | None:
    """When each command of the log applies, read off the log itself: every command starts
    where the advances before it end (an advance moves the clock by exactly its ms, other
    commands return at once). None when the log holds a command whose time only a replay
    knows (see _CLOCK_MOVED_BY_REPLAY; an engine log's own advances are fine)."""
    times: list[int] = []
    now = 0
    for payload in commands:
        times.append(now)
        ms = _advance_ms(payload)
        if ms is not None:
            now += ms
        elif payload.get("type") in _CLOCK_MOVED_BY_REPLAY:
            return None
    return times


def kept_times(*, spec: ClusterSpec, commands: Sequence[Mapping[str, Any]]) -> list[int] | None:
    """When each command of the log applies, read off a checkpoint this process keeps at the
    log's end (a share link's, a fork's or a host's): nothing replayed. None if none is kept
    there."""
    kept = checkpoints.default_store().nearest(
        commands, checkpoints.log_digests(spec, commands), None
    )
    if kept is None:
        return None
    if kept.index == len(commands) and not kept.position.into_ms:
        return list(kept.times)
    last = commands[-1] if commands else None
    if (
        kept.index == len(commands) - 1
        and last is not None
        and kept.position.into_ms == _advance_ms(last)
    ):
        return [*kept.times, kept.time_ms - kept.position.into_ms]  # inside the last advance
    return None


def command_times(*, spec: ClusterSpec, commands: Sequence[Mapping[str, Any]]) -> list[int]:
    """The logical time at which each command of the log was applied: read off the log when
    it can be (`logged_times`), else by replaying it (from the nearest checkpoint)."""
    times = logged_times(commands)
    if times is not None:
        return times
    return checkpoints.replay(spec, commands).times


def snap_to_tick(ms: int) -> int:
    return max(0, int(ms) // TICK_MS * TICK_MS)


# -- timeline of a stored cluster --------------------------------------------------------------


@dataclass(frozen=True)
class TimelinePoint:
    time_ms: int
    kind: str
    label: str
    importance: str = "key"  # "key" or "routine" (the timeline's filter hides routine ones)

    @property
    def seconds(self) -> float:
        return self.time_ms / 1000


def _plain(value: Any) -> str:
    """A logged argument in words: `[["orders", 0]]` -> `orders-0`, never a Python repr."""
    if isinstance(value, (list, tuple)):
        if (
            len(value) == 2
            and isinstance(value[0], str)
            and isinstance(value[1], int)
            and not isinstance(value[1], bool)
        ):
            return f"{value[0]}-{value[1]}"
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items()) or "none"
    if value is None:
        return "none"
    return str(value)


WIRE_REQUESTS_LISTED = frozenset(
    {
        "produce",
        "create_topics",
        "offset_commit",
        "join_group",
        "leave_group",
        "end_txn",
        "incremental_alter_configs",
        "create_partitions",
        "delete_topics",
        "delete_groups",
        "offset_delete",
        "elect_leaders",
    }
)


def _command_label(payload: Mapping[str, Any]) -> str | None:
    kind = payload.get("type")
    if kind == "advance":
        return None
    if kind == "engine":
        entry = payload.get("entry") or {}
        op = str(entry.get("op", ""))
        if op in ("cluster.advance", "producer.send", "consumer.poll"):
            return None
        args = ", ".join(
            f"{k.replace('_', ' ')} {_plain(v)}"
            for k, v in entry.items()
            if k not in ("op", "config")
        )
        return f"{op.split('.', 1)[-1].replace('_', ' ')} {args}".strip()
    if kind == "wire_request":
        # A real client's polls, fetches and heartbeats are too many to list; what it changed
        # is listed (and narrated through the engine's events).
        request = payload.get("request") or {}
        api = str(request.get("api", ""))
        if api not in WIRE_REQUESTS_LISTED:
            return None
        client = request.get("client_id") or "a real client"
        return f"{client}: {api.replace('_', ' ')} via broker {payload.get('broker_id')}"
    if kind == "produce":
        count = int(payload.get("count", 1) or 1)
        key = payload.get("key") or "no key"
        value, topic = payload.get("value", ""), payload.get("topic")
        return f"produce {count} × {value} (key {key}) to {topic}"
    details = ", ".join(
        f"{k.replace('_', ' ')} {v}"
        for k, v in payload.items()
        if k != "type" and not isinstance(v, (dict, list))
    )
    return f"{str(kind).replace('_', ' ')} {details}".strip()


def timeline_points(
    *, spec: ClusterSpec, commands: Sequence[Mapping[str, Any]], times: Sequence[int]
) -> tuple[list[TimelinePoint], int]:
    """Narrated moments to jump to (commands, then the engine's events) and the log's end.
    The end is kept whatever the pace of copies says: every request of the past page asks for
    it again (a live host's longer log, too, replays only what it ran since)."""
    runtime = checkpoints.replay(spec, commands, keep_end=True).runtime
    points: list[TimelinePoint] = []
    for payload, time_ms in zip(commands, times, strict=True):
        label = _command_label(payload)
        if label:
            points.append(TimelinePoint(time_ms, "command", label))
    for told in narrate(list(runtime.cluster.events)):
        points.append(TimelinePoint(int(told.time_ms), "event", told.text, told.importance))
    points.sort(key=lambda p: (p.time_ms, p.kind != "command"))
    return points[-MAX_TIMELINE_POINTS:], runtime.now_ms


# -- new sandboxes from a log --------------------------------------------------------------------


def sandbox_from_log(
    *,
    spec: ClusterSpec,
    commands: Sequence[Mapping[str, Any]],
    session_key: str = "",
    paused: bool = True,
    times: Sequence[int] | None = None,
) -> LiveCluster:
    """A new sandbox whose command log is `commands` (it opens paused, at the log's end);
    `times`: when each command applies, if already known (else found by replaying)."""
    if times is None:
        times = command_times(spec=spec, commands=commands)
    with transaction.atomic():
        cluster = LiveCluster.objects.create(
            kind=LiveCluster.Kind.SANDBOX,
            seed=spec.seed,
            brokers=spec.brokers,
            controllers=spec.controllers,
            engine_config=dict(spec.config or {}),
            owner_session_key=session_key,
            paused=paused,
        )
        ClusterCommand.objects.bulk_create(
            ClusterCommand(
                cluster=cluster,
                seq=seq,
                kind=str(payload.get("type", "")),
                payload=dict(payload),
                logical_time_ms=time_ms,
            )
            for seq, (payload, time_ms) in enumerate(zip(commands, times, strict=True), start=1)
        )
    return cluster


def sandbox_fork(*, cluster_id: str, at_ms: int, session_key: str = "") -> LiveCluster:
    """A new sandbox at the original's state at `at_ms`; the original is not touched."""
    stored = store.cluster_load(cluster_id=cluster_id)
    # Its end kept whatever the pace: the new sandbox's host replays exactly this prefix next.
    replayed = checkpoints.replay(stored.spec, stored.commands, snap_to_tick(at_ms), keep_end=True)
    return sandbox_from_log(
        spec=stored.spec,
        commands=replayed.prefix,
        session_key=session_key,
        times=replayed.times,
    )


# -- share links ---------------------------------------------------------------------------------


def _shared_document(spec: ClusterSpec, commands: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "seed": spec.seed,
        "brokers": spec.brokers,
        "controllers": spec.controllers,
        "config": dict(spec.config or {}),
        "log": [dict(c) for c in commands],
    }


def share_token_encode(*, spec: ClusterSpec, commands: Sequence[Mapping[str, Any]]) -> str:
    raw = json.dumps(_shared_document(spec, commands), separators=(",", ":"), sort_keys=True)
    packed = zlib.compress(raw.encode(), 9)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(packed).decode().rstrip("=")


# -- checking a shared log ------------------------------------------------------------------------

TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]*$")
# A link longer than this was not made here (share links are at most MAX_TOKEN_CHARS).
MAX_TOKEN_INPUT_CHARS = 64 * 1024
MAX_SHARED_DEPTH = 8
# Opening a shared state replays it twice (to time its commands, then in the new sandbox's
# host): the work is estimated before anything runs and refused above this many seconds.
REPLAY_BUDGET_S = 1.0
# Seconds of replay work per second of cluster time, rounded up from replays of a sandbox on
# the development machine (2 shared cores): idle 0.3 ms; a producer app 0.85 ms per record a
# second (1.6 ms more per consumer app reading it); a group consumer app 2.5-3.6 ms; 30 us per
# record a produce command sends. Per engine log entry is a guess. An estimate, not a bound.
COST_IDLE_S = 0.0005
COST_PER_RECORD_PER_S = 0.001
COST_PER_CONSUMER_APP_S = 0.004
COST_PER_SENT_RECORD_S = 0.0001
COST_PER_ENGINE_ENTRY_S = 0.0002


def replay_cost_s(
    commands: Sequence[Mapping[str, Any]], *, start: tuple[int, int] = (0, 0)
) -> float:
    """An upper estimate of the seconds of work replaying `commands` takes (see COST_*): apps
    count from their start to the end of the log, as if never stopped. `start`: the replay
    starts from a checkpoint before command `start[0]`, `start[1]` ms into it."""
    cost = 0.0
    record_rate = 0.0
    consumer_apps = 0
    from_index, into_ms = start
    for index, payload in enumerate(commands):
        kind = payload.get("type")
        ms = _advance_ms(payload) or 0
        if index < from_index:
            ms = 0
        elif index == from_index:
            ms = max(0, ms - into_ms)
        if ms:
            per_second = (
                COST_IDLE_S
                + COST_PER_RECORD_PER_S * record_rate * (1 + consumer_apps)
                + COST_PER_CONSUMER_APP_S * consumer_apps
            )
            cost += per_second * ms / 1000
        replayed = index >= from_index  # (earlier ones: rebuilt by the checkpoint; apps run on)
        if kind == "engine" and replayed:
            cost += COST_PER_ENGINE_ENTRY_S
        elif kind == "produce" and replayed:
            cost += COST_PER_SENT_RECORD_S * int(payload.get("count", 1))
        elif kind == "start_producer":
            record_rate += float(payload.get("rate", 0))
        elif kind == "add_group_consumer":
            consumer_apps += 1
    return cost


def _known_command(kind: str) -> bool:
    """A command a log may hold: a logged command of the table."""
    return kind in LOGGED_COMMANDS


def _validated(document: Any) -> tuple[ClusterSpec, list[dict[str, Any]]]:
    if not isinstance(document, dict):
        raise ShareError("A shared state is a JSON object.")
    seed, brokers, controllers = (
        document.get("seed"),
        document.get("brokers"),
        document.get("controllers"),
    )
    if not all(
        isinstance(v, int) and not isinstance(v, bool) for v in (seed, brokers, controllers)
    ):
        raise ShareError("The shared state lacks its seed or cluster size.")
    assert isinstance(seed, int) and isinstance(brokers, int) and isinstance(controllers, int)
    config = document.get("config") or {}
    log = document.get("log")
    if not isinstance(config, dict) or not isinstance(log, list):
        raise ShareError("The shared state's config or log is malformed.")
    if not (1 <= brokers <= 12 and 1 <= controllers <= 7) or not 0 <= seed < 2**63:
        raise ShareError("The shared cluster's size or seed is out of range.")
    try:
        engine_config.broker_config(config, brokers)
    except Exception as error:  # the engine's own sentence: unknown key, bad value
        raise ShareError(f"The shared cluster's config is not valid: {error}") from None
    if len(log) > MAX_SHARED_COMMANDS:
        raise ShareError(f"The shared log has more than {MAX_SHARED_COMMANDS} commands.")
    total_ms = 0
    limits = Limits(brokers=brokers, controllers=controllers)
    for index, payload in enumerate(log):
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            raise ShareError("Every command of a shared log is an object with a type.")
        if not _known_command(payload["type"]):
            raise ShareError(f"The shared log holds an unknown command {payload['type']!r}.")
        # Every command but time (checked below) passes the table's own validation.
        kind_spec = COMMANDS[payload["type"]]
        errors = (
            {}
            if kind_spec.name == "advance"
            else validate(kind_spec, payload, runtime_limits=limits)[1]
        )
        if errors:
            raise ShareError(
                f"Command {index + 1} of the shared log ({payload['type']}) is invalid: "
                f"{errors_text(errors)}"
            )
        try:
            ms = _advance_ms(payload)
        except (KeyError, TypeError, ValueError) as error:
            raise ShareError("A time advance of the shared log is malformed.") from error
        if ms is not None:
            if ms < 0:
                raise ShareError("Time cannot go backwards in a shared log.")
            total_ms += ms
    if total_ms > MAX_SHARED_TIME_MS:
        raise ShareError("The shared log runs longer than a shared state may (6 hours).")
    spec = ClusterSpec(seed=seed, brokers=brokers, controllers=controllers, config=config or None)
    # Only what follows the nearest checkpoint this process keeps is replayed.
    kept = checkpoints.default_store().nearest(log, checkpoints.log_digests(spec, log), None)
    start = (0, 0) if kept is None else (kept.index, kept.position.into_ms)
    cost = replay_cost_s(log, start=start)
    if cost > REPLAY_BUDGET_S:
        raise ShareError(
            f"This shared state would take about {cost:.0f} s of work to rebuild; a shared "
            f"state may take {REPLAY_BUDGET_S:g} s. Share an earlier moment, or one with "
            "fewer or slower apps."
        )
    return spec, log


def share_token_decode(token: str) -> tuple[ClusterSpec, list[dict[str, Any]]]:
    if not token.startswith(TOKEN_PREFIX):
        raise ShareError("This share link is not one Kafka Dojo made (unknown version).")
    body = token[len(TOKEN_PREFIX) :]
    if len(body) > MAX_TOKEN_INPUT_CHARS or not TOKEN_CHARS.match(body) or len(body) % 4 == 1:
        raise ShareError("This share link is damaged (it did not decode).")
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_SHARED_JSON_BYTES)
    except (binascii.Error, zlib.error, ValueError) as error:
        raise ShareError("This share link is damaged (it did not decode).") from error
    if inflater.unconsumed_tail:
        raise ShareError("The shared state is too large.")
    if not inflater.eof or inflater.unused_data:
        # A cut (or padded) link: the compressed stream must end exactly where the link ends.
        raise ShareError("This share link is incomplete: copy the whole link and try again.")
    try:
        document = safe_json.loads(raw, max_depth=MAX_SHARED_DEPTH)
    except safe_json.BadJSON as bad:
        raise ShareError(f"This share link is damaged: {bad.message}") from None
    return _validated(document)


def shared_state_load(*, shared_id: str) -> tuple[ClusterSpec, list[dict[str, Any]]]:
    shared = SharedState.objects.get(pk=shared_id)
    document = {
        "seed": shared.seed,
        "brokers": shared.brokers,
        "controllers": shared.controllers,
        "config": shared.engine_config,
        "log": shared.commands,
    }
    try:
        safe_json.check(document, max_depth=MAX_SHARED_DEPTH)
    except safe_json.BadJSON as bad:
        raise ShareError(f"This saved state is damaged: {bad.message}") from None
    return _validated(document)


@dataclass(frozen=True)
class ShareLink:
    path: str  # /s/<token>/ or /shared/<id>/
    saved: bool
    commands: int
    time_ms: int


def share_link_create(
    *, cluster_id: str, at_ms: int | None = None, max_token_chars: int = MAX_TOKEN_CHARS
) -> ShareLink:
    """A link that opens this cluster's current (logged) state, or its state at `at_ms`, in a
    new sandbox: in the URL when short enough, else saved as a `SharedState`."""
    stored = store.cluster_load(cluster_id=cluster_id)
    commands = stored.commands
    if at_ms is not None:
        # Its end kept whatever the pace: opening the link replays exactly this prefix.
        commands = checkpoints.replay(
            stored.spec, commands, snap_to_tick(at_ms), keep_end=True
        ).prefix
    time_ms = sum(_advance_ms(c) or 0 for c in commands)
    token = share_token_encode(spec=stored.spec, commands=commands)
    if len(token) <= max_token_chars:
        return ShareLink(f"/s/{token}/", False, len(commands), time_ms)
    shared = SharedState.objects.create(
        seed=stored.spec.seed,
        brokers=stored.spec.brokers,
        controllers=stored.spec.controllers,
        engine_config=dict(stored.spec.config or {}),
        commands=list(commands),
    )
    return ShareLink(f"/shared/{shared.id}/", True, len(commands), time_ms)
