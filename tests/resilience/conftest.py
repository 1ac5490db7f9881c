"""Fixtures: two real fake-OpenAI servers (a primary and a secondary endpoint) and chat agents
built on them in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.runnables import Runnable
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.agents.helpers import REGISTRY, local_agent
from tests.fakes.openai_server import FakeOpenAI
from worker.agents.agent_type import BuildContext
from worker.agents.store import ResolvedAgent
from worker.resilience import Resilience, RetryPolicy
from worker.telemetry.tracing import TRACER_NAME


@pytest.fixture
async def primary() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        server.set(reply="From the primary.")
        yield server


@pytest.fixture
async def secondary() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        server.set(reply="From the secondary.")
        yield server


def openai_spec(server: FakeOpenAI, model: str = "gpt-test", **extra: Any) -> dict[str, Any]:
    """An ``openai`` provider spec for ``server``: quick timeouts, the rest as given."""
    return {
        "provider": "openai",
        "model": model,
        "base_url": server.base_url,
        "api_key": "sk-test",
        "timeout": "2s",
        **extra,
    }


def provider_name(server: FakeOpenAI, model: str = "gpt-test") -> str:
    return f"openai:{server.base_url}#{model}"


def _context(resilience: Resilience | None) -> BuildContext:
    return BuildContext(
        resilience=resilience
        or Resilience(
            fail_max=3,
            reset_timeout=30,
            retry=RetryPolicy(max_attempts=1, initial_backoff=0.01, max_wait=5),
        )
    )


def build_chat(config: dict[str, Any], resilience: Resilience | None = None) -> Runnable[Any, str]:
    """A ``chat`` agent's Runnable, with its own breakers unless ``resilience`` is given."""
    return REGISTRY.build("chat", config, _context(resilience))


def resolve_agent(
    type_name: str, config: dict[str, Any], resilience: Resilience | None = None
) -> ResolvedAgent:
    """An agent built as ``AgentStore.resolve`` builds it (its admission check included), in
    this process, with its own breakers unless ``resilience`` is given."""
    return local_agent(type_name, config, _context(resilience))


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """An in-memory span exporter behind its own tracer provider (the process's global one is
    left alone: other test modules install theirs)."""
    return InMemorySpanExporter()


def tracer_for(exporter: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer(TRACER_NAME)
