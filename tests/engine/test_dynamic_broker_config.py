"""Dynamic broker configs: IncrementalAlterConfigs on BROKER resources through the admin client,
applied as Kafka applies them (DynamicBrokerConfig, DynamicLogConfig, ConfigAdminManager)."""

from __future__ import annotations

import pytest

from engine import Cluster, TopicPartition
from engine.errors import InvalidRequestError, KafkaTimeoutError

STATIC = {"log.segment.bytes": 1024, "log.retention.check.interval.ms": 1000}


def filled(cluster: Cluster, topic: str, records: int = 60) -> None:
    producer = cluster.producer({"acks": "all", "linger.ms": 0})
    for i in range(records):  # one batch each, so segments of 1024 bytes roll
        producer.send(topic, value=b"x" * 100 + b"%d" % i, partition=0)
        producer.flush()


def log_starts(cluster: Cluster, topic: str) -> dict[int, int]:
    tp = TopicPartition(topic, 0)
    return {
        b.id: b.partitions[tp].log.log_start_offset
        for b in cluster._brokers.values()
        if tp in b.partitions
    }


def test_a_cluster_wide_default_reaches_every_topic_that_does_not_set_the_key() -> None:
    cluster = Cluster(brokers=3, seed=2, config=STATIC)
    cluster.create_topic("follows", 1, 3)
    cluster.create_topic("own", 1, 3, config={"retention.bytes": 1_000_000})
    filled(cluster, "follows")
    filled(cluster, "own")
    cluster.advance(2000)
    assert set(log_starts(cluster, "follows").values()) == {0}
    cluster.admin().alter_broker_configs("", {"log.retention.bytes": "2048"}).all()
    assert cluster.controller.topics["follows"].config["retention.bytes"] == 2048
    assert cluster.controller.topics["own"].config["retention.bytes"] == 1_000_000
    cluster.advance(2000)
    assert min(log_starts(cluster, "follows").values()) > 0  # old segments deleted everywhere
    assert set(log_starts(cluster, "own").values()) == {0}
    # A topic created afterwards follows the new default too.
    cluster.create_topic("later", 1, 1)
    assert cluster.controller.topics["later"].config["retention.bytes"] == 2048
    # DELETE returns to the static value.
    cluster.admin().alter_broker_configs("", {}, ["log.retention.bytes"]).all()
    assert cluster.controller.topics["follows"].config["retention.bytes"] == -1


def test_a_per_broker_value_changes_only_the_replicas_that_broker_hosts() -> None:
    cluster = Cluster(brokers=3, seed=2, config=STATIC)
    for name in ("t1", "t2", "t3"):
        cluster.create_topic(name, 1, 1)
    hosts = {
        name: cluster.controller.topics[name].partitions[0].replicas[0] for name in ("t1", "t2")
    }
    hosts["t3"] = cluster.controller.topics["t3"].partitions[0].replicas[0]
    target = hosts["t1"]
    assert len(set(hosts.values())) > 1  # some replicas live elsewhere
    for name in hosts:
        filled(cluster, name)
    cluster.admin().alter_broker_configs(str(target), {"log.retention.bytes": "2048"}).all()
    cluster.advance(2000)
    for name, host in hosts.items():
        start = log_starts(cluster, name)[host]
        assert (start > 0) == (host == target), (name, host, start)
    # The controller's view of the topics is unchanged: the value is that broker's own.
    assert cluster.controller.topics["t1"].config["retention.bytes"] == -1
    # It survives a restart (the broker catches up from the metadata image).
    cluster.stop_broker(target)
    cluster.advance(100)
    cluster.start_broker(target)
    cluster.advance(3000)
    tp = TopicPartition("t1", 0)
    assert cluster.broker_by_id(target).partitions[tp].config["retention.bytes"] == 2048


def test_enabling_unclean_election_cluster_wide_elects_a_leaderless_partition() -> None:
    cluster = Cluster(brokers=2, seed=4)
    cluster.create_topic("t", 1, 2)
    registration = cluster.controller.topics["t"].partitions[0]
    leader, follower = registration.replicas
    cluster.stop_broker(follower)
    cluster.advance(40000)  # the follower leaves the ISR
    cluster.stop_broker(leader)
    cluster.start_broker(follower)
    cluster.advance(20000)
    assert cluster.controller.topics["t"].partitions[0].leader == -1
    cluster.admin().alter_broker_configs("", {"unclean.leader.election.enable": "true"}).all()
    assert cluster.controller.topics["t"].partitions[0].leader == follower


def test_keys_that_cannot_change_at_run_time_are_refused_as_kafka_refuses_them() -> None:
    cluster = Cluster(brokers=3, seed=2)
    admin = cluster.admin()
    static = admin.alter_broker_configs("1", {"num.partitions": "4"}).error("1")
    assert isinstance(static, InvalidRequestError)
    assert static.message == "Cannot update these configs dynamically: Set(num.partitions)"
    bad = admin.alter_broker_configs("1", {"log.retention.ms": "soon"}).error("1")
    assert bad is not None and bad.message == (
        "Invalid value soon for configuration log.retention.ms: Not a number of type LONG"
    )
    unmodelled = admin.alter_broker_configs("", {"num.io.threads": "16"}).error("")
    assert unmodelled is not None and "num.io.threads" in unmodelled.message
    with pytest.raises(KafkaTimeoutError):
        admin.alter_broker_configs("9", {"log.retention.ms": "1"})
    assert cluster.controller.broker_configs == {}
    assert [e for e in cluster.events if e.kind == "broker_config_changed"] == []


def test_describe_gives_each_level_and_a_rebuilt_cluster_is_equal() -> None:
    cluster = Cluster(brokers=3, seed=2, config={"log.retention.ms": 3_600_000})
    cluster.create_topic("t", 3, 3)
    admin = cluster.admin()
    admin.alter_broker_configs("", {"log.retention.ms": "1000"}).all()
    admin.alter_broker_configs("2", {"log.retention.ms": "777"}).all()
    entries = {e.name: e for e in admin.describe_broker_configs(["2"])["2"]}
    retention = entries["log.retention.ms"]
    assert (retention.value, retention.source, retention.read_only) == (
        777,
        "DYNAMIC_BROKER_CONFIG",
        False,
    )
    assert retention.synonyms == [
        ("DYNAMIC_BROKER_CONFIG", "log.retention.ms", 777),
        ("DYNAMIC_DEFAULT_BROKER_CONFIG", "log.retention.ms", 1000),
        ("STATIC_BROKER_CONFIG", "log.retention.ms", 3_600_000),
        ("DEFAULT_CONFIG", "log.retention.ms", 604_800_000),
    ]
    assert entries["num.partitions"].read_only
    default = admin.describe_broker_configs([""])[""]
    assert [(e.name, e.value, e.source) for e in default] == [
        ("log.retention.ms", 1000, "DYNAMIC_DEFAULT_BROKER_CONFIG")
    ]
    cluster.advance(500)
    rebuilt = Cluster.from_log(cluster.export_log())
    assert rebuilt.snapshot() == cluster.snapshot()
    assert rebuilt.controller.broker_configs == cluster.controller.broker_configs
    assert {
        b.id: {tp.topic: p.config["retention.ms"] for tp, p in b.partitions.items()}
        for b in rebuilt._brokers.values()
    } == {
        b.id: {tp.topic: p.config["retention.ms"] for tp, p in b.partitions.items()}
        for b in cluster._brokers.values()
    }
