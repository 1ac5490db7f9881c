"""Acceptance (issue #12) on real worker processes and a real nats-server: a LangGraph graph
known only through ``WORKER_AGENT_TYPES`` on every door, with a frame per finished node; the
``agent`` type calling tools in a job published as Go publishes it."""

from __future__ import annotations

import asyncio

import aiohttp
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.jobs.receiver import Receiver
from tests.streaming.helpers import push_receiver, sse_frames
from tests.threads.pool import (
    assert_frames,
    calculator,
    callbacks,
    create_agent,
    fake_model,
    invoke,
    nodes,
    publish_job,
    socket_run,
    steps,
    task_frames,
)

STYLE = {"salutation": "Welcome", "punctuation": "."}


def greeting(name: str) -> dict[str, str]:
    """What the greeter graph (``greet`` then ``shout``) answers with ``STYLE``."""
    return {"name": name, "greeting": f"WELCOME, {name.upper()}."}


async def test_a_graph_registered_by_import_path_runs_on_every_door_with_node_frames(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    nc: Client,
    receiver: Receiver,
    pool_env: dict[str, str],
) -> None:
    w = spawn_worker(pool_env)
    agent_id = await create_agent(http, w, "greeter", STYLE)

    # HTTP invoke.
    status, out = await invoke(http, w, agent_id, {"name": "Ada"})
    assert status == 200, out
    assert (out["status"], out["output"]) == ("completed", greeting("Ada"))

    # HTTP stream (SSE).
    stream = f"{w.url}/v1/agents/{agent_id}/stream"
    async with http.post(stream, json={"input": {"name": "Alan"}}) as resp:
        assert resp.status == 200, await resp.text()
        over_sse = await asyncio.wait_for(sse_frames(resp), 20)
    assert_frames(over_sse)
    assert nodes(over_sse) == ["greet", "shout"]
    assert over_sse[-1]["result"] == greeting("Alan")

    # A NATS job, published as the Go backend publishes it, its result called back.
    task_id = await publish_job(
        nc, pool_env, receiver, {"agent_id": agent_id, "input": {"name": "Grace"}}
    )
    (body,) = await callbacks(receiver, task_id)
    assert (body["status"], body["result"]) == ("completed", greeting("Grace")), body
    job_frames = await task_frames(http, w, task_id)
    assert_frames(job_frames)
    assert nodes(job_frames) == ["greet", "shout"]
    node_frame = next(f for f in job_frames if f.get("event") == "node")
    assert node_frame["status"] == "processing"
    assert node_frame["message"]  # a reader that knows no `event` still has words to show

    # The chat socket: two inputs, one run each.
    async with http.ws_connect(f"{w.url}/v1/agents/{agent_id}/ws") as ws:
        for name in ("Linus", "Barbara"):
            frames = await socket_run(ws, {"input": {"name": name}})
            assert_frames(frames)
            assert nodes(frames) == ["greet", "shout"]
            assert frames[-1]["result"] == greeting(name)


async def test_the_agent_type_calls_the_calculator_twice_then_answers_in_a_job(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    nc: Client,
    receiver: Receiver,
    pool_env: dict[str, str],
) -> None:
    w = spawn_worker(pool_env)
    config = {
        "system_prompt": "Use the calculator.",
        "tools": ["calculator"],
        "model": fake_model(calculator("2+2"), calculator("4*10"), "It is 40."),
    }
    agent_id = await create_agent(http, w, "agent", config)
    payload = {"agent_id": agent_id, "input": "What is (2+2)*10?"}
    async with push_receiver() as gateway:
        task_id = await publish_job(nc, pool_env, receiver, payload, stream_url=gateway.url)
        (body,) = await callbacks(receiver, task_id)
        await asyncio.wait_for(gateway.done.wait(), 20)

    assert (body["status"], body["result"]) == ("completed", "It is 40."), body

    pushed = gateway.frames
    assert_frames(pushed)
    assert pushed[-1]["result"] == "It is 40."
    tool_steps = steps(pushed, "tool_start", "tool_end", "tool_error")
    assert [
        (event, data["tool"], data.get("input"), data.get("output")) for event, data in tool_steps
    ] == [
        ("tool_start", "calculator", {"expression": "2+2"}, None),
        ("tool_end", "calculator", None, "4"),
        ("tool_start", "calculator", {"expression": "4*10"}, None),
        ("tool_end", "calculator", None, "40"),
    ]
    # Each call's start and end name the same call, when the model gave call ids.
    call_ids = [data.get("tool_call_id") for _, data in tool_steps]
    assert call_ids[0] == call_ids[1]
    assert call_ids[2] == call_ids[3]
    # The tool frames come between the model's turns: after the first model call finished,
    # before the final answer's node.
    first_tool = pushed.index(next(f for f in pushed if f.get("event") == "tool_start"))
    assert any(f.get("event") == "node" for f in pushed[:first_tool])

    # The frames the gateway was pushed are the ones the worker serves afterwards.
    assert await task_frames(http, w, task_id) == pushed
