"""The benchmark stays runnable: a small run completes every workload (figures are not asserted:
performance claims come from running `python -m scripts.bench.engine`, never from timed tests)."""

from scripts.bench import engine as bench


def test_the_benchmark_runs_every_workload_end_to_end(capsys):
    results = bench.main(["--records", "3000", "--skip-mockafka"])
    assert set(results["rates"]) == {
        "engine RF=1 acks=1",
        "engine RF=3 acks=all",
        "engine full run",
        "python list",
    }
    assert results["idle_timers"] > 0
    assert "records/s" in capsys.readouterr().out


def test_the_full_run_really_compacts_and_consumes_through_a_group():
    assert bench.run_full(3000) == 3000
