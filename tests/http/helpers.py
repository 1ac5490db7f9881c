"""Small helpers for talking to a worker over real HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json: Any = None,
    data: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    """One request; returns status, decoded JSON body (or text) and headers."""
    async with http.request(method, url, json=json, data=data, headers=headers) as resp:
        if resp.content_type == "application/json":
            body: Any = await resp.json()
        else:
            body = await resp.text()
        return resp.status, body, resp.headers


def assert_error(status: int, body: Any, headers: Any, *, expect: int, code: str) -> None:
    """The JSON error body of CONTRACT section 1, with the echoed request id."""
    assert status == expect, body
    assert isinstance(body, dict), body
    err = body["error"]
    assert err["code"] == code, err
    assert err["message"]
    assert err["request_id"] == headers["X-Request-ID"]


async def metric(
    http: aiohttp.ClientSession,
    base: str,
    name: str,
    /,
    *,
    headers: dict[str, str] | None = None,
    **labels: str,
) -> float:
    """The value of the sample ``name{labels}`` on the worker at ``base``'s ``/metrics`` (the
    labels must match exactly; 0.0 when there is no such sample yet)."""
    async with http.get(f"{base}/metrics", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
