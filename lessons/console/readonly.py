"""Which console lines only read the cluster, so a probe or a drill can run them to compute what
they print without changing anything."""

from __future__ import annotations

from lessons.console.shell import ShellError, parse

MUTATING = {
    "kafka-topics.sh": {"--create", "--alter", "--delete"},
    "kafka-consumer-groups.sh": {"--execute", "--delete", "--delete-offsets"},
    "kafka-configs.sh": {"--alter"},
}
READERS = {
    "kafka-topics.sh": {"--list", "--describe"},
    "kafka-consumer-groups.sh": {"--list", "--describe", "--reset-offsets"},
    "kafka-configs.sh": {"--describe"},
    "kafka-get-offsets.sh": None,  # every run only reads
    "kafka-metadata-quorum.sh": {"describe"},
}


def is_read_only(line: str) -> bool:
    """True for a single line of a tool that only reads: a describe or list, a dry-run reset,
    offsets or the quorum. Pipes, pasted input and every other tool are not."""
    try:
        command = parse(line)
    except ShellError:
        return False
    if command is None or command.stdin is not None or "\n" in line:
        return False
    tool = command.tool if command.tool.endswith(".sh") else command.tool + ".sh"
    if tool not in READERS:
        return False
    words = {arg.split("=", 1)[0] for arg in command.args}
    if words & MUTATING.get(tool, set()):
        return False
    readers = READERS[tool]
    return readers is None or bool(words & readers)
