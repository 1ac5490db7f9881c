"""StreamHub.run in process against the real nats-server: frames, replay, attempts, errors."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from langchain_core.messages import HumanMessage

from tests.streaming.helpers import assert_run, resolved
from tests.streaming.tool_graph import tool_graph
from worker.agents.fake_model import split_tokens
from worker.errors import HANDBACK, DeadlineExceeded
from worker.streaming.hub import StreamHub
from worker.streaming.schemas import Frame
from worker.testing import wait_for


async def collect(hub: StreamHub, task_id: str, from_seq: int = 1) -> list[dict[str, Any]]:
    async with hub.reader(task_id, from_seq=from_seq) as reader:
        return [orjson.loads(f.data) async for f in reader]


async def stored(hub: StreamHub, task_id: str, seq: int) -> None:
    """Wait until ``task_id``'s frames up to ``seq`` are in the log."""

    async def newest() -> bool:
        last = await hub.last_seq(task_id)
        return last is not None and last[0] >= seq

    await wait_for(newest, what=f"frame {seq} of {task_id} stored")


async def test_steps_run_emits_started_progress_and_completed(hub: StreamHub) -> None:
    task_id = uuid.uuid4().hex
    watcher = asyncio.create_task(collect(hub, task_id))
    agent = resolved("steps", {"steps": 4, "step_delay": "10ms"})
    result = await hub.run(agent, "x", task_id=task_id, time_limit=10)
    frames = await asyncio.wait_for(watcher, 10)
    assert_run(frames)
    assert result.output == frames[-1]["result"] == "completed 4 steps for input: x"
    steps = frames[1:-1]
    assert [f["progress"] for f in steps] == [25, 50, 75, 100]
    assert [f["partial_result"] for f in steps] == [f"step {i} done" for i in range(1, 5)]
    assert steps[1]["message"] == "Processing step 2 of 4"


async def test_chat_tokens_are_what_the_fake_model_streamed(hub: StreamHub) -> None:
    reply = "The quick brown fox jumps over the lazy dog."
    task_id = uuid.uuid4().hex
    agent = resolved("chat", {"model": {"provider": "fake", "responses": [reply]}})
    await hub.run(agent, "hi", task_id=task_id, time_limit=10)
    frames = await collect(hub, task_id)
    assert_run(frames)
    tokens = [f["partial_result"] for f in frames if f["status"] == "processing"]
    assert tokens == split_tokens(reply)
    assert frames[-1]["result"] == reply


async def test_a_tool_calling_graph_publishes_its_steps_gapless(hub: StreamHub) -> None:
    task_id = uuid.uuid4().hex
    agent = resolved("echo", {})
    graph = tool_graph([("add", {"a": 2, "b": 3})], [("broken", {"reason": "no"})], "It is 5.")
    object.__setattr__(agent, "runnable", graph)
    await hub.run(agent, {"messages": [HumanMessage("2+3?")]}, task_id=task_id, time_limit=10)
    frames = await collect(hub, task_id)
    assert_run(frames)
    for frame in frames:
        Frame.model_validate(frame)
    steps = [(f["event"], f.get("data")) for f in frames if f.get("event") not in {None, "token"}]
    assert [event for event, _ in steps] == [
        *("node", "tool_start", "tool_end", "node"),
        *("node", "tool_start", "tool_error", "node"),
        "node",
    ]
    assert steps[2][1] == {"tool": "add", "output": "5", "tool_call_id": "call-0"}
    tokens = [f["partial_result"] for f in frames if f.get("event") == "token"]
    assert "".join(tokens) == "It is 5."
    assert frames[-1]["result"]["messages"][-1]["content"] == "It is 5."


async def test_late_reader_replays_from_seq_then_follows_live(hub: StreamHub) -> None:
    task_id = uuid.uuid4().hex
    agent = resolved("steps", {"steps": 10, "step_delay": "40ms"})
    run = asyncio.create_task(hub.run(agent, "x", task_id=task_id, time_limit=10))
    await stored(hub, task_id, 3)
    frames = await collect(hub, task_id, from_seq=3)
    await run
    assert_run(frames, first=3)
    assert frames[-1]["seq"] == 12


async def test_seq_continues_across_attempts(hub: StreamHub) -> None:
    task_id = uuid.uuid4().hex
    slow = resolved("steps", {"steps": 50, "step_delay": "20ms"})
    first = asyncio.create_task(hub.run(slow, "x", task_id=task_id, time_limit=10))
    await stored(hub, task_id, 3)  # started, and processing
    first.cancel(HANDBACK)  # as a draining worker hands the job back
    with pytest.raises(asyncio.CancelledError):
        await first
    await hub.run(resolved("echo", {}), "again", task_id=task_id, time_limit=10)
    frames = await collect(hub, task_id)
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert [f["status"] for f in frames].count("started") == 2
    restart = next(i for i, f in enumerate(frames) if i and f["status"] == "started")
    assert frames[restart - 1]["status"] == "processing"  # the handed-back attempt: no final
    assert "run again" in frames[restart - 1]["message"]
    assert frames[restart]["attempt"] == 2
    assert frames[-1]["status"] == "completed"
    assert frames[-1]["result"] == "again"


async def test_deadline_and_cancel_end_with_a_final_frame(hub: StreamHub) -> None:
    slow = resolved("steps", {"steps": 100, "step_delay": "50ms"})
    timed_out = uuid.uuid4().hex
    with pytest.raises(DeadlineExceeded):
        await hub.run(slow, "x", task_id=timed_out, time_limit=0.2)
    frames = await collect(hub, timed_out)
    assert_run(frames, final="failed")
    assert frames[-1]["error"]["code"] == "timeout"

    cancelled = uuid.uuid4().hex
    run = asyncio.create_task(hub.run(slow, "x", task_id=cancelled, time_limit=10))
    await stored(hub, cancelled, 2)  # started, and processing
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    frames = await collect(hub, cancelled)
    assert_run(frames, final="cancelled")
    assert frames[-1]["error"]["code"] == "cancelled"


async def test_ensure_final_ends_a_task_that_never_ran(hub: StreamHub) -> None:
    task_id = uuid.uuid4().hex
    await hub.ensure_final(task_id, status="failed", error={"code": "dead", "message": "gave up"})
    await hub.ensure_final(task_id, status="failed")  # already final: nothing more
    frames = await collect(hub, task_id)
    assert [(f["seq"], f["status"]) for f in frames] == [(1, "failed")]
