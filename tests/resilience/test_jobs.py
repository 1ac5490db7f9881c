"""A NATS job whose providers are all unavailable is handed back with a delay, not failed, and
completes once the provider recovers: nothing is lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import nats as nats_py
import pytest
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.fakes.openai_server import FakeOpenAI
from tests.http.helpers import call
from tests.jobs.conftest import JOB_ENV, go_task
from tests.jobs.receiver import Receiver
from tests.resilience.conftest import openai_spec
from worker.testing import NatsServer

JOBS = 5


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


def _env() -> dict[str, str]:
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
        "WORKER_JOB_MAX_DELIVER": "10",
        "WORKER_PROVIDER_RETRY_MAX_ATTEMPTS": "1",
    }


async def test_jobs_are_redelivered_later_and_complete_once_the_provider_recovers(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    nc: Client,
    primary: FakeOpenAI,
) -> None:
    env = _env()
    w = spawn_worker(env)
    status, agent, _ = await call(
        http,
        "POST",
        w.url + "/v1/agents",
        json={
            "type": "chat",
            "config": {
                "model": openai_spec(primary, breaker={"fail_max": 1, "reset_timeout": "2s"})
            },
        },
    )
    assert status == 201, agent
    primary.set(mode="status", status=503)

    ids = [str(uuid.uuid4()) for _ in range(JOBS)]
    for task_id in ids:
        await nc.publish(
            env["WORKER_TASKS_SUBJECT"],
            go_task(task_id, agent["id"], "hello", receiver.url(task_id)),
        )
    # The provider is down for a while: no job may fail meanwhile, each is handed back.
    await asyncio.sleep(1.5)
    assert receiver.deliveries == []
    assert primary.count >= 1

    primary.set(reply="Recovered.")
    recovered = time.monotonic()
    got = await receiver.wait_for(set(ids), 60)
    print(  # figures for the report, shown with pytest -s
        f"\njobs: {len(got)}/{JOBS} completed {time.monotonic() - recovered:.1f}s after the "
        f"recovery; attempts {[got[i][0].json['metadata']['attempts'] for i in ids if i in got]}"
        f"; provider requests {primary.count}"
    )
    lost = [task_id for task_id in ids if task_id not in got]
    assert lost == []
    for task_id in ids:
        (delivery,) = got[task_id]
        body = delivery.json
        assert (body["status"], body["result"]) == ("completed", "Recovered."), body
        assert body["metadata"]["attempts"] >= 2  # handed back at least once
