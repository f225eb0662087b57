"""Forms for every command a learner sends, shared by the WebSocket consumer and the views."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from webapp.engine_host.limits import DEFAULT_STEP_MS, MAX_PRODUCE_COUNT, SPEEDS, TICK_MS

TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


class CommandForm(forms.Form):
    command_type: str = ""

    def to_command(self) -> dict[str, Any]:
        return {"type": self.command_type, **self.cleaned_data}


class ProduceForm(CommandForm):
    command_type = "produce"

    topic = forms.CharField(max_length=249, initial="orders", widget=forms.HiddenInput)
    key = forms.CharField(
        max_length=200,
        required=False,
        help_text="Records with the same key go to the same partition. Empty: no key.",
    )
    value = forms.CharField(
        max_length=1000,
        error_messages={"required": "Type a value for the record."},
    )
    count = forms.IntegerField(
        min_value=1,
        max_value=MAX_PRODUCE_COUNT,
        initial=1,
        error_messages={
            "min_value": "Send at least 1 record.",
            "max_value": f"Send at most {MAX_PRODUCE_COUNT} records at a time.",
            "invalid": "Count must be a whole number.",
        },
    )

    def clean_topic(self) -> str:
        topic: str = self.cleaned_data["topic"]
        if topic in {".", ".."} or not TOPIC_NAME.match(topic):
            raise ValidationError(
                "A topic name uses letters, digits, '.', '_' and '-' (1 to 249 characters)."
            )
        return topic

    def clean_key(self) -> str | None:
        key: str = self.cleaned_data.get("key", "")
        return key or None


class BrokerForm(CommandForm):
    broker_id = forms.IntegerField(
        min_value=1, error_messages={"invalid": "A broker id is a whole number."}
    )

    def __init__(
        self, *args: Any, brokers: int = 3, action: str = "stop_broker", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.brokers = brokers
        self.command_type = action

    def clean_broker_id(self) -> int:
        broker_id: int = self.cleaned_data["broker_id"]
        if broker_id > self.brokers:
            raise ValidationError(
                f"There is no broker {broker_id}: this cluster has brokers 1 to {self.brokers}."
            )
        return broker_id


class SpeedForm(CommandForm):
    command_type = "speed"

    speed = forms.TypedChoiceField(
        choices=[(f"{s:g}", f"{s:g}x") for s in SPEEDS],
        coerce=float,
        error_messages={
            "invalid_choice": "Speed must be one of " + ", ".join(f"{s:g}" for s in SPEEDS) + "."
        },
    )

    def clean_speed(self) -> float:
        return float(self.cleaned_data["speed"])


class StepForm(CommandForm):
    command_type = "step"

    ms = forms.IntegerField(
        min_value=TICK_MS,
        max_value=60_000,
        initial=DEFAULT_STEP_MS,
        required=False,
        error_messages={
            "min_value": f"A step is at least {TICK_MS} ms.",
            "max_value": "A step is at most 60000 ms (one minute).",
            "invalid": "A step is a whole number of milliseconds.",
        },
    )

    def clean_ms(self) -> int:
        ms: int | None = self.cleaned_data.get("ms")
        if ms is None:
            return DEFAULT_STEP_MS
        if ms % TICK_MS:
            raise ValidationError(f"A step is a multiple of {TICK_MS} ms.")
        return ms


class EmptyForm(CommandForm):
    """Commands without fields (pause, resume)."""

    def __init__(self, *args: Any, action: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.command_type = action


def form_errors_text(form: forms.Form) -> str:
    """One readable sentence from a form's errors."""
    parts = []
    for field_name, errors in form.errors.items():
        label = "" if field_name == "__all__" else f"{field_name}: "
        parts.append(label + " ".join(str(e) for e in errors))
    return "; ".join(parts)
