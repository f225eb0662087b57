"""Numbers shared by the command table, the runtime, the host and the forms derived from them."""

from __future__ import annotations

# Time moves in quanta aligned to multiples of TICK_MS, so a coalesced `advance` entry in the
# log replays as exactly the engine calls the live clock made, however the ticks were grouped.
TICK_MS = 10
MAX_PRODUCE_COUNT = 100
SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
DEFAULT_STEP_MS = 100
