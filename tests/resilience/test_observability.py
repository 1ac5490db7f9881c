"""A span for each provider attempt, and the retry and outcome metrics."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import REGISTRY

from tests.fakes.openai_server import FakeOpenAI
from tests.resilience.conftest import build_chat, openai_spec, provider_name, tracer_for
from worker.errors import Unavailable
from worker.resilience import Resilience, RetryPolicy


def _value(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


async def test_each_attempt_has_a_span_and_retries_are_counted(
    primary: FakeOpenAI, spans: InMemorySpanExporter
) -> None:
    resilience = Resilience(
        fail_max=2,
        reset_timeout=30,
        retry=RetryPolicy(max_attempts=2, initial_backoff=0.01),
        tracer=tracer_for(spans),
    )
    chat = build_chat({"model": openai_spec(primary)}, resilience)
    name = provider_name(primary)
    retries = _value("agentos_provider_retries_total", provider=name, reason="server_error")

    primary.script({"mode": "status", "status": 502})
    assert await chat.ainvoke("hi") == "From the primary."
    assert _value("agentos_provider_retries_total", provider=name, reason="server_error") == (
        retries + 1
    )

    first, second = spans.get_finished_spans()
    assert first.name == second.name == "model.provider_attempt"
    assert first.attributes is not None
    assert second.attributes is not None
    assert (first.attributes["agentos.attempt"], first.attributes["agentos.outcome"]) == (
        1,
        "server_error",
    )
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes["agentos.provider"] == name
    assert (second.attributes["agentos.attempt"], second.attributes["agentos.outcome"]) == (2, "ok")

    # Two failed attempts open the breaker; the next call is refused without an attempt.
    spans.clear()
    primary.set(mode="status", status=500)
    refused = _value("agentos_provider_calls_total", provider=name, outcome="breaker_open")
    for _ in range(2):
        with pytest.raises(Unavailable):
            await chat.ainvoke("hi")
    outcomes = [s.attributes["agentos.outcome"] for s in spans.get_finished_spans() if s.attributes]
    assert outcomes == ["server_error", "server_error"]
    assert _value("agentos_circuit_breaker_state", name=name) == 2
    assert _value("agentos_provider_calls_total", provider=name, outcome="breaker_open") == (
        refused + 1
    )
