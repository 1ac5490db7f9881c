"""The registry of agent types: what kinds of agent this worker knows, by name.

Built-in types are registered here; third-party types plug in through the entry-point group
``agentos.agent_types``, each entry naming an ``AgentType`` instance
(``worker.agents.agent_type``; also importable from here, as plugins written before it did).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from langchain_core.runnables import Runnable

from worker.agents._by_name import ByName
from worker.agents.agent_type import AgentType, BuildContext
from worker.agents.types import BUILTIN_TYPES
from worker.errors import BadRequest
from worker.telemetry.logs import get_logger

__all__ = ["ENTRY_POINT_GROUP", "AgentType", "AgentTypeRegistry", "BuildContext"]

ENTRY_POINT_GROUP = "agentos.agent_types"
log = get_logger(__name__)


class AgentTypeRegistry(ByName[AgentType]):
    """The agent types this worker knows, by name (``register`` refuses a taken name)."""

    kind = "agent type"

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
            return self._by_name[name]
        except KeyError:
            raise BadRequest(
                f"unknown agent type {name!r}; known: {', '.join(sorted(self._by_name))}",
                code="unknown_agent_type",
            ) from None

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
        return iter(self._by_name[name] for name in self.names())
