"""Frames from a run's callbacks: tokens and progress, from async and from threaded code."""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.runnables import RunnableConfig, RunnableLambda

from tests.streaming.helpers import resolved
from worker.agents.fake_model import split_tokens
from worker.agents.types.steps import PROGRESS_EVENT
from worker.streaming.agent_events import TOKEN_MESSAGE, stream_agent
from worker.streaming.frames import TOKEN, Draft


def _with_runnable(runnable: Any) -> Any:
    agent = resolved("echo", {})
    object.__setattr__(agent, "runnable", runnable)
    return agent


async def test_a_chat_model_streams_its_tokens_under_ainvoke() -> None:
    reply = "one two three"
    drafts: list[Draft] = []
    agent = resolved("chat", {"model": {"provider": "fake", "responses": [reply]}})
    output = await stream_agent(agent, "hi", {}, drafts.append)
    assert output == reply
    assert [d.partial_result for d in drafts] == split_tokens(reply)
    assert {d.message for d in drafts} == {TOKEN_MESSAGE}
    assert {d.event for d in drafts} == {TOKEN}


async def test_progress_only_moves_forward_and_other_events_are_ignored() -> None:
    async def report(value: Any, config: RunnableConfig) -> Any:
        for progress in (40, 20, 90):
            await adispatch_custom_event(
                PROGRESS_EVENT, {"progress": progress, "message": f"at {progress}"}, config=config
            )
        await adispatch_custom_event("something.else", {"progress": 100}, config=config)
        return value

    drafts: list[Draft] = []
    output = await stream_agent(_with_runnable(RunnableLambda(report)), "x", {}, drafts.append)
    assert output == "x"
    seen = [(d.progress, d.message) for d in drafts]
    assert seen == [(40, "at 40"), (40, "at 20"), (90, "at 90")]


async def test_events_from_a_runnable_in_a_worker_thread_reach_the_loop_in_order() -> None:
    threads: set[int] = set()

    def report(value: Any, config: RunnableConfig) -> Any:  # sync: LangChain runs it in a thread
        threads.add(threading.get_ident())
        for step in range(1, 6):
            dispatch_custom_event(PROGRESS_EVENT, {"progress": step * 20}, config=config)
        return value

    emitted_on: set[int] = set()
    drafts: list[Draft] = []

    def emit(draft: Draft) -> None:
        emitted_on.add(threading.get_ident())
        drafts.append(draft)

    await stream_agent(_with_runnable(RunnableLambda(report)), "x", {}, emit)
    assert threading.get_ident() not in threads  # the run did happen off the loop's thread
    assert emitted_on == {threading.get_ident()}  # and every draft was handed to the loop
    assert [d.progress for d in drafts] == [20, 40, 60, 80, 100]
