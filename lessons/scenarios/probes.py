"""Probes: named reads of a runtime's state that expectations compare with a value.

Each probe names its arguments (checked when a scenario is loaded) and reads the engine only
through its facade (`describe_topic`, `describe_group`, `read`, `brokers`, `controllers`) and the
runtime's own clients, so probing never changes the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import KafkaError
from engine.partitioner import partition_for_key

if TYPE_CHECKING:
    from lessons.scenarios.runtime import ClusterRuntime

NO_LEADER = -1


@dataclass(frozen=True)
class Arg:
    name: str
    type: type  # str or int
    required: bool = True
    help: str = ""


@dataclass(frozen=True)
class Probe:
    name: str
    help: str
    args: tuple[Arg, ...]
    read: Callable[..., Any]

    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)


TOPIC = Arg("topic", str, help="a topic name")
PARTITION = Arg("partition", int, help="a partition number")
GROUP = Arg("group", str, help="a consumer group id")


def _partition(runtime: ClusterRuntime, topic: str, partition: int) -> Any:
    description = runtime.cluster.describe_topic(topic)
    for p in description.partitions:
        if p.partition == partition:
            return p
    raise KeyError(f"{topic} has no partition {partition}")


def _leader(runtime: ClusterRuntime, topic: str, partition: int) -> int | None:
    leader = int(_partition(runtime, topic, partition).leader)
    return None if leader == NO_LEADER else leader


def _records(runtime: ClusterRuntime, topic: str, partition: int) -> list[str | None]:
    """The values of a partition's committed records (up to the high watermark), as text."""
    p = _partition(runtime, topic, partition)
    records = runtime.cluster.read(topic, partition, offset=int(p.log_start_offset))
    return [
        None if r.value is None else bytes(r.value).decode("utf-8", errors="replace")
        for r in records
        if int(r.offset) < int(p.high_watermark)
    ]


def _group(runtime: ClusterRuntime, group: str) -> Any:
    return runtime.cluster.describe_group(group)


def _group_lag(
    runtime: ClusterRuntime, group: str, topic: str | None = None, partition: int | None = None
) -> int:
    lag = dict(_group(runtime, group).lag)
    return sum(
        max(0, int(v))
        for tp, v in lag.items()
        if (topic is None or tp.topic == topic) and (partition is None or tp.partition == partition)
    )


def _committed(runtime: ClusterRuntime, group: str, topic: str, partition: int) -> int | None:
    for tp, offset in dict(_group(runtime, group).offsets).items():
        if tp.topic == topic and tp.partition == partition:
            return int(offset)
    return None


def _apps(runtime: ClusterRuntime, kind: str) -> list[Any]:
    from lessons.scenarios.apply import apps_service

    return [a for a in apps_service(runtime).apps if a.kind == kind]


def _acked(runtime: ClusterRuntime) -> int:
    return runtime.acked_sends + sum(int(a.acknowledged) for a in _apps(runtime, "producer"))


def _failed(runtime: ClusterRuntime) -> int:
    return runtime.failed_sends + sum(int(a.failed) for a in _apps(runtime, "producer"))


def _last_send_error(runtime: ClusterRuntime) -> str | None:
    """Kafka's name of the last failed send's error (any producer), e.g.
    NotEnoughReplicasException, or None when no send has failed."""
    for event in reversed(runtime.cluster.events):
        if event.kind == "produce_failed":
            return str(event.data.get("error"))
    return None


def _broker(runtime: ClusterRuntime, broker: int) -> Any:
    for state in runtime.cluster.brokers():
        if int(state.id) == broker:
            return state
    raise KeyError(f"there is no broker {broker}")


def _active_controller(runtime: ClusterRuntime) -> int | None:
    for state in runtime.cluster.controllers():
        if state.is_active:
            return int(state.id)
    return None


def _public_partitions(runtime: ClusterRuntime) -> list[Any]:
    out = []
    for name in runtime.cluster.list_topics():
        if name.startswith("__"):
            continue
        for p in runtime.cluster.describe_topic(name).partitions:
            out.append((name, p))
    return out


def _under_replicated(runtime: ClusterRuntime) -> int:
    return sum(1 for _, p in _public_partitions(runtime) if len(p.isr) < len(p.replicas))


def _offline(runtime: ClusterRuntime) -> int:
    return sum(1 for _, p in _public_partitions(runtime) if int(p.leader) == NO_LEADER)


def _topic_config(runtime: ClusterRuntime, topic: str, key: str) -> Any:
    return runtime.cluster.describe_topic(topic).config.get(key)


def _effective_min_isr(runtime: ClusterRuntime, topic: str) -> int:
    """The topic's min.insync.replicas (its own setting, else the brokers' default)."""
    config = runtime.cluster.describe_topic(topic).config
    if "min.insync.replicas" in config:
        return int(config["min.insync.replicas"])
    broker_config = dict(runtime.spec.config or {})
    return int(broker_config.get("min.insync.replicas", 1))


def _members(runtime: ClusterRuntime, group: str) -> list[str]:
    return sorted(str(m.client_id) for m in _group(runtime, group).members)


def _assignment(runtime: ClusterRuntime, group: str) -> dict[str, list[str]]:
    return {
        str(m.client_id): [f"{tp.topic}-{tp.partition}" for tp in sorted(m.assignment)]
        for m in sorted(_group(runtime, group).members, key=lambda m: str(m.client_id))
    }


def _record_count(runtime: ClusterRuntime, topic: str) -> int:
    """Committed records of a topic (high watermark minus log start, summed over partitions)."""
    return sum(
        int(p.high_watermark) - int(p.log_start_offset)
        for p in runtime.cluster.describe_topic(topic).partitions
    )


