"""Agents built in the test's own process, as the store builds them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from worker.agents.agent_type import BuildContext
from worker.agents.registry import AgentTypeRegistry
from worker.agents.store import AgentRecord, ResolvedAgent
from worker.resilience import AdmissionRecorder

REGISTRY = AgentTypeRegistry.discover()


def local_agent(
    type_name: str, config: dict[str, Any], ctx: BuildContext | None = None
) -> ResolvedAgent:
    """An agent built as ``AgentStore.resolve`` builds it (its admission check included), with
    ``ctx`` (default: a fresh ``BuildContext``, breakers of its own)."""
    agent_type = REGISTRY.get(type_name)
    recorder = AdmissionRecorder()
    build_ctx = replace(ctx or BuildContext(), admission=recorder)
    runnable = agent_type.build(agent_type.parse_config(config), build_ctx)
    now = datetime.now(UTC)
    record = AgentRecord(
        id=f"local-{type_name}",
        type=type_name,
        name="",
        config=config,
        created_at=now,
        updated_at=now,
    )
    return ResolvedAgent(
        record=record, agent_type=agent_type, runnable=runnable, admission=recorder.admission()
    )
