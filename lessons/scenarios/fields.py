"""Fields of the command table and the one validation every entry point uses.

A field turns one raw value (a string from a browser form, a number from JSON or YAML) into the
value the command's apply function reads, or into error sentences. The sentences are the ones the
stage has always shown (Django's wording where the stage relied on Django's defaults), so a
learner sees the same answer whether a command came from a form, the socket, a share link, a
scenario file or the console.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
GROUP_ID = r"^[A-Za-z0-9._-]{1,64}$"
NODE_ID = re.compile(r"^(\d{1,4}|clients)$")
_WHOLE = re.compile(r"^[+-]?\d+(\.0*)?$")

FIELD_TYPES = ("str", "int", "float", "choice", "raw")


class FieldError(ValueError):
    """A value a field refuses; the message is shown to the learner as is."""


@dataclass(frozen=True)
class Limits:
    """What bounds a command's values in one cluster: its broker and controller counts."""

    brokers: int = 3
    controllers: int = 3


@dataclass(frozen=True)
class Field:
    """One field of a command.

    `type` is str, int, float, choice or raw (a structure passed as is, e.g. a config map);
    `choices` are (value, label) pairs; `regex` must match
    a str value; `check(value, limits)` refines a cleaned value (raise `FieldError`). A value that
    is absent takes `default` when the field has one; an empty value of a required field is an
    error. `messages` override the default sentences by code: required, invalid, min_value,
    max_value, max_length, invalid_choice. `widget` and `initial` only shape the stage's form.
    """

    name: str
    type: str = "str"
    required: bool = True
    default: Any = None
    min_value: float | None = None
    max_value: float | None = None
    max_length: int | None = None
    choices: tuple[tuple[str, str], ...] = ()
    regex: str | None = None
    check: Callable[[Any, Limits], Any] | None = None
    label: str = ""
    help: str = ""
    messages: Mapping[str, str] = field(default_factory=dict)
    widget: str = ""  # "hidden", "text", "number", "select", "broker", "controller"
    initial: Any = None
    many: bool = False  # a list (from YAML or a logged payload) goes to `check` as is
    placeholder: str = ""  # the stage form's example text

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type!r}")

    def message(self, code: str, default: str) -> str:
        return self.messages.get(code, default)

    def clean(self, raw: Any, limits: Limits, *, defaults: bool = True) -> Any:
        """The cleaned value of `raw` (None: absent), or `FieldError`. With `defaults`, an
        absent value takes the field's default."""
        if raw is None and defaults and self.default is not None:
            raw = self.default
        if self.many and isinstance(raw, list | tuple) and self.check is not None:
            return self.check(list(raw), limits)
        if self.type == "raw":
            if raw is None and self.required:
                raise FieldError(self.message("required", "This field is required."))
            return self.check(raw, limits) if self.check is not None else raw
        if isinstance(raw, str):
            raw = raw.strip()
        empty = raw is None or raw == ""
        if empty:
            if self.required:
                raise FieldError(self.message("required", "This field is required."))
            value: Any = "" if self.type in ("str", "choice") else None
        elif self.type == "int":
            value = self._int(raw)
        elif self.type == "float":
            value = self._float(raw)
        else:
            value = self._text(raw)
        if self.check is not None:
            value = self.check(value, limits)
        return value

    def _int(self, raw: Any) -> int:
        if isinstance(raw, bool) or not _WHOLE.match(str(raw).strip()):
            raise FieldError(self.message("invalid", "Enter a whole number."))
        value = int(str(raw).strip().split(".")[0])
        self._bounds(value)
        return value

    def _float(self, raw: Any) -> float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise FieldError(self.message("invalid", "Enter a number.")) from None
        if isinstance(raw, bool) or not math.isfinite(value):
            raise FieldError(self.message("invalid", "Enter a number."))
        self._bounds(value)
        return value

    def _bounds(self, value: float) -> None:
        if self.max_value is not None and value > self.max_value:
            raise FieldError(
                self.message(
                    "max_value",
                    f"Ensure this value is less than or equal to {self.max_value:g}.",
                )
            )
        if self.min_value is not None and value < self.min_value:
            raise FieldError(
                self.message(
                    "min_value",
                    f"Ensure this value is greater than or equal to {self.min_value:g}.",
                )
            )

    def _text(self, raw: Any) -> str:
        value = str(raw)
        if self.max_length is not None and len(value) > self.max_length:
            raise FieldError(
                self.message(
                    "max_length",
                    f"Ensure this value has at most {self.max_length} characters "
                    f"(it has {len(value)}).",
                )
            )
        if self.choices and value not in {choice for choice, _ in self.choices}:
            raise FieldError(
                self.message(
                    "invalid_choice",
                    f"Select a valid choice. {value} is not one of the available choices.",
                )
            )
        if self.regex is not None and not re.match(self.regex, value):
            raise FieldError(self.message("invalid", "Enter a valid value."))
        return value


# -- checks shared by several commands ------------------------------------------------------------


def topic_name(value: Any, limits: Limits) -> str:
    text = str(value)
    if text in {".", ".."} or not TOPIC_NAME.match(text):
        raise FieldError(
            "A topic name uses letters, digits, '.', '_' and '-' (1 to 249 characters)."
        )
    return text


def broker_id(value: Any, limits: Limits) -> int:
    number = int(value)
    if not 1 <= number <= limits.brokers:
        raise FieldError(
            f"There is no broker {number}: this cluster has brokers 1 to {limits.brokers}."
        )
    return number


def controller_id(value: Any, limits: Limits) -> int:
    number = int(value)
    last = 100 + limits.controllers
    if not 101 <= number <= last:
        raise FieldError(
            f"There is no controller {number}: this cluster has controllers 101 to {last}."
        )
    return number


def node_list(value: Any, limits: Limits) -> list[str]:
    """ "3", "2, 101" or "clients" (or a list of them) -> ["2", "101"], each a node here."""
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    raw = [str(part).strip() for part in parts if str(part).strip()]
    if not raw:
        raise FieldError("Name the nodes to cut off, e.g. 3 or 2, 101.")
    nodes: list[str] = []
    for part in raw:
        if not NODE_ID.match(part):
            raise FieldError(
                f"{part!r} is not a node: use broker ids, controller ids or the word clients."
            )
        if part != "clients":
            number = int(part)
            if not (1 <= number <= limits.brokers or 101 <= number <= 100 + limits.controllers):
                raise FieldError(f"There is no node {number} in this cluster.")
        if part not in nodes:
            nodes.append(part)
    return nodes


def choices(*values: str) -> tuple[tuple[str, str], ...]:
    return tuple((value, value) for value in values)


def clean_fields(
    fields: Sequence[Field], data: Mapping[str, Any], limits: Limits, *, defaults: bool = True
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Each field's cleaned value, and the errors by field name, in the fields' order."""
    payload: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for spec in fields:
        try:
            value = spec.clean(data.get(spec.name), limits, defaults=defaults)
        except FieldError as error:
            errors[spec.name] = [str(error)]
        except (TypeError, ValueError) as error:
            errors[spec.name] = [spec.message("invalid", f"Invalid value ({error}).")]
        else:
            if value is None and spec.type == "raw" and not spec.required:
                continue  # an optional structure left out stays out of the payload
            payload[spec.name] = value
    return payload, errors
