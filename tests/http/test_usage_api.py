"""What runs spend, as the HTTP doors say it (CONTRACT section 7): the invoke answer's
``metadata.usage``, a budget stop's 422 ``budget_exceeded`` (and its failed frame on the stream
door), the documents, and a worker that counts nothing (``WORKER_ACCOUNTING=false``)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.conftest import SpawnWorker
from tests.http.helpers import assert_error, call
from tests.streaming.helpers import create_agent, sse_frames
from worker.agents.fake_model import split_tokens
from worker.testing import WorkerProcess

LONG = " ".join(f"word{i}" for i in range(50))  # 99 tokens as the fake model streams them


def chat(**config: Any) -> dict[str, Any]:
    return {"model": {"provider": "fake", "model": "http-usage", "responses": [LONG]}, **config}


async def test_the_invoke_answer_says_what_the_run_spent(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    agent_id = await create_agent(http, worker.url, "chat", chat(system_prompt="Be brief."))
    url = f"{worker.url}/v1/agents/{agent_id}/invoke"
    status, body, _ = await call(http, "POST", url, json={"input": "Hello there"})
    assert status == 200, body
    # "Be brief." and "Hello there": 3 tokens each, as the fake model counts them.
    assert body["metadata"]["usage"] == {
        "input_tokens": 6,
        "output_tokens": len(split_tokens(LONG)),
        "total_tokens": 6 + len(split_tokens(LONG)),
        "cost_usd": None,  # the shared worker has no price table
        "cached_input_tokens": 0,
        "reasoning_tokens": 0,
        "estimated": False,
    }
    agent_id = await create_agent(http, worker.url, "echo", {})
    url = f"{worker.url}/v1/agents/{agent_id}/invoke"
    status, body, _ = await call(http, "POST", url, json={"input": "x"})
    assert (status, body["metadata"]["usage"]["total_tokens"]) == (200, 0)


async def test_a_budget_stop_answers_422_budget_exceeded(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    agent_id = await create_agent(http, worker.url, "chat", chat(limits={"max_tokens_per_run": 20}))
    url = f"{worker.url}/v1/agents/{agent_id}/invoke"
    status, body, headers = await call(http, "POST", url, json={"input": "Go"})
    assert_error(status, body, headers, expect=422, code="budget_exceeded")
    assert body["error"]["details"]["limit"] == "max_tokens_per_run"
    assert "Retry-After" not in headers  # waiting does not help

    async with http.post(f"{worker.url}/v1/agents/{agent_id}/stream", json={"input": "Go"}) as resp:
        assert resp.status == 200
        frames = await asyncio.wait_for(sse_frames(resp), 30)
    final = frames[-1]
    assert (final["status"], final["error"]["code"]) == ("failed", "budget_exceeded")
    # Stopped mid-stream at the token that passed the limit (the prompt's count comes later).
    assert final["usage"]["output_tokens"] == 21
    assert final["usage"]["estimated"] is True
    assert sum(f.get("event") == "token" for f in frames) <= 21


async def test_the_documents_describe_usage_and_the_budget_stop(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    status, spec, _ = await call(http, "GET", worker.url + "/openapi.json")
    assert status == 200
    paths = spec["paths"]
    for path in ("/v1/agents/{agent_id}/invoke", "/v1/threads/{thread_id}/resume"):
        assert "422" in paths[path]["post"]["responses"], path
    schemas = spec["components"]["schemas"]
    usage = schemas["RunUsage"]["properties"]
    assert {"input_tokens", "output_tokens", "total_tokens", "cost_usd"} <= set(usage)
    assert usage["cost_usd"]["nullable"] is True
    for model in ("InvokeMetadata", "TaskView", "Frame"):
        assert {"usage", "time_to_first_token"} <= set(schemas[model]["properties"]), model


async def test_a_worker_that_counts_nothing_reports_nothing(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker({"WORKER_ACCOUNTING": "false"})
    agent_id = await create_agent(http, w.url, "chat", chat(limits={"max_tokens_per_run": 20}))
    url = f"{w.url}/v1/agents/{agent_id}/invoke"
    status, body, _ = await call(http, "POST", url, json={"input": "Go"})
    assert (status, body["output"]) == (200, LONG)  # the limit is not enforced either
    assert "usage" not in body["metadata"]
