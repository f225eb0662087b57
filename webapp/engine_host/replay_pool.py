"""Replays off the server's interpreter: worker processes that rebuild a cluster from its log.

Opening a share link or a saved state, forking a sandbox and making a share link replay a
command log: up to a second of pure-Python CPU each (the replay budget, webapp/timeline.py). In
a thread of the server process a replay holds the GIL, and the event loop that answers every
other visitor's pages and sockets waits for it (measured by scripts/loadtest_isolation.py: the
second visitor's p95 went from ~220 ms to 670-1,140 ms with share links opened every 2 s). So
replays run here, in a small pool of *separate processes*:

- `spawn`ed (never forked from a threaded server), each sets up Django once and lowers its own
  priority (`os.nice`): a replay is background work, a page or a command is not.
- At most `KAFKA_DOJO_REPLAY_WORKERS` processes (default 1: on a 2-core machine one core stays
  for the server); more replays queue (back-pressure, nothing is dropped).
- What crosses the process boundary is plain data: the spec and the log in, command times, a
  log prefix or rendered HTML out (a live `ClusterRuntime` holds closures and is not
  picklable, so a host's own start-up replay stays in a thread of its host, see registry.py).
- Workers are recycled after `MAX_TASKS_PER_WORKER` replays (bounded memory), a worker that
  died is replaced on the next call, and `shutdown()` (SIGTERM, see registry.py) kills them
  at once instead of waiting for a replay to finish.

`KAFKA_DOJO_REPLAY_WORKERS=0` runs replays in a thread instead (the old behaviour).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How much lower a replay worker's CPU priority is than the server's (Unix nice levels).
WORKER_NICE = 5
MAX_TASKS_PER_WORKER = 64

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def configured_workers() -> int:
    from django.conf import settings

    return max(0, int(getattr(settings, "DOJO_REPLAY_WORKERS", 1)))


def _worker_init(settings_module: str) -> None:
    """Runs once in each worker process: lower priority, Django set up, signals left to the
    parent (a Ctrl-C or SIGTERM to the process group must not print tracebacks here)."""
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    import django

    django.setup()


def _worker_pid() -> int:
    return os.getpid()


def pool() -> ProcessPoolExecutor:
    """The process's replay pool, started on first use."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=max(1, configured_workers()),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(os.environ.get("DJANGO_SETTINGS_MODULE", "webapp.settings"),),
                max_tasks_per_child=MAX_TASKS_PER_WORKER,
            )
        return _pool


def _discard(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    with contextlib.suppress(Exception):
        broken.shutdown(wait=False, cancel_futures=True)


async def run(func: Callable[..., T], /, **kwargs: Any) -> T:
    """`func(**kwargs)` in a replay worker process (a module-level function with picklable
    arguments and result); exceptions it raises are raised here."""
    if configured_workers() == 0:
        return await asyncio.to_thread(func, **kwargs)
    loop = asyncio.get_running_loop()
    call = functools.partial(func, **kwargs)
    for attempt in (1, 2):
        executor = pool()
        try:
            return await loop.run_in_executor(executor, call)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): a fresh pool gets one more try.
            logger.warning("replay worker died running %s (attempt %d)", func.__name__, attempt)
            _discard(executor)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def worker_pid() -> int:
    """The pid of a replay worker (tests check replays leave the server's process)."""
    return await run(_worker_pid)


def warm() -> None:
    """Start the workers now (spawning one and setting up Django takes seconds), so the first
    share link opened does not wait for it. Called once the server runs (registry.py)."""
    if configured_workers() > 0:
        with contextlib.suppress(Exception):
            pool().submit(_worker_pid)


def shutdown() -> None:
    """Stop the workers now (a controlled shutdown must not wait for a replay to end)."""
    global _pool
    with _lock:
        executor, _pool = _pool, None
    if executor is None:
        return
    processes = list(getattr(executor, "_processes", {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()
