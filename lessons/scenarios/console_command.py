"""The `console` command of the table: one Kafka CLI line run on the runtime's cluster.

The runtime keeps one console session (`lessons.console.ConsoleSession`) for its cluster, so a
tool left running by a line (a console producer reading lines, a console consumer tailing) stays
with the cluster: replaying the command log repeats the same lines and the same clock, and ends
with the same session and the same cluster. A tailing consumer is a host-owned client on the live
clock: `tick_console` runs it on every tick of the runtime and keeps what it prints in
`runtime.console_output` until the host hands it to the stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lessons.console import ConsoleSession
from lessons.scenarios.results import ApplyResult

if TYPE_CHECKING:
    from lessons.scenarios.runtime import ClusterRuntime

MAX_LINE = 4000  # characters in one console entry (a command and any lines pasted after it)
MAX_PENDING = 200  # tail chunks kept for the stage before the oldest are dropped


def console_session(runtime: ClusterRuntime) -> ConsoleSession:
    session: ConsoleSession | None = getattr(runtime, "console", None)
    if session is None:
        session = ConsoleSession(runtime.cluster)
        runtime.console = session
    return session


def apply_console(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    """Run the line; the result's message is what the tool printed (both streams, in order)."""
    session = console_session(runtime)
    # What a running tool printed on the clock since the stage last took it comes first, so the
    # answer to ^C reads in order.
    earlier = take_console_output(runtime) if session.foreground is not None else ""
    out = session.run(str(payload.get("line", "")))
    return ApplyResult(ok=True, message=earlier + out.text)


def console_state(runtime: ClusterRuntime) -> dict[str, Any]:
    """What the console panel shows next to the answer: the prompt and whether a tool runs."""
    session: ConsoleSession | None = getattr(runtime, "console", None)
    if session is None:
        return {"prompt": "$ ", "running": False}
    return {"prompt": session.prompt, "running": session.foreground is not None}


def tick_console(runtime: ClusterRuntime) -> None:
    session: ConsoleSession | None = getattr(runtime, "console", None)
    if session is None or session.foreground is None:
        return
    text = session.tick().text
    if text:
        pending: list[str] = runtime.console_output
        pending.append(text)
        del pending[:-MAX_PENDING]


def take_console_output(runtime: ClusterRuntime) -> str:
    pending: list[str] = getattr(runtime, "console_output", [])
    text = "".join(pending)
    pending.clear()
    return text


def check_line(value: Any, limits: Any) -> str:
    from lessons.scenarios.fields import FieldError

    if not isinstance(value, str):
        raise FieldError("A console line is text.")
    if len(value) > MAX_LINE:
        raise FieldError(f"A console line is at most {MAX_LINE} characters.")
    return value
