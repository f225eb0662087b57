"""Every command form accepts good input and explains bad input in plain words."""

from __future__ import annotations

from webapp.forms import BrokerForm, ProduceForm, SpeedForm, StepForm, form_errors_text


def test_produce_form_turns_into_a_produce_command() -> None:
    form = ProduceForm({"topic": "orders", "key": "customer-42", "value": "paid", "count": "3"})
    assert form.is_valid(), form.errors
    assert form.to_command() == {
        "type": "produce",
        "topic": "orders",
        "key": "customer-42",
        "value": "paid",
        "count": 3,
    }


def test_an_empty_key_means_no_key() -> None:
    form = ProduceForm({"topic": "orders", "key": "", "value": "v", "count": "1"})
    assert form.is_valid()
    assert form.to_command()["key"] is None


def test_produce_form_explains_each_bad_value() -> None:
    form = ProduceForm({"topic": "bad topic!", "key": "k", "value": "", "count": "500"})
    assert not form.is_valid()
    assert form.errors["value"] == ["Type a value for the record."]
    assert form.errors["count"] == ["Send at most 100 records at a time."]
    assert "letters, digits" in form.errors["topic"][0]
    assert "count: Send at most 100 records" in form_errors_text(form)


def test_count_must_be_a_positive_whole_number() -> None:
    assert ProduceForm({"topic": "orders", "value": "v", "count": "0"}).errors["count"] == [
        "Send at least 1 record."
    ]
    assert ProduceForm({"topic": "orders", "value": "v", "count": "two"}).errors["count"] == [
        "Count must be a whole number."
    ]


def test_broker_form_knows_which_brokers_exist() -> None:
    assert BrokerForm({"broker_id": "2"}, brokers=3, action="stop_broker").is_valid()
    form = BrokerForm({"broker_id": "7"}, brokers=3, action="stop_broker")
    assert not form.is_valid()
    assert form.errors["broker_id"] == ["There is no broker 7: this cluster has brokers 1 to 3."]
    started = BrokerForm({"broker_id": "1"}, brokers=3, action="start_broker")
    assert started.is_valid()
    assert started.to_command() == {"type": "start_broker", "broker_id": 1}


def test_speed_form_offers_the_listed_speeds_only() -> None:
    form = SpeedForm({"speed": "2"})
    assert form.is_valid()
    assert form.to_command() == {"type": "speed", "speed": 2.0}
    bad = SpeedForm({"speed": "3"})
    assert not bad.is_valid()
    assert "Speed must be one of 0.1, 0.25, 0.5, 1, 2, 5, 10, 20." in bad.errors["speed"][0]


def test_step_defaults_to_100_ms_and_keeps_to_the_tick() -> None:
    form = StepForm({})
    assert form.is_valid()
    assert form.to_command() == {"type": "step", "ms": 100}
    assert StepForm({"ms": "15"}).errors["ms"] == ["A step is a multiple of 10 ms."]
    assert StepForm({"ms": "0"}).errors["ms"] == ["A step is at least 10 ms."]
