"""Callback delivery rules: only 2xx succeeds; 429 honours Retry-After; 3xx and 4xx are final."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
from aiohttp import web
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.http.helpers import call
from tests.jobs.conftest import create_agent, go_task, tasks_subject
from tests.jobs.receiver import Receiver
from worker.callbacks.outbox import backoff
from worker.resilience.classify import parse_retry_after
from worker.testing import wait_for


def test_backoff_and_retry_after() -> None:
    assert all(0 <= backoff(n, cap=300) <= min(300, 2 ** (n - 1)) for n in range(1, 30))
    assert backoff(10_000, cap=300) <= 300  # no overflow far along
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_429_is_retried_after_its_retry_after(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(job_env)
    agent_id = await create_agent(http, w, {"type": "echo"})
    receiver.status, receiver.headers = 429, {"Retry-After": "2"}
    task_id = str(uuid.uuid4())
    await nc.publish(tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id)))
    await wait_for(lambda: receiver.attempts, what="the first callback attempt")
    receiver.status, receiver.headers = 200, {}
    got = await receiver.wait_for({task_id}, within=20)
    # As the receiver saw them: from its 429 to the delivery it answered 2xx.
    waited = got[task_id][0].at - receiver.attempted_at[0]
    assert waited >= 1.5, waited  # the receiver asked for 2 s

    async def told() -> dict[str, Any] | None:
        _, record, _ = await call(http, "GET", f"{w.url}/v1/tasks/{task_id}")
        callback = record.get("callback") or {}
        return callback if callback.get("delivered_at") else None

    callback = await wait_for(told, what="the delivery in the task's record")
    assert [t["status_code"] for t in callback["tries"]] == [429, 200], callback


async def test_redirects_and_client_errors_are_final(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    hits: dict[str, int] = {}

    async def answer(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        hits[kind] = hits.get(kind, 0) + 1
        if kind == "redirect":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        return web.Response(status=404 if kind == "gone" else 410)

    app = web.Application()
    app.router.add_post("/{kind}/{task_id}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        w = spawn_worker(job_env)
        agent_id = await create_agent(http, w, {"type": "echo"})
        for kind in ("redirect", "gone", "removed"):
            task_id = str(uuid.uuid4())
            url = f"http://127.0.0.1:{port}/{kind}/{task_id}"
            await nc.publish(tasks_subject(job_env), go_task(task_id, agent_id, "x", url))

        async def dead_letters() -> list[dict[str, str]] | None:
            _, page, _ = await call(http, "GET", w.url + "/v1/dead-letters")
            return list(page["dead_letters"]) if len(page["dead_letters"]) >= 3 else None

        dead = await wait_for(dead_letters, what="three dead letters")
        reasons = sorted(d["reason"] for d in dead)
        assert reasons == ["callback_rejected"] * 3
        details = " ".join(d["detail"] for d in dead)
        assert "redirects are not followed" in details
        # Not ordering anything: a window in which a retry, were there one, would arrive (the
        # first backoff is under a second); "never retried" has no event to wait for.
        await asyncio.sleep(1.0)
        assert hits == {"redirect": 1, "gone": 1, "removed": 1}  # never retried
    finally:
        await runner.cleanup()
