"""Workers of one pool share the agent bucket; agents survive restarts."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import SpawnWorker
from tests.http.helpers import call
from worker.testing import wait_for


async def answers(http: aiohttp.ClientSession, url: str, expect: int) -> bool:
    """Whether ``GET url`` answers ``expect`` now."""
    status, _, _ = await call(http, "GET", url)
    return status == expect


async def test_two_workers_share_one_bucket(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    a, b = spawn_worker(), spawn_worker()
    _, created, _ = await call(
        http,
        "POST",
        a.url + "/create-agent",
        json={
            "Type": "chat",
            "Config": {"model": {"provider": "fake", "responses": ["from the pool"]}},
        },
    )
    agent_id = created["id"]

    # Invoked on the other worker at once: a miss in its local view reads the bucket.
    status, out, _ = await call(
        http, "POST", f"{b.url}/v1/agents/{agent_id}/invoke", json={"input": "hi"}
    )
    assert (status, out["output"]) == (200, "from the pool")
    assert out["metadata"]["worker_id"] != ""

    # A change made through B reaches A.
    status, _, _ = await call(
        http,
        "PATCH",
        f"{b.url}/v1/agents/{agent_id}",
        json={"config": {"model": {"responses": ["patched"]}}},
    )
    assert status == 200

    async def invoked_on_a() -> Any:
        _, out, _ = await call(
            http, "POST", f"{a.url}/v1/agents/{agent_id}/invoke", json={"input": "hi"}
        )
        return out if out["output"] == "patched" else None

    out = await wait_for(invoked_on_a, what="the patch to reach worker A")
    assert out["output"] == "patched"

    # Both list it; a delete through A is seen by B.
    for w in (a, b):
        _, listed, _ = await call(http, "GET", w.url + "/v1/agents")
        assert agent_id in [x["id"] for x in listed["agents"]]
    status, _, _ = await call(http, "DELETE", f"{a.url}/v1/agents/{agent_id}")
    assert status == 204
    await wait_for(
        lambda: answers(http, f"{b.url}/v1/agents/{agent_id}", 404), what="B to see the delete"
    )


async def test_agent_survives_a_worker_restart(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker()
    _, created, _ = await call(
        http,
        "POST",
        w.url + "/v1/agents",
        json={"type": "steps", "name": "durable", "config": {"steps": 2, "step_delay": "1ms"}},
    )
    assert w.stop() == 0
    w.start()
    status, got, _ = await call(http, "GET", f"{w.url}/v1/agents/{created['id']}")
    assert status == 200
    assert got == created
    status, out, _ = await call(
        http, "POST", f"{w.url}/v1/agents/{created['id']}/invoke", json={"input": "again"}
    )
    assert (status, out["output"]) == (200, "completed 2 steps for input: again")
