"""The registry of agent types: what kinds of agent this worker knows, by name.

Built-in types are registered here; third-party types plug in through the entry-point group
``agentos.agent_types``, each entry naming an ``AgentType`` instance
(``worker.agents.agent_type``; also importable from here, as plugins written before it did).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from langchain_core.runnables import Runnable

from worker.agents.agent_type import AgentType, BuildContext
from worker.agents.types import BUILTIN_TYPES
from worker.errors import BadRequest
from worker.telemetry.logs import get_logger

__all__ = ["ENTRY_POINT_GROUP", "AgentType", "AgentTypeRegistry", "BuildContext"]

ENTRY_POINT_GROUP = "agentos.agent_types"
log = get_logger(__name__)


class AgentTypeRegistry:
    """The agent types this worker knows, by name."""

    def __init__(self, types: Iterable[AgentType] = ()) -> None:
        self._types: dict[str, AgentType] = {}
        for agent_type in types:
            self.register(agent_type)

    def register(self, agent_type: AgentType) -> None:
        """Add a type; a second type with the same name is refused."""
        if agent_type.name in self._types:
            raise ValueError(f"agent type {agent_type.name!r} is registered twice")
        self._types[agent_type.name] = agent_type

    @classmethod
    def discover(cls) -> AgentTypeRegistry:
        """The built-in types plus every type found in the ``agentos.agent_types`` group."""
        registry = cls(BUILTIN_TYPES)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                agent_type = ep.load()
            except Exception:  # a broken plugin must not stop the worker
                log.exception("agent type plugin failed to load", entry_point=ep.value)
                continue
            if not isinstance(agent_type, AgentType):
                log.error("entry point is not an AgentType", entry_point=ep.value)
                continue
            registry.register(agent_type)
            log.info("agent type plugin loaded", agent_type=agent_type.name, entry_point=ep.value)
        return registry

    def get(self, name: str) -> AgentType:
        """The type named ``name`` (400 ``unknown_agent_type`` if none)."""
        try:
            return self._types[name]
        except KeyError:
            raise BadRequest(
                f"unknown agent type {name!r}; known: {', '.join(sorted(self._types))}",
                code="unknown_agent_type",
            ) from None

    def names(self) -> list[str]:
        """Registered type names, sorted."""
        return sorted(self._types)

    def build(
        self,
        name: str,
        raw_config: Mapping[str, Any] | None = None,
        ctx: BuildContext | None = None,
    ) -> Runnable[Any, Any]:
        """Validate ``raw_config`` and build the type's Runnable (handy for tests and benches)."""
        agent_type = self.get(name)
        return agent_type.build(agent_type.parse_config(raw_config), ctx or BuildContext())

    def __iter__(self) -> Any:
        return iter(self._types[name] for name in self.names())
