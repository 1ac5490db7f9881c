"""Third-party agent types plug in through the ``agentos.agent_types`` entry-point group."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.conftest import SpawnWorker
from tests.http.helpers import call


async def test_installed_plugin_type_is_usable(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession, plugin_path: Path
) -> None:
    w = spawn_worker({"PYTHONPATH": str(plugin_path)})
    _, types, _ = await call(http, "GET", w.url + "/v1/agent-types")
    names = {t["name"] for t in types["agent_types"]}
    assert {"echo", "chat", "steps", "reverse", "spin"} <= names
    assert "agent type plugin loaded" in w.log_text()

    status, agent, _ = await call(
        http, "POST", w.url + "/v1/agents", json={"type": "reverse", "config": {"upper": True}}
    )
    assert status == 201, agent
    status, out, _ = await call(
        http, "POST", f"{w.url}/v1/agents/{agent['id']}/invoke", json={"input": "abc"}
    )
    assert (status, out["output"]) == (200, "CBA")
    status, err, _ = await call(
        http, "POST", w.url + "/v1/agents", json={"type": "reverse", "config": {"lower": True}}
    )
    assert status == 400
    assert err["error"]["details"][0]["field"] == "config.lower"


async def test_without_the_plugin_its_type_is_unknown(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker()
    status, err, _ = await call(http, "POST", w.url + "/v1/agents", json={"type": "reverse"})
    assert (status, err["error"]["code"]) == (400, "unknown_agent_type")
