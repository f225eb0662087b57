"""A console session: runs entered lines against one cluster and keeps the process that owns the
terminal (a console producer reading lines, a console consumer tailing) between lines.

Control lines: `^C` interrupts the foreground process (the consumer prints its total), `^D` ends
its standard input (the producer flushes and exits). Everything is deterministic: the same lines
on the same cluster print the same text.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Protocol

from engine import Cluster
from lessons.console.admin import ConsoleAdmin
from lessons.console.context import ToolContext
from lessons.console.output import Output, ToolExit
from lessons.console.shell import CommandLine, ShellError, echo_output, parse
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

INTERRUPT = "^C"
END_OF_INPUT = "^D"


class Foreground(Protocol):
    """A tool still running after its line: it owns the terminal until it is done."""

    prompt: str
    done: bool

    def feed(self, line: str, out: Output) -> None: ...

    def end_input(self, out: Output) -> None: ...

    def interrupt(self, out: Output) -> None: ...

    def tick(self, out: Output) -> None: ...


def _tool(module: ModuleType) -> Callable[[ToolContext, list[str]], None]:
    runner: Callable[[ToolContext, list[str]], None] = module.run
    return runner


TOOLS: dict[str, Callable[[ToolContext, list[str]], None]] = {
    "kafka-topics.sh": _tool(topics),
    "kafka-configs.sh": _tool(config_tool),
    "kafka-console-producer.sh": _tool(console_producer),
    "kafka-console-consumer.sh": _tool(console_consumer),
    "kafka-consumer-groups.sh": _tool(consumer_groups),
    "kafka-get-offsets.sh": _tool(get_offsets),
    "kafka-leader-election.sh": _tool(leader_election),
    "kafka-metadata-quorum.sh": _tool(metadata_quorum),
    "kafka-reassign-partitions.sh": _tool(reassign_partitions),
    "kafka-producer-perf-test.sh": perf.run_producer_perf,
    "kafka-consumer-perf-test.sh": perf.run_consumer_perf,
}


# Kafka tools the simulation cannot run, with the reason it gives (none at present).
UNMODELLED: dict[str, str] = {}
SHELL_BUILTINS = frozenset({"echo", "printf", "cat", "ls", "rm"})
MAX_FILES = 20
MAX_FILE_CHARS = 64_000


def _unmodelled(ctx: ToolContext, name: str) -> None:
    ctx.out.eprintln(f"{name}: this simulator cannot run this tool: {UNMODELLED[name]}.")
    raise ToolExit(1)


def tool_for(name: str) -> Callable[[ToolContext, list[str]], None] | None:
    """`kafka-topics.sh`, `bin/kafka-topics.sh` and Confluent's `kafka-topics` name one tool."""
    if name in TOOLS:
        return TOOLS[name]
    return TOOLS.get(name + ".sh")


class ConsoleSession:
    def __init__(self, cluster: Cluster) -> None:
        self.admin = ConsoleAdmin(cluster)
        self.foreground: Foreground | None = None
        self.runs = 0  # lines run, used to name console consumers' groups deterministically
        # The session's own small text files (`echo ... > name`, `cat > name`), by name.
        self.files: dict[str, str] = {}

    @property
    def cluster(self) -> Cluster:
        return self.admin.cluster

    @property
    def prompt(self) -> str:
        return self.foreground.prompt if self.foreground is not None else "$ "

    def run(self, text: str) -> Output:
        """Run one console entry and return what it printed."""
        out = Output()
        if self.foreground is not None:
            self._to_foreground(text, out)
            return out
        try:
            command = parse(text)
        except ShellError as exc:
            out.eprintln(str(exc))
            out.exit_code = 2
            return out
        if command is None:
            return out
        if command.tool in (INTERRUPT, END_OF_INPUT):
            return out
        if command.tool in SHELL_BUILTINS:
            try:
                self._builtin(command, out)
            except ShellError as exc:
                out.eprintln(str(exc))
                out.exit_code = 1
            return out
        runner = tool_for(command.tool)
        unmodelled = command.tool if command.tool in UNMODELLED else command.tool + ".sh"
        if runner is None and unmodelled in UNMODELLED:
            self.runs += 1
            try:
                _unmodelled(ToolContext(self.admin, out, command.stdin, self), unmodelled)
            except ToolExit as exc:
                out.exit_code = exc.code
            return out
        if runner is None:
            out.eprintln(f"bash: {command.tool}: command not found")
            out.exit_code = 127
            return out
        self.runs += 1
        ctx = ToolContext(self.admin, out, command.stdin, self)
        try:
            runner(ctx, command.args)
        except ToolExit as exc:
            out.exit_code = exc.code
        return out

    def read_file(self, name: str) -> str | None:
        """A session file's text (None when there is no such file)."""
        return self.files.get(name.removeprefix("./"))

    def _builtin(self, command: CommandLine, out: Output) -> None:
        """echo/printf (optionally `> file`), cat (files, or `> file` with pasted lines), ls, rm."""
        args = list(command.args)
        target: str | None = None
        for index, token in enumerate(args):
            if token.startswith(">"):
                name = token[1:] or (args[index + 1] if index + 1 < len(args) else "")
                if not name:
                    raise ShellError("bash: syntax error near unexpected token `newline'")
                target = name.removeprefix("./")
                del args[index : index + (1 if token[1:] else 2)]
                break
        if command.tool in ("echo", "printf"):
            lines = echo_output([command.tool, *args])
        elif command.tool == "cat":
            if args:
                lines = []
                for name in args:
                    text = self.read_file(name)
                    if text is None:
                        raise ShellError(f"cat: {name}: No such file or directory")
                    lines += text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
            else:
                lines = list(command.stdin or [])
        elif command.tool == "ls":
            out.out("".join(f"{name}\n" for name in sorted(self.files)))
            return
        else:  # rm
            for name in args:
                if self.files.pop(name.removeprefix("./"), None) is None:
                    raise ShellError(f"rm: cannot remove '{name}': No such file or directory")
            return
        text = "".join(line + "\n" for line in lines)
        if target is None:
            out.out(text)
            return
        if target not in self.files and len(self.files) >= MAX_FILES:
            raise ShellError(f"bash: {target}: No space left on device ({MAX_FILES} files at most)")
        if len(text) > MAX_FILE_CHARS:
            raise ShellError(
                f"bash: {target}: File too large (at most {MAX_FILE_CHARS} characters)"
            )
        self.files[target] = text

    def _to_foreground(self, text: str, out: Output) -> None:
        process = self.foreground
        assert process is not None
        for line in text.replace("\r\n", "\n").split("\n"):
            if process.done:
                break
            if line.strip() == INTERRUPT:
                process.interrupt(out)
            elif line.strip() == END_OF_INPUT:
                process.end_input(out)
            else:
                process.feed(line, out)
        if process.done:
            self.foreground = None

    def tick(self) -> Output:
        """The live clock moved: a tailing consumer prints what arrived."""
        out = Output()
        if self.foreground is not None:
            self.foreground.tick(out)
            if self.foreground.done:
                self.foreground = None
        return out

    def interrupt(self) -> Output:
        return self.run(INTERRUPT) if self.foreground is not None else Output()
