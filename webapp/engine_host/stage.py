"""The stage's picture as data: every shape of the SVG, laid out from one engine snapshot.

Read-only on the engine: `snapshot()` for the whole observable state (replica logs, network,
clients, groups) and `read()` for the records in each replica's tape. The template draws what
this module lays out, so geometry is tested here without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import KafkaError
from lessons.scenarios import commands_for

WIDTH = 900  # drawn about 1:1 beside the dock at 1280 px, so 11 px text stays 11 px
PAD = 16
CONTROLLER_BAND = 84
BROKER_HEADER = 64
ROW_HEIGHT = 40
CELL_HEIGHT = 18
MAX_ROWS = 24  # partition rows drawn; the text mirror lists the rest
CLIENT_ROW = 30


@dataclass
class Cell:
    x: float
    offset: int
    kind: str  # "record", "uncommitted", "gap", "marker"
    title: str
    width: float


@dataclass
class Replica:
    broker: int
    x: float
    y: float
    width: float
    role: str  # "leader", "follower", "out-of-sync", "offline"
    label: str
    cells: list[Cell] = field(default_factory=list)
    hidden_before: int = 0
    log_start_offset: int = 0
    high_watermark: int = 0
    log_end_offset: int = 0
    hw_x: float | None = None
    leo_x: float | None = None
    segment_xs: list[float] = field(default_factory=list)
    bookmarks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Node:
    id: str
    x: float
    y: float
    width: float
    height: float
    state: str
    label: str
    cut: bool = False
    actions: list[dict[str, Any]] = field(default_factory=list)


# The producer box's width in the stage template (templates/sandbox/fragments/stage.html).
PRODUCER_BOX_WIDTH = WIDTH / 2 - 2 * PAD  # the left half of the clients band


def node_actions(node: str, node_id: Any, *, alive: bool) -> list[dict[str, Any]]:
    """The buttons drawn on a node, from the command table's node actions."""
    when = "alive" if alive else "stopped"
    field_name = "broker_id" if node == "broker" else "controller_id"
    return [
        {
            "type": spec.name,
            "field": field_name,
            "value": node_id,
            "label": action.label.format(id=node_id),
            "text": action.text,
        }
        for spec in commands_for("learner").values()
        for action in spec.node_actions
        if action.node == node and action.when == when
    ]


def _place_actions(actions: list[dict[str, Any]], x: float, y: float) -> None:
    """Lay buttons out left to right from (x, y); width follows the text."""
    for action in actions:
        width = 14 + 7 * len(str(action["text"]))
        action.update(x=x, y=y, w=width, tx=x + width / 2)
        x += width + 6


def client_group_ids(snap: dict[str, Any]) -> set[str]:
    """Groups the cluster's consumers belong to (a group exists for its members even while no
    coordinator has loaded it yet, e.g. with a broker down)."""
    return {
        str(c["group_id"])
        for c in snap.get("consumers", [])
        if c.get("group_id") and not c.get("closed")
    }


def _unloaded_group(snap: dict[str, Any], group_id: str) -> dict[str, Any]:
    """A group no coordinator has loaded: its members, as the consumers themselves know."""
    members = [
        {"client_id": c["client_id"], "assignment": c.get("assignment", [])}
        for c in snap.get("consumers", [])
        if c.get("group_id") == group_id and not c.get("closed")
    ]
    return {
        "state": "looking for its coordinator",
        "generation": "none yet",
        "members": members,
        "lag": [],
        "offsets": [],
        "unloaded": True,
    }


def _cell_width(column_width: float) -> float:
    return 22.0 if column_width >= 300 else 16.0 if column_width >= 160 else 12.0


def _records(cluster: Any, topic: str, partition: int, start: int, broker: int) -> dict[int, Any]:
    try:
        records = cluster.read(topic, partition, offset=start, replica=broker)
    except (KafkaError, ValueError, KeyError):
        return {}
    return {int(r.offset): r for r in records}


def _text(data: bytes | None) -> str:
    if data is None:
        return "null"
    return data.decode("utf-8", errors="replace")


