"""A NATS job whose providers are all unavailable is handed back with a delay, not failed, and
completes once the provider recovers: nothing is lost."""

from __future__ import annotations

import uuid

import aiohttp
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.fakes.openai_server import FakeOpenAI
from tests.http.helpers import call, metric
from tests.jobs.conftest import go_task, job_env, nc, receiver
from tests.jobs.receiver import Receiver
from tests.resilience.conftest import openai_spec
from worker.testing import wait_for

JOBS = 5
__all__ = ["job_env", "nc", "receiver"]  # the jobs suite's fixtures, shared


async def test_jobs_are_redelivered_later_and_complete_once_the_provider_recovers(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    nc: Client,
    job_env: dict[str, str],
    primary: FakeOpenAI,
) -> None:
    env = {**job_env, "WORKER_JOB_MAX_DELIVER": "10", "WORKER_PROVIDER_RETRY_MAX_ATTEMPTS": "1"}
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
    async def handed_back() -> bool:
        subject = env["WORKER_TASKS_SUBJECT"]
        count = await metric(
            http, w.url, "agentos_nats_messages_total", subject=subject, status="handed_back"
        )
        return count >= JOBS

    await wait_for(handed_back, what=f"{JOBS} jobs handed back")
    assert receiver.deliveries == []
    assert primary.count >= 1

    primary.set(reply="Recovered.")
    got = await receiver.wait_for(set(ids), 60)
    print(  # figures for the report, shown with pytest -s
        f"\njobs: {len(got)}/{JOBS} completed after the recovery; attempts "
        f"{[got[i][0].json['metadata']['attempts'] for i in ids if i in got]}"
        f"; provider requests {primary.count}"
    )
    lost = [task_id for task_id in ids if task_id not in got]
    assert lost == []
    for task_id in ids:
        (delivery,) = got[task_id]
        body = delivery.json
        assert (body["status"], body["result"]) == ("completed", "Recovered."), body
        assert body["metadata"]["attempts"] >= 2  # handed back at least once
