"""The cheap paths of the lesson workload (issue 19) do what the paths they replaced did: the
same timers in the same order at the same times, the same random draws."""

from __future__ import annotations

import contextlib
from random import Random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import engine.cluster  # noqa: F401  (imports every request class)
from engine import Cluster
from engine.common.requests import Request
from engine.common.requests.fetch import FollowerFetchRequest
from engine.common.requests.produce import ProduceRequest
from engine.errors import KafkaError
from engine.server.partition import Partition
from engine.sim.clock import Scheduler
from engine.sim.network import Network, _randbelow
from engine.storage.producer_state import ProducerStateManager
from tests.engine.reference_paths import (
    ReferenceScheduler,
    reference_delay,
    reference_first_unstable_offset,
    reference_high_watermark,
)

# One step of a script run against both schedulers: schedule at/later (from the top level or
# from inside a running timer), cancel a timer made earlier, or run (with or without a stop).
_step = st.one_of(
    st.tuples(st.just("at"), st.integers(-5, 60), st.booleans()),
    st.tuples(st.just("later"), st.integers(-5, 60), st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 40), st.booleans()),
    st.tuples(st.just("run"), st.integers(0, 80), st.booleans()),
)


def _play(scheduler: Any, script: list[tuple[str, int, bool]]) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    timers: list[Any] = []
    ran = [0]

    def action(label: int, nested: bool) -> Any:
        def run() -> None:
            ran[0] += 1
            seen.append(("ran", label, scheduler.now_ms, scheduler.executed))
            if nested:
                # A timer that schedules another, as most engine timers do.
                timers.append(scheduler.call_later(label % 7, action(label + 1000, False)))

        return run

    for index, (op, value, flag) in enumerate(script):
        if op == "at":
            timers.append(scheduler.call_at(scheduler.now_ms + value, action(index, flag)))
        elif op == "later":
            timers.append(scheduler.call_later(value, action(index, flag)))
        elif op == "cancel":
            if timers:
                timers[value % len(timers)].cancel()
        else:
            target = ran[0] + 2
            stop = (lambda target=target: ran[0] >= target) if flag else None
            stopped = scheduler.run_until(scheduler.now_ms + value, stop)
            seen.append(("run", stopped, scheduler.now_ms, scheduler.executed))
    return seen


@settings(max_examples=300, deadline=None)
@given(st.lists(_step, max_size=60))
def test_scheduler_runs_what_the_reference_runs(script: list[tuple[str, int, bool]]) -> None:
    assert _play(Scheduler(), script) == _play(ReferenceScheduler(), script)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 300), st.integers(1, 60))
def test_exact_draw_is_randint_on_the_same_stream(seed: int, n: int, draws: int) -> None:
    fast, reference = Random(seed), Random(seed)
    assert [_randbelow(fast, n) for _ in range(draws)] == [
        reference.randint(0, n - 1) for _ in range(draws)
    ]
    assert fast.random() == reference.random()  # the streams are left in the same state


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 20), st.integers(0, 9), st.integers(1, 30))
def test_network_delays_are_the_reference_delays(
    seed: int, latency: int, jitter: int, messages: int
) -> None:
    scheduler = Scheduler()
    network = Network(scheduler, Random(seed), latency, jitter)
    arrivals: list[int] = []
    for index in range(messages):
        network.send(index % 3, "client-1", "kind", lambda: arrivals.append(scheduler.now_ms))
    assert [m.arrives_ms for m in network.in_flight.values()] == _per_link(
        Random(seed), latency, jitter, messages
    )
    scheduler.run_until(10_000)
    assert sorted(arrivals) == sorted(_per_link(Random(seed), latency, jitter, messages))
    assert not network.in_flight


def _per_link(rng: Random, latency: int, jitter: int, messages: int) -> list[int]:
    """When each message arrives: the reference delay, in send order on each link."""
    last: dict[int, int] = {}
    out = []
    for index in range(messages):
        arrives = max(reference_delay(rng, latency, jitter), last.get(index % 3, 0))
        last[index % 3] = arrives
        out.append(arrives)
    return out


class _Subclassed(Random):
    """A Random that overrides random(): randint then draws through random(), not getrandbits."""

    def random(self) -> float:
        return super().random()


def test_a_random_subclass_keeps_randint() -> None:
    network = Network(Scheduler(), _Subclassed(3), 5, 4)
    reference = _Subclassed(3)
    assert [network.delay() for _ in range(50)] == [
        reference_delay(reference, 5, 4) for _ in range(50)
    ]


