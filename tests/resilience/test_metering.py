"""A guarded model's calls report themselves to the run's meter (``resilience.metering``): each
streamed chunk, the provider's usage and how the call ended; nothing without a meter, and no
call at all once the run was stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from worker.agents.fake_model import ScriptedChatModel, ScriptedUsage, TextReply, split_tokens
from worker.resilience import GuardedChatModel, run_scope
from worker.resilience.scope import stop_run

USAGE = {"input_tokens": 7, "output_tokens": 3}


@dataclass
class Call:
    names: tuple[str, str]
    events: list[Any] = field(default_factory=list)

    def token(self) -> None:
        self.events.append("token")

    def report(self, usage: Mapping[str, Any]) -> None:
        self.events.append(("report", usage["input_tokens"], usage["output_tokens"]))

    def end(self) -> None:
        self.events.append("end")

    def stop(self) -> None:
        self.events.append("stop")


@dataclass
class Recorder:
    """A meter that keeps what each call reported."""

    calls: list[Call] = field(default_factory=list)

    def model_call(self, provider: str, model: str) -> Call:
        self.calls.append(Call((provider, model)))
        return self.calls[-1]


def guarded(reply: str, *, delay: float = 0.0) -> GuardedChatModel:
    scripted = TextReply(content=reply, usage=ScriptedUsage(**USAGE))
    inner = ScriptedChatModel(responses=[scripted], model="metered", token_delay=delay)
    return GuardedChatModel(inner=inner, provider="fake")


async def test_a_whole_answer_reports_its_usage_then_ends() -> None:
    meter = Recorder()
    with run_scope(meter=meter):
        await guarded("two words").ainvoke([HumanMessage("hi")])
    (call,) = meter.calls
    assert call.names == ("fake", "metered")
    assert call.events == [("report", 7, 3), "end"]


async def test_a_stream_reports_each_chunk_then_its_usage() -> None:
    meter = Recorder()
    reply = "one two three"
    with run_scope(meter=meter):
        chunks = [c async for c in guarded(reply).astream([HumanMessage("hi")])]
    assert "".join(str(c.content) for c in chunks) == reply
    (call,) = meter.calls
    tokens = len(split_tokens(reply))
    # The fake model sends its usage on its last chunk, as OpenAI sends it after the last token.
    assert call.events == ["token"] * tokens + [("report", 7, 3), "end"]


async def test_a_call_cancelled_mid_stream_stops() -> None:
    meter = Recorder()
    first = asyncio.Event()

    async def consume() -> None:
        with run_scope(meter=meter):
            async for _ in guarded("a b c d e f", delay=0.05).astream([HumanMessage("hi")]):
                first.set()

    run = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    (call,) = meter.calls
    # Cancelled while the provider was sending the next chunk: the call says it stopped.
    assert call.events[-1] == "stop"
    assert set(call.events[:-1]) == {"token"}


async def test_nothing_is_reported_without_a_meter_or_after_a_stop() -> None:
    model = guarded("fine")
    await model.ainvoke([HumanMessage("no scope")])
    meter = Recorder()
    with run_scope(meter=meter):
        stop_run(RuntimeError("stopped"))
        with pytest.raises(RuntimeError, match="stopped"):
            await model.ainvoke([HumanMessage("hi")])
    assert meter.calls == []
