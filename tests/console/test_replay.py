"""Console commands round-trip through replay: the cluster rebuilt from the engine's log equals
the live one, and running the same console lines again prints the same text."""

from __future__ import annotations

from engine import Cluster
from lessons.console import INTERRUPT, ConsoleSession

B = "--bootstrap-server localhost:9092"
SCRIPT: list[tuple[str, object]] = [
    ("line", f"kafka-topics.sh {B} --create --topic orders --partitions 3 --replication-factor 3"),
    ("line", f"kafka-topics.sh {B} --create --topic audit.log --config cleanup.policy=compact"),
    (
        "line",
        f"printf 'a:1\\nb:2\\nc:3\\na:4\\n' | kafka-console-producer.sh {B} --topic orders "
        "--reader-property parse.key=true --reader-property key.separator=:",
    ),
    (
        "line",
        f"kafka-console-consumer.sh {B} --topic orders --group billing --from-beginning "
        "--max-messages 3 --timeout-ms 6000",
    ),
    (
        "line",
        f"kafka-consumer-groups.sh {B} --reset-offsets --group billing --all-topics "
        "--shift-by -1 --execute",
    ),
    ("line", f"kafka-consumer-groups.sh {B} --describe --group billing"),
    ("line", f"kafka-configs.sh {B} --alter --topic orders --add-config retention.ms=90000"),
    ("line", f"kafka-topics.sh {B} --alter --topic orders --partitions 5"),
    ("line", f"kafka-console-producer.sh {B} --topic orders"),
    ("line", "typed-1"),
    ("line", "^D"),
    ("line", f"kafka-console-consumer.sh {B} --topic orders --group tail"),
    ("advance", 4000),
    ("produce", b"staged-1"),
    ("produce", b"staged-2"),
    ("advance", 2000),
    ("line", INTERRUPT),
    ("line", f"kafka-leader-election.sh {B} --election-type preferred --all-topic-partitions"),
    ("line", f"kafka-consumer-groups.sh {B} --delete --group billing"),
    ("line", f"kafka-topics.sh {B} --delete --topic audit.log"),
    ("line", f"kafka-metadata-quorum.sh {B} describe --status"),
    (
        "line",
        "kafka-producer-perf-test.sh --topic orders --num-records 50 --record-size 20 "
        "--throughput 100 --producer-props bootstrap.servers=localhost:9092 acks=all",
    ),
    ("line", f"kafka-consumer-perf-test.sh {B} --topic orders --messages 20"),
]


def play(cluster: Cluster) -> list[str]:
    session = ConsoleSession(cluster)
    stage = cluster.producer({"acks": "all", "linger.ms": 0})
    printed = []
    for kind, value in SCRIPT:
        if kind == "produce":
            stage.send("orders", value=value)
        elif kind == "advance":
            for _ in range(int(value) // 100):  # type: ignore[call-overload]
                cluster.advance(100)
                printed.append(session.tick().text)
        else:
            printed.append(session.run(str(value)).text)
    return printed


def test_the_engine_log_of_a_console_session_rebuilds_an_equal_cluster() -> None:
    live = Cluster(brokers=3, seed=11)
    printed = play(live)
    assert "staged-1\nstaged-2\n" in "".join(printed)  # the tailing consumer saw them
    assert "Processed a total of 2 messages\n" in printed
    rebuilt = Cluster.from_log(live.export_log())
    assert rebuilt.snapshot() == live.snapshot()


def test_running_the_same_console_lines_again_prints_the_same_and_ends_equal() -> None:
    first, second = Cluster(brokers=3, seed=11), Cluster(brokers=3, seed=11)
    assert play(first) == play(second)
    assert first.snapshot() == second.snapshot()


def test_console_commands_of_the_runtime_replay_to_the_same_cluster_and_session() -> None:
    from lessons.scenarios import ClusterRuntime, ClusterSpec

    spec = ClusterSpec(seed=11, brokers=3)
    live = ClusterRuntime(spec)
    log: list[dict[str, object]] = []
    answers = []
    for kind, value in SCRIPT:
        if kind == "advance":
            payload: dict[str, object] = {"type": "advance", "ms": value}
        elif kind == "produce":
            payload = {"type": "produce", "topic": "orders", "value": value.decode(), "count": 1}  # type: ignore[union-attr]
        else:
            payload = {"type": "console", "line": value}
        log.append(payload)
        answers.append(live.apply(payload).message)
    # The tail's records reach the stage as it reads them; what is left comes before ^C's total.
    interrupted = answers[[v for _, v in SCRIPT].index(INTERRUPT)]
    assert interrupted == "staged-1\nstaged-2\nProcessed a total of 2 messages\n"
    replayed = ClusterRuntime.replay(spec, log)
    assert replayed.cluster.snapshot() == live.cluster.snapshot()
    assert replayed.console.prompt == live.console.prompt == "$ "
    again = ClusterRuntime(spec)
    assert [again.apply(p).message for p in log] == answers