# Faults and traffic for a replicated partition: the HW and the last stable offset must follow
# the reference computations through ISR shrinks and expansions, leader changes and restarts.
_fault = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 4)),
    st.tuples(st.just("advance"), st.integers(1, 400)),
    st.tuples(st.just("stop"), st.integers(1, 3)),
    st.tuples(st.just("start"), st.integers(1, 3)),
    st.tuples(st.just("cut"), st.integers(1, 3)),
    st.tuples(st.just("heal"), st.just(0)),
    st.tuples(st.just("txn"), st.integers(1, 3)),
)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1000), st.lists(_fault, min_size=1, max_size=25))
def test_high_watermark_and_stable_offset_follow_the_references(
    seed: int, script: list[tuple[str, int]]
) -> None:
    checked = [0]
    original = Partition.maybe_increment_high_watermark
    original_unstable = ProducerStateManager.first_unstable_offset

    def checked_hw(self: Partition) -> bool:
        expected = reference_high_watermark(self)
        before = self.log.high_watermark
        moved = original(self)
        assert moved == (expected is not None)
        assert self.log.high_watermark == (before if expected is None else expected)
        checked[0] += 1
        return moved

    def checked_unstable(self: ProducerStateManager) -> int | None:
        found = original_unstable(self)
        assert found == reference_first_unstable_offset(self)
        return found

    Partition.maybe_increment_high_watermark = checked_hw  # type: ignore[method-assign]
    ProducerStateManager.first_unstable_offset = checked_unstable  # type: ignore[method-assign]
    try:
        cluster = Cluster(brokers=3, seed=seed)
        cluster.create_topic("t", 2, 3, {"min.insync.replicas": 2})
        producer = cluster.producer({"acks": "all", "linger.ms": 0, "retries": 0})
        transactional = cluster.producer({"transactional.id": "tx", "linger.ms": 0})
        transactional.init_transactions()
        stopped: set[int] = set()
        for op, value in script:
            if op == "send":
                for index in range(value):
                    producer.send("t", value=b"v%d" % index, key=b"k%d" % index)
            elif op == "advance":
                cluster.advance(value)
            elif op == "stop" and value not in stopped and len(stopped) < 2:
                cluster.stop_broker(value)
                stopped.add(value)
            elif op == "start" and value in stopped:
                cluster.start_broker(value)
                stopped.discard(value)
            elif op == "cut":
                cluster.partition_network([{value}])
            elif op == "heal":
                cluster.heal_network()
            elif op == "txn" and not stopped:
                with contextlib.suppress(KafkaError):
                    transactional.begin_transaction()
                    transactional.send("t", value=b"t", key=b"k%d" % value)
                    cluster.advance(50)
                    transactional.commit_transaction()
        cluster.advance(2000)
    finally:
        Partition.maybe_increment_high_watermark = original  # type: ignore[method-assign]
        ProducerStateManager.first_unstable_offset = original_unstable  # type: ignore[method-assign]
    assert checked[0] > 0


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_request_travels_under_the_kind_its_api_names() -> None:
    requests = [cls for cls in _subclasses(Request) if hasattr(cls, "api_key")]
    assert len(requests) > 30
    for cls in requests:
        assert cls.kind() == (cls.network_kind or cls.api_key.name.lower())
    assert FollowerFetchRequest.kind() == "replica_fetch"
    assert ProduceRequest.kind() == "produce"


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32))
def test_compacting_the_heap_keeps_the_order_of_timers(seed: int) -> None:
    # Thousands of long timers, most of them cancelled (as request timeouts are), between short
    # ones and runs: the scheduler drops the cancelled ones from its heap now and then, the
    # reference never does; the same timers run in the same order at the same times.
    def play(scheduler: Any) -> tuple[list[tuple[int, int]], int]:
        rng = Random(seed)
        ran: list[tuple[int, int]] = []
        timers: list[Any] = []
        for index in range(5000):
            delay = rng.randint(20_000, 30_000) if rng.random() < 0.7 else rng.randint(0, 50)
            timers.append(
                scheduler.call_later(delay, lambda i=index: ran.append((i, scheduler.now_ms)))
            )
            if rng.random() < 0.8:
                # Mostly one of the latest few, as an answered request cancels its timeout.
                timers[max(0, len(timers) - 1 - rng.randrange(5))].cancel()
            if rng.random() < 0.05:
                scheduler.run_until(scheduler.now_ms + rng.randint(0, 30))
        heap_size = len(scheduler._heap)
        scheduler.run_until(scheduler.now_ms + 40_000)
        return ran, heap_size

    fast, fast_heap = play(Scheduler())
    reference, reference_heap = play(ReferenceScheduler())
    assert fast == reference
    assert fast_heap < reference_heap  # cancelled timers were dropped along the way
