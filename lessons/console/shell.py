"""The shell around the tools: splitting a line as bash would (shlex), `echo ... |` pipes and
here-documents that feed a tool's standard input, and finding the tool a command names.

The console has no file system, but a session keeps small text files of its own (a tool's
`--reassignment-json-file` or `--topics-to-move-json-file` reads them): `echo '<text>' > name`
or `printf ... > name` writes one, `cat > name` followed by pasted lines (the rest of the entry)
writes those lines, `cat name` prints it, `ls` lists them and `rm name` removes one."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


class ShellError(Exception):
    """A line bash itself would refuse; the message is bash's."""


@dataclass(frozen=True)
class CommandLine:
    tool: str  # e.g. "kafka-topics.sh", as typed (path removed)
    args: list[str]
    stdin: list[str] | None  # lines piped or pasted in, None when there are none


def split_line(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as exc:
        quote = '"' if "quotation" in str(exc) and line.count('"') % 2 else "'"
        if "escape" in str(exc):
            raise ShellError("bash: syntax error: unexpected end of file") from None
        raise ShellError(f"bash: unexpected EOF while looking for matching `{quote}'") from None


def parse(text: str) -> CommandLine | None:
    """One console entry: a command line, optionally `echo ...|` or `printf ...|` in front, and
    optionally more lines after it (they are the tool's standard input, as pasted in)."""
    lines = text.replace("\r\n", "\n").split("\n")
    first, rest = lines[0], lines[1:]
    while rest and rest[-1] == "":
        rest.pop()
    stdin: list[str] | None = list(rest) if rest else None
    tokens = _tokens(first)
    if not tokens:
        return None
    if "|" in tokens:
        cut = tokens.index("|")
        source, tokens = tokens[:cut], tokens[cut + 1 :]
        if "|" in tokens:
            raise ShellError("bash: only one pipe into a Kafka tool is supported here")
        if not tokens:
            raise ShellError("bash: syntax error near unexpected token `|'")
        piped = _producer_of(source)
        stdin = piped + (stdin or [])
    name = tokens[0].rsplit("/", 1)[-1]
    return CommandLine(name, tokens[1:], stdin)


def _tokens(line: str) -> list[str]:
    # A bare | must split even without spaces around it; shlex with punctuation_chars does that
    # while keeping quotes, so "a|b" inside quotes stays one word.
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:
        split_line(line)  # raises bash's message
        raise


def echo_output(tokens: list[str]) -> list[str]:
    """The lines `echo ...` or `printf ...` (tokens with the command first) writes."""
    return _producer_of(tokens)


def _producer_of(tokens: list[str]) -> list[str]:
    if not tokens:
        raise ShellError("bash: syntax error near unexpected token `|'")
    command, args = tokens[0], tokens[1:]
    if command == "echo":
        interpret = False
        newline = True
        while args and args[0] in ("-e", "-n", "-en", "-ne", "-E"):
            flag = args.pop(0)
            interpret = interpret or "e" in flag
            newline = newline and "n" not in flag
        text = " ".join(args)
        if interpret:
            text = _escapes(text)
        return _lines(text + ("\n" if newline else ""))
    if command == "printf":
        if not args:
            raise ShellError("printf: usage: printf [-v var] format [arguments]")
        fmt, values = args[0], args[1:]
        text = _escapes(fmt)
        if values:
            text = "".join(_escapes(fmt).replace("%s", v, 1) for v in values)
        return _lines(text)
    raise ShellError(f"bash: {command}: only echo and printf can feed a Kafka tool here")


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _escapes(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")
