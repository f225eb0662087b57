"""kafka-configs.sh: ConfigCommand (core/src/main/scala/kafka/admin/ConfigCommand.scala), as
4.0 ships it: --bootstrap-server or --bootstrap-controller, no --zookeeper."""

from __future__ import annotations

import re

from lessons.console.admin import AdminError, ConfigEntry, validate_topic_name
from lessons.console.context import KAFKA_VERSION, ToolContext
from lessons.console.jopt import REQUIRED, Opt, OptionError, OptionParser, OptionSet
from lessons.console.output import Output, ToolExit

TYPES = (
    "topics",
    "clients",
    "users",
    "brokers",
    "ips",
    "broker-loggers",
    "client-metrics",
    "groups",
)
FLAGS = (
    ("topic", "topics"),
    ("client", "clients"),
    ("user", "users"),
    ("broker", "brokers"),
    ("broker-logger", "broker-loggers"),
    ("ip", "ips"),
    ("client-metrics", "client-metrics"),
    ("group", "groups"),
)
DEFAULT_FLAGS = (
    ("client-defaults", "clients"),
    ("user-defaults", "users"),
    ("broker-defaults", "brokers"),
    ("ip-defaults", "ips"),
)

PARSER = OptionParser(
    [
        Opt(
            "bootstrap-server",
            "The Kafka servers to connect to.",
            REQUIRED,
            described_as="server to connect to",
        ),
        Opt(
            "bootstrap-controller",
            "The Kafka controllers to connect to.",
            REQUIRED,
            described_as="controller to connect to",
        ),
        Opt(
            "command-config",
            "Property file containing configs to be passed to Admin Client. "
            "This is used only with --bootstrap-server option for describing and altering broker "
            "configs.",
            REQUIRED,
            described_as="command config property file",
        ),
        Opt("alter", "Alter the configuration for the entity."),
        Opt("describe", "List configs for the given entity."),
        Opt("all", "List all configs for the given entity, including static configs if available."),
        Opt(
            "entity-type",
            "Type of entity (topics/clients/users/brokers/broker-loggers/ips/"
            "client-metrics/groups)",
            REQUIRED,
        ),
        Opt(
            "entity-name",
            "Name of entity (topic name/client id/user principal name/broker id/"
            "ip/client metrics/group id)",
            REQUIRED,
        ),
        Opt(
            "entity-default",
            "Default entity name for clients/users/brokers/ips (applies to "
            "corresponding entity type)",
        ),
        Opt(
            "add-config",
            "Key Value pairs of configs to add. Square brackets can be used to "
            "group values which contain commas: 'k1=v1,k2=[v1,v2,v2],k3=v3'.",
            REQUIRED,
        ),
        Opt(
            "add-config-file",
            "Path to a properties file with configs to add. See add-config "
            "for a list of valid configurations.",
            REQUIRED,
        ),
        Opt("delete-config", "config keys to remove 'k1,k2'", REQUIRED),
        Opt("force", "Suppress console prompts"),
        Opt("topic", "The topic's name.", REQUIRED),
        Opt("client", "The client's ID.", REQUIRED),
        Opt("client-defaults", "The config defaults for all clients."),
        Opt("user", "The user's principal name.", REQUIRED),
        Opt("user-defaults", "The config defaults for all users."),
        Opt("broker", "The broker's ID.", REQUIRED),
        Opt("broker-defaults", "The config defaults for all brokers."),
        Opt("broker-logger", "The broker's ID for its logger config.", REQUIRED),
        Opt("ip-defaults", "The config defaults for all IPs."),
        Opt("ip", "The IP address.", REQUIRED),
        Opt("group", "The group's ID.", REQUIRED),
        Opt("client-metrics", "The client metrics config resource name.", REQUIRED),
    ]
)


class Refused(Exception):
    """IllegalArgumentException / InvalidConfigurationException: main prints the message."""


def run(ctx: ToolContext, args: list[str]) -> None:
    out = ctx.out
    try:
        opts = PARSER.parse(args)
    except OptionError as exc:
        out.eprintln(exc.message)
        raise ToolExit(1) from None
    if not args or opts.has("help"):
        out.usage_and_exit(
            PARSER,
            "This tool helps to manipulate and describe entity config for a topic, client, user, "
            "broker, ip, client-metrics or group",
        )
    if opts.has("version"):
        out.println(KAFKA_VERSION)
        raise ToolExit(0)
    ctx.extra["args"] = " ".join(args)
    try:
        types, names = check_args(out, opts)
        if opts.has("alter") and len(types) != len(names):
            raise Refused("An entity name must be specified for every entity type")
        if opts.has("alter"):
            alter(ctx, opts, types, names)
        else:
            describe(ctx, opts, types, names)
    except Refused as exc:
        out.eprintln(str(exc))
        raise ToolExit(1) from None
    except AdminError as exc:
        out.eprintln(f"Error while executing config command with args '{ctx.extra['args']}'")
        out.eprintln(f"java.util.concurrent.ExecutionException: {exc}")
        raise ToolExit(1) from None


