"""Stress it with acks=all: the idempotent producer's retries after lost responses.

The README once said that 10 of Stress it's 200 acks=all runs (base seed 42) showed duplicates
and reordering after lost responses. Those figures were measured before commit e32537c (checked
by running that commit's parent: exactly these ten runs, 24 duplicates and 618 records out of
order). Two engine rules were wrong then, and Kafka follows both:
- a lost response left its connection working, so later requests were answered and more than
  five batches got appended behind the unanswered one; in Kafka responses on a connection arrive
  in order and a request timeout closes the connection (NetworkClient.handleTimedOutRequests),
  failing every request still open on it, so at most max.in.flight (5) batches per partition are
  unanswered and the broker's five-batch window (ProducerStateEntry) still holds every retry;
- the epoch bump after a failed batch (KIP-360) rewrote the sequence numbers of every pending
  batch, retries included, so a retry of a batch already in the log went out under the new epoch
  from sequence 0 and was appended again; Kafka bumps only for the partition whose sequence
  broke, and only once nothing sequenced under the old epoch is in flight there.
These runs keep both rules honest: each loses responses, retries, and is answered with the
original offsets of the batches already written (`duplicate_batch`), and the checker finds
nothing.
"""

from __future__ import annotations

from collections import Counter

import pytest

from lessons.scenarios import stress

ACKS_ALL = stress.StressConfig(
    topic_config={"min.insync.replicas": 2}, producer_config={"acks": "all"}
)
BASE_SEED = 42
# (index in the 200 runs of base seed 42, its seed): the runs that duplicated before e32537c.
ONCE_DUPLICATED = (
    (17, 946785248),
    (49, 433797840),
    (57, 899825838),
    (64, 1629748727),
    (87, 1715412119),
    (91, 2119634399),
    (107, 479112937),
    (113, 1131247330),
    (150, 965067727),
    (166, 2084839399),
)


def test_the_seeds_are_those_of_the_readme_experiment() -> None:
    seeds = stress.run_seeds(BASE_SEED, 200)
    assert [seeds[index] for index, _seed in ONCE_DUPLICATED] == [s for _i, s in ONCE_DUPLICATED]


@pytest.mark.parametrize(("index", "seed"), ONCE_DUPLICATED)
def test_retries_after_lost_responses_are_deduplicated_in_order(index: int, seed: int) -> None:
    cluster = stress.stress_cluster(ACKS_ALL, seed)
    kinds = Counter(event.kind for event in cluster.events)
    # The run does what made it fail once: responses lost, the batches retried, and the broker
    # recognising retries of batches it had already written.
    assert kinds["response_lost"] > 0
    assert kinds["produce_retried"] > 0
    assert kinds["duplicate_batch"] > 0
    assert [anomaly.to_dict() for anomaly in cluster.history.check()] == []
    # Every acknowledged record is in the log exactly once, each key in send order.
    values = [
        record.value for p in range(ACKS_ALL.partitions) for record in cluster.read("orders", p)
    ]
    assert len(values) == len(set(values))
    assert len(values) >= len(cluster.history.acknowledged)


def test_the_readme_command_prints_the_checker_totals(capsys: pytest.CaptureFixture[str]) -> None:
    from scripts.bench import stress as bench

    bench.main(["--runs", "2", "--base-seed", "3", "--acks", "1", "--min-isr", "1"])
    out = capsys.readouterr().out
    report = stress.stress_experiment(bench.config_for("1", 1), runs=2, base_seed=3, processes=1)
    assert "acks=1: 2 runs from base seed 3" in out
    assert f"acknowledged records: {report['acknowledged']:,}" in out
    assert f"lost {report['totals']['lost']:,}," in out
    assert f"runs with an anomaly: {report['failing_count']} of 2" in out
    assert f"runs with each kind: lost {report['runs_with']['lost']}," in out
