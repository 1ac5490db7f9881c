"""/v1/agents CRUD, agent types, invoke, and the OpenAPI document, against a real worker."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiohttp
import orjson
from openapi_spec_validator import validate

from tests.conftest import SpawnWorker
from tests.http.helpers import call
from tests.streaming.helpers import sse_frames
from worker.agents.fake_model import split_tokens
from worker.testing import WorkerProcess


async def test_crud(worker: WorkerProcess, http: aiohttp.ClientSession) -> None:
    base = worker.url + "/v1/agents"
    status, created, headers = await call(http, "POST", base, json={"type": "echo", "name": "e1"})
    assert status == 201
    assert headers["Location"] == f"/v1/agents/{created['id']}"
    agent_id = created["id"]

    status, got, _ = await call(http, "GET", f"{base}/{agent_id}")
    assert (status, got) == (200, created)

    status, listed, _ = await call(http, "GET", base)
    assert status == 200
    assert agent_id in [a["id"] for a in listed["agents"]]

    status, patched, _ = await call(http, "PATCH", f"{base}/{agent_id}", json={"name": "e2"})
    assert status == 200
    assert patched["name"] == "e2"
    assert patched["updated_at"] >= created["updated_at"]

    status, _, _ = await call(http, "DELETE", f"{base}/{agent_id}")
    assert status == 204
    status, body, _ = await call(http, "GET", f"{base}/{agent_id}")
    assert status == 404
    assert body["error"]["code"] == "agent_not_found"


async def test_patch_merges_config(worker: WorkerProcess, http: aiohttp.ClientSession) -> None:
    base = worker.url + "/v1/agents"
    _, created, _ = await call(
        http,
        "POST",
        base,
        json={
            "type": "chat",
            "config": {"system_prompt": "A", "model": {"provider": "fake", "responses": ["one"]}},
        },
    )
    status, patched, _ = await call(
        http,
        "PATCH",
        f"{base}/{created['id']}",
        json={"config": {"model": {"responses": ["two"]}}},
    )
    assert status == 200, patched
    assert patched["config"]["system_prompt"] == "A"
    assert patched["config"]["model"]["responses"] == ["two"]
    status, out, _ = await call(http, "POST", f"{base}/{created['id']}/invoke", json={"input": "x"})
    assert (status, out["output"]) == (200, "two")


async def test_agent_types_publish_schemas(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await call(http, "GET", worker.url + "/v1/agent-types")
    assert status == 200
    types = {t["name"]: t for t in body["agent_types"]}
    assert {"echo", "chat", "steps"} <= set(types)
    chat = types["chat"]
    assert chat["config_schema"]["additionalProperties"] is False
    assert "model" in chat["config_schema"]["properties"]
    assert chat["input_schema"]["type"] == "string"
    assert types["steps"]["config_schema"]["properties"]["steps"]["maximum"] == 10_000


async def test_invoke_each_builtin_type(worker: WorkerProcess, http: aiohttp.ClientSession) -> None:
    base = worker.url + "/v1/agents"
    reply = "The quick brown fox"
    cases = [
        ({"type": "echo"}, {"a": [1, 2]}, {"a": [1, 2]}),
        (
            {
                "type": "chat",
                "config": {
                    "model": {"provider": "fake", "responses": [reply], "token_delay": "1ms"}
                },
            },
            "hi",
            reply,
        ),
        (
            {"type": "steps", "config": {"steps": 3, "step_delay": 1_000_000}},
            "job",
            "completed 3 steps for input: job",
        ),
    ]
    for spec, value, expected in cases:
        _, created, _ = await call(http, "POST", base, json=spec)
        status, out, _ = await call(
            http, "POST", f"{base}/{created['id']}/invoke", json={"input": value}
        )
        assert status == 200, out
        assert out["output"] == expected
        meta = out["metadata"]
        assert meta["agent_id"] == created["id"]
        assert meta["execution_time"].endswith("s")
        assert meta["run_id"]
    # The fake model's delay is per token: 7 tokens x 1 ms.
    assert len(split_tokens(reply)) == 7


async def test_fake_model_cycles_deterministically(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    base = worker.url + "/v1/agents"
    _, created, _ = await call(
        http,
        "POST",
        base,
        json={"type": "chat", "config": {"model": {"provider": "fake", "responses": ["a", "b"]}}},
    )
    outs = []
    for _ in range(4):
        _, out, _ = await call(http, "POST", f"{base}/{created['id']}/invoke", json={"input": "q"})
        outs.append(out["output"])
    assert outs == ["a", "b", "a", "b"]


async def test_secrets_are_not_shown(worker: WorkerProcess, http: aiohttp.ClientSession) -> None:
    status, created, _ = await call(
        http,
        "POST",
        worker.url + "/v1/agents",
        json={
            "type": "chat",
            "config": {
                "model": {
                    "provider": "openai",
                    "base_url": "http://127.0.0.1:9/v1",
                    "api_key": "sk-secret",
                }
            },
        },
    )
    assert status == 201, created
    assert created["config"]["model"]["api_key"] == "**********"


async def test_openapi_is_valid_and_complete(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    status, spec, _ = await call(http, "GET", worker.url + "/openapi.json")
    assert status == 200
    assert spec["openapi"].startswith("3.0.")
    validate(spec)
    paths = spec["paths"]
    for path in (
        "/create-agent",
        "/v1/agents",
        "/v1/agents/{agent_id}",
        "/v1/agents/{agent_id}/invoke",
        "/v1/agent-types",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ):
        assert path in paths
    assert set(paths["/v1/agents/{agent_id}"]) == {"get", "patch", "delete"}
    schemas = spec["components"]["schemas"]
    assert "AgentConfig" in schemas
    assert "ErrorBody" in schemas
    assert paths["/healthz"]["get"]["security"] == []


async def test_health_and_readiness(worker: WorkerProcess, http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "GET", worker.url + "/healthz")
    assert (status, body["status"]) == (200, "ok")
    status, body, _ = await call(http, "GET", worker.url + "/readyz")
    assert status == 200
    assert body["checks"] == {
        "nats_connected": True,
        "accepting_work": True,
        "model_providers": True,
    }


async def test_one_run_id_names_the_run_for_langchain_and_the_caller(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession, plugin_path: Path
) -> None:
    # The run-id agent answers with the run id LangChain gives its callbacks.
    w = spawn_worker({"PYTHONPATH": str(plugin_path)})
    _, created, _ = await call(http, "POST", w.url + "/v1/agents", json={"type": "run-id"})
    base = f"{w.url}/v1/agents/{created['id']}"
    status, out, _ = await call(http, "POST", base + "/invoke", json={"input": None})
    assert status == 200, out
    assert out["metadata"]["run_id"] == out["output"]
    assert uuid.UUID(out["output"])
    # A streamed run: its task id (X-Task-ID, every frame) is the LangChain run's id.
    async with http.post(base + "/stream", json={"input": None}) as resp:
        assert resp.status == 200
        task_id = resp.headers["X-Task-ID"]
        frames = await sse_frames(resp)
    assert {f["task_id"] for f in frames} == {task_id}
    assert frames[-1]["result"] == task_id
    # And a run of the chat socket.
    async with http.ws_connect(base + "/ws") as ws:
        await ws.send_str('{"input": 1}')
        while (frame := orjson.loads((await ws.receive()).data))["status"] != "completed":
            pass
    assert frame["result"] == frame["task_id"]
