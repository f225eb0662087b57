"""A lesson step's live goal on the engine host: set by the lesson page, checked after every
tick of the clock and every command, drawn as the `lesson-goal` fragment of the state.

The checking itself is `lessons.walkthrough.GoalWatch` (the same code the automated
walk-through uses); this module only builds it from a host message and renders it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lessons.catalogue import Lesson, get_catalogue
from lessons.scenarios import ClusterRuntime
from lessons.walkthrough import GoalWatch, watch_start, widget_values
from webapp.engine_host.templating import render_to_string


class WatchRefused(ValueError):
    pass


def watch_from_message(message: Mapping[str, Any], runtime: ClusterRuntime) -> GoalWatch:
    """The watch a `host.watch` message asks for: {"lesson", "step", "since": [index, ms]}
    (no `since`: the step starts now)."""
    lesson = get_catalogue().lesson(str(message.get("lesson", "")))
    if lesson is None:
        raise WatchRefused(f"There is no lesson {message.get('lesson')!r}.")
    try:
        step = int(message.get("step", -1))
    except (TypeError, ValueError):
        step = -1
    if not 0 <= step < lesson.step_count:
        raise WatchRefused(f"Lesson {lesson.id} has no step {message.get('step')!r}.")
    since = message.get("since")
    if since is None:
        return watch_start(lesson, step, runtime)
    try:
        index, since_ms = int(since[0]), int(since[1])
    except (TypeError, ValueError, IndexError):
        raise WatchRefused("since is [event index, cluster ms].") from None
    index = max(0, min(index, runtime.cluster.event_count))
    return GoalWatch(lesson=lesson, step_index=step, since_index=index, since_ms=since_ms)


def _choice_label(lesson: Lesson, step_index: int, value: Any) -> str:
    predict = lesson.steps[step_index].predict
    if predict is None:
        return ""
    for choice in predict.choices:
        if choice.value == value:
            return choice.label
    return json.dumps(value, default=str)


def render(watch: GoalWatch, runtime: ClusterRuntime) -> str:
    status = watch.status()
    step = watch.lesson.steps[watch.step_index]
    context = {
        "status": status,
        "done_seconds": (status["done_ms"] or 0) / 1000,
        "elapsed_seconds": max(0, runtime.now_ms - watch.since_ms) / 1000,
        "key_label": _choice_label(watch.lesson, watch.step_index, status["key"])
        if status["key_read"]
        else "",
        "key_json": json.dumps(status["key"], default=str),
        "widget": widget_values(runtime, step.widget) if step.widget else None,
    }
    return render_to_string("lessons/fragments/goal.html", context)
