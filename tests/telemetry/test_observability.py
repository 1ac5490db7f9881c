"""Metrics by route template, one span per request continuing `traceparent`, JSON logs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import SpawnWorker
from tests.http.helpers import call
from worker.config import Settings
from worker.server import RunningWorker, running_worker
from worker.telemetry import tracing
from worker.testing import NatsServer, WorkerProcess

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = tracing.build_tracer_provider(
        "ai-worker", "test", environ={}, processors=[SimpleSpanProcessor(exporter)]
    )
    tracing.install(provider)
    return exporter


@pytest.fixture
async def in_process(
    nats: NatsServer, tmp_path: Path, spans: InMemorySpanExporter
) -> AsyncIterator[RunningWorker]:
    settings = Settings.load(
        [
            "--nats-url",
            nats.url,
            "--http-port",
            "0",
            "--state-dir",
            str(tmp_path),
            "--agents-bucket",
            "agents_otel",
        ]
    )
    async with running_worker(settings) as w:
        yield w


async def test_request_span_continues_traceparent(
    in_process: RunningWorker, http: aiohttp.ClientSession, spans: InMemorySpanExporter
) -> None:
    _, agent, _ = await call(
        http, "POST", in_process.http_url + "/v1/agents", json={"type": "echo"}
    )
    spans.clear()
    status, _, _ = await call(
        http,
        "POST",
        f"{in_process.http_url}/v1/agents/{agent['id']}/invoke",
        json={"input": "t"},
        headers={"traceparent": TRACEPARENT},
    )
    assert status == 200
    finished = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert len(finished) == 1
    span = finished[0]
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    attrs = dict(span.attributes or {})
    assert attrs["ai.framework"] == "langchain"
    assert attrs["agent.type"] == "echo"
    assert attrs["agent.id"] == agent["id"]
    assert attrs["http.request_id"]
    assert span.name == "POST /v1/agents/{agent_id}/invoke"
    assert attrs["http.route"] == "/v1/agents/{agent_id}/invoke"
    assert attrs["http.request.method"] == "POST"
    assert attrs["http.response.status_code"] == 200
    assert span.status.is_ok


async def test_request_span_of_a_server_error_is_an_error(
    in_process: RunningWorker, http: aiohttp.ClientSession, spans: InMemorySpanExporter
) -> None:
    _, agent, _ = await call(
        http,
        "POST",
        in_process.http_url + "/v1/agents",
        json={"type": "steps", "config": {"steps": 3, "step_delay": "200ms"}},
    )
    spans.clear()
    status, _, _ = await call(
        http,
        "POST",
        f"{in_process.http_url}/v1/agents/{agent['id']}/invoke",
        json={"input": "t", "timeout": "50ms"},
    )
    assert status == 504
    (span,) = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    attrs = dict(span.attributes or {})
    assert attrs["http.response.status_code"] == 504
    assert attrs["error.type"] == "DeadlineExceeded"
    assert not span.status.is_ok


async def test_metrics_use_route_templates(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    _, agent, _ = await call(http, "POST", worker.url + "/v1/agents", json={"type": "echo"})
    await call(http, "POST", f"{worker.url}/v1/agents/{agent['id']}/invoke", json={"input": 1})
    await call(http, "GET", f"{worker.url}/v1/agents/does-not-exist")
    _, text, _ = await call(http, "GET", worker.url + "/metrics")
    assert (
        'agentos_http_request_duration_seconds_count{endpoint="/v1/agents/{agent_id}/invoke",'
        'service="ai-worker",status="200"}'
    ) in text
    assert 'endpoint="/v1/agents/{agent_id}",service="ai-worker",status="404"' in text
    assert agent["id"] not in text.replace(f'"{agent["id"]}"', "")  # ids never become labels
    assert "agentos_nats_connected" in text
    assert 'agentos_agent_invocations_total{agent_type="echo",outcome="ok"}' in text


async def test_logs_are_json_with_request_and_trace_ids(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker({"WORKER_ACCESS_LOG": "true"})
    await call(
        http,
        "GET",
        w.url + "/v1/agents",
        headers={"X-Request-ID": "log-check-1", "traceparent": TRACEPARENT},
    )
    w.stop()
    records = [json.loads(line) for line in w.lines if line.startswith("{")]
    assert records, w.log_text()
    mine = [r for r in records if r.get("request_id") == "log-check-1"]
    assert mine, w.log_text()
    assert mine[0]["trace_id"] == TRACE_ID
    assert mine[0]["endpoint"] == "/v1/agents"
    assert {"timestamp", "level", "event"} <= set(mine[0])