def build_stage(
    cluster: Any,
    *,
    snap: dict[str, Any] | None = None,
    consumer_positions: dict[tuple[str, int], list[tuple[str, int]]] | None = None,
    recent_messages: list[tuple[dict[str, Any], int]] | None = None,
    refusals: dict[str, dict[str, Any]] | None = None,
    with_actions: bool = True,
) -> dict[str, Any]:
    """Every shape of the stage. `consumer_positions` adds host consumers' bookmarks;
    `refusals` (client id -> the refusal a producer is retrying) is drawn on its box."""
    if snap is None:
        snap = cluster.snapshot()
    now = int(snap["now_ms"])
    network_groups = [set(map(str, g)) for g in snap["network"].get("groups", [])]
    cut_nodes = set().union(*network_groups) if network_groups else set()

    # Controllers: a row of circles across the top.
    controllers = []
    for index, c in enumerate(snap["controllers"]):
        state = "active" if c["is_active"] else ("standby" if c["alive"] else "stopped")
        controllers.append(
            Node(
                id=str(c["id"]),
                x=PAD + 60 + index * 90,
                y=48,
                width=30,
                height=30,
                state=state,
                label=f"controller {c['id']}",
                cut=str(c["id"]) in cut_nodes,
                actions=node_actions("controller", c["id"], alive=bool(c["alive"]))
                if with_actions
                else [],
            )
        )

    for node in controllers:
        _place_actions(node.actions, node.x + 19, node.y - 9)

    brokers_snap = snap["brokers"]
    count = max(1, len(brokers_snap))
    column = (WIDTH - 2 * PAD - (count - 1) * 10) / count
    cell_w = _cell_width(column)
    top = CONTROLLER_BAND + 10
    brokers: list[Node] = []
    column_x: dict[int, float] = {}
    for index, b in enumerate(brokers_snap):
        x = PAD + index * (column + 10)
        column_x[int(b["id"])] = x
        if not b["alive"]:
            state = "stopped"
        elif b.get("in_controlled_shutdown"):
            state = "shutting-down"
        elif b["fenced"]:
            state = "fenced"
        else:
            state = "alive"
        actions = node_actions("broker", b["id"], alive=bool(b["alive"])) if with_actions else []
        brokers.append(
            Node(
                id=str(b["id"]),
                x=x,
                y=top,
                width=column,
                height=0,
                state=state,
                label=f"broker {b['id']}",
                cut=str(b["id"]) in cut_nodes,
                actions=actions,
            )
        )

    for node in brokers:
        _place_actions(node.actions, node.x + 12, node.y + 34)

    # Partition rows: one per public partition, a replica tape in each hosting broker's column.
    rows: list[dict[str, Any]] = []
    hidden_rows = 0
    y = top + BROKER_HEADER
    bookmarks = consumer_positions or {}
    for topic in sorted(snap["topics"]):
        t = snap["topics"][topic]
        if t.get("internal") or topic.startswith("__"):
            continue
        policy = t["config"].get("cleanup.policy", ["delete"])
        compact = "compact" in (policy if isinstance(policy, list) else [policy])
        for p in t["partitions"]:
            if len(rows) >= MAX_ROWS:
                hidden_rows += 1
                continue
            rows.append(
                _row(
                    cluster,
                    topic,
                    p,
                    y,
                    column_x,
                    column,
                    cell_w,
                    compact,
                    bookmarks.get((topic, int(p["partition"])), []),
                )
            )
            y += ROW_HEIGHT
    brokers_bottom = y + 8
    for node in brokers:
        node.height = brokers_bottom - top

    # Clients: producers, then consumer groups, in a band under the brokers.
    clients_top = brokers_bottom + 16
    producers = []
    groups = []
    client_anchor: dict[str, tuple[float, float]] = {}
    cy = clients_top + 28
    apps = {a.get("client"): a for a in snap.get("apps", []) if a.get("kind") == "producer"}
    for prod in snap.get("producers", []):
        if prod.get("closed"):
            continue
        app = apps.get(prod["client_id"])
        rate = f" · {app['rate_per_sec']:g}/s" if app else ""
        refusal = (refusals or {}).get(prod["client_id"])
        total = int(prod.get("buffer_memory") or 0)
        used = int(prod.get("buffered_bytes") or 0)
        blocked = bool(app and app.get("blocked_since_ms") is not None)
        detail = f"sent {prod['sent']} · acked {prod['acked']} · in flight {prod['pending']}"
        if blocked:
            detail += " · buffer full: send() waits (max.block.ms)"
        elif total and used * 2 >= total:
            detail += f" · buffer {100 * used // total}% full"
        producers.append(
            {
                "client_id": prod["client_id"],
                "app_id": app["id"] if app else None,
                "running": bool(app["running"]) if app else True,
                "x": PAD,
                "y": cy,
                "label": f"{prod['client_id']} · acks={prod['acks']}{rate}",
                "detail": detail,
                "refusal": refusal,
                "width": PRODUCER_BOX_WIDTH,
                "height": 72 if refusal else 40,
                # buffer.memory held by unacknowledged batches: a gauge along the box's foot.
                "buffer_width": round(PRODUCER_BOX_WIDTH * used / total, 1) if total else 0,
                "buffer_blocked": blocked,
            }
        )
        client_anchor[f"client-{prod['client_id']}"] = (PAD + 140, cy)
        cy += CLIENT_ROW + 16 + (34 if refusal else 0)
    # Real Kafka clients (the wire front door) that produced lately: one row per client id,
    # summed over its connections to the brokers.
    real: dict[str, dict[str, int]] = {}
    for conn in snap.get("remote", []):
        if "produce" not in conn["requests"] or snap["now_ms"] - conn["last_request_ms"] > 60_000:
            continue
        row = real.setdefault(conn["client_id"], {"records": 0, "requests": 0})
        row["records"] += conn["records_produced"]
        row["requests"] += conn["requests"]["produce"]
    for client_id, row in sorted(real.items()):
        producers.append(
            {
                "client_id": client_id,
                "app_id": None,
                "running": True,
                "x": PAD,
                "y": cy,
                "label": f"{client_id} · real Kafka client",
                "detail": f"produce requests {row['requests']} · records appended {row['records']}",
                "refusal": None,
                "width": PRODUCER_BOX_WIDTH,
                "height": 40,
                "buffer_width": 0,
                "buffer_blocked": False,
            }
        )
        client_anchor[f"client-{client_id}"] = (PAD + 140, cy)
        cy += CLIENT_ROW
    consumer_snap = {c["client_id"]: c for c in snap.get("consumers", [])}
    # A real consumer's positions: where it last fetched each partition from.
    # (Summed over the client's connections, oldest first, so the newest leader's wins.)
    real_positions: dict[str, list[list[Any]]] = {}
    for conn in snap.get("remote", []):
        real_positions.setdefault(conn["client_id"], []).extend(conn.get("positions", []))
    for client_id, positions in real_positions.items():
        if positions and client_id not in consumer_snap:
            consumer_snap[client_id] = {"positions": positions}
    apps_by_client = {
        a.get("client"): a for a in snap.get("apps", []) if a.get("kind") == "consumer"
    }
    gy = clients_top + 28
    gx = WIDTH / 2
    for group_id in sorted(set(snap.get("groups", {})) | client_group_ids(snap)):
        g = snap.get("groups", {}).get(group_id) or _unloaded_group(snap, group_id)
        lag = {(t, int(p)): int(n) for t, p, n in g.get("lag", [])}
        committed = {(t, int(p)): int(o) for t, p, o in g.get("offsets", [])}
        members = []
        gy_start = gy
        gy += 22
        for m in g.get("members", []):
            client = consumer_snap.get(m["client_id"], {})
            positions = {(t, int(p)): int(o) for t, p, o in client.get("positions", [])}
            app = apps_by_client.get(m["client_id"])
            parts = []
            for t, p in m.get("assignment", []):
                n = lag.get((t, int(p)), 0)
                parts.append(
                    {
                        "dy": 16 * len(parts),
                        "name": f"{t}-{p}",
                        "position": positions.get((t, int(p))),
                        "committed": committed.get((t, int(p))),
                        "lag": n,
                        "bar": min(120.0, n * 2.0),
                    }
                )
            members.append(
                {
                    "client_id": m["client_id"],
                    "app_id": app["id"] if app else None,
                    "crashed": bool(client.get("crashed")),
                    "y": gy,
                    "partitions": parts,
                }
            )
            client_anchor[f"client-{m['client_id']}"] = (gx + 10, gy)
            gy += 18 + 16 * len(parts)
        groups.append(
            {
                "id": group_id,
                "state": g.get("state"),
                "generation": g.get("generation"),
                "protocol": g.get("protocol") or "",
                "coordinator": g.get("coordinator"),
                "x": gx,
                "y": gy_start,
                "members": members,
                "total_lag": sum(lag.values()),
                "unloaded": bool(g.get("unloaded")),
            }
        )
        gy += 10
    height = max(cy, gy, clients_top + 60) + PAD

    # Anchors for messages in flight: brokers' headers, controllers, clients.
    anchor: dict[str, tuple[float, float]] = {}
    for node in brokers:
        anchor[node.id] = (node.x + node.width / 2, node.y + 20)
    for node in controllers:
        anchor[node.id] = (node.x, node.y)
    anchor.update(client_anchor)
    clients_default = (WIDTH / 2, clients_top + 8)
    in_flight = []
    current = snap["network"].get("in_flight", [])
    current_ids = {m.get("id") for m in current}
    # Slow motion keeps messages seen between two renders, drawn where they were last seen.
    seen: list[tuple[dict[str, Any], int, bool]] = [(m, now, False) for m in current]
    for message, seen_ms in recent_messages or []:
        if message.get("id") not in current_ids:
            seen.append((message, seen_ms, True))
    for message, at_ms, recent in seen:
        start = anchor.get(str(message["from"]), clients_default)
        end = anchor.get(str(message["to"]), clients_default)
        span = max(1, int(message["arrives_ms"]) - int(message["sent_ms"]))
        progress = min(1.0, max(0.0, (at_ms - int(message["sent_ms"])) / span))
        in_flight.append(
            {
                "kind": message["kind"],
                "recent": recent,
                "from": message["from"],
                "to": message["to"],
                "x1": start[0],
                "y1": start[1],
                "x2": end[0],
                "y2": end[1],
                "x": start[0] + (end[0] - start[0]) * progress,
                "y": start[1] + (end[1] - start[1]) * progress,
            }
        )

    cut_text = ""
    if network_groups:
        named = ["{" + ", ".join(sorted(g)) + "}" for g in network_groups]
        cut_text = "network cut: " + " | ".join(named) + " | {everyone else}"
    stage = {
        "width": WIDTH,
        "groups_x": gx,
        "height": height,
        "now_ms": now,
        "controllers": controllers,
        "brokers": brokers,
        "rows": rows,
        "hidden_rows": hidden_rows,
        "rows_bottom": brokers_bottom,
        "clients_top": clients_top,
        "producers": producers,
        "groups": groups,
        "in_flight": in_flight,
        "cut_text": cut_text,
        "cell_height": CELL_HEIGHT,
    }
    _round_geometry(stage)
    return stage


