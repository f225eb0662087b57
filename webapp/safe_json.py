"""JSON from outside (a WebSocket frame, a share link): parsed so that bad input is always a
`BadJSON` with a sentence for the learner, never another exception or a traceback.

Refused: malformed text, nesting deeper than `max_depth`, whole numbers beyond `max_int`
(and digit strings long enough to be expensive to parse), NaN and Infinity, and text that
cannot be encoded as UTF-8 (a lone surrogate such as the escape \\ud800), which would fail
later in the database or the engine.
"""

from __future__ import annotations

import json
from typing import Any

# JavaScript's safe integers: far below the database's 64-bit columns.
MAX_INT = 2**53 - 1


class BadJSON(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def loads(text: str | bytes, *, max_depth: int = 20, max_int: int = MAX_INT) -> Any:
    max_digits = len(str(max_int))

    def bounded_int(digits: str) -> int:
        if len(digits.lstrip("-")) > max_digits:
            raise BadJSON("invalid", f"A number has more than {max_digits} digits.")
        return int(digits)

    def no_constant(name: str) -> float:
        raise BadJSON("malformed", f"{name} is not a number JSON may hold here.")

    try:
        value = json.loads(text, parse_int=bounded_int, parse_constant=no_constant)
    except BadJSON:
        raise
    except json.JSONDecodeError as error:
        raise BadJSON(
            "malformed", f"Malformed JSON: {error.msg} at line {error.lineno} column {error.colno}."
        ) from None
    except RecursionError:
        raise BadJSON("malformed", "The JSON is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError):
        raise BadJSON("malformed", "The JSON could not be read.") from None
    check(value, max_depth=max_depth, max_int=max_int)
    return value


def check(value: Any, *, max_depth: int = 20, max_int: int = MAX_INT) -> None:
    """Raise BadJSON unless every string encodes and every whole number and float is bounded."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise BadJSON("malformed", "The JSON is nested too deeply.")
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadJSON(
                    "bad_text", "The text is not valid Unicode (it holds a lone surrogate)."
                ) from None
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -max_int <= item <= max_int:
                raise BadJSON("invalid", f"Whole numbers are at most {max_int}.")
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise BadJSON("invalid", "Numbers must be finite.")
        elif isinstance(item, dict):
            for key, inner in item.items():
                stack.append((key, depth + 1))
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
