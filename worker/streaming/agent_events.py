"""From LangChain's ``astream_events`` to ``processing`` drafts.

Two kinds of event become frames:

- ``on_chat_model_stream``: a token streamed by a chat model anywhere in the run (the ``chat``
  agent's model, or a model inside any chain); ``partial_result`` is the token's text.
- ``on_custom_event`` named ``agentos.progress``: what an agent reports itself (the ``steps``
  agent after each step, or any agent calling ``adispatch_custom_event``); its ``progress``,
  ``message`` and ``partial_result`` are taken as they are.

``progress`` only moves forward: a token frame carries the last progress reported (0 until an
agent reports one), so a progress bar never jumps back.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from typing import Any

from langchain_core.runnables import RunnableConfig

from worker.agents.store import ResolvedAgent
from worker.agents.types.steps import PROGRESS_EVENT
from worker.streaming.frames import PROCESSING, Draft

TOKEN_MESSAGE = "Streaming model output"  # noqa: S105 - a frame message, not a secret
_NO_OUTPUT = object()


def _token_text(chunk: Any) -> str:
    text = getattr(chunk, "text", None)
    if not isinstance(text, str) and callable(text):  # langchain-core < 1.0: a method
        text = text()
    if isinstance(text, str):
        return text
    content = getattr(chunk, "content", "")
    return content if isinstance(content, str) else ""


def _progress(value: Any, current: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return current
    return max(current, min(100, int(value)))


async def stream_agent(
    agent: ResolvedAgent, value: Any, config: RunnableConfig, emit: Callable[[Draft], None]
) -> Any:
    """Run ``agent`` on ``value`` with ``astream_events``, emitting a draft per token or step;
    return the run's output (what ``ainvoke`` would have returned)."""
    root = str(config.get("run_id", ""))
    output: Any = _NO_OUTPUT
    chunks: list[Any] = []
    progress = 0
    events = agent.runnable.astream_events(value, config, version="v2")
    async with aclosing(events):  # type: ignore[type-var]  # an async generator at runtime
        async for event in events:
            kind = event["event"]
            if kind == "on_chat_model_stream":
                token = _token_text(event["data"].get("chunk"))
                if token:
                    emit(
                        Draft(
                            status=PROCESSING,
                            progress=progress,
                            message=TOKEN_MESSAGE,
                            partial_result=token,
                        )
                    )
            elif kind == "on_custom_event" and event["name"] == PROGRESS_EVENT:
                data = event["data"] if isinstance(event["data"], dict) else {}
                progress = _progress(data.get("progress"), progress)
                emit(
                    Draft(
                        status=PROCESSING,
                        progress=progress,
                        message=str(data.get("message") or "Processing"),
                        partial_result=data.get("partial_result"),
                    )
                )
            elif event["run_id"] == root:
                if kind == "on_chain_end":
                    output = event["data"].get("output", _NO_OUTPUT)
                elif kind == "on_chain_stream":
                    chunks.append(event["data"].get("chunk"))
    if output is _NO_OUTPUT:
        # A root that reports no end output: what it streamed, added up as LangChain does.
        output = _add_chunks(chunks)
    return output


def _add_chunks(chunks: list[Any]) -> Any:
    if not chunks:
        return None
    total = chunks[0]
    for chunk in chunks[1:]:
        try:
            total = total + chunk
        except TypeError:
            total = chunk
    return total