def _key_partition(runtime: ClusterRuntime, topic: str, key: str) -> int:
    count = len(runtime.cluster.describe_topic(topic).partitions)
    return int(partition_for_key(key.encode(), count))


def _console_output(runtime: ClusterRuntime, line: str) -> str:
    """What a read-only console line prints now (both streams, as a terminal shows them), run
    in a session of its own so the probe leaves the runtime's console alone."""
    from lessons.console import ConsoleSession
    from lessons.console.readonly import is_read_only

    if not is_read_only(line):
        raise ValueError(f"the console probe runs only lines that read the cluster: {line!r}")
    before = runtime.cluster.now_ms
    text = ConsoleSession(runtime.cluster).run(line).text
    if runtime.cluster.now_ms != before:
        # The tools ask through Kafka's Admin client: finding a group's coordinator can wait for
        # it to be elected (and create __consumer_offsets). A probe is not a logged command, so
        # it must not run the clock: make that line a console step first.
        raise ValueError(
            f"the console line ran {runtime.cluster.now_ms - before} ms of cluster time, which a "
            f"probe may not (run it as a console step first): {line!r}"
        )
    return text


_PROBES: tuple[Probe, ...] = (
    Probe(
        "leader", "the partition's leader broker (None when offline)", (TOPIC, PARTITION), _leader
    ),
    Probe(
        "isr",
        "the partition's in-sync replicas",
        (TOPIC, PARTITION),
        lambda r, topic, partition: sorted(_partition(r, topic, partition).isr),
    ),
    Probe(
        "replicas",
        "the partition's assigned replicas, preferred leader first",
        (TOPIC, PARTITION),
        lambda r, topic, partition: list(_partition(r, topic, partition).replicas),
    ),
    Probe(
        "high_watermark",
        "the leader's high watermark",
        (TOPIC, PARTITION),
        lambda r, topic, partition: int(_partition(r, topic, partition).high_watermark),
    ),
    Probe(
        "log_end_offset",
        "the leader's log end offset",
        (TOPIC, PARTITION),
        lambda r, topic, partition: int(_partition(r, topic, partition).log_end_offset),
    ),
    Probe(
        "log_start_offset",
        "the leader's log start offset",
        (TOPIC, PARTITION),
        lambda r, topic, partition: int(_partition(r, topic, partition).log_start_offset),
    ),
    Probe(
        "partition_of_key",
        "the partition the default partitioner picks for a key",
        (TOPIC, Arg("key", str)),
        _key_partition,
    ),
    Probe(
        "records", "the values of the partition's committed records", (TOPIC, PARTITION), _records
    ),
    Probe("record_count", "committed records in the topic", (TOPIC,), _record_count),
    Probe(
        "group_state",
        "the group's state (Stable, PreparingRebalance, Empty, ...)",
        (GROUP,),
        lambda r, group: str(_group(r, group).state),
    ),
    Probe(
        "group_generation",
        "the group's generation",
        (GROUP,),
        lambda r, group: int(_group(r, group).generation),
    ),
    Probe("group_members", "the client ids of the group's members", (GROUP,), _members),
    Probe("group_assignment", "each member's partitions", (GROUP,), _assignment),
    Probe(
        "group_lag",
        "the group's lag, total or on one topic or partition",
        (GROUP, Arg("topic", str, required=False), Arg("partition", int, required=False)),
        _group_lag,
    ),
    Probe(
        "committed",
        "the group's committed offset on a partition (None: none)",
        (GROUP, TOPIC, PARTITION),
        _committed,
    ),
    Probe(
        "acked_sends",
        "sends acknowledged so far (the stage's producer and producer apps)",
        (),
        _acked,
    ),
    Probe("failed_sends", "sends that failed so far", (), _failed),
    Probe("last_send_error", "Kafka's name of the last send error", (), _last_send_error),
    Probe(
        "broker_alive",
        "whether the broker process runs",
        (Arg("broker", int),),
        lambda r, broker: bool(_broker(r, broker).alive),
    ),
    Probe(
        "broker_fenced",
        "whether the controller fenced the broker",
        (Arg("broker", int),),
        lambda r, broker: bool(_broker(r, broker).fenced),
    ),
    Probe(
        "active_controller",
        "the active KRaft controller (None without a quorum)",
        (),
        _active_controller,
    ),
    Probe(
        "under_replicated_partitions",
        "partitions whose ISR is smaller than their replicas",
        (),
        _under_replicated,
    ),
    Probe("offline_partitions", "partitions without a leader", (), _offline),
    Probe("topic_config", "one of the topic's configs", (TOPIC, Arg("key", str)), _topic_config),
    Probe(
        "effective_min_isr",
        "the min.insync.replicas that applies to the topic",
        (TOPIC,),
        _effective_min_isr,
    ),
    Probe(
        "console_output",
        "what a read-only Kafka CLI line (a describe, list, dry-run reset, get-offsets or quorum "
        "describe) prints now",
        (Arg("line", str, help="the command line, e.g. kafka-topics.sh ... --describe"),),
        _console_output,
    ),
)

PROBES: dict[str, Probe] = {probe.name: probe for probe in _PROBES}


def read_probe(runtime: ClusterRuntime, name: str, args: Mapping[str, Any]) -> Any:
    """The probe's value now; a topic, group or node that does not exist (yet) reads None."""
    probe = PROBES[name]
    try:
        return probe.read(runtime, **dict(args))
    except (KafkaError, KeyError, ValueError, IndexError):
        return None
