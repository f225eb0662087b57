"""What the console's tab completion offers: tool names, each tool's options, and the cluster's
topics and groups, plus the completion of one partly typed line (used by the web panel)."""

from __future__ import annotations

import shlex
from typing import Any

from lessons.console.jopt import NONE, OptionParser
from lessons.console.output import Output
from lessons.console.session import ConsoleSession
from lessons.console.tools import (
    config_tool,
    console_consumer,
    console_producer,
    consumer_groups,
    get_offsets,
    leader_election,
    metadata_quorum,
    perf,
    reassign_partitions,
    topics,
)

TOPIC_OPTIONS = frozenset({"--topic", "--entity-name", "--include"})
GROUP_OPTIONS = frozenset({"--group"})
FILE_OPTIONS = frozenset({"--reassignment-json-file", "--topics-to-move-json-file"})


def _jopt(parser: OptionParser) -> list[dict[str, Any]]:
    return [
        {"name": f"--{opt.name}", "arg": opt.arg != NONE}
        for opt in sorted(parser.options, key=lambda o: o.name)
    ]


def _argparse(parser: Any) -> list[dict[str, Any]]:
    found = []
    for action in parser._actions:
        for name in action.option_strings:
            if name.startswith("--"):
                found.append({"name": name, "arg": action.nargs != 0})
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):  # subcommands
            for command, sub in choices.items():
                found.append({"name": command, "arg": False})
                found += [o for o in _argparse(sub) if o not in found]
    return sorted(found, key=lambda o: str(o["name"]))


def tool_options() -> dict[str, list[dict[str, Any]]]:
    """Every tool's options, for completion: name and whether it takes a value."""
    return {
        "kafka-topics.sh": _jopt(topics.PARSER),
        "kafka-configs.sh": _jopt(config_tool.PARSER),
        "kafka-console-producer.sh": _jopt(console_producer.PARSER),
        "kafka-console-consumer.sh": _jopt(console_consumer.PARSER),
        "kafka-consumer-groups.sh": _jopt(consumer_groups.PARSER),
        "kafka-get-offsets.sh": _jopt(get_offsets.PARSER),
        "kafka-leader-election.sh": _jopt(leader_election.PARSER),
        "kafka-metadata-quorum.sh": _argparse(metadata_quorum.build_parser(Output())),
        "kafka-producer-perf-test.sh": _argparse(perf.producer_parser()),
        "kafka-consumer-perf-test.sh": _jopt(perf.CONSUMER_PARSER),
        "kafka-reassign-partitions.sh": _jopt(reassign_partitions.PARSER),
    }


def completion_data(session: ConsoleSession) -> dict[str, Any]:
    admin = session.admin
    servers = [":".join(map(str, admin.broker_host_port(b))) for b in admin.broker_ids()]
    return {
        "servers": servers,
        "tools": sorted(tool_options()),
        "options": tool_options(),
        "topics": admin.known_topics(),
        "groups": admin.known_groups(),
        "files": sorted(session.files),
    }


def complete(line: str, data: dict[str, Any]) -> list[str]:
    """The candidates for the last word of `line`: a tool name first, then its options, and
    after --topic / --group the cluster's topics or groups."""
    try:
        words = shlex.split(line)
    except ValueError:
        return []
    if line.endswith(" ") or not words:
        words.append("")
    current = words[-1]
    if len(words) == 1:
        return [t for t in data["tools"] if t.startswith(current)]
    tool = words[0].rsplit("/", 1)[-1]
    if not tool.endswith(".sh"):
        tool += ".sh"
    previous = words[-2]
    if previous in TOPIC_OPTIONS:
        return [t for t in data["topics"] if t.startswith(current)]
    if previous in GROUP_OPTIONS:
        return [g for g in data["groups"] if g.startswith(current)]
    if previous in FILE_OPTIONS:
        return [f for f in data.get("files", []) if f.startswith(current)]
    if previous in ("--bootstrap-server", "--bootstrap-controller"):
        return [s for s in data.get("servers", []) if s.startswith(current)]
    options = data["options"].get(tool, [])
    used = set(words[1:-1])
    return [
        str(o["name"])
        for o in options
        if str(o["name"]).startswith(current) and (o["arg"] or o["name"] not in used)
    ]
