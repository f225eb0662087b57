"""The simulated network between brokers, controllers and clients.

Every message is delivered after `sim.network.latency.ms` plus a small seeded jitter, unless the
sender and receiver are on different sides of a network partition, or the receiver is down, when
it arrives. Messages in flight are kept so the stage can draw them travelling.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from heapq import heappush
from random import Random

from engine.sim.clock import COMPACT_EVERY, Scheduler, Timer

CLIENTS = "clients"
Node = Hashable


@dataclass(slots=True)
class InFlight:
    id: int
    source: str
    destination: str
    kind: str
    sent_ms: int
    arrives_ms: int


def node_name(node: Node) -> str:
    return node if isinstance(node, str) else str(node)


class Network:
    def __init__(self, scheduler: Scheduler, rng: Random, latency_ms: int, jitter_ms: int) -> None:
        self.scheduler = scheduler
        self.rng = rng
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self._side: dict[Node, int] = {}
        self._default_side = 0
        self.partitioned = False
        self.groups: list[set[Node]] = []
        self.in_flight: dict[int, InFlight] = {}
        self._last_arrival: dict[tuple[Node, Node], int] = {}
        self._next_id = 0
        self.is_up: Callable[[Node], bool] = lambda node: True
        # A plain Random draws randint(0, n - 1) as _randbelow does below (checked, not assumed).
        self._exact_draw = getattr(type(rng), "_randbelow", None) is getattr(
            Random, "_randbelow_with_getrandbits", object()
        )
        self.on_change: list[Callable[[], None]] = []
        # Requests sent per API (the request's kind) and error codes answered per API: the
        # stage's request rates and errors (Kafka's RequestsPerSec and ErrorsPerSec).
        self.requests: Counter[str] = Counter()
        self.request_errors: dict[str, Counter[str]] = {}

    # A client's node id is the word "clients" for reachability purposes.
    @staticmethod
    def side_key(node: Node) -> Node:
        return CLIENTS if isinstance(node, str) and node.startswith("client") else node

    def partition(self, groups: Collection[Collection[Node]]) -> None:
        self._side = {}
        for position, group in enumerate(groups, start=1):
            for node in group:
                self._side[self.side_key(node)] = position
        self._default_side = len(groups) + 1
        self.groups = [set(group) for group in groups]
        self.partitioned = bool(groups)
        for callback in self.on_change:
            callback()

    def heal(self) -> None:
        self.partition([])

    def reachable(self, a: Node, b: Node) -> bool:
        if not self.partitioned:
            return True
        side_a = self._side.get(self.side_key(a), self._default_side)
        side_b = self._side.get(self.side_key(b), self._default_side)
        return side_a == side_b

    def delay(self) -> int:
        jitter = self.jitter_ms
        if jitter <= 0:
            return self.latency_ms
        if self._exact_draw:
            return self.latency_ms + _randbelow(self.rng, jitter + 1)
        return self.latency_ms + self.rng.randint(0, jitter)

    def send(self, source: Node, destination: Node, kind: str, deliver: Callable[[], None]) -> bool:
        """Send a message; `deliver` runs on arrival if the path and receiver are still up.

        Returns False when the message is dropped at once (no path)."""
        if self.partitioned and not self.reachable(source, destination):
            return False
        self._next_id = message_id = self._next_id + 1
        scheduler = self.scheduler
        now = scheduler.now_ms
        # delay(), inlined: the same draw from the same random stream.
        jitter = self.jitter_ms
        if jitter <= 0:
            arrives = now + self.latency_ms
        elif self._exact_draw:
            # _randbelow(rng, jitter + 1), inlined.
            bound = jitter + 1
            getrandbits = self.rng.getrandbits
            bits = bound.bit_length()
            draw = getrandbits(bits)
            while draw >= bound:
                draw = getrandbits(bits)
            arrives = now + self.latency_ms + draw
        else:
            arrives = now + self.latency_ms + self.rng.randint(0, jitter)
        # One connection per pair of nodes, like TCP: messages arrive in the order they were sent.
        link = (source, destination)
        last_arrival = self._last_arrival
        previous = last_arrival.get(link, 0)
        if previous > arrives:
            arrives = previous
        last_arrival[link] = arrives
        in_flight = self.in_flight
        in_flight[message_id] = InFlight(
            message_id,
            source if type(source) is str else str(source),
            destination if type(destination) is str else str(destination),
            kind,
            now,
            arrives,
        )

        def arrive() -> None:
            in_flight.pop(message_id, None)
            if (not self.partitioned or self.reachable(source, destination)) and self.is_up(
                destination
            ):
                deliver()

        # scheduler.call_at(arrives, arrive), inlined.
        due = arrives if arrives > now else now
        scheduler._sequence = sequence = scheduler._sequence + 1
        heappush(scheduler._heap, (due, sequence, Timer(due, arrive)))
        if not sequence & COMPACT_EVERY:
            scheduler.compact()
        return True


def _randbelow(rng: Random, n: int) -> int:
    """`rng.randint(0, n - 1)` for a plain `Random`: the same draws from the same stream
    (CPython's `_randbelow_with_getrandbits`), without randint's and randrange's checks."""
    getrandbits = rng.getrandbits
    k = n.bit_length()
    r = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return r


class _Disconnected:
    """The reply a sender gets when the receiver's process is down (connection refused)."""

    def __repr__(self) -> str:
        return "DISCONNECTED"


DISCONNECTED = _Disconnected()


def response_errors(response: object) -> list[str]:
    """The error codes a response carries: a bare code (`"NOT_LEADER_OR_FOLLOWER"`), per
    partition results `(code, ...)`, or mappings with an `"error"` key; `""`/`"NONE"` is none."""
    found: list[str] = []
    for item in response if isinstance(response, list) else [response]:
        _visit(item, 0, found)
    return found


def _code(value: object) -> str:
    if isinstance(value, str) and value not in ("", "NONE") and value.isupper():
        return value
    return ""


def _visit(item: object, depth: int, found: list[str]) -> None:
    if isinstance(item, tuple) and item and isinstance(item[0], str):
        item = item[0]  # a per-partition result `(code, ...)`
    elif isinstance(item, dict):
        item = item.get("error", "")
    else:
        names = getattr(item, "__dataclass_fields__", None)
        if depth < 3 and names is not None:
            # A request object's response: its own error, then its per-topic or per-partition
            # results (ProduceResponse.responses, MetadataResponse.topics, ...).
            name = _code(getattr(item, "error", ""))
            if name:
                found.append(name)
            for field_name in names:
                value = getattr(item, field_name)
                if isinstance(value, tuple | list):
                    for part in value:
                        if hasattr(part, "__dataclass_fields__"):
                            _visit(part, depth + 1, found)
            return
        item = getattr(item, "error", item)
    name = _code(item)
    if name:
        found.append(name)


def request(
    network: Network,
    source: Node,
    destination: Node,
    kind: str,
    receiver_alive: Callable[[], bool],
    handle: Callable[[Callable[[object], None]], None],
    on_reply: Callable[[object], None],
    lose_reply: Callable[[], bool] = lambda: False,
) -> None:
    """A request and its reply over the network.

    `handle(reply)` runs at the receiver on arrival; `reply(response)` sends the response back.
    A dead receiver answers DISCONNECTED (as a refused connection would); an unreachable one
    answers nothing, so the sender's own timeout decides. `lose_reply()` lets a broker drop
    the response on the way back (Cluster.lose_responses).
    """

    def arrive() -> None:
        if not receiver_alive():
            network.request_errors.setdefault(kind, Counter())["NETWORK_EXCEPTION"] += 1
            network.send(destination, source, "disconnect", lambda: on_reply(DISCONNECTED))
            return

        def reply(response: object) -> None:
            for error in response_errors(response):
                network.request_errors.setdefault(kind, Counter())[error] += 1
            if lose_reply():
                return
            network.send(destination, source, kind + "_response", lambda: on_reply(response))

        handle(reply)

    network.requests[kind] += 1
    network.send(source, destination, kind, arrive)
