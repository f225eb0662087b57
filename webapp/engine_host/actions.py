"""The stage's action commands: faults, clients, groups, topics and configs.

Each handler takes the runtime and one validated, logged command payload and calls the engine's
facade (or `cluster.services["apps"]` for apps on the cluster clock). Engine refusals raise
`KafkaError`, which `ClusterRuntime.apply` turns into a learner-facing error; a `ValueError`
from the engine (an unknown node id) becomes an `ActionRefused` with the engine's sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webapp.engine_host.runtime import ApplyResult, ClusterRuntime

# Topic configs a learner may change from the stage (Kafka's own keys).
TOPIC_CONFIG_KEYS = (
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "retention.ms",
    "cleanup.policy",
    "segment.ms",
)
APP_ACTIONS = ("stop", "start", "crash", "restart")


def _result(ok: bool, message: str) -> ApplyResult:
    from webapp.engine_host.runtime import ApplyResult

    return ApplyResult(ok=ok, message=message)


def _refused(runtime: ClusterRuntime, message: str) -> ApplyResult:
    from webapp.engine_host.runtime import ApplyResult

    runtime._notice("error", message)
    return ApplyResult(ok=False, message=message, error="refused")


def shutdown_broker(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    broker_id = int(payload["broker_id"])
    runtime.cluster.shutdown_broker(broker_id)
    runtime._notice("info", f"Broker {broker_id}: controlled shutdown (leadership moves first).")
    return _result(True, f"Broker {broker_id} shut down cleanly.")


def _controller_action(
    runtime: ClusterRuntime, payload: Mapping[str, Any], stop: bool
) -> ApplyResult:
    controller_id = int(payload["controller_id"])
    change = runtime.cluster.stop_controller if stop else runtime.cluster.start_controller
    try:
        change(controller_id)
    except ValueError as error:
        return _refused(runtime, str(error))
    return _result(True, f"Controller {controller_id} {'stopped' if stop else 'started'}.")


def stop_controller(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    return _controller_action(runtime, payload, stop=True)


def start_controller(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    return _controller_action(runtime, payload, stop=False)


def partition_network(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    """`isolate`: node ids (and maybe "clients") cut off from everyone else."""
    nodes = [str(n) for n in payload["isolate"]]
    group: set[Any] = {n if n == "clients" else int(n) for n in nodes}
    try:
        runtime.cluster.partition_network([group])
    except ValueError as error:
        return _refused(runtime, str(error))
    return _result(True, "Network cut: {" + ", ".join(nodes) + "} | everyone else.")


def heal_network(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    runtime.cluster.heal_network()
    return _result(True, "Network healed.")


def lose_responses(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    broker_id = int(payload["broker_id"])
    count = int(payload.get("count", 1))
    runtime.cluster.lose_responses(broker_id, count=count)
    return _result(True, f"The next {count} responses from broker {broker_id} will be lost.")


def start_producer(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    topic = str(payload["topic"])
    if topic not in runtime.cluster.list_topics():
        return _refused(
            runtime, f"UnknownTopicOrPartitionException: topic {topic!r} does not exist."
        )
    app = runtime.cluster.services["apps"].producer_app(
        topic,
        rate_per_sec=float(payload["rate"]),
        keys=int(payload.get("keys", 10)),
        acks=payload.get("acks", "all"),
        # Kafka refuses an explicit idempotence with acks other than all.
        idempotence=str(payload.get("acks", "all")) in ("all", "-1"),
    )
    return _result(True, f"Producer app {app.id} sends {payload['rate']:g}/s to {topic}.")


def add_group_consumer(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    topic = str(payload["topic"])
    if topic not in runtime.cluster.list_topics():
        return _refused(
            runtime, f"UnknownTopicOrPartitionException: topic {topic!r} does not exist."
        )
    app = runtime.cluster.services["apps"].consumer_app(
        str(payload["group"]),
        topic,
        poll_interval_ms=int(payload.get("poll_interval_ms", 200)),
        commit=str(payload.get("commit", "auto")),
        config={
            "partition.assignment.strategy": str(payload.get("strategy", "range")),
            "isolation.level": str(payload.get("isolation", "read_uncommitted")),
        },
    )
    return _result(True, f"Consumer app {app.id} joins group {payload['group']}.")


def app_control(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    app_id = int(payload["app_id"])
    action = str(payload["action"])
    try:
        runtime.cluster.services["apps"].control(app_id, action)
    except ValueError as error:
        return _refused(runtime, str(error))
    return _result(True, f"App {app_id}: {action}.")


def commit_group(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    """Commit a consumer app's current positions. Asynchronous (Kafka's commitAsync): the
    command returns at once; the commit lands (or fails) on the cluster clock."""
    app_id = int(payload["app_id"])
    apps = runtime.cluster.services["apps"].apps
    if not 1 <= app_id <= len(apps) or apps[app_id - 1].kind != "consumer":
        return _refused(runtime, f"There is no consumer app {app_id}.")
    if apps[app_id - 1].consumer is None or not apps[app_id - 1].running:
        return _refused(runtime, f"Consumer app {app_id} is not running.")
    runtime.cluster.services["apps"].control(app_id, "commit")
    return _result(True, f"Consumer app {app_id} is committing its positions.")


def reset_offsets(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    to = payload["to"]
    target: Any = int(to) if str(to).isdigit() else str(to)
    group, topic = str(payload["group"]), str(payload["topic"])
    groups = runtime.cluster.services["groups"]

    def done(error: str) -> None:
        refusal = groups.reset_error(group, error)
        if refusal is None:
            runtime.later.append(("info", f"Group {group} now starts from {to} on {topic}."))
        else:
            from webapp.engine_host.runtime import kafka_error_text

            runtime.later.append(("error", f"Reset of {group} failed: {kafka_error_text(refusal)}"))

    # Never blocks: the coordinator stores the offsets on the cluster clock.
    groups.reset_offsets_nowait(group, topic, target, done)
    return _result(True, f"Group {group}: resetting to {to} on {topic}.")


def add_partitions(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    runtime.cluster.add_partitions(str(payload["topic"]), int(payload["total"]))
    return _result(True, f"{payload['topic']} now has {payload['total']} partitions.")


def alter_topic_config(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    key = str(payload["key"])
    runtime.cluster.alter_topic_config(str(payload["topic"]), {key: payload["value"]})
    return _result(True, f"{payload['topic']}: {key} = {payload['value']}.")


def set_acks(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    """The stage's own producer is replaced by one with the new acks (Kafka fixes acks at
    construction); records already sent still settle through the old one."""
    acks = str(payload["acks"])
    runtime.producer = runtime.cluster.producer(
        config={"client.id": f"dojo-producer-acks-{acks}", "acks": acks}
    )
    return _result(True, f"The stage's producer now sends with acks={acks}.")


HANDLERS: dict[str, Callable[[ClusterRuntime, Mapping[str, Any]], ApplyResult]] = {
    "shutdown_broker": shutdown_broker,
    "stop_controller": stop_controller,
    "start_controller": start_controller,
    "partition_network": partition_network,
    "heal_network": heal_network,
    "lose_responses": lose_responses,
    "start_producer": start_producer,
    "add_group_consumer": add_group_consumer,
    "app_control": app_control,
    "commit_group": commit_group,
    "reset_offsets": reset_offsets,
    "add_partitions": add_partitions,
    "alter_topic_config": alter_topic_config,
    "set_acks": set_acks,
}
