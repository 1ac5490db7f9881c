"""Tools for tool-calling agents: the built-ins and the registry that finds the others."""

from worker.agents.tools.registry import ToolRegistry, as_tool

__all__ = ["ToolRegistry", "as_tool"]
