"""From a LangChain run's callbacks to ``processing`` drafts.

Two kinds of event become frames:

- a token streamed by a chat model anywhere in the run (the ``chat`` agent's model, or a model
  inside any chain): ``on_llm_new_token``; ``partial_result`` is the token's text;
- a custom event named ``agentos.progress``: what an agent reports itself (the ``steps`` agent
  after each step, or any agent calling ``adispatch_custom_event``); its ``progress``,
  ``message`` and ``partial_result`` are taken as they are.

``progress`` only moves forward: a token frame carries the last progress reported (0 until an
agent reports one), so a progress bar never jumps back.

Why callbacks on ``ainvoke`` rather than ``astream_events``: the events API wraps every step
of the run in a stream and a tap and turns every callback into an event dict, which more than
doubled the cost of a short run (``echo``: ~680 µs against ~275 µs), and jobs pay it on every
run. The handler hears the same two things directly. Chat models stream their tokens under
``ainvoke`` only when a *streaming* handler is attached: LangChain recognises one by its
``tap_output_aiter``/``tap_output_iter`` methods (``_StreamingCallbackHandler``, the protocol
its own event and log streams and LangGraph's ``messages`` stream mode implement), so the
handler has them, passing every output through unchanged.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from langchain_core.runnables import RunnableConfig

from worker.agents.store import ResolvedAgent
from worker.agents.types.steps import PROGRESS_EVENT
from worker.streaming.frames import PROCESSING, Draft

TOKEN_MESSAGE = "Streaming model output"  # noqa: S105 - a frame message, not a secret


def _token_text(token: Any, chunk: Any) -> str:
    if isinstance(token, str) and token:
        return token  # (with content blocks, LangChain passes the block list here instead)
    message = getattr(chunk, "message", chunk)  # a ChatGenerationChunk holds its message
    text = getattr(message, "text", None)
    if not isinstance(text, str) and callable(text):  # langchain-core < 1.0: a method
        text = text()
    if isinstance(text, str):
        return text
    content = getattr(message, "content", "")
    return content if isinstance(content, str) else ""


def _progress(value: Any, current: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return current
    return max(current, min(100, int(value)))


class FrameCallbacks(BaseCallbackHandler):
    """Turns a run's tokens and progress events into drafts for ``emit``.

    A plain (not async) handler run inline: ``emit`` only appends to a queue, so it is called
    right where LangChain reports the event, with no coroutine or executor hop. A Runnable with
    no async implementation reports from the executor's thread: those drafts are handed to the
    event loop's thread, in order.
    """

    run_inline = True
    raise_error = False

    def __init__(self, emit: Callable[[Draft], None]) -> None:
        self._emit = emit
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self.progress = 0

    def _send(self, draft: Draft) -> None:
        if threading.get_ident() == self._thread:
            self._emit(draft)
        else:
            self._loop.call_soon_threadsafe(self._emit, draft)

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """A streamed token: one frame with its text."""
        text = _token_text(token, chunk)
        if text:
            self._send(
                Draft(
                    status=PROCESSING,
                    progress=self.progress,
                    message=TOKEN_MESSAGE,
                    partial_result=text,
                )
            )

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """An ``agentos.progress`` event: one frame with what the agent said."""
        if name != PROGRESS_EVENT:
            return
        fields = data if isinstance(data, dict) else {}
        self.progress = _progress(fields.get("progress"), self.progress)
        self._send(
            Draft(
                status=PROCESSING,
                progress=self.progress,
                message=str(fields.get("message") or "Processing"),
                partial_result=fields.get("partial_result"),
            )
        )

    # The streaming-handler protocol (see the module docstring): outputs pass unchanged.
    def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Pass a streamed output through untouched."""
        return output

    def tap_output_iter(self, run_id: UUID, output: Iterator[Any]) -> Iterator[Any]:
        """Pass a streamed output through untouched."""
        return output


async def stream_agent(
    agent: ResolvedAgent, value: Any, config: RunnableConfig, emit: Callable[[Draft], None]
) -> Any:
    """Run ``agent`` on ``value``, emitting a draft per token or step; return its output."""
    handler = FrameCallbacks(emit)
    callbacks = config.get("callbacks")
    if callbacks is None:
        config = {**config, "callbacks": [handler]}
    elif isinstance(callbacks, list):
        config = {**config, "callbacks": [*callbacks, handler]}
    else:  # a callback manager: a copy of it with ours added
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        config = {**config, "callbacks": manager}
    return await agent.runnable.ainvoke(value, config)