def _round_geometry(value: Any) -> Any:
    """Every coordinate to 0.1 px (in place): the picture is the same, and geometry that did
    not change renders as the same text, so an unchanged stage part is not sent again (a
    column of 282.666... px drew its cells at 17-digit offsets)."""
    if isinstance(value, float):
        return round(value, 1)
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "refusal":  # not geometry, and shared with the sends panel
                value[key] = _round_geometry(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _round_geometry(item)
    elif isinstance(value, Cell | Replica | Node):
        for name, item in vars(value).items():
            setattr(value, name, _round_geometry(item))
    return value


def _row(
    cluster: Any,
    topic: str,
    p: dict[str, Any],
    y: float,
    column_x: dict[int, float],
    column: float,
    cell_w: float,
    compact: bool,
    bookmarks: list[tuple[str, int]],
) -> dict[str, Any]:
    number = int(p["partition"])
    name = f"{topic}-{number}"
    leader = int(p["leader"])
    isr = set(p["isr"])
    # A replica the brokers have not created yet (just after create_topic) has no log.
    logs = {k: v for k, v in (p.get("replica_logs") or {}).items() if v}
    # No leader, no partition high watermark: fall back to the best a replica knows.
    partition_hw = p.get("high_watermark")
    if partition_hw is None:
        partition_hw = max((int(v.get("high_watermark", 0)) for v in logs.values()), default=0)
    partition_hw = int(partition_hw)
    slots = max(4, int((column - 16) // cell_w) - 1)
    replicas = []
    for broker in p["replicas"]:
        if broker not in column_x:
            continue
        log = logs.get(str(broker), {})
        log_start = int(log.get("log_start_offset", 0))
        log_end = int(log.get("log_end_offset", 0))
        hw = int(log.get("high_watermark", 0))
        if broker == leader:
            role = "leader"
        elif broker in isr:
            role = "follower"
        else:
            role = "out-of-sync"
        if leader == -1:
            role = "offline" if broker not in isr else "follower"
        start = max(log_start, log_end - slots)
        x0 = column_x[broker] + 8
        records = _records(cluster, topic, number, start, broker) if log_end > start else {}
        cells = []
        for i, offset in enumerate(range(start, log_end)):
            record = records.get(offset)
            x = x0 + 14 + i * cell_w
            if record is None:
                kind = "gap" if compact else "marker"
                title = (
                    f"offset {offset}: removed by compaction (a later record has its key)"
                    if compact
                    else f"offset {offset}: a control record (transaction marker)"
                )
            else:
                kind = "record" if offset < partition_hw else "uncommitted"
                title = f"offset {offset} · key {_text(record.key)} · value {_text(record.value)}"
                if kind == "uncommitted":
                    title += " (above the high watermark: not yet committed)"
            cells.append(Cell(x=x, offset=offset, kind=kind, title=title, width=cell_w - 2))

        def offset_x(
            offset: int, _start: int = start, _x0: float = x0, _end: int = log_end
        ) -> float | None:
            if offset < _start or offset > _end:
                return None
            return _x0 + 14 + (offset - _start) * cell_w - 1

        segment_xs = []
        for segment in log.get("segments", [])[1:]:
            sx = offset_x(int(segment[0]))
            if sx is not None:
                segment_xs.append(sx)
        marks = []
        if broker == leader:
            for consumer, position in bookmarks:
                bx = offset_x(position)
                if bx is not None:
                    marks.append({"name": consumer, "x": bx + cell_w / 2, "position": position})
        label = f"{name} {'★ leader' if role == 'leader' else role}"
        replicas.append(
            Replica(
                broker=broker,
                x=x0,
                y=y,
                width=column - 16,
                role=role,
                label=label,
                cells=cells,
                hidden_before=start - log_start,
                log_start_offset=log_start,
                high_watermark=hw,
                log_end_offset=log_end,
                hw_x=offset_x(hw),
                leo_x=offset_x(log_end),
                segment_xs=segment_xs,
                bookmarks=marks,
            )
        )
    return {
        "name": name,
        "topic": topic,
        "partition": number,
        "y": y,
        "leader": leader,
        "isr": list(p["isr"]),
        "replicas": replicas,
    }


def build_mirror(snap: dict[str, Any]) -> dict[str, Any]:
    """The stage in words: the same facts as the picture, for screen readers and notes."""
    controllers = [
        {
            "id": c["id"],
            "state": "active" if c["is_active"] else ("standby" if c["alive"] else "stopped"),
        }
        for c in snap["controllers"]
    ]
    brokers = []
    for b in snap["brokers"]:
        state = "stopped" if not b["alive"] else "fenced" if b["fenced"] else "alive"
        brokers.append({"id": b["id"], "state": state})
    partitions = []
    for topic in sorted(snap["topics"]):
        t = snap["topics"][topic]
        if t.get("internal") or topic.startswith("__"):
            continue
        for p in t["partitions"]:
            leader_log = (p.get("replica_logs") or {}).get(str(p["leader"])) or {}
            partitions.append(
                {
                    "name": f"{topic}-{p['partition']}",
                    "leader": p["leader"],
                    "leader_epoch": p.get("leader_epoch"),
                    "replicas": ", ".join(str(r) for r in p["replicas"]),
                    "isr": ", ".join(str(r) for r in p["isr"]) or "none",
                    "out_of_sync": ", ".join(
                        str(r) for r in p["replicas"] if r not in set(p["isr"])
                    ),
                    "high_watermark": p["high_watermark"],
                    "log_end_offset": p["log_end_offset"],
                    "log_start_offset": leader_log.get("log_start_offset", 0),
                }
            )
    groups = []
    for group_id in sorted(set(snap.get("groups", {})) | client_group_ids(snap)):
        g = snap.get("groups", {}).get(group_id) or _unloaded_group(snap, group_id)
        members = [
            {
                "client_id": m["client_id"],
                "partitions": ", ".join(f"{t}-{p}" for t, p in m.get("assignment", [])) or "none",
            }
            for m in g.get("members", [])
        ]
        lag = ", ".join(f"{t}-{p}: {n}" for t, p, n in g.get("lag", [])) or "none"
        groups.append(
            {
                "id": group_id,
                "state": g.get("state"),
                "generation": g.get("generation"),
                "members": members,
                "lag": lag,
            }
        )
    producers = [
        {"client_id": p["client_id"], "acks": p["acks"], "acked": p["acked"], "sent": p["sent"]}
        for p in snap.get("producers", [])
        if not p.get("closed")
    ]
    cut = [sorted(map(str, g)) for g in snap["network"].get("groups", [])]
    return {
        "now_ms": snap["now_ms"],
        "controllers": controllers,
        "brokers": brokers,
        "partitions": partitions,
        "groups": groups,
        "producers": producers,
        "network": " | ".join("{" + ", ".join(g) + "}" for g in cut),
    }
