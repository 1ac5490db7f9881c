"""Reading the process's Prometheus registry, and running an agent with a tracker, as the
worker's doors run it (``runtime.execute`` attaches the tracker the way the agent's type says:
its providers report to the run's scope, and a handler hears the rest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from prometheus_client import REGISTRY

from worker.agents import runtime
from worker.agents.accounting import UsageTracker
from worker.agents.store import ResolvedAgent
from worker.streaming.agent_events import stream_agent
from worker.streaming.frames import TOKEN, Draft


def sample(name: str, **labels: str) -> float:
    """A sample's value now (0 when the series does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Deltas:
    """How much each sample of the registry moved since this object was made."""

    def __init__(self) -> None:
        self._before = _samples()

    def __call__(self, name: str, **labels: str) -> float:
        """The move of ``name{labels}`` (a series born since counts from 0)."""
        key = (name, tuple(sorted(labels.items())))
        return sample(name, **labels) - self._before.get(key, 0.0)


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in REGISTRY.collect()
        for s in family.samples
    }


async def invoke(agent: ResolvedAgent, value: Any, tracker: UsageTracker) -> Any:
    """Run ``agent`` as the invoke door does (``runtime.invoke``), counted by ``tracker``;
    its output."""
    parsed = agent.agent_type.parse_input(value)
    return (await runtime.invoke(agent, parsed, time_limit=30, tracker=tracker)).output


async def stream(
    agent: ResolvedAgent,
    value: Any,
    tracker: UsageTracker,
    emit: Callable[[Draft], None] | None = None,
) -> Any:
    """Run ``agent`` streamed token by token, as the streaming doors do, counted by
    ``tracker``; its output."""
    parsed = agent.agent_type.parse_input(value)

    async def work(config: RunnableConfig) -> Any:
        return await stream_agent(agent, parsed, config, emit or (lambda _: None))

    return (await runtime.execute(agent, work, time_limit=30, tracker=tracker)).output


def token_text(drafts: list[Draft]) -> str:
    """The text of the token frames among ``drafts``."""
    return "".join(str(d.partial_result) for d in drafts if d.event == TOKEN)
