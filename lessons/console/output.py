"""What a tool run prints: stdout and stderr in the order they were written, and its exit code."""

from __future__ import annotations

from dataclasses import dataclass, field

from lessons.console.jopt import OptionParser


class ToolExit(Exception):
    """`Exit.exit(code)`: the tool stops here."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Output:
    chunks: list[tuple[str, str]] = field(default_factory=list)  # ("out" | "err", text)
    exit_code: int = 0

    def out(self, text: str) -> None:
        if text:
            self.chunks.append(("out", text))

    def err(self, text: str) -> None:
        if text:
            self.chunks.append(("err", text))

    def println(self, text: str = "") -> None:
        self.out(text + "\n")

    def eprintln(self, text: str = "") -> None:
        self.err(text + "\n")

    @property
    def text(self) -> str:
        """Everything printed, as a terminal shows it (both streams interleaved)."""
        return "".join(text for _, text in self.chunks)

    @property
    def stdout(self) -> str:
        return "".join(text for stream, text in self.chunks if stream == "out")

    @property
    def stderr(self) -> str:
        return "".join(text for stream, text in self.chunks if stream == "err")

    def usage_and_exit(self, parser: OptionParser, message: str) -> None:
        """`CommandLineUtils.printUsageAndExit`: the message, the option table, exit 1."""
        self.eprintln(message)
        self.err(parser.help())
        raise ToolExit(1)
