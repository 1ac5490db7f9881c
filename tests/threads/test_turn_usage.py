"""What each turn of a thread spent, in its history: the last checkpoint a run wrote holds the
run's ``usage`` (and ``time_to_first_token`` when it streamed), whatever ended the run."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.agents.helpers import local_agent
from tests.threads.conftest import OpenStore
from worker.agents import thread_runs
from worker.agents.agent_type import BuildContext
from worker.agents.store import ResolvedAgent
from worker.agents.thread_runs import OnThread
from worker.errors import BudgetExceeded
from worker.streaming.hub import StreamHub
from worker.threads import ThreadStore


def chat(store: ThreadStore, *replies: Any, **config: Any) -> ResolvedAgent:
    model = {"provider": "fake", "model": "turn-usage", "responses": list(replies)}
    ctx = BuildContext(checkpointer=store.checkpointer)
    return local_agent("chat", {"model": model, **config}, ctx)


def reply(text: str, inputs: int, outputs: int) -> dict[str, Any]:
    return {"content": text, "usage": {"input_tokens": inputs, "output_tokens": outputs}}


async def test_each_turn_of_the_history_says_what_it_spent(
    open_store: OpenStore, hub: StreamHub
) -> None:
    store = await open_store()
    agent = chat(store, reply("Hi Ada.", 10, 3), reply("You are Ada.", 20, 4))
    thread = f"t-{uuid.uuid4().hex}"
    on = OnThread(threads=store, thread_id=thread)
    first = await thread_runs.invoke(agent, "I am Ada.", on, time_limit=10)
    second = await hub.run(agent, "Who am I?", task_id=uuid.uuid4().hex, time_limit=10, thread=on)
    assert first.spent is not None
    assert second.spent is not None

    history = await store.history(thread)
    turns = [c for c in history if "usage" in c.metadata]
    # Newest first: one checkpoint per turn says what the turn spent, the last it wrote.
    assert [c.metadata["usage"]["input_tokens"] for c in turns] == [20, 10]
    assert [c.metadata["usage"] for c in turns] == [second.spent["usage"], first.spent["usage"]]
    assert turns[0].checkpoint_id == history[0].checkpoint_id
    assert [c.metadata["run_id"] for c in turns] == [second.run_id, first.run_id]
    # The streamed turn timed its first token; the plain one streamed none.
    assert turns[0].metadata["time_to_first_token"] == second.spent["time_to_first_token"]
    assert "time_to_first_token" not in turns[1].metadata
    assert turns[1].to_json()["metadata"]["usage"]["total_tokens"] == 13


async def test_a_turn_stopped_by_its_budget_says_what_it_spent(open_store: OpenStore) -> None:
    store = await open_store()
    agent = chat(store, reply("Too long.", 100, 50), limits={"max_tokens_per_run": 20})
    thread = f"t-{uuid.uuid4().hex}"
    on = OnThread(threads=store, thread_id=thread)
    with pytest.raises(BudgetExceeded):
        await thread_runs.invoke(agent, "Go", on, time_limit=10)
    (latest, *_) = await store.history(thread)
    assert latest.metadata["usage"]["total_tokens"] == 150