def entity_types(opts: OptionSet) -> list[str]:
    return opts.values("entity-type") + [
        kind for flag, kind in (*FLAGS, *DEFAULT_FLAGS) if opts.has(flag)
    ]


def entity_names(opts: OptionSet) -> list[str]:
    names = iter(opts.values("entity-name"))
    listed = [
        next(names) if o == "entity-name" else ""
        for o in opts.order
        if o in ("entity-name", "entity-default")
    ]
    listed += [opts.value(flag) or "" for flag, _ in FLAGS if opts.has(flag)]
    listed += ["" for flag, _ in DEFAULT_FLAGS if opts.has(flag)]
    return listed


def check_args(out: Output, opts: OptionSet) -> tuple[list[str], list[str]]:
    if sum(opts.has(a) for a in ("alter", "describe")) != 1:
        out.usage_and_exit(PARSER, "Command must include exactly one action: --describe, --alter")
    for other in ("add-config", "delete-config"):
        if opts.has("describe") and opts.has(other):
            out.usage_and_exit(
                PARSER,
                f'Option "{PARSER.by_name["describe"]}" can\'t be used with option '
                f'"{PARSER.by_name[other]}"',
            )
    types = entity_types(opts)
    duplicates = [t for i, t in enumerate(types) if t in types[:i]]
    if duplicates:
        raise Refused(f"Duplicate entity type(s) specified: {','.join(duplicates)}")
    for kind in types:
        if kind not in TYPES:
            raise Refused(
                f"Invalid entity type {kind}, the entity type must be one of {', '.join(TYPES)} "
                "with a --bootstrap-server or --bootstrap-controller argument"
            )
    if not types:
        raise Refused("At least one entity type must be specified")
    if len(types) > 1 and set(types) != {"users", "clients"}:
        raise Refused("Only 'users' and 'clients' entity types may be specified together")
    uses_generic = any(opts.has(o) for o in ("entity-name", "entity-type", "entity-default"))
    if uses_generic and any(opts.has(f) for f, _ in (*FLAGS, *DEFAULT_FLAGS)):
        raise Refused(
            "--entity-{type,name,default} should not be used in conjunction with specific "
            "entity flags"
        )
    names = entity_names(opts)
    has_name = any(names)
    has_default = any(n == "" for n in names)
    connects = sum(opts.has(o) for o in ("bootstrap-server", "bootstrap-controller"))
    if connects == 0:
        raise Refused(
            "One of the required --bootstrap-server or --bootstrap-controller arguments "
            "must be specified"
        )
    if connects > 1:
        raise Refused("Only one of --bootstrap-server or --bootstrap-controller can be specified")
    if has_name and ("brokers" in types or "broker-loggers" in types):
        for flag in ("entity-name", "broker", "broker-logger"):
            if opts.has(flag):
                value = opts.value(flag) or ""
                if not re.fullmatch(r"[+-]?\d+", value):
                    raise Refused(
                        f"The entity name for {types[0]} must be a valid integer broker id, but it "
                        f"is: {value}"
                    )
    if opts.has("describe"):
        if not set(types) & {"users", "clients", "brokers", "ips"} and opts.has("entity-default"):
            raise Refused(
                f"--entity-default must not be specified with --describe of {','.join(types)}"
            )
        if "broker-loggers" in types and not has_name:
            raise Refused(f"An entity name must be specified with --describe of {','.join(types)}")
    if opts.has("alter"):
        if set(types) & {"users", "clients", "brokers", "ips"}:
            if not has_name and not has_default:
                raise Refused(
                    "An entity-name or default entity must be specified with --alter of users, "
                    "clients, brokers or ips"
                )
        elif not has_name:
            raise Refused(f"An entity name must be specified with --alter of {','.join(types)}")
        if opts.has("add-config") and opts.has("add-config-file"):
            raise Refused("Only one of --add-config or --add-config-file must be specified")
        if not any(opts.has(o) for o in ("add-config", "add-config-file", "delete-config")):
            raise Refused(
                "At least one of --add-config, --add-config-file, or --delete-config must be "
                "specified with --alter"
            )
    return types, names


