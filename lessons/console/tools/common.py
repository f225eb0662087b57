"""Pieces several tools share: key=value argument lists, client configs, log4j-style lines."""

from __future__ import annotations

from typing import Any

from engine.common.config import CONSUMER, PRODUCER, ConfigDef
from lessons.console.jopt import OptionSet
from lessons.console.output import Output

SOCKET_ONLY = frozenset({"send.buffer.bytes", "receive.buffer.bytes"})
LOGGER_PRODUCER = "org.apache.kafka.clients.producer.ProducerConfig"
LOGGER_CONSUMER = "org.apache.kafka.clients.consumer.ConsumerConfig"


def key_value_args(values: list[str]) -> dict[str, str]:
    """`CommandLineUtils.parseKeyValueArgs`: `k=v` pairs split at the first `=`; a bare key
    means an empty value."""
    props: dict[str, str] = {}
    for arg in values:
        key, _, value = arg.partition("=")
        props[key] = value
    return props


def log_line(out: Output, now_ms: int, level: str, message: str, logger: str) -> None:
    """A line as the tools' log4j configuration prints it to stderr: `[time] LEVEL msg (logger)`."""
    out.eprintln(f"[{timestamp_text(now_ms)}] {level} {message} ({logger})")


def timestamp_text(now_ms: int) -> str:
    """Cluster time as log4j's `%d` prints it (the simulation's clock starts at the epoch)."""
    seconds, millis = divmod(max(now_ms, 0), 1000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    return f"1970-01-{days + 1:02d} {hour:02d}:{minute:02d}:{second:02d},{millis:03d}"


def client_config(out: Output, now_ms: int, props: dict[str, Any], kind: str) -> dict[str, Any]:
    """The props the engine's client knows; the others get Kafka's "supplied but isn't a known
    config" warning, as the real client logs it."""
    definition: ConfigDef = PRODUCER if kind == "producer" else CONSUMER
    logger = LOGGER_PRODUCER if kind == "producer" else LOGGER_CONSUMER
    known: dict[str, Any] = {}
    for key, value in props.items():
        if key in SOCKET_ONLY:
            continue  # real Kafka settings with nothing to model here (socket buffer sizes)
        if key in definition.keys:
            known[key] = value
        else:
            log_line(
                out,
                now_ms,
                "WARN",
                f"The configuration '{key}' was supplied but isn't a known config.",
                logger,
            )
    return known


def renamed(out: Output, opts: OptionSet, old: str, new: str) -> None:
    """KIP-1147: the old option name still works, with a warning."""
    if opts.has(old):
        out.eprintln(
            f"Option --{old} is deprecated and will be removed in a future version. "
            f"Use --{new} instead."
        )


def merged_values(opts: OptionSet, old: str, new: str) -> list[str]:
    return opts.values(old) + opts.values(new)
