"""Django forms for every command, derived from the command table (`lessons.scenarios`).

A form's fields (labels, initial values, widgets) come from the command's table entry, and its
validation is the table's own `validate`, so the no-JavaScript views, the WebSocket consumer, the
scenario loader and the console accept and refuse exactly the same input with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django import forms
from django.forms.utils import ErrorDict

from lessons.scenarios import COMMANDS, CommandSpec, Field, Limits, commands_for, validate

WIDGETS: dict[str, type[forms.Widget]] = {
    "hidden": forms.HiddenInput,
    "number": forms.NumberInput,
    "select": forms.Select,
}


def _django_field(spec: Field) -> forms.Field:
    widget = WIDGETS.get(spec.widget)
    kwargs: dict[str, Any] = {
        "required": spec.required,
        "label": spec.label or None,
        "help_text": spec.help,
        "initial": spec.initial if spec.initial is not None else spec.default,
    }
    if spec.choices:
        return forms.ChoiceField(
            choices=list(spec.choices), widget=widget or forms.Select, **kwargs
        )
    if spec.type == "int":
        return forms.IntegerField(widget=widget or forms.NumberInput, **kwargs)
    if spec.type == "float":
        return forms.FloatField(widget=widget or forms.NumberInput, **kwargs)
    return forms.CharField(max_length=spec.max_length, widget=widget or forms.TextInput, **kwargs)


class CommandForm(forms.Form):
    """A form of one command; cleaning is the table's `validate` (Django fields only render)."""

    command_type: str = ""
    spec: ClassVar[CommandSpec]

    def __init__(
        self,
        *args: Any,
        brokers: int = 3,
        controllers: int = 3,
        action: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limits = Limits(brokers=brokers, controllers=controllers)
        if action is not None:  # a form shared by several commands (e.g. stop / start broker)
            self.spec = COMMANDS[action]
            self.command_type = action

    def full_clean(self) -> None:
        self._errors = ErrorDict()
        self.cleaned_data = {}
        if not self.is_bound:
            return
        raw = {name: self.data.get(name) for name in self.spec.field_names}
        # A form sends every field: a missing one is an error, as it always was on the stage.
        payload, errors = validate(self.spec, raw, runtime_limits=self.limits, defaults=False)
        self.cleaned_data = {k: v for k, v in payload.items() if k != "type"}
        for name, messages in errors.items():
            if name == "__all__":
                self._errors[name] = self.error_class(messages, error_class="nonfield")
            else:
                self._errors[name] = self.error_class(messages)

    def to_command(self) -> dict[str, Any]:
        return {"type": self.command_type, **self.cleaned_data}


def form_class(name: str) -> type[CommandForm]:
    """The form of command `name`, built once from its table entry."""
    cached = _FORMS.get(name)
    if cached is not None:
        return cached
    spec = COMMANDS[name]
    attrs: dict[str, Any] = {
        "command_type": name,
        "spec": spec,
        "__module__": __name__,
        **{f.name: _django_field(f) for f in spec.fields if f.widget != "none"},
    }
    title = "".join(part.title() for part in name.split("_"))
    built = type(f"{title}Form", (CommandForm,), attrs)
    _FORMS[name] = built
    return built


_FORMS: dict[str, type[CommandForm]] = {}


def command_form(kind: str, data: Any, *, brokers: int = 3, controllers: int = 3) -> CommandForm:
    """The form that validates one command of the table (from the socket or a view)."""
    return form_class(kind)(data, brokers=brokers, controllers=controllers)


def form_errors_text(form: forms.Form) -> str:
    """One readable sentence from a form's errors."""
    parts = []
    for field_name, errors in form.errors.items():
        label = "" if field_name == "__all__" else f"{field_name}: "
        parts.append(label + " ".join(str(e) for e in errors))
    return "; ".join(parts)


# Every command a learner may send has its form; the stage's actions are those with a stage form.
FORMS: dict[str, type[CommandForm]] = {name: form_class(name) for name in commands_for("learner")}
ACTION_FORMS: dict[str, type[CommandForm]] = {
    name: FORMS[name] for name, spec in COMMANDS.items() if name in FORMS and spec.form
}
ProduceForm = FORMS["produce"]
SpeedForm = FORMS["speed"]
StepForm = FORMS["step"]
BrokerForm = FORMS["stop_broker"]  # pass action="start_broker" (or shutdown) for the others


def action_form(
    kind: str, data: dict[str, Any], *, brokers: int, controllers: int = 3
) -> CommandForm:
    """The form that validates one stage action from the socket."""
    return command_form(kind, data, brokers=brokers, controllers=controllers)


# -- the stage's action forms, laid out from the table ----------------------------------------


@dataclass(frozen=True)
class StageField:
    name: str
    dom_id: str
    label: str
    kind: str  # "hidden", "select", "number" or "text"
    value: str = ""
    options: tuple[tuple[str, str], ...] = ()
    min: str = ""
    max: str = ""
    step: str = ""
    placeholder: str = ""
    help: str = ""


@dataclass(frozen=True)
class StageButton:
    command: str
    text: str
    danger: bool = False
    action: str = ""


@dataclass(frozen=True)
class StageForm:
    id: str
    panel: str
    command: str  # the command the form sends unless a button picks another
    fields: tuple[StageField, ...]
    buttons: tuple[StageButton, ...]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _stage_field(form_id: str, spec: Field, limits: Limits) -> StageField | None:
    if spec.widget == "none":
        return None
    value = spec.initial if spec.initial is not None else spec.default
    text = "" if value is None else str(value)
    common = {
        "name": spec.name,
        "dom_id": f"{form_id}-{spec.name}".replace("_", "-"),
        "label": spec.label or spec.name.replace("_", " "),
        "placeholder": spec.placeholder,
        "help": spec.help,
    }
    if spec.widget == "hidden":
        return StageField(kind="hidden", value=text, **common)
    if spec.widget == "broker":
        ids = tuple((str(i), str(i)) for i in range(1, limits.brokers + 1))
        return StageField(kind="select", options=ids, value=ids[0][0] if ids else "", **common)
    if spec.widget == "controller":
        ids = tuple((str(i), str(i)) for i in range(101, 101 + limits.controllers))
        return StageField(kind="select", options=ids, value=ids[0][0] if ids else "", **common)
    if spec.choices:
        return StageField(kind="select", options=spec.choices, value=text, **common)
    if spec.type in ("int", "float"):
        high = spec.max_value
        if spec.name == "replication_factor":
            high = min(high or limits.brokers, limits.brokers)
            text = str(min(int(text or 1), limits.brokers))
        return StageField(
            kind="number",
            value=text,
            min=_number(spec.min_value),
            max=_number(high),
            step="any" if spec.type == "float" else "",
            **common,
        )
    return StageField(kind="text", value=text, **common)


def stage_forms(*, brokers: int, controllers: int) -> list[StageForm]:
    """The stage's action forms in table order: the commands sharing a form id share one form
    (their fields merged, one button each)."""
    limits = Limits(brokers=brokers, controllers=controllers)
    grouped: dict[str, list[CommandSpec]] = {}
    for spec in commands_for("learner").values():
        if spec.form:
            grouped.setdefault(spec.form, []).append(spec)
    out = []
    for form_id, specs in grouped.items():
        fields: dict[str, StageField] = {}
        for spec in specs:
            for field_spec in spec.fields:
                if field_spec.name not in fields:
                    built = _stage_field(form_id.replace("_", "-"), field_spec, limits)
                    if built is not None:
                        fields[field_spec.name] = built
        buttons = tuple(
            StageButton(spec.name, button.text, button.danger, button.action)
            for spec in specs
            for button in spec.buttons
        )
        out.append(
            StageForm(form_id, specs[0].panel, specs[0].name, tuple(fields.values()), buttons)
        )
    return out
