"""Fixtures for the jobs door: callback receivers and a Go-like publisher."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import nats as nats_py
import pytest
from nats.aio.client import Client

from tests.broker.conftest import make_queue  # noqa: F401 - a fixture, for the jobs parts' tests
from tests.http.helpers import call
from tests.jobs.receiver import SECRET, Receiver
from worker.testing import NatsServer, WorkerProcess

JOB_ENV = {
    "WORKER_CALLBACK_SECRET": SECRET,
    "WORKER_CALLBACK_ALLOW": "127.0.0.1",
    "WORKER_JOB_ACK_WAIT": "2s",
    "WORKER_CALLBACK_BREAKER_RESET": "1s",
    "WORKER_SHUTDOWN_GRACE": "10s",
}


@pytest.fixture
def job_env() -> dict[str, str]:
    """Each test its own streams, consumers and buckets, on the session's nats-server."""
    tag = uuid.uuid4().hex[:8].upper()
    return {
        **JOB_ENV,
        "WORKER_TASKS_STREAM": f"TASKS_{tag}",
        "WORKER_TASKS_SUBJECT": f"agent.execute.t{tag.lower()}",
        "WORKER_TASKS_CONSUMER": f"workers-{tag.lower()}",
        "WORKER_TASKS_BUCKET": f"tasks_{tag.lower()}",
        "WORKER_CALLBACK_STREAM": f"CALLBACKS_{tag}",
        "WORKER_CALLBACK_SUBJECT": f"agentos.callbacks.t{tag.lower()}",
        "WORKER_DLQ_STREAM": f"DLQ_{tag}",
        "WORKER_DLQ_SUBJECT": f"test.dlq.t{tag.lower()}",
    }


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def nc(nats: NatsServer) -> AsyncIterator[Client]:
    client = await nats_py.connect(nats.url)
    yield client
    await client.drain()


def go_task(
    task_id: str,
    agent_id: str,
    value: str,
    callback: str,
    *,
    timeout_ns: int = 300_000_000_000,
    stream_url: str | None = None,
) -> bytes:
    """A TaskMessage as the seed's Go code marshals it: tagged keys in field order, the
    payload map's keys sorted (Go sorts map keys), the time.Duration as integer nanoseconds."""
    msg: dict[str, Any] = {
        "id": task_id,
        "type": "agent_execution",
        "payload": {"agent_id": agent_id, "input": value},
        "callback": callback,
        "timeout": timeout_ns,
    }
    if stream_url is not None:
        msg["stream_url"] = stream_url
    return json.dumps(msg, separators=(",", ":")).encode()


async def create_agent(
    http: aiohttp.ClientSession, w: WorkerProcess, spec: dict[str, object]
) -> str:
    """Create an agent from ``spec`` on worker ``w``; its id."""
    status, body, _ = await call(http, "POST", w.url + "/v1/agents", json=spec)
    assert status == 201, body
    return str(body["id"])


async def record_in(
    http: aiohttp.ClientSession,
    base: str,
    task_id: str,
    status: str,
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """``task_id``'s task record on the worker at ``base`` if its status is ``status``, else
    None (a probe for ``wait_for``)."""
    code, record, _ = await call(http, "GET", f"{base}/v1/tasks/{task_id}", headers=headers)
    if code == 200 and isinstance(record, dict) and record.get("status") == status:
        return record
    return None


def tasks_subject(env: dict[str, str]) -> str:
    """Where the workers started with ``env`` take their jobs."""
    return env["WORKER_TASKS_SUBJECT"]
