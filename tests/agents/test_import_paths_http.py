"""``WORKER_AGENT_TYPES`` and the ``agent`` type over HTTP, on real worker processes: a graph
from a test module registered only by import path, a tool-calling agent on the fake model, and
entries that stop start-up."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.conftest import ROOT, SpawnWorker
from tests.http.helpers import assert_error, call

AGENT_TYPES = (
    "support=tests.agents.graphs:support,"
    "greeter=tests.agents.graphs:graph,"
    "backwards=tests.agents.graphs:backwards,"
    "parrot=tests.agents.graphs:ECHO_TYPE"
)
ENV = {"WORKER_AGENT_TYPES": AGENT_TYPES, "PYTHONPATH": str(ROOT)}


async def create(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> str:
    status, agent, _ = await call(http, "POST", url + "/v1/agents", json=body)
    assert status == 201, agent
    return str(agent["id"])


async def test_a_graph_registered_by_import_path_runs_over_http(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker(ENV)
    _, listed, _ = await call(http, "GET", w.url + "/v1/agent-types")
    types = {t["name"]: t for t in listed["agent_types"]}
    assert {"support", "greeter", "backwards", "parrot", "agent", "chat"} <= set(types)
    greeter = types["greeter"]
    assert greeter["input_schema"]["required"] == ["name"]
    assert set(greeter["config_schema"]["properties"]) == {"salutation", "punctuation"}
    assert "tests.agents.graphs:graph" in greeter["description"]

    agent_id = await create(
        http, w.url, {"type": "greeter", "config": {"salutation": "Welcome", "punctuation": "."}}
    )
    status, out, _ = await call(
        http, "POST", f"{w.url}/v1/agents/{agent_id}/invoke", json={"input": {"name": "Ada"}}
    )
    assert status == 200, out
    assert out["output"] == {"name": "Ada", "greeting": "WELCOME, ADA."}

    status, err, headers = await call(
        http, "POST", f"{w.url}/v1/agents/{agent_id}/invoke", json={"input": {"name": 7}}
    )
    assert_error(status, err, headers, expect=400, code="validation_error")
    assert err["error"]["details"][0]["field"] == "input.name"

    status, err, headers = await call(
        http, "POST", w.url + "/v1/agents", json={"type": "greeter", "config": {"tone": "warm"}}
    )
    assert_error(status, err, headers, expect=400, code="validation_error")
    assert err["error"]["details"][0]["field"] == "config.tone"

    # The README's example: a MessagesState graph, messages in either JSON form.
    support = await create(http, w.url, {"type": "support", "config": {"name": "billing"}})
    question = {"messages": [{"role": "user", "content": "My invoice is wrong"}]}
    status, out, _ = await call(
        http, "POST", f"{w.url}/v1/agents/{support}/invoke", json={"input": question}
    )
    assert status == 200, out
    assert [(m["type"], m["content"]) for m in out["output"]["messages"]] == [
        ("human", "My invoice is wrong"),
        ("ai", "The billing team got: My invoice is wrong"),
    ]
    status, err, headers = await call(
        http, "POST", f"{w.url}/v1/agents/{support}/invoke", json={"input": {"messages": "hi"}}
    )
    assert_error(status, err, headers, expect=400, code="validation_error")
    assert err["error"]["details"][0]["field"] == "input.messages"

    backwards = await create(http, w.url, {"type": "backwards"})
    status, out, _ = await call(
        http, "POST", f"{w.url}/v1/agents/{backwards}/invoke", json={"input": "stressed"}
    )
    assert (status, out["output"]) == (200, "desserts")


def calculator(expression: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "calculator", "args": {"expression": expression}}]}


async def test_the_agent_type_over_http(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker()
    config = {
        "system_prompt": "Use the calculator.",
        "tools": ["calculator"],
        "model": {"responses": [calculator("2+2"), calculator("4*10"), "It is 40."]},
    }
    agent_id = await create(http, w.url, {"type": "agent", "config": config})
    status, out, _ = await call(
        http, "POST", f"{w.url}/v1/agents/{agent_id}/invoke", json={"input": "(2+2)*10?"}
    )
    assert (status, out["output"]) == (200, "It is 40."), out

    status, err, headers = await call(
        http,
        "POST",
        w.url + "/v1/agents",
        json={"type": "agent", "config": {"tools": ["calculator", "shell"]}},
    )
    assert_error(status, err, headers, expect=400, code="unknown_tool")
    assert "known: calculator, current_time" in err["error"]["message"]
    assert err["error"]["details"] == [
        {"field": "config.tools.1", "message": "unknown tool 'shell'"}
    ]

    looping = await create(
        http,
        w.url,
        {"type": "agent", "config": {**config, "model": {"responses": [calculator("1")]}}},
    )
    status, err, headers = await call(
        http, "POST", f"{w.url}/v1/agents/{looping}/invoke", json={"input": "loop"}
    )
    assert_error(status, err, headers, expect=502, code="agent_iteration_limit")


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("x=tests.agents.missing_module:graph", "no module named 'tests.agents.missing_module'"),
        ("x=tests.agents.graphs:missing", "'tests.agents.graphs' has no attribute 'missing'"),
        ("x=tests.agents.graphs:NOT_A_RUNNABLE", "neither a LangChain Runnable nor an AgentType"),
        ("x=tests.agents.graphs", "is not name=package.module:attribute"),
    ],
)
def test_a_bad_entry_stops_start_up_with_a_message(
    spawn_worker: SpawnWorker, entry: str, reason: str
) -> None:
    w = spawn_worker({"WORKER_AGENT_TYPES": entry, "PYTHONPATH": str(ROOT)}, start=False)
    with pytest.raises(RuntimeError, match="worker did not start"):
        w.start(timeout=60)
    assert w.proc is not None
    assert w.proc.wait(10) != 0
    text = w.log_text()
    assert "WORKER_AGENT_TYPES" in text
    assert entry in text
    assert reason in text
