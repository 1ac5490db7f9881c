"""Frames of runs on a thread (StreamHub.run with a thread): a graph that asks a person ends
with an ``interrupt`` step frame and a final ``interrupted`` frame; a run that cannot have its
thread emits no frame at all."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest

from tests.agents.helpers import local_agent
from tests.threads.conftest import OpenStore
from tests.threads.helpers import approval
from worker.agents.agent_type import BuildContext
from worker.agents.from_runnable import runnable_type
from worker.agents.thread_runs import OnThread, Resume
from worker.errors import ThreadBusy
from worker.streaming.frames import FINAL
from worker.streaming.hub import StreamHub
from worker.streaming.schemas import Frame


async def collect(hub: StreamHub, task_id: str) -> list[dict[str, Any]]:
    async with hub.reader(task_id) as reader:
        return [orjson.loads(f.data) async for f in reader]


async def test_an_interrupted_run_ends_with_an_interrupted_frame(
    hub: StreamHub, open_store: OpenStore
) -> None:
    store = await open_store()
    agent = local_agent(
        runnable_type("approval", approval), {}, BuildContext(checkpointer=store.checkpointer)
    )
    thread = f"t-{uuid.uuid4().hex}"
    deploy = {"messages": [{"role": "user", "content": "deploy"}]}
    task_id = uuid.uuid4().hex
    result = await hub.run(
        agent,
        deploy,
        task_id=task_id,
        time_limit=10,
        thread=OnThread(threads=store, thread_id=thread),
    )
    assert (result.status, result.interrupt) == ("interrupted", {"question": "approve?"})
    frames = await asyncio.wait_for(collect(hub, task_id), 10)
    for frame in frames:
        Frame.model_validate(frame)
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert frames[0]["status"] == "started"
    assert [f["status"] in FINAL for f in frames] == [False] * (len(frames) - 1) + [True]
    asked = [f for f in frames if f.get("event") == "interrupt"]
    assert len(asked) == 1
    assert asked[0]["data"]["value"] == {"question": "approve?"}
    assert asked[0]["data"]["id"] == result.interrupts[0]["id"]
    final = frames[-1]
    assert (final["status"], final["interrupt"]) == ("interrupted", {"question": "approve?"})
    assert "result" not in final
    assert "error" not in final

    resumed_id = uuid.uuid4().hex
    resume = OnThread(threads=store, thread_id=thread, resume=Resume("yes"))
    done = await hub.run(agent, None, task_id=resumed_id, time_limit=10, thread=resume)
    assert done.status == "completed"
    final = (await asyncio.wait_for(collect(hub, resumed_id), 10))[-1]
    assert final["status"] == "completed"
    assert final["result"]["messages"][-1]["content"] == "approved: yes"


async def test_a_run_that_cannot_have_its_thread_emits_nothing(
    hub: StreamHub, open_store: OpenStore
) -> None:
    store = await open_store()
    agent = local_agent(
        runnable_type("approval", approval), {}, BuildContext(checkpointer=store.checkpointer)
    )
    thread = f"t-{uuid.uuid4().hex}"
    task_id = uuid.uuid4().hex
    begun = asyncio.get_running_loop().create_future()
    async with store.lease(thread, "another-run"):
        with pytest.raises(ThreadBusy):
            await hub.run(
                agent,
                {"messages": []},
                task_id=task_id,
                time_limit=10,
                thread=OnThread(threads=store, thread_id=thread),
                begun=begun,
            )
    assert not begun.done()
    assert await hub.last_seq(task_id) is None
