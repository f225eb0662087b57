"""The room's stage as one role sees it: the host draws each version once, with every node
button the command table has (stop/start a broker or controller); a socket whose role may not
send some of them gets that version without them, cut out once per version and role (the
fan-out keeps the cut text beside the original, webapp/engine_host/fanout.py)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

from lessons.scenarios import COMMANDS

# The stage's node buttons (templates/sandbox/fragments/stage.html): a <g> holding a rect and a
# text, never another <g>.
_ACTION = re.compile(r'<g class="stage-action"[^>]*?data-command="([^"]*)"[^>]*>.*?</g>', re.S)
NODE_ACTION_COMMANDS = frozenset(name for name, spec in COMMANDS.items() if spec.node_actions)

StageView = Callable[[str], str]


def stage_view(offered: Iterable[str]) -> StageView | None:
    """The cut for a role offered `offered` commands, or None when it may use every button."""
    allowed = frozenset(offered) & NODE_ACTION_COMMANDS
    if allowed == NODE_ACTION_COMMANDS:
        return None
    return _view(allowed)


@functools.lru_cache(maxsize=16)
def _view(allowed: frozenset[str]) -> StageView:
    # One function per set: the fan-out keeps one cut text per version and function.
    def cut(html: str) -> str:
        if 'class="stage-action"' not in html:
            return html
        return _ACTION.sub(lambda m: m.group(0) if m.group(1) in allowed else "", html)

    return cut
