"""The AsyncAPI document of the NATS and WebSocket doors, generated from the wire models."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.http.helpers import call
from worker.asyncapi import build_asyncapi
from worker.config import Settings
from worker.testing import WorkerProcess


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            out.extend(_refs(value))
        return out
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_reference_resolves_and_the_contract_is_there() -> None:
    doc = build_asyncapi(Settings.load([]))
    assert doc["asyncapi"] == "3.0.0"
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref
    assert doc["channels"]["agentExecute"]["address"] == "agent.execute"
    task = doc["components"]["schemas"]["TaskMessage"]
    assert {"id", "type", "payload", "callback", "timeout", "stream_url"} <= set(task["properties"])
    frame = doc["components"]["schemas"]["Frame"]
    assert {"task_id", "seq", "status", "progress"} <= set(frame["properties"])
    headers = doc["components"]["messages"]["callback"]["headers"]["properties"]
    assert {"webhook-id", "webhook-timestamp", "webhook-signature", "traceparent"} <= set(headers)


async def test_served_by_the_worker(worker: WorkerProcess, http: aiohttp.ClientSession) -> None:
    status, doc, _ = await call(http, "GET", worker.url + "/asyncapi.json")
    assert status == 200
    assert doc["info"]["title"].startswith("AgentOS worker")
