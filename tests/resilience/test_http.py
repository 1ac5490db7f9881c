"""What callers of a real worker process see when providers fail: answer metadata, 503 with
``Retry-After``, ``/readyz`` and the metrics."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SpawnWorker
from tests.fakes.openai_server import FakeOpenAI
from tests.http.helpers import assert_error, call
from tests.resilience.conftest import openai_spec, provider_name
from worker.agents.providers import BASIC_ANSWER

ENV = {"WORKER_PROVIDER_RETRY_MAX_ATTEMPTS": "1"}


async def _create(http: aiohttp.ClientSession, url: str, config: dict[str, Any]) -> str:
    status, body, _ = await call(http, "POST", url + "/v1/agents", json=config)
    assert status == 201, body
    return str(body["id"])


async def _invoke(http: aiohttp.ClientSession, url: str, agent_id: str) -> Any:
    return await call(http, "POST", f"{url}/v1/agents/{agent_id}/invoke", json={"input": "hi"})


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


async def test_callers_see_provider_metadata_503_with_retry_after_and_readiness(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    primary: FakeOpenAI,
    secondary: FakeOpenAI,
) -> None:
    w = spawn_worker(ENV)
    p_name, s_name = provider_name(primary), provider_name(secondary)
    no_basic = await _create(
        http,
        w.url,
        {
            "type": "chat",
            "config": {
                "model": openai_spec(primary, breaker={"fail_max": 1, "reset_timeout": "60s"}),
                "fallbacks": [
                    openai_spec(secondary, breaker={"fail_max": 1, "reset_timeout": "20s"})
                ],
            },
        },
    )

    status, body, _ = await _invoke(http, w.url, no_basic)
    assert status == 200, body
    assert body["output"] == "From the primary."
    assert (body["metadata"]["provider"], body["metadata"]["degraded"]) == (p_name, False)

    primary.set(mode="status", status=500)
    status, body, _ = await _invoke(http, w.url, no_basic)
    assert status == 200, body
    assert body["output"] == "From the secondary."
    assert (body["metadata"]["provider"], body["metadata"]["degraded"]) == (s_name, True)

    status, ready, _ = await call(http, "GET", w.url + "/readyz")
    assert status == 200, ready  # one provider down does not make the worker unready
    assert ready["degraded"] == {no_basic: [p_name]}
    assert ready["breakers"] == {p_name: "open", s_name: "closed"}

    # Both down, no basic provider: 503, Retry-After = until the first breaker half-opens.
    secondary.set(mode="status", status=503)
    for _ in range(2):  # the failing call, then an immediate refusal
        status, body, headers = await _invoke(http, w.url, no_basic)
        assert_error(status, body, headers, expect=503, code="provider_unavailable")
        assert 18 <= int(headers["Retry-After"]) <= 20, headers["Retry-After"]
    assert (primary.count, secondary.count) == (2, 2)

    # Every agent is without a provider: the worker is useless, so not ready.
    status, ready, _ = await call(http, "GET", w.url + "/readyz")
    assert status == 503, ready
    assert ready["checks"]["model_providers"] is False
    assert ready["degraded"] == {no_basic: [p_name, s_name]}

    # An agent ending in `basic` still answers (degraded), and the worker is useful again.
    with_basic = await _create(
        http,
        w.url,
        {
            "type": "chat",
            "config": {
                "model": openai_spec(primary),
                "fallbacks": [openai_spec(secondary), {"provider": "basic"}],
            },
        },
    )
    status, body, _ = await _invoke(http, w.url, with_basic)
    assert status == 200, body
    assert body["output"] == BASIC_ANSWER
    assert (body["metadata"]["provider"], body["metadata"]["degraded"]) == ("basic", True)
    status, ready, _ = await call(http, "GET", w.url + "/readyz")
    assert status == 200, ready
    assert ready["checks"]["model_providers"] is True
    assert ready["degraded"] == {no_basic: [p_name, s_name], with_basic: [p_name, s_name]}

    _, text, _ = await call(http, "GET", w.url + "/metrics")
    states = _samples(text, "agentos_circuit_breaker_state")
    assert states[(("name", p_name),)] == 2
    assert states[(("name", s_name),)] == 2
    transitions = _samples(text, "agentos_circuit_breaker_transitions_total")
    assert transitions[(("name", p_name), ("state", "open"))] == 1
    calls = _samples(text, "agentos_provider_calls_total")
    assert calls[(("outcome", "ok"), ("provider", p_name))] == 1
    assert calls[(("outcome", "server_error"), ("provider", p_name))] == 1
    assert calls[(("outcome", "breaker_open"), ("provider", p_name))] >= 3
    assert calls[(("outcome", "server_error"), ("provider", s_name))] == 1
    fallbacks = _samples(text, "agentos_provider_fallbacks_total")
    assert fallbacks[(("provider", s_name),)] == 1
    assert fallbacks[(("provider", "basic"),)] == 1
    latency = _samples(text, "agentos_provider_call_duration_seconds_count")
    assert latency[(("provider", p_name),)] == 2
