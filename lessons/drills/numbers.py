"""Sizing drills: fresh parameters each time, an answer formula, a worked solution.

A number drill's file gives its parameters as ranges and its answer as an arithmetic formula
over them (`ceil(rate / per_partition)`). The formula is parsed once with `ast` and evaluated on
a whitelist (numbers, names, + - * / // % **, and the functions below): no `eval`.
"""

from __future__ import annotations

import ast
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

FUNCTIONS: dict[str, Callable[..., float]] = {
    "ceil": math.ceil,
    "floor": math.floor,
    "round": round,
    "max": max,
    "min": min,
    "abs": abs,
    "log2": math.log2,
}

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}


class FormulaError(ValueError):
    """A formula uses something outside the whitelist, or a name it was not given."""


def parse_formula(text: str) -> ast.Expression:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise FormulaError(f"not a formula: {text!r} ({error.msg})") from None
    for node in ast.walk(tree):
        allowed = (
            ast.Expression,
            ast.BinOp,
            ast.UnaryOp,
            ast.USub,
            ast.UAdd,
            ast.Constant,
            ast.Name,
            ast.Load,
            ast.Call,
            *_BINARY,
        )
        if not isinstance(node, allowed):
            raise FormulaError(f"{type(node).__name__} is not allowed in a formula: {text!r}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise FormulaError(f"only numbers may appear in a formula: {text!r}")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS and not node.keywords
        ):
            raise FormulaError(f"unknown function in {text!r} (known: {', '.join(FUNCTIONS)})")
    return tree


def names_in(tree: ast.Expression) -> set[str]:
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)}  # type: ignore[attr-defined]
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - called


def evaluate_formula(tree: ast.Expression, values: Mapping[str, float]) -> float:
    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise FormulaError(f"the formula uses {node.id!r}, which is not a parameter")
            return values[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = walk(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return FUNCTIONS[node.func.id](*(walk(arg) for arg in node.args))
        raise FormulaError(f"{type(node).__name__} is not allowed")  # pragma: no cover

    try:
        return float(walk(tree))
    except ZeroDivisionError:
        raise FormulaError("the formula divides by zero for these parameters") from None


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: an integer range with a step, or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    step: float = 1
    choices: tuple[float, ...] = ()

    def draw(self, rng: random.Random) -> float:
        if self.choices:
            return rng.choice(self.choices)
        assert self.low is not None and self.high is not None
        count = int((self.high - self.low) // self.step)
        value = self.low + self.step * rng.randint(0, count)
        return int(value) if float(value).is_integer() else value


def draw_params(specs: list[ParamSpec], seed: int) -> dict[str, float]:
    """Fresh parameters for one attempt; the same seed gives the same draw (for grading)."""
    rng = random.Random(seed)
    return {spec.name: spec.draw(rng) for spec in specs}


def fmt(value: float) -> str:
    """A number as a learner would write it: 12,500 or 1.75 (never 12500.0)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def fill(template: str, values: Mapping[str, float]) -> str:
    """`{name}` placeholders filled with formatted numbers."""
    return template.format_map({k: fmt(v) for k, v in values.items()})
