"""Nothing is lost: a killed worker, a restarted nats-server, a receiver that goes away,
long jobs, SIGTERM. Each test reports published / delivered / duplicates / lost."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import nats as nats_py
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.http.helpers import call, metric
from tests.jobs.conftest import create_agent, go_task, tasks_subject
from tests.jobs.receiver import Receiver
from worker.testing import NatsServer, WorkerProcess, wait_for

SERVICE = "ai-worker"  # the `service` label of the workers' metrics


async def jobs_in_flight(http: aiohttp.ClientSession, w: WorkerProcess) -> float:
    """Jobs running on ``w`` now, from its ``/metrics``."""
    return await metric(http, w.url, "agentos_jobs_in_flight", service=SERVICE)


async def nats_connected(http: aiohttp.ClientSession, w: WorkerProcess) -> float:
    """1.0 while ``w`` is connected to NATS, from its ``/metrics``."""
    return await metric(http, w.url, "agentos_nats_connected", service=SERVICE)


def report(name: str, ids: list[str], receiver: Receiver) -> tuple[int, int]:
    got = receiver.by_task()
    delivered = sum(1 for i in ids if i in got)
    duplicates = sum(len(got[i]) - 1 for i in ids if i in got)
    lost = len(ids) - delivered
    print(
        f"\n[{name}] published={len(ids)} delivered={delivered} duplicates={duplicates} lost={lost}"
    )
    for i in ids:
        for d in got.get(i, []):
            assert d.headers["webhook-id"] == f"msg_{i}"  # a duplicate carries the same id
    return duplicates, lost


async def test_kill_9_mid_jobs_loses_nothing(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    a, _ = spawn_worker(job_env), spawn_worker(job_env)
    agent_id = await create_agent(
        http, a, {"type": "steps", "config": {"steps": 3, "step_delay": "300ms"}}
    )
    ids = [str(uuid.uuid4()) for _ in range(300)]
    for task_id in ids:
        await nc.publish(
            tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id))
        )
    await wait_for(lambda: jobs_in_flight(http, a), what="jobs running on the worker to kill")
    a.kill()  # SIGKILL, jobs in flight
    got = await receiver.wait_for(set(ids), within=90)
    _, lost = report("kill -9", ids, receiver)
    assert lost == 0
    assert all(d[0].json["status"] == "completed" for d in got.values())
    rerun = [i for i, d in got.items() if d[-1].json["metadata"]["attempts"] > 1]
    print(f"[kill -9] jobs run again after the kill: {len(rerun)}")
    assert rerun, "the kill hit no job in flight"


async def test_nats_restart_mid_run_loses_nothing_and_fetching_resumes(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    server = NatsServer(store_dir=tmp_path / "nats").start()
    try:
        w = spawn_worker({**job_env, "WORKER_NATS_URL": server.url})
        agent_id = await create_agent(
            http, w, {"type": "steps", "config": {"steps": 2, "step_delay": "50ms"}}
        )
        nc = await nats_py.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = nc.jetstream()
        ids = [str(uuid.uuid4()) for _ in range(100)]
        for task_id in ids[:50]:
            await js.publish(
                tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id))
            )
        await wait_for(lambda: receiver.deliveries, what="the first jobs done before the restart")
        server.stop()

        async def away() -> bool:
            return await nats_connected(http, w) == 0.0

        await wait_for(away, what="the worker to see NATS go away")
        server.start()
        await wait_for(lambda: nats_connected(http, w), what="the worker to reconnect")
        await wait_for(lambda: nc.is_connected, what="the publisher to reconnect")
        # After the restart the workers must fetch again by themselves.
        for task_id in ids[50:]:
            await js.publish(
                tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id))
            )
        await receiver.wait_for(set(ids), within=90)
        _, lost = report("nats restart", ids, receiver)
        assert lost == 0
        await nc.close()
    finally:
        server.close()


async def test_receiver_down_then_back_with_a_healthy_neighbour(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    down, healthy = await Receiver().start(), await Receiver().start()
    try:
        w = spawn_worker({**job_env, "WORKER_CALLBACK_BREAKER_FAIL_MAX": "3"})
        agent_id = await create_agent(http, w, {"type": "echo"})
        down.status = 503
        to_down = [str(uuid.uuid4()) for _ in range(30)]
        for task_id in to_down:
            await nc.publish(
                tasks_subject(job_env), go_task(task_id, agent_id, "x", down.url(task_id))
            )
        breaker = f"callback:127.0.0.1:{down.port}"
        await wait_for(
            lambda: metric(http, w.url, "agentos_circuit_breaker_state", name=breaker),
            what="the down receiver's breaker to open",
        )
        # Meanwhile the healthy receiver gets every callback, one after the other, while its
        # neighbour is still down. (How fast: bench.outage measures it.)
        for _ in range(20):
            task_id = str(uuid.uuid4())
            await nc.publish(
                tasks_subject(job_env), go_task(task_id, agent_id, "x", healthy.url(task_id))
            )
            assert task_id in await healthy.wait_for({task_id}, within=30)
        assert down.deliveries == []
        _, metrics, _ = await call(http, "GET", w.url + "/metrics")
        key = f'agentos_circuit_breaker_state{{name="{breaker}"}}'
        assert f"{key} 2.0" in metrics or f"{key} 1.0" in metrics, "breaker did not open"
        down.status = 200  # back
        await down.wait_for(set(to_down), within=60)
        _, lost = report("receiver down", to_down, down)
        assert lost == 0
        _, metrics, _ = await call(http, "GET", w.url + "/metrics")
        assert f"{key} 0.0" in metrics, "breaker did not close"
    finally:
        await down.stop()
        await healthy.stop()


async def test_long_job_is_not_redelivered(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker({**job_env, "WORKER_JOB_ACK_WAIT": "1s"})
    agent_id = await create_agent(
        http, w, {"type": "steps", "config": {"steps": 5, "step_delay": "1s"}}
    )
    task_id = str(uuid.uuid4())
    await nc.publish(tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id)))
    got = await receiver.wait_for({task_id}, within=30)
    # Not ordering anything: a window longer than the ack wait (1s) in which no redelivery of
    # the finished job may arrive; nothing observable marks the end of "never".
    await asyncio.sleep(1.5)
    assert len(receiver.by_task()[task_id]) == 1
    assert got[task_id][0].json["metadata"]["attempts"] == 1
    subject = tasks_subject(job_env)
    assert (
        await metric(
            http, w.url, "agentos_nats_messages_total", subject=subject, status="redelivered"
        )
        == 0.0
    )
    assert await metric(http, w.url, "agentos_job_redeliveries_total", reason="worker_lost") == 0.0


async def test_sigterm_with_jobs_in_flight_loses_none(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    # A short grace: some jobs finish within it, the rest are handed back to the other worker.
    a = spawn_worker({**job_env, "WORKER_SHUTDOWN_GRACE": "1s"})
    agent_id = await create_agent(
        http, a, {"type": "steps", "config": {"steps": 4, "step_delay": "500ms"}}
    )
    ids = [str(uuid.uuid4()) for _ in range(20)]
    for task_id in ids:
        await nc.publish(
            tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id))
        )
    await wait_for(lambda: jobs_in_flight(http, a), what="jobs running on the worker to stop")
    b: WorkerProcess = spawn_worker(job_env)
    # Stopped from a thread: the receiver lives on this test's event loop and must keep
    # answering while the worker drains.
    code = await asyncio.to_thread(a.stop)
    assert code == 0, "\n".join(list(a.lines)[-20:])
    await receiver.wait_for(set(ids), within=60)
    _, lost = report("sigterm", ids, receiver)
    assert lost == 0
    assert b.proc is not None
    assert b.proc.poll() is None
