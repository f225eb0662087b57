"""Incremental fetch sessions on the wire (KIP-227, Fetch v7+), kept by the listener.

A consumer that sends `session_id=0, session_epoch=0` asks its broker for a session: the broker
answers a full fetch with a new session id, and from then on the consumer sends only what
changed (partitions added or with a new fetch offset, and `forgotten_topics_data`) with the
session's next epoch; the broker answers only the partitions with something new (records, a
changed high watermark, last stable or log start offset, or an error). Kafka's rules kept here
(`FetchSession.scala`, `FetchManager.newContext`):

* epoch -1 (FINAL): no session; with a session id, that session is closed first;
* an unknown session id is FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH
  (the consumer then starts over with a full fetch);
* a partition's cached high watermark starts at -1, so a new partition is always answered once;
  an error resets it, so the partition is answered again next time;
* partitions that returned records move to the end of the session, so the next fetch's byte
  limit favours the others (Kafka rotates them the same way);
* each broker holds at most `max.incremental.fetch.session.cache.slots` (1000) sessions; when it
  is full a new request is served sessionless (session id 0), as Kafka does when no session
  can be evicted (Kafka may evict an older, less active one first: not done here).

The sessions live above the engine: what reaches the engine (and the command log) is always
the full list of the session's partitions, so a replay does not depend on them; a broker that
stops forgets its sessions, as a restarted Kafka broker does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

INITIAL_EPOCH = 0
FINAL_EPOCH = -1
CACHE_SLOTS = 1000


@dataclass
class _Cached:
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1


@dataclass
class FetchSession:
    id: int
    epoch: int  # the epoch the next request must carry
    partitions: dict[tuple[str, int], _Cached] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """A Fetch resolved against the sessions: the partitions the engine reads (None when the
    request is answered at once with `error`) and how to filter the answer."""

    partitions: list[dict[str, Any]] | None
    error: str = ""
    session: FetchSession | None = None
    response_session_id: int = 0
    incremental: bool = False


class FetchSessions:
    """The fetch sessions of one broker's listener."""

    def __init__(self, slots: int = CACHE_SLOTS, rng: random.Random | None = None) -> None:
        self.slots = slots
        self.sessions: dict[int, FetchSession] = {}
        self._rng = rng or random.Random()
        self.incremental_fetches = 0  # served from a session (for tests and the report)

    def clear(self) -> None:
        self.sessions.clear()

    def _new_id(self) -> int:
        while True:
            candidate = self._rng.randint(1, 2**31 - 1)
            if candidate not in self.sessions:
                return candidate

    def prepare(
        self,
        session_id: int,
        epoch: int,
        partitions: list[dict[str, Any]],
        forgotten: list[tuple[str, int]],
    ) -> Prepared:
        if epoch == FINAL_EPOCH:
            self.sessions.pop(session_id, None)
            return Prepared(partitions)
        if session_id == 0:
            if epoch != INITIAL_EPOCH:
                return Prepared(None, "INVALID_FETCH_SESSION_EPOCH")
            if len(self.sessions) >= self.slots:
                return Prepared(partitions)  # full: served sessionless
            session = FetchSession(self._new_id(), 1)
            for part in partitions:
                session.partitions[_key(part)] = _cached(part)
            self.sessions[session.id] = session
            return Prepared(partitions, session=session, response_session_id=session.id)
        found = self.sessions.get(session_id)
        if found is None:
            return Prepared(None, "FETCH_SESSION_ID_NOT_FOUND")
        if epoch != found.epoch:
            return Prepared(None, "INVALID_FETCH_SESSION_EPOCH")
        found.epoch = 1 if found.epoch == 2**31 - 1 else found.epoch + 1
        self.incremental_fetches += 1
        for part in partitions:
            key = _key(part)
            cached = found.partitions.get(key)
            if cached is None:
                found.partitions[key] = _cached(part)
            else:
                cached.fetch_offset = int(part["fetch_offset"])
                cached.partition_max_bytes = int(part["partition_max_bytes"])
                cached.current_leader_epoch = int(part.get("current_leader_epoch", -1))
        for key in forgotten:
            found.partitions.pop(key, None)
        every = [
            {
                "topic": topic,
                "partition": number,
                "fetch_offset": c.fetch_offset,
                "partition_max_bytes": c.partition_max_bytes,
                "current_leader_epoch": c.current_leader_epoch,
            }
            for (topic, number), c in found.partitions.items()
        ]
        return Prepared(every, session=found, response_session_id=found.id, incremental=True)

    def answer(self, prepared: Prepared, response: dict[str, Any]) -> dict[str, Any]:
        """The engine's answer as the session sends it: cached offsets updated; for an
        incremental fetch only the partitions with news, and those with records rotated to the
        end of the session."""
        session = prepared.session
        if session is None:
            return response
        kept: list[dict[str, Any]] = []
        rotate: list[tuple[str, int]] = []
        for part in response.get("partitions", []):
            key = (str(part["topic"]), int(part["partition"]))
            cached = session.partitions.get(key)
            if cached is None:  # forgotten meanwhile
                continue
            news = bool(part.get("batches"))
            if part.get("error"):
                news = True
                cached.high_watermark = -1  # answered again next time
            else:
                for name in ("high_watermark", "last_stable_offset", "log_start_offset"):
                    if getattr(cached, name) != part[name]:
                        setattr(cached, name, part[name])
                        news = True
            if part.get("batches"):
                rotate.append(key)
            if news or not prepared.incremental:
                kept.append(part)
        if prepared.incremental:
            for key in rotate:
                session.partitions[key] = session.partitions.pop(key)
        return {**response, "partitions": kept}


def _key(part: dict[str, Any]) -> tuple[str, int]:
    return (str(part["topic"]), int(part["partition"]))


def _cached(part: dict[str, Any]) -> _Cached:
    return _Cached(
        int(part["fetch_offset"]),
        int(part["partition_max_bytes"]),
        int(part.get("current_leader_epoch", -1)),
    )
