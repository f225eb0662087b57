"""The stage explains itself: refusals, metrics, counts and words a learner can read."""

from __future__ import annotations

import re
from typing import Any

import pytest

from lessons.scenarios import ClusterRuntime, ClusterSpec, stress
from webapp.engine_host import render
from webapp.experiments import _record_exists, anomaly_visible_ms

# A run of the acks=1 experiment (base seed 42, run 9) in which the producer's retry wrote a
# record a second time: the checker dates the duplicate by the record's creation, 2805 ms.
DUPLICATE_SEED = 1812140441
ACKS_1 = stress.StressConfig(producer_config={"acks": "1"})


def _first_duplicate() -> dict[str, Any]:
    result = stress.stress_run_one(ACKS_1, DUPLICATE_SEED)
    return next(a for a in result.anomalies if a["kind"] == "duplicated")


def test_a_duplicate_opens_on_the_stage_once_its_second_copy_is_in_the_log() -> None:
    duplicate = _first_duplicate()
    assert not _record_exists(ACKS_1, DUPLICATE_SEED, duplicate, duplicate["time_ms"])
    at_ms = anomaly_visible_ms(ACKS_1, DUPLICATE_SEED, duplicate)
    assert at_ms % 10 == 0 and at_ms > duplicate["time_ms"]
    assert _record_exists(ACKS_1, DUPLICATE_SEED, duplicate, at_ms)
    assert not _record_exists(ACKS_1, DUPLICATE_SEED, duplicate, at_ms - 10)


def test_anomaly_details_name_values_in_words_not_python_reprs() -> None:
    detail = _first_duplicate()["detail"]
    assert "b'" not in detail and "time(s)" not in detail
    assert re.match(r"“v\d+” was acknowledged once but is at offsets \d+, \d+", detail)
