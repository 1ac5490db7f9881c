"""``calculator``: arithmetic on numbers, parsed with ``ast`` and never evaluated as Python.

Only numbers, ``+ - * / ** % //``, unary ``+ -`` and parentheses are accepted; names, attribute
access, calls, comparisons and everything else are refused before anything is computed. Sizes
are bounded too (the expression's length, integer results, exponents), so no expression can
make the worker compute for long or hold a huge number. Hand-written because no well-kept
library evaluates arithmetic with such bounds; the operator table is ``operator``'s.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

MAX_EXPRESSION = 1000
MAX_INT_BITS = 4096  # ~1,233 decimal digits: far beyond any sensible answer, cheap to compute
MAX_DEPTH = 200  # nested operations (as the parser allows nested parentheses); well inside
# Python's recursion limit, which is not a bound to lean on

Number = int | float
_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or its result would be too large."""


def calculate(expression: str) -> Number:
    """The value of ``expression``; ``CalculatorError`` for anything but bounded arithmetic."""
    if len(expression) > MAX_EXPRESSION:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {exc.msg}") from None
    return _checked(_evaluate(tree.body, 0))


def _evaluate(node: ast.expr, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise CalculatorError(f"expression nested deeper than {MAX_DEPTH} operations")
    if isinstance(node, ast.Constant):
        # bool is an int subclass; complex and strings are not arithmetic here.
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise CalculatorError(f"not a number: {value!r}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, depth + 1))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            return _checked(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("result too large") from None
    raise CalculatorError(f"not allowed in arithmetic: {type(node).__name__}")


def _check_power(base: Number, exponent: Number) -> None:
    """Refuse a power whose integer result would exceed the bound, before computing it."""
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent * (abs(base).bit_length() - 1) > MAX_INT_BITS
    ):
        raise CalculatorError("result too large")
    if isinstance(base, float) and isinstance(exponent, int) and abs(exponent) > 1_000_000:
        raise CalculatorError("exponent too large")


def _checked(value: Number | complex) -> Number:
    if isinstance(value, complex):  # a negative number to a fractional power
        raise CalculatorError("result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("result too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("result is not a finite number")
    return value


class CalculatorInput(BaseModel):
    """The calculator's argument."""

    expression: str = Field(
        max_length=MAX_EXPRESSION,
        description="Arithmetic on numbers: + - * / ** % //, unary minus, parentheses. "
        "Example: (2 + 3) * 4 ** 2",
    )


def _run(expression: str) -> str:
    return str(calculate(expression))


async def _arun(expression: str) -> str:
    return _run(expression)  # microseconds of work: no thread needed


def calculator_tool() -> BaseTool:
    """The ``calculator`` tool."""
    return StructuredTool.from_function(
        func=_run,
        coroutine=_arun,
        name="calculator",
        description="Evaluate an arithmetic expression exactly (numbers, + - * / ** % //, "
        "parentheses) and return the result.",
        args_schema=CalculatorInput,
    )
