"""The final frame says what the run spent (CONTRACT section 7), however the run ended: in
process, ``StreamHub.run`` on the session's real nats-server."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from tests.streaming.helpers import assert_run, resolved
from worker.agents.fake_model import split_tokens
from worker.errors import DeadlineExceeded
from worker.streaming.hub import StreamHub
from worker.streaming.schemas import Frame


async def frames_of(hub: StreamHub, task_id: str) -> list[dict[str, Any]]:
    async with hub.reader(task_id) as reader:
        return [orjson.loads(f.data) async for f in reader]


async def test_the_completed_frame_carries_usage_and_time_to_first_token(hub: StreamHub) -> None:
    reply = "alpha beta gamma"
    task_id = uuid.uuid4().hex
    agent = resolved("chat", {"model": {"model": "frame-usage", "responses": [reply]}})
    result = await hub.run(agent, "Go", task_id=task_id, time_limit=10)
    frames = await frames_of(hub, task_id)
    assert_run(frames)
    final = frames[-1]
    Frame.model_validate(final)
    assert result.spent is not None
    assert final["usage"] == result.spent["usage"]
    assert final["usage"]["output_tokens"] == len(split_tokens(reply))
    assert final["time_to_first_token"] == result.spent["time_to_first_token"]
    assert all("usage" not in f for f in frames[:-1])


async def test_a_run_past_its_deadline_says_what_it_streamed(hub: StreamHub) -> None:
    reply = " ".join(f"w{i}" for i in range(200))
    config = {"model": {"model": "frame-usage-slow", "responses": [reply], "token_delay": "20ms"}}
    task_id = uuid.uuid4().hex
    with pytest.raises(DeadlineExceeded):
        await hub.run(resolved("chat", config), "Go", task_id=task_id, time_limit=0.3)
    frames = await frames_of(hub, task_id)
    assert_run(frames, final="failed")
    final = frames[-1]
    assert final["error"]["code"] == "timeout"
    tokens = sum(f.get("event") == "token" for f in frames)
    assert 0 < tokens < len(split_tokens(reply))
    assert final["usage"]["output_tokens"] == tokens
    assert final["usage"]["estimated"] is True


async def test_a_run_of_a_type_that_calls_no_model_spent_nothing(hub: StreamHub) -> None:
    task_id = uuid.uuid4().hex
    await hub.run(resolved("steps", {"steps": 2}), "x", task_id=task_id, time_limit=10)
    final = (await frames_of(hub, task_id))[-1]
    assert final["usage"]["total_tokens"] == 0
    assert final["usage"]["cost_usd"] == 0.0
    assert "time_to_first_token" not in final
