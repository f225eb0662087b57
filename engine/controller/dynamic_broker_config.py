"""Dynamic broker configs (Kafka's `DynamicBrokerConfig`, `ConfigAdminManager`): which broker
settings IncrementalAlterConfigs may change on a running cluster, at which level, and the layers
a broker setting is resolved through.

Levels, highest precedence first (Kafka's `ConfigSource`): DYNAMIC_BROKER_CONFIG (set for one
broker, resource name "1"), DYNAMIC_DEFAULT_BROKER_CONFIG (set for every broker, resource name
""), STATIC_BROKER_CONFIG (given when the cluster was made), DEFAULT_CONFIG.

Dynamic here are the keys Kafka lists as reconfigurable (`DynamicLogConfig.ReconfigurableConfigs`
— the broker synonyms of topic configs —, `LogCleaner.ReconfigurableConfigs`) that the engine
also applies. Kafka's other dynamic keys (thread pools, listeners, SSL, quotas, ...) change
nothing the simulation models, so they are refused rather than stored and ignored; every other
broker key the engine knows is refused as Kafka refuses a static one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.common.config import BROKER, TOPIC_BROKER_SYNONYMS, _parse_value
from engine.errors import InvalidRequestError

DYNAMIC_BROKER_CONFIG = "DYNAMIC_BROKER_CONFIG"
DYNAMIC_DEFAULT_BROKER_CONFIG = "DYNAMIC_DEFAULT_BROKER_CONFIG"
STATIC_BROKER_CONFIG = "STATIC_BROKER_CONFIG"
DEFAULT_CONFIG = "DEFAULT_CONFIG"

# The broker synonyms of topic configs: the topics' defaults (every topic that does not set the
# key itself follows them), applied per broker to the partitions it hosts.
LOG_CONFIGS = frozenset(TOPIC_BROKER_SYNONYMS.values())
# Broker-wide settings the engine reads while it runs; per broker only where a broker reads its
# own value (the log cleaner is one service for the cluster, so its backoff is cluster-wide).
CLUSTER_ONLY = frozenset({"log.cleaner.backoff.ms"})
APPLIED = LOG_CONFIGS | CLUSTER_ONLY

# Kafka's other dynamic broker configs (DynamicBrokerConfig.AllDynamicConfigs): accepted by a
# real broker, but nothing here would change.
KAFKA_DYNAMIC_UNMODELLED = frozenset(
    {
        "background.threads",
        "compression.type",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.zstd.level",
        "log.cleaner.dedupe.buffer.size",
        "log.cleaner.io.buffer.load.factor",
        "log.cleaner.io.buffer.size",
        "log.cleaner.io.max.bytes.per.second",
        "log.cleaner.threads",
        "log.flush.interval.messages",
        "log.flush.interval.ms",
        "log.index.size.max.bytes",
        "log.local.retention.bytes",
        "log.local.retention.ms",
        "log.message.timestamp.after.max.ms",
        "log.message.timestamp.before.max.ms",
        "log.preallocate",
        "log.retention.hours",
        "log.retention.minutes",
        "log.roll.hours",
        "log.roll.jitter.hours",
        "log.roll.jitter.ms",
        "max.connection.creation.rate",
        "max.connections",
        "max.connections.per.ip",
        "max.connections.per.ip.overrides",
        "metric.reporters",
        "num.io.threads",
        "num.network.threads",
        "num.recovery.threads.per.data.dir",
        "num.replica.fetchers",
        "producer.id.expiration.ms",
        "remote.log.manager.copy.max.bytes.per.second",
        "remote.log.manager.fetch.max.bytes.per.second",
        "remote.log.index.file.cache.total.size.bytes",
        "transaction.partition.verification.enable",
    }
)


def validate_broker_name(name: str) -> None:
    """ControllerConfigurationValidator.validateBrokerName: "" (every broker) or an id."""
    if name == "":
        return
    try:
        broker_id = int(name, 10)
    except ValueError:
        raise InvalidRequestError("Unable to parse broker name as a base 10 number.") from None
    if broker_id < 0:
        raise InvalidRequestError("Invalid negative broker ID.")


def _java_set(names: list[str]) -> str:
    return "Set(" + ", ".join(names) + ")"


def validate_broker_changes(
    entity: str, sets: Mapping[str, Any], deletes: list[str]
) -> dict[str, Any]:
    """ConfigAdminManager.validateBrokerConfigChange: the parsed values to set, or the
    InvalidRequestError Kafka answers (KAFKA-13609: a ConfigException becomes
    INVALID_REQUEST)."""
    names = [*sets, *deletes]
    if len(set(names)) != len(names):
        raise InvalidRequestError("Error due to duplicate config keys")
    static = sorted(n for n in names if n in BROKER.keys and n not in APPLIED)
    if static:
        raise InvalidRequestError(f"Cannot update these configs dynamically: {_java_set(static)}")
    unmodelled = sorted(
        n
        for n in names
        if n in KAFKA_DYNAMIC_UNMODELLED or n.startswith(("ssl.", "sasl.", "listener.name."))
    )
    if unmodelled:
        raise InvalidRequestError(
            f"Cannot update these configs dynamically in this simulator: {_java_set(unmodelled)}"
            " (Kafka can; nothing the simulation models would change)"
        )
    unknown = sorted(n for n in names if n not in APPLIED)
    if unknown:
        raise InvalidRequestError(
            f"Unknown broker configs: {_java_set(unknown)} (a real broker stores unknown keys "
            "unused; this simulator refuses them)"
        )
    if entity:
        cluster_only = sorted(n for n in names if n in CLUSTER_ONLY)
        if cluster_only:
            raise InvalidRequestError(
                f"Cannot update these configs per broker in this simulator: "
                f"{_java_set(cluster_only)} (set them for every broker with --entity-default)"
            )
    parsed: dict[str, Any] = {}
    for name, raw in sets.items():
        spec = BROKER.keys[name]
        try:
            value = _parse_value(spec, raw)
        except ValueError:
            raise InvalidRequestError(
                f"Invalid value {raw} for configuration {name}: {_expectation(spec.type)}"
            ) from None
        problem = spec.validator(value) if spec.validator and value is not None else None
        if problem:
            raise InvalidRequestError(f"Invalid value {raw} for configuration {name}: {problem}")
        parsed[name] = value
    return parsed


def _expectation(kind: str) -> str:
    return {
        "int": "Not a number of type INT",
        "long": "Not a number of type LONG",
        "double": "Not a number of type DOUBLE",
        "boolean": "Expected value to be either true or false",
    }.get(kind, "String must be one of the allowed values")


def resolved(
    key: str,
    entity: str,
    layers: Mapping[str, Mapping[str, Any]],
    static: Mapping[str, Any],
    static_keys: frozenset[str] | set[str],
) -> list[tuple[str, Any]]:
    """The synonyms of one broker key for `entity` ("" the cluster default, "1" broker 1), in
    precedence order: [(source, value)], the first being the value in effect."""
    found: list[tuple[str, Any]] = []
    if entity and key in layers.get(entity, {}):
        found.append((DYNAMIC_BROKER_CONFIG, layers[entity][key]))
    if key in layers.get("", {}):
        found.append((DYNAMIC_DEFAULT_BROKER_CONFIG, layers[""][key]))
    if key in static_keys:
        found.append((STATIC_BROKER_CONFIG, static[key]))
    found.append((DEFAULT_CONFIG, BROKER.keys[key].default))
    return found
