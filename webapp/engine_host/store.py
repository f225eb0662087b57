"""Database reads and writes of live clusters and their command logs (synchronous)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from lessons.scenarios import ClusterSpec
from webapp.models import ClusterCommand, LiveCluster


@dataclass(frozen=True)
class StoredCluster:
    """Everything a host needs to rebuild a cluster: its spec, log and saved clock settings."""

    spec: ClusterSpec
    commands: list[dict[str, Any]]
    next_seq: int
    client_seqs: dict[str, int]
    speed: float
    paused: bool
    kafka_listeners: bool = False
    # broker id (as a string, JSON's keys) -> the port its listener had
    kafka_listener_ports: dict[str, int] | None = None
    # The last `play` entry of the log (steps the server asked the clock to play, see
    # PLAY_KIND), with how many of its commands are applied: a host resumes what is left.
    playback: dict[str, Any] | None = None
    # A workshop room's cluster (webapp.workshops RoomCluster): watched by a whole room, so its
    # host renders what the room pages show and publishes clock ticks less often.
    room: bool = False


# A log entry the runtime never applies: the steps `host.play` was asked to play (a drill's
# scenario revealed to a workshop room), each command at its cluster time. The commands are
# logged one by one as the clock reaches them (client id PLAY_CLIENT + the entry's seq, client
# seq its position), so the log says what is left to play after a crash.
PLAY_KIND = "play"
PLAY_CLIENT = "play-"


def cluster_load(*, cluster_id: str) -> StoredCluster:
    cluster = LiveCluster.objects.get(pk=cluster_id)
    rows = list(
        ClusterCommand.objects.filter(cluster_id=cluster_id)
        .order_by("seq")
        .values_list("seq", "payload", "kind")
    )
    client_seqs = dict(
        ClusterCommand.objects.filter(cluster_id=cluster_id, client_seq__isnull=False)
        .values("client_id")
        .annotate(max_seq=Max("client_seq"))
        .values_list("client_id", "max_seq")
    )
    return StoredCluster(
        spec=ClusterSpec(
            seed=cluster.seed,
            brokers=cluster.brokers,
            controllers=cluster.controllers,
            config=cluster.engine_config or None,
        ),
        commands=[payload for _, payload, kind in rows if kind != PLAY_KIND],
        next_seq=(rows[-1][0] + 1) if rows else 1,
        client_seqs=client_seqs,
        speed=cluster.speed,
        paused=cluster.paused,
        kafka_listeners=cluster.kafka_listeners,
        kafka_listener_ports=dict(cluster.kafka_listener_ports or {}),
        playback=_playback(rows, client_seqs),
        room=_is_room(cluster_id),
    )


def _is_room(cluster_id: str) -> bool:
    """A cluster some workshop room shows or showed (the reverse relations of
    webapp.workshops' RoomCluster and Workshop)."""
    return LiveCluster.objects.filter(
        Q(pk=cluster_id) & (Q(room__isnull=False) | Q(workshop__isnull=False))
    ).exists()


def _playback(
    rows: list[tuple[int, dict[str, Any], str]], client_seqs: dict[str, int]
) -> dict[str, Any] | None:
    plays = [(seq, payload) for seq, payload, kind in rows if kind == PLAY_KIND]
    if not plays:
        return None
    seq, payload = plays[-1]
    return {**payload, "seq": seq, "applied": client_seqs.get(f"{PLAY_CLIENT}{seq}", 0)}


def cluster_command_append(
    *,
    cluster_id: str,
    seq: int,
    payload: dict[str, Any],
    logical_time_ms: int,
    client_id: str = "",
    client_seq: int | None = None,
) -> None:
    """Write one command to the log. Raises IntegrityError if `seq` is taken (lost ownership)."""
    write = CommandAppend(seq, payload, logical_time_ms, client_id, client_seq)
    cluster_log_write(cluster_id=cluster_id, writes=[write])


@dataclass(frozen=True)
class AdvanceExtend:
    """Lengthen the log's last entry, the advance at `seq`, by `ms` (see cluster_advance_extend)."""

    seq: int
    ms: int


@dataclass(frozen=True)
class CommandAppend:
    """One new entry of the log (see cluster_command_append)."""

    seq: int
    payload: dict[str, Any]
    logical_time_ms: int
    client_id: str = ""
    client_seq: int | None = None


def cluster_log_write(*, cluster_id: str, writes: list[AdvanceExtend | CommandAppend]) -> None:
    """Several writes to the log in one transaction, in order: a host's command is logged with
    the clock time run before it in one trip to the database (one commit), not two. Raises
    IntegrityError (and writes none of them) if any one is refused (lost ownership)."""
    with transaction.atomic():
        appended = False
        for write in writes:
            if isinstance(write, AdvanceExtend):
                cluster_advance_extend(cluster_id=cluster_id, seq=write.seq, ms=write.ms)
                continue
            ClusterCommand.objects.create(
                cluster_id=cluster_id,
                seq=write.seq,
                kind=str(write.payload["type"]),
                payload=write.payload,
                logical_time_ms=write.logical_time_ms,
                client_id=write.client_id,
                client_seq=write.client_seq,
            )
            appended = True
        if appended:
            LiveCluster.objects.filter(pk=cluster_id).update(last_active_at=timezone.now())


def cluster_clock_save(*, cluster_id: str, speed: float, paused: bool) -> None:
    LiveCluster.objects.filter(pk=cluster_id).update(speed=speed, paused=paused)


def cluster_size(*, cluster_id: str) -> tuple[int, int] | None:
    """How many brokers and controllers the cluster has, or None if there is no such cluster."""
    return LiveCluster.objects.filter(pk=cluster_id).values_list("brokers", "controllers").first()


def cluster_advance_extend(*, cluster_id: str, seq: int, ms: int) -> None:
    """Lengthen the log's last entry, an `advance` at `seq`, by `ms`: the time the clock ran is
    durable without a row per flush. Raises IntegrityError if `seq` is no longer the last entry
    or not an advance (another owner wrote since)."""
    with transaction.atomic():
        last = (
            ClusterCommand.objects.select_for_update()
            .filter(cluster_id=cluster_id)
            .order_by("-seq")
            .first()
        )
        if last is None or last.seq != seq or last.kind != "advance":
            raise IntegrityError(f"advance {seq} of {cluster_id} is not the last entry")
        last.payload = {**last.payload, "ms": int(last.payload["ms"]) + ms}
        last.save(update_fields=["payload"])


def cluster_kafka_listeners_save(
    *, cluster_id: str, enabled: bool | None = None, ports: dict[int, int] | None = None
) -> None:
    """Remember whether the sandbox's Kafka listeners are open, and on which ports."""
    changes: dict[str, Any] = {}
    if enabled is not None:
        changes["kafka_listeners"] = enabled
    if ports is not None:
        changes["kafka_listener_ports"] = {str(b): int(p) for b, p in sorted(ports.items())}
    if changes:
        LiveCluster.objects.filter(pk=cluster_id).update(**changes)
