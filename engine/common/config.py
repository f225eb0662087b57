"""Kafka's configuration keys, their types, defaults and validators.

Values may be given as Python values (`2`, `True`, `"all"`) or as Kafka's strings (`"2"`,
`"true"`). Unknown keys are refused with `InvalidConfigurationError`, as Kafka's admin client
does. Keys starting with `sim.` exist only in the simulation.

Simulation floors: Kafka refuses some tiny values (for example `segment.bytes` below 1 MiB in
4.0); lessons need 1 KiB segments and seconds-long retention, so the simulation accepts sizes
down to 64 bytes and times down to 1 ms and says so in `SIM_FLOORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidConfigurationError

INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
DAY_MS = 24 * 3600 * 1000
WEEK_MS = 7 * DAY_MS

# Where the simulation accepts values below Kafka's own minimum (see the module docstring).
SIM_FLOORS = {
    "segment.bytes": "64 bytes (Kafka 4.0: 1 MiB)",
    "log.segment.bytes": "64 bytes (Kafka 4.0: 1 MiB)",
    "segment.ms": "1 ms (Kafka: 1 ms)",
}

Validator = Callable[[Any], str | None]


def at_least(low: float) -> Validator:
    return lambda v: None if v >= low else f"must be at least {low}"


def between(low: float, high: float) -> Validator:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}"


def one_of(*choices: str) -> Validator:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def list_of(*choices: str) -> Validator:
    def check(v: list[str]) -> str | None:
        bad = [item for item in v if item not in choices]
        return f"unknown value(s) {', '.join(bad)}; expected {', '.join(choices)}" if bad else None

    return check


@dataclass(frozen=True, slots=True)
class ConfigKey:
    name: str
    type: str  # int, long, double, boolean, string, list
    default: Any
    validator: Validator | None = None
    nullable: bool = False


def _key(
    name: str, type_: str, default: Any, validator: Validator | None = None, nullable: bool = False
) -> ConfigKey:
    return ConfigKey(name, type_, default, validator, nullable)


def _parse_value(key: ConfigKey, raw: Any) -> Any:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() == "null" and key.nullable):
        if key.nullable:
            return None
        raise ValueError("cannot be empty")
    kind = key.type
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise ValueError("must be true or false")
    if kind in ("int", "long"):
        if isinstance(raw, bool):
            raise ValueError("must be a whole number")
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        elif isinstance(raw, str):
            try:
                value = int(raw.strip())
            except ValueError:
                raise ValueError("must be a whole number") from None
        else:
            raise ValueError("must be a whole number")
        limit = INT_MAX if kind == "int" else LONG_MAX
        if not -limit - 1 <= value <= limit:
            raise ValueError(f"must fit in a Java {kind}")
        return value
    if kind == "double":
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ValueError("must be a number") from None
    if kind == "list":
        if isinstance(raw, str):
            items = [item.strip() for item in raw.split(",") if item.strip()]
        elif isinstance(raw, (list, tuple)):
            items = [str(item).strip() for item in raw]
        else:
            raise ValueError("must be a list or a comma-separated string")
        return items
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        raise ValueError("must be a string")
    return str(raw)


class ConfigDef:
    """A set of config keys: parses and validates user-supplied dicts."""

    def __init__(self, kind: str, keys: list[ConfigKey], allow_sim: bool = True) -> None:
        self.kind = kind
        self.keys = {key.name: key for key in keys}
        self.allow_sim = allow_sim

    def defaults(self) -> dict[str, Any]:
        return {name: key.default for name, key in self.keys.items()}

    def parse_one(self, name: str, raw: Any) -> Any:
        key = self.keys.get(name)
        if key is None:
            raise InvalidConfigurationError(f"Unknown {self.kind} config '{name}'.")
        try:
            value = _parse_value(key, raw)
        except ValueError as exc:
            raise InvalidConfigurationError(
                f"Invalid value {raw!r} for {self.kind} config '{name}': {exc}."
            ) from None
        if value is not None and key.validator is not None:
            problem = key.validator(value)
            if problem:
                raise InvalidConfigurationError(
                    f"Invalid value {raw!r} for {self.kind} config '{name}': {problem}."
                )
        return value

    def parse(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Only the keys given, parsed and validated."""
        if given is None:
            return {}
        if not isinstance(given, Mapping):
            raise InvalidConfigurationError(f"The {self.kind} config must be a mapping.")
        return {str(name): self.parse_one(str(name), raw) for name, raw in given.items()}

    def resolve(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with the keys given."""
        values = self.defaults()
        values.update(self.parse(given))
        return values


ACKS_CHOICES = ("all", "-1", "0", "1")


def _acks(v: str) -> str | None:
    return None if v in ACKS_CHOICES else "must be one of all, -1, 0, 1"


BROKER = ConfigDef(
    "broker",
    [
        _key("num.partitions", "int", 1, at_least(1)),
        _key("default.replication.factor", "int", 1, at_least(1)),
        _key("min.insync.replicas", "int", 1, at_least(1)),
        _key("unclean.leader.election.enable", "boolean", False),
        _key("auto.create.topics.enable", "boolean", True),
        _key("auto.leader.rebalance.enable", "boolean", True),
        _key("leader.imbalance.check.interval.seconds", "long", 300, at_least(1)),
        _key("leader.imbalance.per.broker.percentage", "int", 10, at_least(0)),
        _key("replica.lag.time.max.ms", "long", 30000, at_least(1)),
        _key("replica.fetch.wait.max.ms", "int", 500, at_least(0)),
        _key("replica.fetch.min.bytes", "int", 1, at_least(1)),
        _key("replica.fetch.max.bytes", "int", 1048576, at_least(0)),
        _key("replica.fetch.backoff.ms", "int", 1000, at_least(0)),
        _key("broker.heartbeat.interval.ms", "int", 2000, at_least(1)),
        _key("broker.session.timeout.ms", "int", 9000, at_least(1)),
        _key("controller.quorum.election.timeout.ms", "int", 1000, at_least(1)),
        _key("controller.quorum.fetch.timeout.ms", "int", 2000, at_least(1)),
        _key("log.segment.bytes", "int", 1073741824, at_least(64)),
        _key("log.roll.ms", "long", WEEK_MS, at_least(1)),
        _key("log.retention.ms", "long", WEEK_MS, at_least(-1)),
        _key("log.retention.bytes", "long", -1),
        _key("log.retention.check.interval.ms", "long", 300000, at_least(1)),
        _key("log.cleanup.policy", "list", ["delete"], list_of("delete", "compact")),
        _key("log.index.interval.bytes", "int", 4096, at_least(0)),
        _key("log.segment.delete.delay.ms", "long", 60000, at_least(0)),
        _key(
            "log.message.timestamp.type",
            "string",
            "CreateTime",
            one_of("CreateTime", "LogAppendTime"),
        ),
        _key("log.cleaner.enable", "boolean", True),
        _key("log.cleaner.backoff.ms", "long", 15000, at_least(0)),
        _key("log.cleaner.min.cleanable.ratio", "double", 0.5, between(0, 1)),
        _key("log.cleaner.min.compaction.lag.ms", "long", 0, at_least(0)),
        _key("log.cleaner.max.compaction.lag.ms", "long", LONG_MAX, at_least(1)),
        _key("log.cleaner.delete.retention.ms", "long", DAY_MS, at_least(0)),
        _key("message.max.bytes", "int", 1048588, at_least(0)),
        _key("offsets.topic.num.partitions", "int", 50, at_least(1)),
        _key("offsets.topic.replication.factor", "int", 3, at_least(1)),
        _key("offsets.topic.segment.bytes", "int", 104857600, at_least(64)),
        _key("offsets.retention.minutes", "int", 10080, at_least(1)),
        _key("offsets.retention.check.interval.ms", "long", 600000, at_least(1)),
        _key("offsets.commit.timeout.ms", "int", 5000, at_least(1)),
        _key("transaction.state.log.num.partitions", "int", 50, at_least(1)),
        _key("transaction.state.log.replication.factor", "int", 3, at_least(1)),
        _key("transaction.state.log.min.isr", "int", 2, at_least(1)),
        _key("transaction.max.timeout.ms", "int", 900000, at_least(1)),
        _key(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms", "int", 10000, at_least(1)
        ),
        _key("transactional.id.expiration.ms", "int", 604800000, at_least(1)),
        _key("producer.id.expiration.ms", "int", DAY_MS, at_least(1)),
        _key("group.initial.rebalance.delay.ms", "int", 3000, at_least(0)),
        _key("group.min.session.timeout.ms", "int", 6000, at_least(0)),
        _key("group.max.session.timeout.ms", "int", 1800000, at_least(0)),
        _key("group.max.size", "int", INT_MAX, at_least(1)),
        _key("sim.network.latency.ms", "int", 2, between(0, 60000)),
        _key("sim.network.jitter.ms", "int", 1, between(0, 60000)),
    ],
)

TOPIC = ConfigDef(
    "topic",
    [
        _key("cleanup.policy", "list", ["delete"], list_of("delete", "compact")),
        _key(
            "compression.type",
            "string",
            "producer",
            one_of("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
        ),
        _key("delete.retention.ms", "long", DAY_MS, at_least(0)),
        _key("file.delete.delay.ms", "long", 60000, at_least(0)),
        _key("index.interval.bytes", "int", 4096, at_least(0)),
        _key("max.compaction.lag.ms", "long", LONG_MAX, at_least(1)),
        _key("max.message.bytes", "int", 1048588, at_least(0)),
        _key(
            "message.timestamp.type", "string", "CreateTime", one_of("CreateTime", "LogAppendTime")
        ),
        _key("min.cleanable.dirty.ratio", "double", 0.5, between(0, 1)),
        _key("min.compaction.lag.ms", "long", 0, at_least(0)),
        _key("min.insync.replicas", "int", 1, at_least(1)),
        _key("retention.bytes", "long", -1),
        _key("retention.ms", "long", WEEK_MS, at_least(-1)),
        _key("segment.bytes", "int", 1073741824, at_least(64)),
        _key("segment.ms", "long", WEEK_MS, at_least(1)),
        _key("segment.index.bytes", "int", 10485760, at_least(8)),
        _key("unclean.leader.election.enable", "boolean", False),
    ],
)

# Topic keys whose default comes from a broker key (Kafka's "synonyms").
TOPIC_BROKER_SYNONYMS = {
    "cleanup.policy": "log.cleanup.policy",
    "delete.retention.ms": "log.cleaner.delete.retention.ms",
    "file.delete.delay.ms": "log.segment.delete.delay.ms",
    "index.interval.bytes": "log.index.interval.bytes",
    "max.compaction.lag.ms": "log.cleaner.max.compaction.lag.ms",
    "max.message.bytes": "message.max.bytes",
    "message.timestamp.type": "log.message.timestamp.type",
    "min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
    "min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms",
    "min.insync.replicas": "min.insync.replicas",
    "retention.bytes": "log.retention.bytes",
    "retention.ms": "log.retention.ms",
    "segment.bytes": "log.segment.bytes",
    "segment.ms": "log.roll.ms",
    "unclean.leader.election.enable": "unclean.leader.election.enable",
}

ASSIGNMENT_STRATEGIES = ("range", "roundrobin", "sticky", "cooperative-sticky")
_STRATEGY_CLASSES = {
    "org.apache.kafka.clients.consumer.RangeAssignor": "range",
    "org.apache.kafka.clients.consumer.RoundRobinAssignor": "roundrobin",
    "org.apache.kafka.clients.consumer.StickyAssignor": "sticky",
    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor": "cooperative-sticky",
}


def normalize_strategy(name: str) -> str:
    return _STRATEGY_CLASSES.get(name, name)


def _strategies(v: list[str]) -> str | None:
    if not v:
        return "needs at least one assignor"
    bad = [s for s in v if normalize_strategy(s) not in ASSIGNMENT_STRATEGIES]
    return f"unknown assignor(s) {', '.join(bad)}" if bad else None


_CLIENT_COMMON = [
    _key("bootstrap.servers", "list", []),
    _key("client.id", "string", ""),
    _key("request.timeout.ms", "int", 30000, at_least(0)),
    _key("retry.backoff.ms", "long", 100, at_least(0)),
    _key("retry.backoff.max.ms", "long", 1000, at_least(0)),
    _key("metadata.max.age.ms", "long", 300000, at_least(0)),
    _key("reconnect.backoff.ms", "long", 50, at_least(0)),
    _key("connections.max.idle.ms", "long", 540000),
    _key("security.protocol", "string", "PLAINTEXT"),
    _key("client.dns.lookup", "string", "use_all_dns_ips"),
]

PRODUCER = ConfigDef(
    "producer",
    [
        *_CLIENT_COMMON,
        _key("acks", "string", "all", _acks),
        _key("enable.idempotence", "boolean", True),
        _key("retries", "int", INT_MAX, at_least(0)),
        _key("delivery.timeout.ms", "int", 120000, at_least(0)),
        _key("linger.ms", "long", 5, at_least(0)),
        _key("batch.size", "int", 16384, at_least(0)),
        _key("max.in.flight.requests.per.connection", "int", 5, at_least(1)),
        _key("max.request.size", "int", 1048576, at_least(0)),
        _key("max.block.ms", "long", 60000, at_least(0)),
        _key("buffer.memory", "long", 33554432, at_least(0)),
        _key("compression.type", "string", "none", one_of("none", "gzip", "snappy", "lz4", "zstd")),
        _key("transactional.id", "string", None, nullable=True),
        _key("transaction.timeout.ms", "int", 60000, at_least(1)),
        _key("partitioner.ignore.keys", "boolean", False),
        _key("partitioner.adaptive.partitioning.enable", "boolean", True),
        _key("partitioner.availability.timeout.ms", "long", 0, at_least(0)),
        _key("partitioner.class", "string", None, nullable=True),
        _key("key.serializer", "string", None, nullable=True),
        _key("value.serializer", "string", None, nullable=True),
    ],
)

CONSUMER = ConfigDef(
    "consumer",
    [
        *_CLIENT_COMMON,
        _key("group.id", "string", None, nullable=True),
        _key("group.instance.id", "string", None, nullable=True),
        _key("group.protocol", "string", "classic", one_of("classic")),
        _key("enable.auto.commit", "boolean", True),
        _key("auto.commit.interval.ms", "int", 5000, at_least(0)),
        _key("auto.offset.reset", "string", "latest", one_of("earliest", "latest", "none")),
        _key(
            "isolation.level",
            "string",
            "read_uncommitted",
            one_of("read_uncommitted", "read_committed"),
        ),
        _key("max.poll.records", "int", 500, at_least(1)),
        _key("max.poll.interval.ms", "int", 300000, at_least(1)),
        _key("session.timeout.ms", "int", 45000),
        _key("heartbeat.interval.ms", "int", 3000, at_least(1)),
        _key("partition.assignment.strategy", "list", ["range", "cooperative-sticky"], _strategies),
        _key("fetch.min.bytes", "int", 1, at_least(0)),
        _key("fetch.max.wait.ms", "int", 500, at_least(0)),
        _key("fetch.max.bytes", "int", 52428800, at_least(0)),
        _key("max.partition.fetch.bytes", "int", 1048576, at_least(0)),
        _key("default.api.timeout.ms", "int", 60000, at_least(0)),
        _key("allow.auto.create.topics", "boolean", True),
        _key("exclude.internal.topics", "boolean", True),
        _key("check.crcs", "boolean", True),
        _key("client.rack", "string", ""),
        _key("key.deserializer", "string", None, nullable=True),
        _key("value.deserializer", "string", None, nullable=True),
    ],
)


def broker_config(given: Mapping[str, Any] | None, brokers: int) -> dict[str, Any]:
    """Cluster-wide broker settings: Kafka's defaults, with the shipped server.properties values
    for internal topics on small clusters (see ENGINE_API.md)."""
    values = BROKER.defaults()
    values["offsets.topic.replication.factor"] = min(3, brokers)
    values["transaction.state.log.replication.factor"] = min(3, brokers)
    values["transaction.state.log.min.isr"] = min(2, brokers)
    values.update(BROKER.parse(given))
    return values


def topic_defaults(broker: Mapping[str, Any]) -> dict[str, Any]:
    values = TOPIC.defaults()
    for topic_key, broker_key in TOPIC_BROKER_SYNONYMS.items():
        values[topic_key] = broker[broker_key]
    return values
