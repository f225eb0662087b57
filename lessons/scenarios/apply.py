"""The apply functions of the command table: each takes the runtime and one validated payload.

Each calls the engine's facade (or the cluster's app service for apps on the cluster clock).
Engine refusals raise `KafkaError`, which `ClusterRuntime.apply` turns into a learner-facing
error; a `ValueError` from the engine (an unknown node id) becomes a refusal with the engine's
sentence. The payload shapes are the ones command logs have always held, so old logs, share
links and saved states replay unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine import TopicPartition
from engine.errors import KafkaError
from lessons.scenarios.limits import MAX_PRODUCE_COUNT
from lessons.scenarios.results import ApplyResult

if TYPE_CHECKING:
    from engine.clients.apps.app_service import AppService
    from lessons.scenarios.runtime import ClusterRuntime

# Engine log operations a command log may carry as `{"type": "engine", "entry": {...}}`.
ENGINE_LOG_OPS = frozenset(
    {
        "cluster.advance",
        "cluster.create_topic",
        "cluster.producer",
        "cluster.consumer",
        "cluster.stop_broker",
        "cluster.start_broker",
        "cluster.shutdown_broker",
        "cluster.partition_network",
        "cluster.heal_network",
        "cluster.lose_responses",
        "producer.send",
        "consumer.assign",
        "consumer.poll",
    }
)
# Topic configs a learner may change from the stage (Kafka's own keys).
TOPIC_CONFIG_KEYS = (
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "retention.ms",
    "cleanup.policy",
    "segment.ms",
)
APP_ACTIONS = ("stop", "start", "crash", "restart")


def apps_service(runtime: ClusterRuntime) -> AppService:
    """The cluster's apps (producer and consumer apps on the cluster clock)."""
    return runtime.cluster.apps


