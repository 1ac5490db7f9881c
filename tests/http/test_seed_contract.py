"""The seed's Go code, byte for byte on the wire: POST /create-agent with an untagged struct."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiohttp

from tests.http.helpers import call
from worker.testing import WorkerProcess


def go_untagged(struct: dict[str, Any]) -> bytes:
    """What Go's json.Marshal writes for an untagged struct: field names as declared, in order,
    zero values included, no spaces."""
    return json.dumps(struct, separators=(",", ":")).encode()


def go_decode_untagged(fields: list[str], obj: dict[str, Any]) -> dict[str, Any]:
    """Go's json.Decode into an untagged struct: each field takes the key that matches it
    case-insensitively; unknown keys are dropped."""
    out: dict[str, Any] = {}
    for field in fields:
        for key, value in obj.items():
            if key.lower() == field.lower():
                out[field] = value
    return out


async def test_seed_create_agent_request(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    # type AgentConfig struct { Type string; Name string; Config map[string]interface{} }
    payload = go_untagged(
        {
            "Type": "chat",
            "Name": "support-bot",
            "Config": {
                "system_prompt": "Be brief.",
                "model": {"provider": "fake", "responses": ["Sure."]},
            },
        }
    )
    # http.NewRequestWithContext(ctx, "POST", c.baseURL+"/create-agent", ...);
    # req.Header.Set("Content-Type", "application/json")
    async with http.post(
        worker.url + "/create-agent",
        data=payload,
        headers={"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"},
    ) as resp:
        assert resp.status == 201
        body = await resp.json()
    # var agent Agent; json.NewDecoder(resp.Body).Decode(&agent)
    agent = go_decode_untagged(["ID", "Type", "Name", "Config"], body)
    assert agent["ID"]
    assert agent["Type"] == "chat"
    assert agent["Name"] == "support-bot"
    assert agent["Config"]["system_prompt"] == "Be brief."
    # A tagged `CreatedAt time.Time \`json:"created_at"\`` reads RFC 3339.
    assert datetime.fromisoformat(body["created_at"].replace("Z", "+00:00")).tzinfo is not None
    assert set(body) >= {"id", "type", "name", "config", "created_at"}

    status, out, _ = await call(
        http, "POST", f"{worker.url}/v1/agents/{agent['ID']}/invoke", json={"input": "hello"}
    )
    assert status == 200
    assert out["output"] == "Sure."


async def test_seed_zero_values(worker: WorkerProcess, http: aiohttp.ClientSession) -> None:
    # An AgentConfig with only Type set: Go still sends the zero values.
    status, body, _ = await call(
        http,
        "POST",
        worker.url + "/create-agent",
        data=go_untagged({"Type": "chat", "Name": "", "Config": None}),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, body
    assert body["name"] == ""
    assert body["config"]["model"]["provider"] == "fake"
