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


# -- the stage's actions ---------------------------------------------------------------------

ACKS_CHOICES = [("0", "acks=0"), ("1", "acks=1"), ("all", "acks=all")]
STRATEGIES = ("range", "roundrobin", "sticky", "cooperative-sticky")
NODE_ID = re.compile(r"^(\d{1,4}|clients)$")


def _topic_name(value: str) -> str:
    if value in {".", ".."} or not TOPIC_NAME.match(value):
        raise ValidationError(
            "A topic name uses letters, digits, '.', '_' and '-' (1 to 249 characters)."
        )
    return value


class _ActionForm(CommandForm):
    """A stage action; `brokers` and `controllers` bound ids to this cluster's nodes."""

    def __init__(self, *args: Any, brokers: int = 3, controllers: int = 3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.brokers = brokers
        self.controllers = controllers

    def _broker(self, broker_id: int) -> int:
        if not 1 <= broker_id <= self.brokers:
            raise ValidationError(
                f"There is no broker {broker_id}: this cluster has brokers 1 to {self.brokers}."
            )
        return broker_id


class ShutdownBrokerForm(_ActionForm):
    command_type = "shutdown_broker"
    broker_id = forms.IntegerField(error_messages={"invalid": "A broker id is a whole number."})

    def clean_broker_id(self) -> int:
        return self._broker(self.cleaned_data["broker_id"])


class LoseResponsesForm(ShutdownBrokerForm):
    command_type = "lose_responses"
    count = forms.IntegerField(
        min_value=1,
        max_value=100,
        initial=1,
        error_messages={
            "min_value": "Lose at least 1 response.",
            "max_value": "Lose at most 100 responses.",
            "invalid": "Count must be a whole number.",
        },
    )


class ControllerForm(_ActionForm):
    controller_id = forms.IntegerField(
        error_messages={"invalid": "A controller id is a whole number (101, 102, ...)."}
    )

    def __init__(self, *args: Any, action: str = "stop_controller", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.command_type = action

    def clean_controller_id(self) -> int:
        controller_id: int = self.cleaned_data["controller_id"]
        last = 100 + self.controllers
        if not 101 <= controller_id <= last:
            raise ValidationError(
                f"There is no controller {controller_id}: this cluster has controllers 101 "
                f"to {last}."
            )
        return controller_id


class PartitionNetworkForm(_ActionForm):
    command_type = "partition_network"
    isolate = forms.CharField(
        max_length=200,
        help_text='Nodes cut off from the rest, comma-separated: "3", "2, 101", "clients".',
        error_messages={"required": "Name the nodes to cut off, e.g. 3 or 2, 101."},
    )

    def clean_isolate(self) -> list[str]:
        raw = [part.strip() for part in self.cleaned_data["isolate"].split(",") if part.strip()]
        if not raw:
            raise ValidationError("Name the nodes to cut off, e.g. 3 or 2, 101.")
        nodes = []
        for part in raw:
            if not NODE_ID.match(part):
                raise ValidationError(
                    f"{part!r} is not a node: use broker ids, controller ids or the word clients."
                )
            if part != "clients":
                number = int(part)
                if not (1 <= number <= self.brokers or 101 <= number <= 100 + self.controllers):
                    raise ValidationError(f"There is no node {number} in this cluster.")
            if part not in nodes:
                nodes.append(part)
        return nodes


class StartProducerForm(_ActionForm):
    command_type = "start_producer"
    topic = forms.CharField(max_length=249, initial="orders")
    rate = forms.FloatField(
        min_value=0.1,
        max_value=200,
        error_messages={
            "min_value": "A rate is at least 0.1 records a second.",
            "max_value": "A rate is at most 200 records a second.",
            "invalid": "The rate is a number of records a second.",
        },
    )
    keys = forms.IntegerField(min_value=1, max_value=1000, initial=10, required=False)
    acks = forms.ChoiceField(choices=ACKS_CHOICES, initial="all")

    def clean_topic(self) -> str:
        return _topic_name(self.cleaned_data["topic"])

    def clean_keys(self) -> int:
        return self.cleaned_data.get("keys") or 10


class SetAcksForm(_ActionForm):
    command_type = "set_acks"
    acks = forms.ChoiceField(
        choices=ACKS_CHOICES, error_messages={"invalid_choice": "acks is 0, 1 or all."}
    )


class AddGroupConsumerForm(_ActionForm):
    command_type = "add_group_consumer"
    group = forms.RegexField(
        regex=r"^[A-Za-z0-9._-]{1,64}$",
        error_messages={"invalid": "A group id uses letters, digits, '.', '_' and '-'."},
    )
    topic = forms.CharField(max_length=249, initial="orders")
    commit = forms.ChoiceField(
        choices=[("auto", "auto"), ("after", "after processing"), ("before", "before")],
        initial="auto",
    )
    strategy = forms.ChoiceField(choices=[(s, s) for s in STRATEGIES], initial="range")
    isolation = forms.ChoiceField(
        choices=[("read_uncommitted", "read_uncommitted"), ("read_committed", "read_committed")],
        initial="read_uncommitted",
    )

    def clean_topic(self) -> str:
        return _topic_name(self.cleaned_data["topic"])


class AppControlForm(_ActionForm):
    command_type = "app_control"
    app_id = forms.IntegerField(min_value=1, error_messages={"invalid": "An app id is a number."})
    action = forms.ChoiceField(choices=[(a, a) for a in ("stop", "start", "crash", "restart")])


class CommitGroupForm(_ActionForm):
    command_type = "commit_group"
    app_id = forms.IntegerField(min_value=1, error_messages={"invalid": "An app id is a number."})


class ResetOffsetsForm(_ActionForm):
    command_type = "reset_offsets"
    group = forms.RegexField(
        regex=r"^[A-Za-z0-9._-]{1,64}$",
        error_messages={"invalid": "A group id uses letters, digits, '.', '_' and '-'."},
    )
    topic = forms.CharField(max_length=249, initial="orders")
    to = forms.RegexField(
        regex=r"^(earliest|latest|\d{1,12})$",
        error_messages={"invalid": "Reset to earliest, latest or an offset (a whole number)."},
    )

    def clean_topic(self) -> str:
        return _topic_name(self.cleaned_data["topic"])


class CreateTopicForm(_ActionForm):
    command_type = "create_topic"
    name = forms.CharField(max_length=249)
    partitions = forms.IntegerField(min_value=1, max_value=64, initial=3)
    replication_factor = forms.IntegerField(min_value=1, max_value=9, initial=3)

    def clean_name(self) -> str:
        return _topic_name(self.cleaned_data["name"])

    def clean_replication_factor(self) -> int:
        factor: int = self.cleaned_data["replication_factor"]
        if factor > self.brokers:
            raise ValidationError(
                f"A replication factor of {factor} needs {factor} brokers; this cluster has "
                f"{self.brokers}."
            )
        return factor


class AddPartitionsForm(_ActionForm):
    command_type = "add_partitions"
    topic = forms.CharField(max_length=249, initial="orders")
    total = forms.IntegerField(
        min_value=2,
        max_value=64,
        error_messages={
            "min_value": "A topic has at least 1 partition: the new total is 2 or more."
        },
    )

    def clean_topic(self) -> str:
        return _topic_name(self.cleaned_data["topic"])


class AlterTopicConfigForm(_ActionForm):
    command_type = "alter_topic_config"
    topic = forms.CharField(max_length=249, initial="orders")
    key = forms.ChoiceField(
        choices=[
            ("min.insync.replicas", "min.insync.replicas"),
            ("unclean.leader.election.enable", "unclean.leader.election.enable"),
            ("retention.ms", "retention.ms"),
            ("cleanup.policy", "cleanup.policy"),
            ("segment.ms", "segment.ms"),
        ]
    )
    value = forms.CharField(max_length=100)

    def clean_topic(self) -> str:
        return _topic_name(self.cleaned_data["topic"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        key, value = data.get("key"), str(data.get("value", "")).strip()
        if key is None or not value:
            return data
        if key in ("min.insync.replicas", "retention.ms", "segment.ms"):
            if not re.fullmatch(r"-?\d{1,15}", value):
                raise ValidationError(f"{key} is a whole number.")
        elif key == "unclean.leader.election.enable":
            if value not in ("true", "false"):
                raise ValidationError(f"{key} is true or false.")
        elif key == "cleanup.policy" and value not in ("delete", "compact", "compact,delete"):
            raise ValidationError("cleanup.policy is delete, compact or compact,delete.")
        data["value"] = value
        return data


class HostConsumerForm(CommandForm):
    """The sandbox's own standalone consumer (`add_consumer`), written by the server when a
    sandbox is made; checked like the rest when it arrives inside a shared log."""

    command_type = "add_consumer"
    name = forms.RegexField(
        regex=r"^[A-Za-z0-9._-]{1,64}$",
        error_messages={"invalid": "A consumer name uses letters, digits, '.', '_' and '-'."},
    )
    topic = forms.CharField(max_length=249)
    poll_interval_ms = forms.IntegerField(min_value=10, max_value=60_000, initial=500)
    max_records = forms.IntegerField(min_value=1, max_value=500, initial=1)

    def clean_topic(self) -> str:
        return _topic_name(self.cleaned_data["topic"])


class HealNetworkForm(_ActionForm):
    command_type = "heal_network"


ACTION_FORMS: dict[str, type[_ActionForm]] = {
    "shutdown_broker": ShutdownBrokerForm,
    "lose_responses": LoseResponsesForm,
    "partition_network": PartitionNetworkForm,
    "heal_network": HealNetworkForm,
    "start_producer": StartProducerForm,
    "set_acks": SetAcksForm,
    "add_group_consumer": AddGroupConsumerForm,
    "app_control": AppControlForm,
    "commit_group": CommitGroupForm,
    "reset_offsets": ResetOffsetsForm,
    "create_topic": CreateTopicForm,
    "add_partitions": AddPartitionsForm,
    "alter_topic_config": AlterTopicConfigForm,
}


def action_form(
    kind: str, data: dict[str, Any], *, brokers: int, controllers: int = 3
) -> _ActionForm:
    """The form that validates one stage action from the socket."""
    if kind in ("stop_controller", "start_controller"):
        return ControllerForm(data, brokers=brokers, controllers=controllers, action=kind)
    return ACTION_FORMS[kind](data, brokers=brokers, controllers=controllers)