def produce(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    from lessons.scenarios.runtime import PendingSend

    topic = str(payload["topic"])
    key = payload.get("key") or None
    value = str(payload.get("value", ""))
    count = max(1, min(int(payload.get("count", 1)), MAX_PRODUCE_COUNT))
    if topic not in runtime.cluster.list_topics():
        # Checked here: the producer would block up to max.block.ms waiting for metadata.
        text = f"UnknownTopicOrPartitionError: topic {topic!r} does not exist in this cluster."
        runtime._notice("error", text)
        return ApplyResult(ok=False, message=text, error="UnknownTopicOrPartitionError")
    if runtime.producer is None:
        runtime.producer = runtime.cluster.producer(config={"client.id": "dojo-producer"})
    for index in range(count):
        record_value = value if count == 1 else f"{value}-{index + 1}"
        future = runtime.producer.send(
            topic,
            value=record_value.encode(),
            key=key.encode() if key is not None else None,
        )
        runtime.pending_sends.append(PendingSend(future=future, key=key, value=record_value))
    runtime._settle_sends()
    plural = "record" if count == 1 else "records"
    return ApplyResult(ok=True, message=f"Sent {count} {plural} to {topic}.")


def stop_broker(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    broker_id = int(payload["broker_id"])
    runtime.cluster.stop_broker(broker_id)
    runtime._notice("info", f"Broker {broker_id} crashed (killed without a controlled shutdown).")
    return ApplyResult(ok=True, message=f"Broker {broker_id} stopped.")


def start_broker(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    broker_id = int(payload["broker_id"])
    runtime.cluster.start_broker(broker_id)
    runtime._notice("info", f"Broker {broker_id} restarted.")
    return ApplyResult(ok=True, message=f"Broker {broker_id} started.")


def create_topic(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    runtime.cluster.create_topic(
        payload["name"],
        partitions=int(payload.get("partitions", 1)),
        replication_factor=int(payload.get("replication_factor", 1)),
        config=payload.get("config") or None,
    )
    return ApplyResult(ok=True, message=f"Created topic {payload['name']}.")


def add_consumer(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    """A standalone consumer (assign, no group) the runtime polls every `poll_interval_ms`."""
    from lessons.scenarios.runtime import HostConsumer

    name = str(payload["name"])
    topic = str(payload["topic"])
    description = runtime.cluster.describe_topic(topic)
    partitions = [TopicPartition(topic, p.partition) for p in description.partitions]
    client = runtime.cluster.consumer(
        config={
            "client.id": name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    client.assign(partitions)
    runtime.consumers[name] = HostConsumer(
        name=name,
        topic=topic,
        client=client,
        poll_interval_ms=int(payload.get("poll_interval_ms", 500)),
        max_records=int(payload.get("max_records", 1)),
        partitions=partitions,
        next_poll_ms=runtime.now_ms,
    )
    return ApplyResult(ok=True, message=f"Consumer {name} reads {topic}.")


def advance(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    runtime.advance(int(payload["ms"]))
    return ApplyResult(ok=True)


def engine_entry(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    """One entry of an engine log (`Cluster.export_log`), e.g. a "Stress it" run opened on
    the stage. Only written by the server (never accepted from a socket)."""
    entry = payload.get("entry")
    if not isinstance(entry, Mapping) or entry.get("op") not in ENGINE_LOG_OPS:
        return ApplyResult(ok=False, message="Unsupported engine log entry.", error="unknown")
    runtime.cluster.apply_logged(dict(entry))
    return ApplyResult(ok=True)


def wire_request(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    """A real Kafka client's request (the wire front door, `webapp/kafka_listener`), decoded
    into the engine's vocabulary: it travels the simulated network to its broker, whose answer
    reaches the client only on the live host; replay makes the same engine calls."""
    from engine.server.remote_requests import from_json

    request = from_json(dict(payload["request"]))
    runtime.cluster.remote.request(int(payload["connection"]), int(payload["broker_id"]), request)
    return ApplyResult(ok=True)


def shutdown_broker(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    broker_id = int(payload["broker_id"])
    runtime.cluster.shutdown_broker(broker_id)
    runtime._notice("info", f"Broker {broker_id}: controlled shutdown (leadership moves first).")
    return ApplyResult(ok=True, message=f"Broker {broker_id} shut down cleanly.")


def _controller_action(
    runtime: ClusterRuntime, payload: Mapping[str, Any], stop: bool
) -> ApplyResult:
    controller_id = int(payload["controller_id"])
    change = runtime.cluster.stop_controller if stop else runtime.cluster.start_controller
    try:
        change(controller_id)
    except ValueError as error:
        return runtime.refuse(str(error))
    return ApplyResult(
        ok=True, message=f"Controller {controller_id} {'stopped' if stop else 'started'}."
    )


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
        return runtime.refuse(str(error))
    return ApplyResult(ok=True, message="Network cut: {" + ", ".join(nodes) + "} | everyone else.")


def heal_network(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    runtime.cluster.heal_network()
    return ApplyResult(ok=True, message="Network healed.")


def lose_responses(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    broker_id = int(payload["broker_id"])
    count = int(payload.get("count", 1))
    runtime.cluster.lose_responses(broker_id, count=count)
    return ApplyResult(
        ok=True, message=f"The next {count} responses from broker {broker_id} will be lost."
    )


def start_producer(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    topic = str(payload["topic"])
    if topic not in runtime.cluster.list_topics():
        return runtime.refuse(f"UnknownTopicOrPartitionException: topic {topic!r} does not exist.")
    app = apps_service(runtime).producer_app(
        topic,
        rate_per_sec=float(payload["rate"]),
        keys=int(payload.get("keys", 10)),
        acks=payload.get("acks", "all"),
        # Kafka refuses an explicit idempotence with acks other than all.
        idempotence=str(payload.get("acks", "all")) in ("all", "-1"),
    )
    return ApplyResult(
        ok=True, message=f"Producer app {app.id} sends {payload['rate']:g}/s to {topic}."
    )


def add_group_consumer(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    topic = str(payload["topic"])
    if topic not in runtime.cluster.list_topics():
        return runtime.refuse(f"UnknownTopicOrPartitionException: topic {topic!r} does not exist.")
    app = apps_service(runtime).consumer_app(
        str(payload["group"]),
        topic,
        poll_interval_ms=int(payload.get("poll_interval_ms", 200)),
        commit=str(payload.get("commit", "auto")),
        config={
            "partition.assignment.strategy": str(payload.get("strategy", "range")),
            "isolation.level": str(payload.get("isolation", "read_uncommitted")),
        },
    )
    return ApplyResult(ok=True, message=f"Consumer app {app.id} joins group {payload['group']}.")


def app_control(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    app_id = int(payload["app_id"])
    action = str(payload["action"])
    try:
        apps_service(runtime).control(app_id, action)
    except ValueError as error:
        return runtime.refuse(str(error))
    return ApplyResult(ok=True, message=f"App {app_id}: {action}.")


def commit_group(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    """A synchronous commit of a consumer app's current positions (blocks on the cluster clock)."""
    app_id = int(payload["app_id"])
    apps = apps_service(runtime).apps
    if not 1 <= app_id <= len(apps) or apps[app_id - 1].kind != "consumer":
        return runtime.refuse(f"There is no consumer app {app_id}.")
    consumer = apps[app_id - 1].consumer
    if consumer is None or not apps[app_id - 1].running:
        return runtime.refuse(f"Consumer app {app_id} is not running.")
    consumer.commit()
    return ApplyResult(ok=True, message=f"Consumer app {app_id} committed its positions.")


TRANSACTION_OUTCOMES = ("commit", "abort", "open", "restart")


def transaction(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    """A transactional producer app (by its transactional.id) writes `count` records to the
    topic in one transaction and commits it, aborts it or leaves it open; `restart` starts a
    new instance with the same transactional.id, whose init_transactions fences the old one
    (its open transaction is aborted and its late commit fails with ProducerFenced).
    Blocking calls run on the cluster clock, as a real client's do."""
    from lessons.scenarios.runtime import kafka_error_text

    transactional_id = str(payload["transactional_id"])
    topic = str(payload["topic"])
    outcome = str(payload.get("outcome", "commit"))
    if topic not in runtime.cluster.list_topics():
        return runtime.refuse(f"UnknownTopicOrPartitionException: topic {topic!r} does not exist.")
    producers = runtime.transactional_producers
    old = producers.get(transactional_id)
    if outcome == "restart" or old is None:
        started = runtime.transactional_instances
        started[transactional_id] = started.get(transactional_id, 0) + 1
        client_id = f"{transactional_id}-{started[transactional_id]}"
        fresh = runtime.cluster.producer(
            config={"transactional.id": transactional_id, "client.id": client_id}
        )
        fresh.init_transactions()
        producers[transactional_id] = fresh
        was_open = transactional_id in runtime.open_transactions
        runtime.open_transactions.discard(transactional_id)
        if outcome == "restart":
            if old is None or not was_open:
                return ApplyResult(ok=True, message=f"{transactional_id}: a new instance started.")
            try:
                old.commit_transaction()  # the zombie wakes up and tries to finish its work
            except KafkaError as error:
                text = kafka_error_text(error)
                runtime._notice(
                    "info", f"{transactional_id}: the old instance's commit failed: {text}"
                )
                return ApplyResult(
                    ok=True,
                    message=f"{transactional_id}: a new instance fenced the old one; the old "
                    f"instance's commit failed with {type(error).__name__}.",
                )
            return ApplyResult(ok=True, message=f"{transactional_id}: a new instance started.")
    producer = producers[transactional_id]
    count = max(1, min(int(payload.get("count", 1)), MAX_PRODUCE_COUNT))
    if transactional_id not in runtime.open_transactions:
        producer.begin_transaction()
        runtime.open_transactions.add(transactional_id)
    for index in range(count):
        producer.send(
            topic,
            value=f"{transactional_id}-{outcome}-{index + 1}".encode(),
            key=transactional_id.encode(),
        )
    if outcome == "open":
        producer.flush()
        return ApplyResult(
            ok=True, message=f"{transactional_id}: {count} records in an open transaction."
        )
    runtime.open_transactions.discard(transactional_id)
    if outcome == "commit":
        producer.commit_transaction()
    else:
        producer.flush()  # the records reach the log first, as when a failure comes mid-way
        producer.abort_transaction()
    done = "committed" if outcome == "commit" else "aborted"
    return ApplyResult(ok=True, message=f"{transactional_id}: {count} records, {done}.")


def reset_offsets(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    to = payload["to"]
    target: Any = int(to) if str(to).isdigit() else str(to)
    runtime.cluster.reset_offsets(str(payload["group"]), str(payload["topic"]), to=target)
    return ApplyResult(
        ok=True, message=f"Group {payload['group']} reset to {to} on {payload['topic']}."
    )


def add_partitions(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    runtime.cluster.add_partitions(str(payload["topic"]), int(payload["total"]))
    return ApplyResult(
        ok=True, message=f"{payload['topic']} now has {payload['total']} partitions."
    )


def alter_topic_config(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    key = str(payload["key"])
    runtime.cluster.alter_topic_config(str(payload["topic"]), {key: payload["value"]})
    return ApplyResult(ok=True, message=f"{payload['topic']}: {key} = {payload['value']}.")


def set_acks(runtime: ClusterRuntime, payload: Mapping[str, Any]) -> ApplyResult:
    """The stage's own producer is replaced by one with the new acks (Kafka fixes acks at
    construction); records already sent still settle through the old one."""
    acks = str(payload["acks"])
    runtime.producer = runtime.cluster.producer(
        config={"client.id": f"dojo-producer-acks-{acks}", "acks": acks}
    )
    return ApplyResult(ok=True, message=f"The stage's producer now sends with acks={acks}.")
