"""The player's action forms: one per command a lesson step enables, built from the command
table's own fields, pre-filled with the values of the step's show-me command (so the topic,
group or broker of the lesson is already there). They submit over the stage's socket, the
same path as every other form on the stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lessons.catalogue import Step
from lessons.scenarios import COMMANDS


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def command_forms(
    step: Step, show_me: list[Mapping[str, Any]], brokers: int
) -> list[dict[str, Any]]:
    """Form descriptions for the template: [{command, label, help, fields: [...]}]."""
    examples: dict[str, Mapping[str, Any]] = {}
    for payload in show_me:
        examples.setdefault(str(payload.get("type")), payload)
    forms = []
    for name in step.enabled:
        spec = COMMANDS[name]
        example = examples.get(name, {})
        fields = []
        for field in spec.fields:
            if field.widget == "none" and field.name not in example:
                continue
            raw = example.get(
                field.name, field.initial if field.initial is not None else field.default
            )
            entry = {
                "name": field.name,
                "label": field.label or field.name.replace("_", " "),
                "value": _value(raw),
                "input": "text",
                "choices": [],
                "min": field.min_value,
                "max": field.max_value,
            }
            if field.choices:
                entry["input"] = "select"
                entry["choices"] = [{"value": v, "label": label} for v, label in field.choices]
            elif field.type in ("int", "float"):
                entry["input"] = "number"
                if field.name == "broker_id":
                    entry["min"], entry["max"] = 1, brokers
            if field.widget == "hidden":
                # Hidden on the stage (always "orders" there); shown here, since lessons
                # use their own topics.
                entry["input"] = "text" if not field.choices else "select"
            fields.append(entry)
        forms.append({"command": name, "label": spec.label, "help": spec.help, "fields": fields})
    return forms
