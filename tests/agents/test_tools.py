"""The tool registry and the built-in tools: ``calculator`` computes arithmetic and nothing
else, ``current_time`` tells the UTC time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from langchain_core.tools import BaseTool, tool

from worker.agents.tools import ToolRegistry, as_tool
from worker.agents.tools.calculator import CalculatorError, calculate, calculator_tool
from worker.agents.tools.clock import current_time_tool
from worker.config import ConfigError, ImportRef
from worker.errors import BadRequest


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2+2", 4),
        ("(2 + 3) * 4 ** 2", 80),
        ("-3 ** 2", -9),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("1 / 4", 0.25),
        ("+-+1.5", -1.5),
        ("2 ** -1", 0.5),
        ("((((1))))", 1),
        ("10 ** 1000 // 10 ** 999", 10),
    ],
)
def test_calculator_computes_arithmetic(expression: str, value: float) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("x", "Name"),
        ("__import__('os')", "Call"),
        ("abs(-1)", "Call"),
        ("(1).real", "Attribute"),
        ("().__class__", "Attribute"),
        ("[1, 2]", "List"),
        ("1 if 1 else 2", "IfExp"),
        ("1 < 2", "Compare"),
        ("1 << 2", "BinOp"),
        ("lambda: 1", "Lambda"),
        ("'a' * 3", "not a number"),
        ("True + 1", "not a number"),
        ("1j", "not a number"),
        ("1; 2", "not an arithmetic expression"),
        ("import os", "not an arithmetic expression"),
    ],
)
def test_calculator_refuses_anything_but_numbers_and_operators(
    expression: str, reason: str
) -> None:
    with pytest.raises(CalculatorError, match=reason):
        calculate(expression)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("9 ** 9 ** 9", "too large"),
        ("2 ** 100000", "too large"),
        ("(10 ** 1000) ** 10", "too large"),
        ("2.5 ** 10000000", "exponent too large"),
        ("1e308 * 10", "not a finite number"),
        ("10.0 ** 400", "too large"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 / 0", "division by zero"),
        ("-" * 500 + "1", "nested deeper"),
        ("1+" * 600 + "1", "longer than"),
    ],
)
def test_calculator_bounds_its_work(expression: str, reason: str) -> None:
    start = time.perf_counter()
    with pytest.raises(CalculatorError, match=reason):
        calculate(expression)
    # Not a speed assertion: a sanity bound that no refused expression was computed in full.
    assert time.perf_counter() - start < 5


async def test_calculator_tool_answers_as_text_and_raises_on_bad_input() -> None:
    calc = calculator_tool()
    assert await calc.ainvoke({"expression": "6 * 7"}) == "42"
    with pytest.raises(CalculatorError):
        await calc.ainvoke({"expression": "open('/etc/passwd')"})


async def test_current_time_is_utc_iso_8601() -> None:
    text = await current_time_tool().ainvoke({})
    assert text.endswith("Z")
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=1)


def test_unknown_tools_are_a_400_listing_the_known_ones() -> None:
    registry = ToolRegistry.builtin()
    assert [t.name for t in registry.select(["current_time", "calculator"])] == [
        "current_time",
        "calculator",
    ]
    with pytest.raises(BadRequest, match="known: calculator, current_time") as info:
        registry.select(["calculator", "shell"])
    assert info.value.code == "unknown_tool"
    assert info.value.details == [{"field": "config.tools.1", "message": "unknown tool 'shell'"}]


def shout(text: str) -> str:
    """Say it louder."""
    return text.upper()


async def whisper(text: str) -> str:
    """Say it softer."""
    return text.lower()


def undocumented(text: str) -> str:
    return text


@tool
def spell(word: str) -> str:
    """Spell a word."""
    return "-".join(word)


NOT_A_TOOL = 42


async def test_functions_and_tools_become_tools_under_their_entry_name() -> None:
    assert await as_tool(shout, "shout").ainvoke({"text": "hi"}) == "HI"
    assert await as_tool(whisper, "whisper").ainvoke({"text": "HI"}) == "hi"
    renamed = as_tool(spell, "speller")
    assert (renamed.name, spell.name) == ("speller", "spell")
    assert isinstance(renamed, BaseTool)


def test_worker_tools_adds_import_paths_and_names_a_bad_entry() -> None:
    refs = [
        ImportRef(name="shout", module=__name__, attribute="shout"),
        ImportRef(name="speller", module=__name__, attribute="spell"),
    ]
    registry = ToolRegistry.discover(refs)
    assert {"calculator", "current_time", "shout", "speller"} <= set(registry.names())

    bad = {
        "nope=tests.agents.no_such_module:x": "no module named 'tests.agents.no_such_module'",
        f"nope={__name__}:missing": "has no attribute 'missing'",
        f"nope={__name__}:NOT_A_TOOL": "int is neither a LangChain tool nor a function",
        f"nope={__name__}:undocumented": "docstring",
        f"calculator={__name__}:shout": "registered twice",
    }
    for entry, reason in bad.items():
        name, target = entry.split("=")
        module, attribute = target.split(":")
        ref = ImportRef(name=name, module=module, attribute=attribute)
        with pytest.raises(ConfigError, match=reason) as info:
            ToolRegistry.discover([ref])
        assert str(info.value).startswith(f"WORKER_TOOLS: entry '{entry}': ")