def _entry_line(entry: ConfigEntry) -> str:
    synonyms = ", ".join(f"{source}:{name}={value}" for source, name, value in entry.synonyms)
    sensitive = "true" if entry.sensitive else "false"
    return f"  {entry.name}={entry.value} sensitive={sensitive} synonyms={{{synonyms}}}"


def describe(ctx: ToolContext, opts: OptionSet, types: list[str], names: list[str]) -> None:
    admin, out = ctx.admin, ctx.out
    kind = types[0]
    describe_all = opts.has("all")
    name = names[0] if names else None
    if kind == "topics":
        topics = [name] if name is not None else admin.list_topics(include_internal=True)
        for topic in topics:
            out.println(f"{'All' if describe_all else 'Dynamic'} configs for topic {topic} are:")
            if topic:
                try:
                    validate_topic_name(topic)
                except AdminError as exc:
                    out.eprintln(
                        f"Error while executing config command with args '{ctx.extra['args']}'"
                    )
                    out.eprintln(str(exc))
                    raise ToolExit(1) from None
            for entry in admin.topic_config_entries(topic):
                if describe_all or entry.source == "DYNAMIC_TOPIC_CONFIG":
                    out.println(_entry_line(entry))
        return
    if kind == "brokers":
        every = [str(b) for b in sorted(admin.live_brokers())] + [""]
        entities = every if name is None else [name]
        for entity in entities:
            if entity == "":
                out.println("Default configs for brokers in the cluster are:")
            else:
                label = "All" if describe_all else "Dynamic"
                out.println(f"{label} configs for broker {entity} are:")
            broker_id = int(entity) if entity else None
            for entry in admin.broker_config_entries(broker_id, describe_all):
                out.println(_entry_line(entry))
        return
    raise AdminError(
        "InvalidRequestException",
        f"This simulator has no {kind} configs to describe; it models topic and broker configs.",
    )


def parse_add_config(text: str) -> dict[str, str]:
    """`parseConfigsToBeAdded`: split at commas outside [...], then at `=`; brackets dropped."""
    lookahead = r"(?=[^\]]*(?:\[|$))"
    pairs = [re.split(r"\s*=\s*" + lookahead, part) for part in re.split("," + lookahead, text)]
    if not all(len(p) == 2 for p in pairs):
        raise Refused(
            "requirement failed: Invalid entity config: all configs to be added must be in the "
            'format "key=val".'
        )
    props = {p[0].strip(): re.sub(r"\[?\]?", "", p[1]).strip() for p in pairs}
    for key in props:
        if not re.fullmatch(r"[a-zA-Z0-9._-]*", key):
            raise Refused(f"Invalid character found for config key: {key}")
    return props


def alter(ctx: ToolContext, opts: OptionSet, types: list[str], names: list[str]) -> None:
    admin, out = ctx.admin, ctx.out
    if opts.has("add-config-file"):
        out.eprintln(f"Error while executing config command with args '{ctx.extra['args']}'")
        out.eprintln(f"java.nio.file.NoSuchFileException: {opts.value('add-config-file')}")
        raise ToolExit(1)
    to_add = parse_add_config(opts.value("add-config") or "") if opts.has("add-config") else {}
    to_delete = [k.strip() for value in opts.values("delete-config") for k in value.split(",")]
    kind, name = types[0], names[0]
    if kind == "topics":
        validate_topic_name(name)
        current = {
            e.name for e in admin.topic_config_entries(name) if e.source == "DYNAMIC_TOPIC_CONFIG"
        }
        invalid = [k for k in to_delete if k not in current]
        if invalid:
            raise Refused(f"Invalid config(s): {','.join(invalid)}")
        try:
            admin.alter_topic_configs(name, to_add, to_delete)
        except AdminError as exc:
            if exc.simple_name == "InvalidConfigurationException":
                out.eprintln(
                    f"Error while executing config command with args '{ctx.extra['args']}'"
                )
                out.eprintln(f"java.util.concurrent.ExecutionException: {exc}")
                raise ToolExit(1) from None
            raise
        out.println(f"Completed updating config for topic {name}.")
        return
    if kind == "brokers":
        broker_id = int(name) if name else None
        current = {e.name for e in admin.broker_config_entries(broker_id, describe_all=False)}
        invalid = [k for k in to_delete if k not in current]
        if invalid:
            raise Refused(f"Invalid config(s): {','.join(invalid)}")
        admin.alter_broker_configs(broker_id, to_add, to_delete)
        if name:
            out.println(f"Completed updating config for broker {name}.")
        else:
            out.println("Completed updating default config for brokers in the cluster.")
        return
    raise AdminError(
        "InvalidRequestException",
        f"This simulator has no {kind} configs to change; it models topic and broker configs.",
    )
