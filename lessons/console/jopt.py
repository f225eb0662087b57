"""A small re-creation of the joptsimple option parser the Kafka tools are built on.

It parses a tool's arguments the way joptsimple does (long options with one or two dashes,
`--name=value`, required and optional arguments, `availableIf`), raises its exceptions with
joptsimple's own messages, and prints the option table its `BuiltinHelpFormatter` prints after
a usage error (`CommandLineUtils.printUsageAndExit`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

NONE, REQUIRED, OPTIONAL = "none", "required", "optional"
JAVA_INT = (-(2**31), 2**31 - 1)
JAVA_LONG = (-(2**63), 2**63 - 1)


class OptionError(Exception):
    """One of joptsimple's OptionExceptions; `str()` is its message."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind  # the joptsimple exception's simple class name


@dataclass(frozen=True)
class Opt:
    """One `parser.accepts(...)` declaration."""

    name: str
    description: str = ""
    arg: str = NONE
    type: str = "String"  # String, Integer, Long, or an enum's description
    described_as: str = ""
    default: str | None = None
    available_if: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    for_help: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def __str__(self) -> str:  # joptsimple's AbstractOptionSpec.toString
        return "[" + ", ".join(self.names) + "]"


@dataclass
class OptionSet:
    specs: dict[str, Opt]
    found: dict[str, list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # option names as they appeared

    def has(self, name: str) -> bool:
        return name in self.found

    def values(self, name: str) -> list[str]:
        if name in self.found:
            return list(self.found[name])
        default = self.specs[name].default
        return [default] if default is not None else []

    def raw(self, name: str) -> str | None:
        values = self.values(name)
        if len(values) > 1:
            raise OptionError(
                f"Found multiple arguments for option {name}, but you asked for only one",
                "MultipleArgumentsForOptionException",
            )
        return values[0] if values else None

    def value(self, name: str) -> str | None:
        return self.raw(name)

    def int_value(self, name: str) -> int | None:
        return _convert(self.specs[name], self.raw(name))

    def int_values(self, name: str) -> list[int]:
        return [
            v
            for v in (_convert(self.specs[name], raw) for raw in self.values(name))
            if v is not None
        ]


def _convert(spec: Opt, raw: str | None) -> int | None:
    if raw is None:
        return None
    low, high = JAVA_INT if spec.type == "Integer" else JAVA_LONG
    try:
        if not raw or raw != raw.strip() or "_" in raw:
            raise ValueError
        number = int(raw, 10)
    except ValueError:
        raise OptionError(
            f"Cannot parse argument '{raw}' of option {spec.name}",
            "OptionArgumentConversionException",
        ) from None
    if not low <= number <= high:
        raise OptionError(
            f"Cannot parse argument '{raw}' of option {spec.name}",
            "OptionArgumentConversionException",
        )
    return number


class OptionParser:
    def __init__(self, options: Iterable[Opt], *, with_help: bool = True) -> None:
        declared = list(options)
        if with_help:
            declared += [
                Opt("help", "Print usage information.", for_help=True),
                Opt("version", "Display Kafka version.", for_help=True),
            ]
        self.options = declared
        self.by_name: dict[str, Opt] = {}
        for opt in declared:
            for name in opt.names:
                self.by_name[name] = opt

    def parse(self, args: Sequence[str]) -> OptionSet:
        result = OptionSet({o.name: o for o in self.options})
        items = list(args)
        i = 0
        while i < len(items):
            token = items[i]
            i += 1
            if token == "--":
                break  # everything after is a non-option argument, which the tools ignore
            if token.startswith("--") and len(token) > 2:
                name, eq, inline = token[2:].partition("=")
                opt = self.by_name.get(name)
                if opt is None:
                    raise OptionError(
                        f"{name} is not a recognized option", "UnrecognizedOptionException"
                    )
            elif token.startswith("-") and len(token) > 1 and token != "-":
                name, eq, inline = token[1:].partition("=")
                opt = self.by_name.get(name)
                if opt is None:
                    # joptsimple reads "-abc" as a cluster of short options: "a" comes first.
                    raise OptionError(
                        f"{token[1]} is not a recognized option", "UnrecognizedOptionException"
                    )
            else:
                continue  # a non-option argument: joptsimple keeps it, the Kafka tools ignore it
            key = opt.name
            if opt.arg == NONE:
                if eq:  # an argument given to an option that takes none
                    raise OptionError(
                        f"{name}={inline} is not a recognized option",
                        "UnrecognizedOptionException",
                    )
                result.found.setdefault(key, [])
            elif opt.arg == REQUIRED:
                if eq:
                    value = inline
                elif i < len(items):
                    value = items[i]
                    i += 1
                else:
                    raise OptionError(
                        f"Option {opt} requires an argument",
                        "OptionMissingRequiredArgumentException",
                    )
                result.found.setdefault(key, []).append(value)
            else:  # OPTIONAL: the next token is its argument unless it looks like an option
                if eq:
                    result.found.setdefault(key, []).append(inline)
                elif i < len(items) and not _looks_like_option(items[i], self.by_name):
                    result.found.setdefault(key, []).append(items[i])
                    i += 1
                else:
                    result.found.setdefault(key, [])
            result.order.append(key)
        for key in result.found:
            opt = result.specs[key]
            if opt.available_if and not any(result.has(o) for o in opt.available_if):
                raise OptionError(
                    f"Option(s) {opt} are unavailable given other options on the command line",
                    "UnavailableOptionException",
                )
        return result

    # --- help: joptsimple's BuiltinHelpFormatter (80 columns, 2 between) -------------------

    def help(self) -> str:
        width, gap = 80, 2
        rows = [(self._option_text(o), self._description_text(o)) for o in self._sorted()]
        option_width = min(max((len(r[0]) for r in rows), default=6), (width - gap) // 2)
        option_width = max(option_width, len("Option"))
        description_width = width - gap - option_width
        lines = [_pair("Option", "Description", option_width, description_width, gap)]
        lines.append(_pair("------", "-----------", option_width, description_width, gap))
        for option_text, description in rows:
            left = _wrap(option_text, option_width)
            right = _wrap(description, description_width) if description else [""]
            for n in range(max(len(left), len(right))):
                lines.append(
                    _pair(
                        left[n] if n < len(left) else "",
                        right[n] if n < len(right) else "",
                        option_width,
                        description_width,
                        gap,
                    )
                )
        return "\n".join(lines) + "\n"

    def _sorted(self) -> list[Opt]:
        return sorted(self.options, key=lambda o: o.name)

    @staticmethod
    def _option_text(opt: Opt) -> str:
        names = ", ".join(("-" if len(n) == 1 else "--") + n for n in opt.names)
        if opt.arg == NONE:
            return names
        inner = opt.type + (f": {opt.described_as}" if opt.described_as else "")
        return f"{names} <{inner}>" if opt.arg == REQUIRED else f"{names} [{inner}]"

    @staticmethod
    def _description_text(opt: Opt) -> str:
        text = opt.description
        if opt.default is not None:
            text = f"{text} (default: {opt.default})" if text else f"(default: {opt.default})"
        return text


def _looks_like_option(token: str, known: dict[str, Opt]) -> bool:
    if token.startswith("--") and len(token) > 2:
        return True
    return token.startswith("-") and len(token) > 1 and token[1:].split("=")[0] in known


def _wrap(text: str, width: int) -> list[str]:
    """Word-wrapped cell lines; lines after a cell's first are indented by two spaces."""
    out: list[str] = []
    for paragraph in text.split("\n"):
        pieces = textwrap.wrap(
            paragraph.replace("\t", "  "),
            width=width,
            initial_indent="  " if out else "",
            subsequent_indent="  ",
            break_long_words=True,
            break_on_hyphens=True,
        ) or ["  " if out else ""]
        out.extend(pieces)
    return out


def _pair(left: str, right: str, left_width: int, right_width: int, gap: int) -> str:
    return left.ljust(left_width) + " " * gap + right.ljust(right_width)
