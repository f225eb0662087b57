"""The engine host: the one owner of a live cluster in this process.

It applies commands (each written to the database first), runs the logical clock in real time
(pause, resume, single step, speed), renders each new state version once and sends it to the
cluster's Channels group at a bounded rate. It talks to WebSocket consumers only through the
channel layer, so in scaled mode the consumers may live in other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async as _database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer
from django.db import IntegrityError

from lessons.console.completion import completion_data
from lessons.scenarios import (
    CLOCK_COMMANDS,
    LOGGED_COMMANDS,
    ClusterRuntime,
    checkpoints,
    console_command,
)
from lessons.scenarios.limits import DEFAULT_STEP_MS, SPEEDS, TICK_MS
from webapp import charts
from webapp.engine_host import lesson_goal, memory, render, signals, store
from webapp.engine_host.leases import LeaseStore

logger = logging.getLogger(__name__)


def database_sync_to_async(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """The host's log writes run in a thread of their own, not the one thread every sync view
    and `database_sync_to_async` call of the process share: measured with py-spy during
    scripts/loadtest_isolation.py, a busy host's flushes (one before each publish) were most
    of that thread's time, and another visitor's command and page waited behind them. (Writes
    of one host stay ordered: each is awaited under the host's lock.)"""
    return _database_sync_to_async(function, thread_sensitive=False)


CLOCK_TICK_S = 0.05
# While the clock runs, a fragment whose only change is its time label is re-sent this often.
TIME_LABEL_REFRESH_S = 1.0
ADVANCE_FLUSH_S = 2.0
MAX_ADVANCE_PER_TICK_MS = 5_000
LEASE_TTL_S = 15.0
STOP_TIMEOUT_S = 6.0
# LOGGED_COMMANDS (they change the engine, so they go to the command log first) and
# CLOCK_COMMANDS (pause, resume, speed, step: the host's own clock) come from the command table.
__all__ = ["CLOCK_COMMANDS", "LOGGED_COMMANDS", "ClusterHost", "HostSettings"]
# Commands that add records to a cluster, refused while it is over its memory bound (the
# others, deleting records or lowering retention among them, are how it gets back under).
MEMORY_GROWING_COMMANDS = frozenset({"produce", "start_producer", "transaction"})


def play_plan(commands: Sequence[dict[str, Any]], *, start_ms: int) -> tuple[list[Any], int]:
    """A command log tail (advances and commands) as the cluster time each command is due at,
    from `start_ms`, and the time the tail ends."""
    at = start_ms
    plan: list[dict[str, Any]] = []
    for command in commands:
        if command.get("type") == "advance":
            at += max(0, int(command.get("ms", 0)))
        else:
            plan.append({"at_ms": at, "command": dict(command)})
    return plan, at


def relative_playback(plan: Sequence[dict[str, Any]], end_ms: int, *, now_ms: int) -> list[Any]:
    """What the clock plays from `now_ms`: advances up to each command's time, then the rest."""
    playback: list[dict[str, Any]] = []
    at = now_ms
    for step in plan:
        due = int(step["at_ms"])
        if due > at:
            playback.append({"type": "advance", "ms": due - at})
            at = due
        playback.append(dict(step["command"]))
    if end_ms > at:
        playback.append({"type": "advance", "ms": end_ms - at})
    return playback


# The forms a fragment's "labelled with the cluster time" take (the stage picture's aria label
# and data attribute, the text mirror's first line); nothing else in a fragment is a time label.
TIME_LABELS = ("Cluster stage at {} ms", 'data-now-ms="{}"', "At {} ms.")


def without_time_labels(html: str, now_ms: int) -> str:
    """`html` with its cluster-time labels blanked: two renders that differ only there are the
    same picture. Only the label forms are blanked, so a value that happens to equal the time
    (an offset, a count) still counts as a change."""
    for label in TIME_LABELS:
        html = html.replace(label.format(now_ms), label.format(""))
    return html


def viewers_group(cluster_id: str) -> str:
    """The group every socket watching the cluster joins: state versions fan out here."""
    return f"dojo.cluster.{cluster_id}"


def host_group(cluster_id: str) -> str:
    """The group the owning host listens on: joins, leaves, syncs and commands arrive here."""
    return f"dojo.host.{cluster_id}"


@dataclass
class HostSettings:
    publish_max_hz: float = 10.0
    idle_seconds: float = 60.0
    # A process names its sockets that still watch every fanout.KEEPALIVE_S; a socket not
    # named this long is gone.
    viewer_ttl_seconds: float = 30.0
    # Seconds of engine work (CPU, in the host's worker thread) one host may spend per real
    # second; a cluster that needs more runs its clock slower, and says so on its stage.
    work_budget_per_s: float = 0.25
    max_apps: int = 8
    max_app_rate: float = 400.0
    # The memory one cluster's stored records may take (webapp/engine_host/memory.py); over
    # it the clock stops and produces are refused, said on the stage, until it holds less.
    memory_bound_bytes: int = 256 * 2**20
    owner_id: str = "local"
    # A workshop room's cluster (StoredCluster.room): a few hundred sockets get every version,
    # so clock ticks alone publish at most this often (a command's own version still goes out
    # at once: command -> viewer is what a room waits on), and a fragment whose only change
    # is its time label is re-sent this often instead of every TIME_LABEL_REFRESH_S.
    room_publish_max_hz: float = 2.0
    room_time_label_refresh_s: float = 10.0
    # Time-travel checkpoints one live host keeps of its own (their memory against how far a
    # scrub replays); None: lessons.scenarios.checkpoints.MAX_LIVE_CHECKPOINTS.
    max_checkpoints: int | None = None


@dataclass
class PublishedState:
    version: int = 0
    fragments: dict[str, str] = field(default_factory=dict)
    full_html: str = ""
    # What viewers hold, as the units compared version to version: each fragment, except a
    # split one (render.SPLIT_FRAGMENTS) as its skeleton and its parts (`fragment#part-id`).
    units: dict[str, str] = field(default_factory=dict)


def fragment_units(fragments: dict[str, str]) -> dict[str, str]:
    """Fragments as the units the host compares: split fragments as skeleton and parts."""
    units: dict[str, str] = {}
    for key, html in fragments.items():
        if key in render.SPLIT_FRAGMENTS:
            skeleton, parts = render.split_parts(html)
            units[key] = skeleton
            for part_id, part in parts.items():
                units[f"{key}#{part_id}"] = part
        else:
            units[key] = html
    return units


def joined_fragment(units: dict[str, str], key: str) -> str:
    if key not in render.SPLIT_FRAGMENTS:
        return units[key]
    skeleton = units[key]
    parts = {part_id: units[f"{key}#{part_id}"] for part_id in render.part_ids(skeleton)}
    return render.join_parts(skeleton, parts)


class ClusterHost:
    def __init__(
        self,
        *,
        cluster_id: str,
        runtime: ClusterRuntime,
        stored: store.StoredCluster,
        layer: BaseChannelLayer,
        leases: LeaseStore,
        settings: HostSettings,
        on_stop: Callable[[ClusterHost], Awaitable[None] | None] | None = None,
        times: Sequence[int] | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        self.runtime = runtime
        self.layer = layer
        self.leases = leases
        self.settings = settings
        self._on_stop = on_stop
        self.paused = stored.paused
        self.room = stored.room
        self.speed = stored.speed if stored.speed in SPEEDS else 1.0
        self.next_seq = stored.next_seq
        self.client_seqs: dict[str, int] = dict(stored.client_seqs)
        # Watching sockets by channel, with when each last said it is still there.
        self.viewers: dict[str, float] = {}
        self.published = PublishedState()
        self.running = False
        self.stop_reason = ""
        self.lock = asyncio.Lock()
        self._dirty = asyncio.Event()
        self._urgent = asyncio.Event()  # a command changed the state: publish it promptly
        # When each published fragment was rendered (cluster ms), and when time labels were
        # last refreshed everywhere (see _changed_fragments).
        self._fragment_times: dict[str, int] = {}
        self._labels_sent_at = float("-inf")
        self._unlogged_advance_ms = 0
        self._advance_seq: int | None = None  # the seq of the advance this host may lengthen
        self._last_flush = time.monotonic()
        self._idle_since = time.monotonic()
        self._channel = ""
        self._tasks: list[asyncio.Task[None]] = []
        # Lag and rate charts, sampled on the cluster clock (bounded, rendered once per sample).
        self.metrics = charts.MetricsHistory()
        self.extra_fragments: dict[str, str] = {}
        # The Kafka wire front door (webapp/kafka_listener), when switched on.
        self.wire: Any = None
        self.wire_enabled = False
        self.wire_ports: dict[str, int] = {}  # the ports the sandbox's listeners had
        # The work budget: credit in seconds of engine work, and the clock's recent pace.
        self._work_credit = settings.work_budget_per_s
        self._pace: list[tuple[float, int]] = []  # (real time, cluster ms advanced)
        self.throttled_to: float | None = None
        self._limited_at = float("-inf")
        # A lesson step's live goal, set by the lesson page (`host.watch`).
        self.goal: Any = None
        # Commands the server asked this clock to play (`host.play`: a drill's steps revealed
        # to a workshop room): each applied when the clock has run the advances before it.
        self.playback: list[dict[str, Any]] = []
        self._play_reply: str | None = None
        # The log's `play` entry being played (store.PLAY_KIND) and how many of its commands
        # are applied: a host started after a crash or a restart plays on from there.
        self._play_seq: int | None = None
        self._play_applied = 0
        self._play_tag: Any = None  # the asker's, sent back with `signals.play_finished`
        if stored.playback is not None:
            self._resume_play(stored.playback)
        # The memory bound: the estimate last taken, and the stage's message while over it.
        self.memory_bytes = 0
        self.memory_stopped: str | None = None
        # Set by `freeze` (a controlled shutdown): the clock runs no more cluster time.
        self.frozen = False
        # Checkpoints of the live runtime for time travel (given the logged commands' times).
        self.checkpoints: checkpoints.LiveCheckpoints | None = None
        if times is not None:
            self.checkpoints = checkpoints.LiveCheckpoints(
                stored.spec, stored.commands, times, max_kept=settings.max_checkpoints
            )

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        # The layer's default prefix: channels_redis pops one prefix's inbox at a time per
        # process, so a prefix of its own would wait behind the sockets' (up to 5 s a turn).
        self._channel = await self.layer.new_channel()
        await self.layer.group_add(host_group(self.cluster_id), self._channel)
        self.running = True
        if self.wire_enabled:
            await self.enable_wire()
        if self.playback:  # resumed from the log: what was due when the last host stopped
            await self._played(0)
        fragments, _ = await asyncio.to_thread(self._render_runtime_fragments)
        self._publish(fragments)
        for name, coroutine in (
            ("inbox", self._inbox()),
            ("clock", self._clock()),
            ("publisher", self._publisher()),
            ("keeper", self._keeper()),
        ):
            task = asyncio.create_task(coroutine, name=f"dojo-host-{self.cluster_id}-{name}")
            self._tasks.append(task)
        logger.info("host %s started at %d ms", self.cluster_id, self.runtime.now_ms)

    def freeze(self) -> None:
        """Stop the clock now, before the slower parts of a shutdown (the tick in flight, if
        any, still completes and is logged by `stop`)."""
        self.frozen = True

    def check_memory(self) -> bool:
        """Take the memory estimate; stop or restart the clock on the bound. True if over."""
        self.memory_bytes = memory.cluster_memory_bytes(self.runtime)
        bound = self.settings.memory_bound_bytes
        stopped = (
            memory.over_bound_message(self.memory_bytes, bound)
            if self.memory_bytes > bound
            else None
        )
        if stopped != self.memory_stopped:
            if stopped and not self.memory_stopped:
                logger.warning(
                    "host %s over its memory bound (%d > %d bytes): clock stopped",
                    self.cluster_id,
                    self.memory_bytes,
                    bound,
                )
            self.memory_stopped = stopped
            self._mark_dirty()
        return stopped is not None

    async def announce_start(self) -> None:
        """Tell every socket of the cluster (in any process) that this host now runs it: they
        join again, so a host started after another died has its viewers at once."""
        await self.layer.group_send(viewers_group(self.cluster_id), {"type": "cluster.rehosted"})

    async def stop(self, reason: str) -> None:
        if not self.running:
            return
        self.running = False
        self.stop_reason = reason
        current = asyncio.current_task()
        others = [task for task in self._tasks if task is not current]
        for task in others:
            task.cancel()
        self._dirty.set()  # wake the publisher, which also stops on `running`
        if self.wire is not None:
            with contextlib.suppress(Exception):
                await self.wire.close()
        if others:
            # Bounded: a library that swallows a cancellation must not hang the shutdown.
            _, stuck = await asyncio.wait(others, timeout=STOP_TIMEOUT_S)
            if stuck:
                logger.warning("host %s: %d tasks did not stop", self.cluster_id, len(stuck))
        with contextlib.suppress(Exception):
            async with self.lock:
                await self._flush_advance_locked()
        with contextlib.suppress(Exception):
            await self.layer.group_discard(host_group(self.cluster_id), self._channel)
        with contextlib.suppress(Exception):
            await self.leases.release(self.cluster_id, self.settings.owner_id)
        logger.info("host %s stopped: %s", self.cluster_id, reason)
        if self._on_stop is not None:
            outcome = self._on_stop(self)
            if outcome is not None:
                await outcome

    # -- messages from consumers and views ------------------------------------------------

    async def _inbox(self) -> None:
        while self.running:
            message = await self.layer.receive(self._channel)
            try:
                await self.handle(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("host %s failed to handle %r", self.cluster_id, message)
                await self._reply(
                    message.get("reply_to"),
                    {
                        "type": "error",
                        "code": "internal",
                        "seq": message.get("seq"),
                        "message": "The cluster host hit an internal error; it keeps running.",
                    },
                )

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        reply_to = message.get("reply_to")
        if kind == "host.join":
            if reply_to:
                self.viewers[reply_to] = time.monotonic()
            self._mark_dirty()
            await self._send_full(reply_to)
        elif kind == "host.viewing":
            # A keepalive: the sockets it names still watch (one message per process names
            # all its sockets of the cluster, `viewers`; an older one names its `reply_to`).
            # A socket no longer named is dropped after viewer_ttl_seconds, whatever killed it.
            named = message.get("viewers")
            channels = named if isinstance(named, list) else [reply_to]
            now = time.monotonic()
            added = False
            for channel in channels:
                if isinstance(channel, str) and channel:
                    added = added or channel not in self.viewers
                    self.viewers[channel] = now
            if added:
                self._mark_dirty()
        elif kind == "host.leave":
            self._drop_viewer(reply_to or "")
        elif kind == "host.fragment":
            # A fragment rendered elsewhere (a Stress it progress bar) joins the published state.
            self.extra_fragments[str(message.get("id"))] = str(message.get("html", ""))
            self._mark_dirty()
        elif kind == "host.flush":
            # Log the time the clock already ran, so a share link or the timeline sees it all.
            async with self.lock:
                await self._flush_advance_locked()
                if self.checkpoints is not None:
                    # Whoever asked replays to the log's end next: a copy of the live runtime
                    # there costs less than that replay (none while a real client may be
                    # connected: its answers reach it only live).
                    await asyncio.to_thread(
                        self.checkpoints.keep_end, self.runtime, allowed=self.wire is None
                    )
            await self._reply(reply_to, {"type": "ack", "now_ms": self.runtime.now_ms})
        elif kind == "host.sync":
            await self._send_full(reply_to)
        elif kind == "host.wire":
            ports: dict[str, int] = {}
            if message.get("enabled", True):
                await self.enable_wire()
                bootstrap = self.wire.bootstrap_servers()
                ports = {str(b): p for b, p in self.wire.ports.items()}
            else:
                await self.disable_wire()
                bootstrap = ""
            await self._reply(
                reply_to, {"type": "ack", "bootstrap_servers": bootstrap, "ports": ports}
            )
        elif kind == "host.watch":
            async with self.lock:
                frame = self._watch_locked(message)
            self._mark_dirty()
            await self._reply(reply_to, frame)
        elif kind == "host.command":
            frame = await self.command(
                message.get("command") or {},
                client_id=str(message.get("client") or ""),
                client_seq=message.get("seq"),
            )
            if (message.get("command") or {}).get("type") == "console":
                frame["console"] = console_command.console_state(self.runtime)
            await self._reply(reply_to, frame)
        elif kind == "host.play":
            # Only server code sends this (webapp/workshops: a drill poll's reveal); a browser's
            # message never becomes one.
            async with self.lock:
                frame = await self._play_locked(
                    list(message.get("commands") or []), reply_to, message.get("tag")
                )
            self._mark_dirty()
            if frame is not None and frame.get("type") == "ack":
                await self._play_finished()
            if frame is not None:
                await self._reply(reply_to, frame)
        elif kind == "host.console_complete":
            # What the console panel's Tab offers: tools, options, this cluster's topics/groups.
            async with self.lock:
                data = completion_data(console_command.console_session(self.runtime))
            await self._reply(reply_to, {"type": "console.complete", "data": data})
        else:
            logger.warning("host %s ignored message type %r", self.cluster_id, kind)

    @property
    def channel(self) -> str:
        """The host's own inbox (empty until started)."""
        return self._channel if self.running else ""

    def _drop_viewer(self, channel: str) -> None:
        self.viewers.pop(channel, None)
        if not self.viewers:
            self._idle_since = time.monotonic()
        self._mark_dirty()

    def _expire_viewers(self, now: float) -> None:
        ttl = self.settings.viewer_ttl_seconds
        for channel in [c for c, seen in self.viewers.items() if now - seen > ttl]:
            logger.info(
                "host %s: viewer %s went silent; no longer counted", self.cluster_id, channel
            )
            self._drop_viewer(channel)

    def _watch_locked(self, message: dict[str, Any]) -> dict[str, Any]:
        """Start watching a lesson step's goal; the reply carries where the step starts (so the
        page can re-arm it after a restart) and the previous step's final status."""
        previous = self.goal.status() if self.goal is not None else None
        try:
            watch = lesson_goal.watch_from_message(message, self.runtime)
        except lesson_goal.WatchRefused as error:
            return {"type": "error", "code": "bad_watch", "message": str(error)}
        watch.check(self.runtime)
        self.goal = watch
        return {
            "type": "ack",
            "since": [watch.since_index, watch.since_ms],
            "status": watch.status(),
            "previous": previous,
        }

    def _check_goal(self) -> None:
        if self.goal is not None and self.goal.check(self.runtime):
            self._mark_dirty()

    async def _reply(self, reply_to: str | None, frame: dict[str, Any]) -> None:
        if not reply_to:
            return
        message = {"type": "client.frame", "frame": frame}
        for _ in range(40):  # a full socket inbox gets 2 s to drain before the answer is lost
            try:
                await self.layer.send(reply_to, message)
                return
            except ChannelFull:
                await asyncio.sleep(0.05)
        logger.warning(
            "host %s: socket %s stopped reading; answer dropped", self.cluster_id, reply_to
        )

    async def _send_full(self, reply_to: str | None) -> None:
        if not reply_to:
            return
        await self.layer.send(
            reply_to,
            {
                "type": "cluster.full",
                "version": self.published.version,
                "html": self.published.full_html,
            },
        )

    # -- commands -------------------------------------------------------------------------

    async def command(
        self, payload: dict[str, Any], *, client_id: str = "", client_seq: int | None = None
    ) -> dict[str, Any]:
        """Apply one command once; returns the frame for the client (ack or error)."""
        kind = str(payload.get("type", ""))
        async with self.lock:
            if (
                client_id
                and client_seq is not None
                and client_seq <= self.client_seqs.get(client_id, 0)
            ):
                return {
                    "type": "ack",
                    "seq": client_seq,
                    "duplicate": True,
                    "message": "Already applied.",
                }
            if kind in CLOCK_COMMANDS:
                frame = await self._clock_command_locked(payload, client_id, client_seq)
            elif kind in LOGGED_COMMANDS:
                frame = await self._logged_command_locked(payload, client_id, client_seq)
            else:
                frame = {
                    "type": "error",
                    "code": "unknown_command",
                    "message": f"Unknown command {kind!r}.",
                }
            if client_id and client_seq is not None and frame["type"] == "ack":
                self.client_seqs[client_id] = max(client_seq, self.client_seqs.get(client_id, 0))
            # Renders happen under the lock, so the next version is the first to show this
            # command's effect (a page or the room benchmark can tell when viewers see it).
            frame["visible_in"] = self.published.version + 1
        frame["seq"] = client_seq
        self._mark_dirty()
        self._urgent.set()
        return frame

    def _limit_refusal(self, payload: dict[str, Any]) -> str | None:
        """Apps and their rates are bounded per cluster (refused before they are logged), and
        a cluster over its memory bound takes no more records."""
        kind = payload.get("type")
        if kind in MEMORY_GROWING_COMMANDS and self.check_memory():
            return self.memory_stopped
        if kind not in ("start_producer", "add_group_consumer"):
            return None
        apps = list(self.runtime.cluster.apps.apps)
        if len(apps) >= self.settings.max_apps:
            return (
                f"This cluster already runs {len(apps)} apps, the most one cluster may; "
                "stop or reuse one of them."
            )
        if kind == "start_producer":
            rate = sum(float(a.rate_per_sec) for a in apps if a.kind == "producer")
            wanted = float(payload.get("rate", 0))
            if rate + wanted > self.settings.max_app_rate:
                return (
                    f"Producer apps on one cluster send at most {self.settings.max_app_rate:g} "
                    f"records a second together; this cluster's already send {rate:g}."
                )
        return None

    async def _logged_command_locked(
        self, payload: dict[str, Any], client_id: str, client_seq: int | None
    ) -> dict[str, Any]:
        refusal = self._limit_refusal(payload)
        if refusal:
            return {"type": "error", "code": "limit", "message": refusal}
        try:
            await self._write_log_locked(payload, client_id=client_id, client_seq=client_seq)
        except IntegrityError:
            logger.error(
                "host %s could not log seq %d: owner changed", self.cluster_id, self.next_seq
            )
            asyncio.get_running_loop().create_task(self.stop("lost ownership of the log"))
            return {
                "type": "error",
                "code": "moved",
                "message": "This cluster moved to another server; reload the page.",
            }
        apps_before = len(self.runtime.cluster.apps.apps)
        result = self.runtime.apply(payload)
        self.metrics.observe(self.runtime)
        await self._sync_wire()
        self._check_goal()
        if result.ok:
            frame: dict[str, Any] = {"type": "ack", "message": result.message, "duplicate": False}
            apps = self.runtime.cluster.apps.apps
            if len(apps) > apps_before:  # the app this command started, by its number
                frame["app_id"] = apps[-1].id
            return frame
        # The command is in the log (replay repeats the same refusal); tell the learner why.
        return {
            "type": "error",
            "code": result.error or "refused",
            "message": result.message,
            "applied": True,
        }

    async def _clock_command_locked(
        self, payload: dict[str, Any], client_id: str, client_seq: int | None
    ) -> dict[str, Any]:
        kind = payload["type"]
        if kind == "step":
            if not self.paused:
                return {
                    "type": "error",
                    "code": "not_paused",
                    "message": "Pause the clock before stepping it.",
                }
            step = {"type": "advance", "ms": int(payload.get("ms", DEFAULT_STEP_MS))}
            frame = await self._logged_command_locked(step, client_id, client_seq)
            if frame["type"] == "ack":
                frame["message"] = f"Stepped {step['ms']} ms."
            return frame
        if kind == "pause":
            self.paused = True
            message = "Paused."
        elif kind == "resume":
            self.paused = False
            message = "Running."
        else:
            self.speed = float(payload["speed"])
            message = f"Speed {self.speed:g}x."
        await database_sync_to_async(store.cluster_clock_save)(
            cluster_id=self.cluster_id, speed=self.speed, paused=self.paused
        )
        return {"type": "ack", "message": message, "duplicate": False}

    async def _flush_advance_locked(self) -> None:
        """Log the time the clock has already run, so replay reaches the same moment. When the
        log's last entry is this host's own advance, it is lengthened instead of followed by a
        new one, so flushing before every publish keeps the log short."""
        await self._write_log_locked(None)

    async def _write_log_locked(
        self,
        command: dict[str, Any] | None,
        *,
        client_id: str = "",
        client_seq: int | None = None,
    ) -> None:
        """Flush the clock's unlogged time (as `_flush_advance_locked`) and then log `command`,
        both in one transaction and one trip to the database thread: a learner's command waits
        for one commit before it runs, not two."""
        self._last_flush = time.monotonic()
        pending = self._unlogged_advance_ms
        now_ms = self.runtime.now_ms
        extend = bool(pending) and self._advance_seq == self.next_seq - 1
        writes: list[store.AdvanceExtend | store.CommandAppend] = []
        seq = self.next_seq
        if pending and extend:
            assert self._advance_seq is not None
            writes.append(store.AdvanceExtend(seq=self._advance_seq, ms=pending))
        elif pending:
            advance = {"type": "advance", "ms": pending}
            writes.append(store.CommandAppend(seq, advance, now_ms - pending))
            seq += 1
        if command is not None:
            writes.append(
                store.CommandAppend(
                    seq,
                    command,
                    now_ms,
                    client_id=client_id if client_seq is not None else "",
                    client_seq=client_seq,
                )
            )
        if not writes:
            return
        await database_sync_to_async(store.cluster_log_write)(
            cluster_id=self.cluster_id, writes=writes
        )
        if pending:
            if extend:
                if self.checkpoints is not None:
                    self.checkpoints.extended(pending)
            else:
                self._advance_seq = self.next_seq
                self.next_seq += 1
                if self.checkpoints is not None:
                    self.checkpoints.logged({"type": "advance", "ms": pending}, now_ms - pending)
            self._unlogged_advance_ms = 0
        if command is not None:
            self.next_seq += 1
            if self.checkpoints is not None:
                self.checkpoints.logged(command, now_ms)

    # -- playing a scenario's steps --------------------------------------------------------

    async def _play_locked(
        self, commands: list[dict[str, Any]], reply_to: str | None, tag: Any = None
    ) -> dict[str, Any] | None:
        """Start playing `commands` (a command log tail: advances and commands) on the live
        clock; the answer comes when the last one is applied (None: not yet). The steps go to
        the log first, as one `play` entry (each command with the cluster time it is due at),
        so a host that starts after this one died plays on where the log stands."""
        if self.playback:
            return {"type": "error", "code": "playing", "message": "Already playing steps."}
        plan, end_ms = play_plan(commands, start_ms=self.runtime.now_ms)
        await self._flush_advance_locked()
        entry = {"type": store.PLAY_KIND, "plan": plan, "end_ms": end_ms, "reply_to": reply_to}
        entry["tag"] = tag
        try:
            # Not the runtime's: kept out of the replayed commands (and of the checkpoints).
            await database_sync_to_async(store.cluster_command_append)(
                cluster_id=self.cluster_id,
                seq=self.next_seq,
                payload=entry,
                logical_time_ms=self.runtime.now_ms,
            )
        except IntegrityError:
            asyncio.get_running_loop().create_task(self.stop("lost ownership of the log"))
            return {"type": "error", "code": "moved", "message": "This cluster moved."}
        self._play_seq = self.next_seq
        self._play_applied = 0
        self._play_tag = tag
        self.next_seq += 1
        self.playback = relative_playback(plan, end_ms, now_ms=self.runtime.now_ms)
        self._play_reply = reply_to
        if self.paused:
            self.paused = False
            await database_sync_to_async(store.cluster_clock_save)(
                cluster_id=self.cluster_id, speed=self.speed, paused=False
            )
        frame = await self._play_due_locked()
        if frame is not None:
            self._play_reply = None  # nothing had to wait for the clock: answered now
            self._play_seq = None
        return frame

    def _resume_play(self, entry: dict[str, Any]) -> None:
        """Play on from the log's `play` entry: its commands not yet applied, each at its own
        cluster time, then the clock up to where the play ends."""
        plan = list(entry.get("plan") or [])
        applied = int(entry.get("applied") or 0)
        end_ms = int(entry.get("end_ms") or 0)
        if applied >= len(plan) and self.runtime.now_ms >= end_ms:
            return  # played to the end
        self._play_seq = int(entry["seq"])
        self._play_applied = applied
        self.playback = relative_playback(plan[applied:], end_ms, now_ms=self.runtime.now_ms)
        self._play_reply = entry.get("reply_to") or None
        self._play_tag = entry.get("tag")
        logger.info(
            "host %s plays on: %d of %d steps left", self.cluster_id, len(plan) - applied, len(plan)
        )

    async def _play_due_locked(self) -> dict[str, Any] | None:
        """Apply the commands now due (up to the next advance still to run); when none is
        left, the answer for whoever asked."""
        while self.playback:
            head = self.playback[0]
            if head.get("type") == "advance" and int(head.get("ms", 0)) > 0:
                return None
            self.playback.pop(0)
            if head.get("type") != "advance":
                self._play_applied += 1
                client = f"{store.PLAY_CLIENT}{self._play_seq}" if self._play_seq else ""
                await self._logged_command_locked(
                    head, client, self._play_applied if client else None
                )
        return {"type": "ack", "message": "Played.", "now_ms": self.runtime.now_ms}

    def _play_cap(self, ms: int) -> int:
        """At most the time left before the next command to play."""
        if self.playback and self.playback[0].get("type") == "advance":
            return max(0, min(ms, int(self.playback[0]["ms"])))
        return ms

    async def _played(self, ms: int) -> None:
        """The clock ran `ms`: count it off the advance being played, apply what is due."""
        async with self.lock:
            if not self.playback:
                return
            if self.playback[0].get("type") == "advance":
                left = int(self.playback[0]["ms"]) - ms
                if left > 0:
                    self.playback[0]["ms"] = left
                    return
                self.playback.pop(0)
            frame = await self._play_due_locked()
            reply_to = self._play_reply if not self.playback else None
            if not self.playback:
                self._play_reply = None
                self._play_seq = None
                await self._flush_advance_locked()  # played means logged: the log holds it all
        self._mark_dirty()
        if frame is not None and reply_to:
            await self._reply(reply_to, frame)
        if frame is not None and not self.playback:
            await self._play_finished()

    async def _play_finished(self) -> None:
        """Tell whoever tagged the play that it is over, whether or not its asker still waits
        (a room marks its poll revealed: webapp/workshops/apps.py)."""
        tag, self._play_tag = self._play_tag, None
        if tag is not None:
            await signals.play_finished.asend_robust(
                sender=type(self), cluster_id=self.cluster_id, tag=tag
            )

    # -- time -----------------------------------------------------------------------------

    async def advance_live(self, ms: int, *, running_clock: bool = False) -> float | None:
        """Run the clock `ms` forward now (logged later, coalesced with other ticks), in a worker
        thread so the event loop keeps answering; returns the engine work it took (CPU s).
        With `running_clock` (the clock loop's ticks) nothing runs, and None is returned, if the
        clock was paused while this tick waited for the lock: once "pause" is acknowledged, the
        cluster's time stands still."""
        runtime = self.runtime
        live = self.checkpoints

        def run(unlogged_ms: int, extends_last: bool, allowed: bool) -> float:
            started = time.thread_time()
            runtime.advance(ms)
            spent = time.thread_time() - started
            if live is not None:
                spent += live.maybe_keep(
                    runtime,
                    unlogged_ms=unlogged_ms,
                    extends_last=extends_last,
                    work_s=spent,
                    allowed=allowed,
                )
            return spent

        async with self.lock:
            if running_clock and (self.paused or not self.running):
                return None
            # Where the clock will stand in the log once this time is logged; no checkpoint
            # while a real Kafka client may be connected (its answers reach it only live).
            spent = await asyncio.to_thread(
                run,
                self._unlogged_advance_ms + ms,
                self._advance_seq is not None and self._advance_seq == self.next_seq - 1,
                self.wire is None,
            )
            self.metrics.observe(self.runtime)
            self._unlogged_advance_ms += ms
            await self._sync_wire()
            self._check_goal()
        self._mark_dirty()
        return spent

    def _note_pace(self, now: float, ran_ms: int, limited: bool) -> None:
        """Keep the last 3 s of the clock's pace; below 90 % of the chosen speed while the
        budget held it back, the stage says how fast the cluster really runs."""
        if limited:
            self._limited_at = now
        self._pace.append((now, ran_ms))
        while self._pace and now - self._pace[0][0] > 3.0:
            self._pace.pop(0)
        span = now - self._pace[0][0] if len(self._pace) > 1 else 0.0
        if span < 1.0:
            return
        achieved = sum(ms for _, ms in self._pace[1:]) / (span * 1000)
        throttled: float | None = None
        if now - self._limited_at < 3.0 and achieved < 0.9 * self.speed:
            throttled = round(achieved, 1)
        if throttled != self.throttled_to:
            self.throttled_to = throttled
            self._mark_dirty()

    # -- the Kafka wire front door --------------------------------------------------------

    async def enable_wire(self) -> None:
        """Open a loopback Kafka listener per running broker (idempotent)."""
        from webapp.kafka_listener.gateway import start_listeners

        if self.wire is None:
            self.wire = start_listeners(self)
        await self._sync_wire()
        self._mark_dirty()

    async def disable_wire(self) -> None:
        """Close the listeners and every real client's connection (idempotent)."""
        if self.wire is not None:
            wire, self.wire = self.wire, None
            self.runtime.cluster.remote.sink = None
            await wire.close()
        self._mark_dirty()

    async def _sync_wire(self) -> None:
        if self.wire is not None:
            await self.wire.sync({b.id: b.alive for b in self.runtime.cluster.brokers()})

    def _render_wire(self) -> str:
        from webapp.engine_host.templating import render_to_string

        wire = None
        if self.wire is not None:
            open_ids = set(self.wire.connections)
            # One row per client id, summed over its connections (one per broker it talks to).
            by_client: dict[str, dict[str, Any]] = {}
            for c in self.runtime.cluster.remote.snapshot():
                row = by_client.setdefault(
                    c["client_id"],
                    {
                        "client_id": c["client_id"],
                        "brokers": set(),
                        "open": 0,
                        "requests": 0,
                        "records_produced": 0,
                        "records_fetched": 0,
                        "last": 0,
                    },
                )
                row["brokers"].add(c["broker"])
                row["open"] += c["connection"] in open_ids
                row["requests"] += sum(c["requests"].values())
                row["records_produced"] += c["records_produced"]
                row["records_fetched"] += c["records_fetched"]
                row["last"] = max(row["last"], c["connection"])
            clients = sorted(by_client.values(), key=lambda r: (not r["open"], -r["last"]))[:12]
            for row in clients:
                row["brokers"] = ", ".join(str(b) for b in sorted(row["brokers"]))
            wire = {"bootstrap": self.wire.bootstrap_servers(), "clients": clients}
        return render_to_string("sandbox/fragments/kafka_clients.html", {"wire": wire})

    def _has_audience(self) -> bool:
        """Someone watches, or a real Kafka client is connected: the clock runs."""
        return bool(self.viewers) or (self.wire is not None and self.wire.connection_count > 0)

    async def _clock(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        owed_ms = 0.0
        while self.running:
            await asyncio.sleep(CLOCK_TICK_S)
            now = loop.time()
            elapsed, last = now - last, now
            budget = self.settings.work_budget_per_s
            self._work_credit = min(budget, self._work_credit + elapsed * budget)
            if self.frozen or self.paused or not self._has_audience():
                owed_ms = 0.0
                self._pace.clear()
                if self.throttled_to is not None:
                    self.throttled_to = None
                    self._mark_dirty()
                continue
            owed_ms += elapsed * 1000.0 * self.speed
            if owed_ms > MAX_ADVANCE_PER_TICK_MS:  # the loop stalled: don't race to catch up
                owed_ms = float(MAX_ADVANCE_PER_TICK_MS)
            if self.memory_stopped is not None:
                # Over its memory bound: the clock stays stopped (the keeper re-checks).
                owed_ms = 0.0
                continue
            if self._work_credit <= 0:
                # Over its work budget: this tick's time is not run, so the clock slows down.
                owed_ms = 0.0
                self._note_pace(now, 0, limited=True)
                continue
            # Land on a multiple of the quantum so live ticks and replay split time identically
            # (the runtime acts on TICK_MS boundaries; below 1x, 1 ms quanta let the stage show
            # messages in flight, which live for a few ms between two TICK_MS boundaries).
            self.runtime.watch_messages = self.speed < 1
            quantum = TICK_MS if self.speed >= 1 else 1
            now_ms = self.runtime.now_ms
            whole = (now_ms + int(owed_ms)) // quantum * quantum - now_ms
            whole = self._play_cap(whole)  # a step being played applies at its exact time
            if whole <= 0:
                continue
            owed_ms -= whole
            try:
                spent = await self.advance_live(whole, running_clock=True)
                if spent is None:  # paused meanwhile: this tick's time is not run
                    owed_ms = 0.0
                    continue
                self._work_credit -= spent
                self._note_pace(loop.time(), whole, limited=self._work_credit <= 0)
                if self.playback:
                    await self._played(whole)
            except Exception:
                logger.exception("host %s: the engine failed to advance; pausing", self.cluster_id)
                self.paused = True
                self.runtime._notice("error", "The simulator failed to advance; clock paused.")
                self._mark_dirty()

    async def _keeper(self) -> None:
        """Flush coalesced time, renew the ownership lease, unload when nobody watches."""
        last_renew = time.monotonic()
        while self.running:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            if self._unlogged_advance_ms and now - self._last_flush >= ADVANCE_FLUSH_S:
                async with self.lock:
                    await self._flush_advance_locked()
            if now - last_renew >= LEASE_TTL_S / 3:
                last_renew = now
                if not await self.leases.renew(
                    self.cluster_id, self.settings.owner_id, LEASE_TTL_S
                ):
                    await self.stop("lost the ownership lease")
                    return
            self._expire_viewers(now)
            self.check_memory()
            if self.wire is not None:
                # Open Kafka listeners keep the host loaded: their ports are what real clients
                # were given, and a host loaded again would listen elsewhere.
                self._idle_since = now
            if not self._has_audience() and now - self._idle_since >= self.settings.idle_seconds:
                await self.stop("idle")
                return

    # -- publishing -----------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._dirty.set()

    async def _publisher(self) -> None:
        hz = self.settings.room_publish_max_hz if self.room else self.settings.publish_max_hz
        interval = 1.0 / max(hz, 0.1)
        while self.running:
            await self._dirty.wait()
            if not self.running:
                break
            self._dirty.clear()
            self._urgent.clear()
            # Rendering is this host's work too: it waits for budget like the clock does, and
            # what it costs is taken from the same credit (so a big cluster's clock slows down
            # rather than its stage taking the process's time).
            while self.running and self._work_credit <= 0:
                await asyncio.sleep(CLOCK_TICK_S)
            async with self.lock:  # never render while the worker thread advances the runtime
                # Durable first: no viewer sees a moment the log could not rebuild after a crash.
                try:
                    await self._flush_advance_locked()
                except IntegrityError:
                    asyncio.get_running_loop().create_task(self.stop("lost ownership of the log"))
                    break
                # Rendering a big cluster takes tens of ms of CPU: like the clock's ticks it runs
                # in a worker thread, off the event loop (measured with py-spy during
                # scripts/loadtest_isolation.py: rendering on the loop was half of the loop
                # thread's busy time, and every other visitor's page and command waited on it).
                fragments, render_s = await asyncio.to_thread(self._render_runtime_fragments)
                self._work_credit -= render_s
                update = self._publish(fragments)
            if update is not None:
                await self.layer.group_send(viewers_group(self.cluster_id), update)
            tail = console_command.take_console_output(self.runtime)
            if tail:  # what a tailing console consumer printed since the last publish
                await self.layer.group_send(
                    viewers_group(self.cluster_id), {"type": "console.output", "text": tail}
                )
            # After a slow render (a big cluster) the next one waits twice as long as this one
            # took, so rendering takes at most a third of the time the GIL is shared.
            await asyncio.sleep(2 * render_s)
            # Clock ticks alone publish at most publish_max_hz; a command (someone acted and
            # watches for the effect, a whole room in a workshop) is published as soon as that
            # third-of-the-time bound allows. Commands are rate-limited per socket upstream.
            rest = interval - 2 * render_s
            if rest > 0 and not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), rest)

    def _clock_view(self) -> render.ClockView:
        return render.ClockView(
            now_ms=self.runtime.now_ms,
            paused=self.paused,
            speed=self.speed,
            viewers=len(self.viewers),
            throttled_to=None if self.paused else self.throttled_to,
            memory_stopped=self.memory_stopped,
        )

    def _changed_fragments(self, fragments: dict[str, str], held: dict[str, str]) -> dict[str, str]:
        """The units (fragments, or a split fragment's skeleton and parts: fragment_units) to
        send. While the clock runs, a unit whose only change is the cluster time it is labelled
        with (the stage picture's and the text mirror's "at N ms") is re-sent at most every
        TIME_LABEL_REFRESH_S (a room's: room_time_label_refresh_s); the clock fragment carries
        the exact time. Without this every viewer got the whole stage (~12 KB) on every tick.
        `fragments` is updated in place to what viewers hold, so a new viewer's full state
        matches."""
        now = self.runtime.now_ms
        mono = time.monotonic()
        every = self.settings.room_time_label_refresh_s if self.room else TIME_LABEL_REFRESH_S
        relabel = self.paused or mono - self._labels_sent_at >= every
        changed: dict[str, str] = {}
        for key, html in fragments.items():
            old = held.get(key)
            if old == html:
                continue
            at = self._fragment_times.get(key)
            if (
                not relabel
                and key != "clock"
                and old is not None
                and at is not None
                and without_time_labels(old, at) == without_time_labels(html, now)
            ):
                fragments[key] = old  # only its time label moved: viewers keep theirs
                continue
            changed[key] = html
            self._fragment_times[key] = now
        if relabel:
            self._labels_sent_at = mono
        return changed

    def _render_runtime_fragments(self) -> tuple[dict[str, str] | Exception, float]:
        """The fragments drawn from the runtime (run in a worker thread, under the lock), or
        the error that stopped them, and the CPU seconds it took."""
        started = time.thread_time()
        try:
            if self.room:  # only what the room pages have a slot for
                return render.render_fragments(
                    self.runtime, self._clock_view(), only=render.ROOM_FRAGMENTS
                ), time.thread_time() - started
            fragments = render.render_fragments(self.runtime, self._clock_view())
            fragments["charts"] = self.metrics.render()
            if self.goal is not None:
                fragments["lesson-goal"] = lesson_goal.render(self.goal, self.runtime)
        except Exception as error:
            return error, time.thread_time() - started
        return fragments, time.thread_time() - started

    def _publish(
        self, runtime_fragments: dict[str, str] | Exception | None = None
    ) -> dict[str, Any] | None:
        """Render the current state once; return the group message if anything changed.
        `runtime_fragments`: rendered already, off the loop (else rendered here)."""
        try:
            if runtime_fragments is None:
                runtime_fragments, _ = self._render_runtime_fragments()
            if isinstance(runtime_fragments, Exception):
                raise runtime_fragments
            fragments = dict(runtime_fragments)
            if not self.room:  # a room page has no Kafka clients panel
                # On the loop: the Kafka listeners' connections change on the loop.
                fragments["kafka-clients"] = self._render_wire()
            fragments.update(self.extra_fragments)
        except Exception as error:
            logger.exception("host %s failed to render", self.cluster_id)
            fragments = dict(self.published.fragments)
            fragments.update(render.render_error_fragment(f"{type(error).__name__}: {error}"))
        previous = self.published
        # Compared part by part: a split fragment whose skeleton is what viewers hold is sent
        # as its changed parts only (a room's stage: the partition row a record went to, the
        # producer's counts), not whole (measured: scripts/bench/room_host.py).
        units = fragment_units(fragments)
        changed_units = self._changed_fragments(units, previous.units)
        if previous.version and not changed_units:
            return None
        held: dict[str, str] = {}
        changed: list[str] = []
        for key in fragments:
            held[key] = joined_fragment(units, key)
            if key in changed_units or key not in render.SPLIT_FRAGMENTS:
                if key in changed_units:
                    changed.append(held[key])
                continue
            for part_id in render.part_ids(units[key]):
                if f"{key}#{part_id}" in changed_units:
                    changed.append(units[f"{key}#{part_id}"])
        version = previous.version + 1
        self.published = PublishedState(
            version=version,
            fragments=held,
            full_html=render.version_marker(version, None) + "".join(held.values()),
            units=units,
        )
        return {
            "type": "cluster.state",
            "version": version,
            "base": previous.version,
            "html": render.version_marker(version, previous.version) + "".join(changed),
        }
