"""Agents built in the test's own process, as the store builds them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from worker.agents.agent_type import AgentType, BuildContext
from worker.agents.registry import AgentTypeRegistry
from worker.agents.store import AgentRecord, ResolvedAgent, build_agent

REGISTRY = AgentTypeRegistry.discover()


def local_agent(
    type_name: str | AgentType, config: dict[str, Any], ctx: BuildContext | None = None
) -> ResolvedAgent:
    """An agent built as ``AgentStore.resolve`` builds it (its admission check and its graph on
    a thread included), with ``ctx`` (default: a fresh ``BuildContext``, breakers of its own,
    no threads); ``type_name`` may be a type the registry does not have."""
    agent_type = REGISTRY.get(type_name) if isinstance(type_name, str) else type_name
    now = datetime.now(UTC)
    record = AgentRecord(
        id=f"local-{agent_type.name}",
        type=agent_type.name,
        name="",
        config=config,
        created_at=now,
        updated_at=now,
    )
    return build_agent(record, agent_type, ctx or BuildContext())
