"""The tools an ``agent`` may be given, by name.

Three sources, all resolved once at start: the built-ins (harmless ones), the entry-point group
``agentos.tools`` of installed packages (each entry a tool or a function, its name the tool's),
and ``WORKER_TOOLS`` import paths. Each is a LangChain ``BaseTool``; a plain function becomes
one through ``StructuredTool.from_function`` (its docstring is the description the model reads).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from worker.agents._by_name import ByName
from worker.agents.imports import invalid, load
from worker.agents.tools.calculator import calculator_tool
from worker.agents.tools.clock import current_time_tool
from worker.config import ImportRef
from worker.errors import BadRequest
from worker.telemetry.logs import get_logger

ENTRY_POINT_GROUP = "agentos.tools"
log = get_logger(__name__)


def as_tool(obj: Any, name: str) -> BaseTool:
    """``obj`` as a tool named ``name``: a ``BaseTool`` (renamed if need be) or a function.

    Raises ``TypeError`` for anything else and ``ValueError`` for a function LangChain cannot
    describe (no docstring, say).
    """
    if isinstance(obj, BaseTool):
        return obj if obj.name == name else obj.model_copy(update={"name": name})
    if inspect.iscoroutinefunction(obj):
        return StructuredTool.from_function(coroutine=obj, name=name)
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return StructuredTool.from_function(func=obj, name=name)
    raise TypeError(f"{type(obj).__name__} is neither a LangChain tool nor a function")


@functools.cache
def _builtin_tools() -> tuple[BaseTool, ...]:
    # Stateless tools, built once and shared by every registry.
    return (calculator_tool(), current_time_tool())


class ToolRegistry(ByName[BaseTool]):
    """The tools this worker offers its agents, by name (``register`` refuses a taken name)."""

    kind = "tool"

    @classmethod
    def builtin(cls) -> ToolRegistry:
        """The built-in tools only: ``calculator`` and ``current_time``."""
        return cls(_builtin_tools())

    @classmethod
    def discover(cls, refs: Sequence[ImportRef] = ()) -> ToolRegistry:
        """The built-ins, the ``agentos.tools`` entry points and ``refs`` (``WORKER_TOOLS``).

        A broken entry point is logged and skipped, as agent type plugins are; a bad ``refs``
        entry raises ``ConfigError``, since the operator named it.
        """
        registry = cls.builtin()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                tool = as_tool(ep.load(), ep.name)
                registry.register(tool)
            except Exception:  # a broken plugin must not stop the worker
                log.exception("tool plugin failed to load", entry_point=ep.value)
                continue
            log.info("tool plugin loaded", tool=tool.name, entry_point=ep.value)
        for ref in refs:
            try:
                registry.register(as_tool(load(ref, setting="tools"), ref.name))
            except (TypeError, ValueError) as exc:
                raise invalid(ref, "tools", str(exc)) from exc
        return registry

    def select(self, names: Sequence[str]) -> list[BaseTool]:
        """The tools named, in order (400 ``unknown_tool`` listing the known ones)."""
        unknown = [
            {"field": f"config.tools.{i}", "message": f"unknown tool {name!r}"}
            for i, name in enumerate(names)
            if name not in self._by_name
        ]
        if unknown:
            missing = [repr(n) for n in names if n not in self._by_name]
            raise BadRequest(
                f"unknown tool{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                f"known: {', '.join(self.names())}",
                code="unknown_tool",
                details=unknown,
            )
        return [self._by_name[name] for name in names]
