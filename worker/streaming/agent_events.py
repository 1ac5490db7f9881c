"""From a LangChain run's callbacks to ``processing`` drafts.

These events become frames (the ``event`` and ``data`` of CONTRACT section 6 in brackets):

- a token streamed by a chat model anywhere in the run (the ``chat`` agent's model, or a model
  inside any chain or graph node): ``on_llm_new_token`` [``token``]; ``partial_result`` is the
  token's text, as before there were events, so older readers still see the text stream;
- a custom event named ``agentos.progress``: what an agent reports itself (the ``steps`` agent
  after each step, or any agent calling ``adispatch_custom_event``); its ``progress``,
  ``message`` and ``partial_result`` are taken as they are [no event];
- a tool's start, end and error [``tool_start`` ``{"tool", "input"}``, ``tool_end``
  ``{"tool", "output"}``, ``tool_error`` ``{"tool", "error"}``, each with the
  ``tool_call_id`` the model gave, if any]; the output and error are text, cut to
  ``max_output_bytes`` of UTF-8 with ``"truncated": true`` when longer, as a tool may return
  a whole web page;
- a LangGraph node that finished [``node`` ``{"node"}``]: LangGraph runs each node as a chain
  whose name is the node's and whose metadata says ``langgraph_node``, as its own ``messages``
  stream mode recognises it (runnables nested in the node carry the node's metadata under
  other names; the nodes of a subgraph are nodes too);
- a node that called ``interrupt()`` [``interrupt`` ``{"value", "id"}``]: LangGraph raises
  ``GraphInterrupt`` out of the node, which its chain reports as an error; each interrupt is
  reported once, though it passes through every graph enclosing a subgraph.

``progress`` only moves forward: a token frame carries the last progress reported (0 until an
agent reports one), so a progress bar never jumps back.

Why callbacks on ``ainvoke`` rather than ``astream_events``: the events API wraps every step
of the run in a stream and a tap and turns every callback into an event dict, which more than
doubled the cost of a short run (``echo``: ~680 µs against ~275 µs), and jobs pay it on every
run. The handler hears the same events directly. Chat models stream their tokens under
``ainvoke`` only when a *streaming* handler is attached: LangChain recognises one by its
``tap_output_aiter``/``tap_output_iter`` methods (``_StreamingCallbackHandler``, the protocol
its own event and log streams and LangGraph's ``messages`` stream mode implement), so the
handler has them, passing every output through unchanged.

A run whose usage needs a callback handler (``worker.agents.accounting.UsageCallbacks``) gets
no second one: this handler takes it over and passes it the model and tool events it hears, so
LangChain dispatches each event of the run once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.constants import TAG_HIDDEN
from langgraph.errors import GraphInterrupt

from worker.agents.accounting import UsageCallbacks
from worker.agents.store import ResolvedAgent
from worker.agents.types.steps import PROGRESS_EVENT
from worker.gojson import dumps
from worker.streaming.frames import (
    INTERRUPT,
    NODE,
    PROCESSING,
    TOKEN,
    TOOL_END,
    TOOL_ERROR,
    TOOL_START,
    Draft,
    FrameEvent,
)

TOKEN_MESSAGE = "Streaming model output"  # noqa: S105 - a frame message, not a secret
MAX_OUTPUT_BYTES = 4096
"""How much of a tool's output (or error) text a frame carries by default."""


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


def _output_text(output: Any) -> str:
    """A tool's output as text: a ``ToolMessage``'s content, or the JSON of anything else."""
    content = getattr(output, "content", output)
    if isinstance(content, str):
        return content
    return dumps(content).decode()


def _put_capped(data: dict[str, Any], key: str, text: str, limit: int) -> None:
    """Put ``text`` in ``data[key]``, cut to ``limit`` bytes of UTF-8 (and marked if cut)."""
    if len(text) > limit // 4:  # shorter text cannot be more than 4 bytes a character
        raw = text.encode()
        if len(raw) > limit:
            text = raw[:limit].decode(errors="ignore")  # never half a character
            data["truncated"] = True
    data[key] = text


def interrupt_draft(value: Any, *, progress: int = 0, interrupt_id: str | None = None) -> Draft:
    """The ``interrupt`` frame of a run that stopped to ask ``value`` (LangGraph's
    ``interrupt(value)``), for code that learns of it from the run's result."""
    data: dict[str, Any] = {"value": value}
    if interrupt_id is not None:
        data["id"] = interrupt_id
    return Draft(
        status=PROCESSING,
        progress=progress,
        message="Waiting for input",
        event=INTERRUPT,
        data=data,
    )


class FrameCallbacks(BaseCallbackHandler):
    """Turns a run's tokens, progress events, tool calls and graph nodes into drafts for
    ``emit``.

    A plain (not async) handler run inline: ``emit`` only appends to a queue, so it is called
    right where LangChain reports the event, with no coroutine or executor hop. A Runnable with
    no async implementation (a plain function tool, say) reports from the executor's thread:
    those drafts are handed to the event loop's thread, in order.

    ``usage``: the run's usage handler, which this one passes model and tool events on to (and
    whose ``raise_error`` it takes: a budget passed mid-stream must end the call).
    """

    run_inline = True
    raise_error = False

    def __init__(
        self,
        emit: Callable[[Draft], None],
        *,
        max_output_bytes: int = MAX_OUTPUT_BYTES,
        usage: UsageCallbacks | None = None,
    ) -> None:
        self._emit = emit
        self._usage = usage
        if usage is not None:
            self.raise_error = usage.raise_error
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._max_output = max_output_bytes
        self.progress = 0
        # Runs in progress, by run id: tools (name, call id) and graph nodes (name). Tools in a
        # worker thread report from it: a dict's single get, set and pop are atomic.
        self._tools: dict[UUID, tuple[str, str | None]] = {}
        self._nodes: dict[UUID, str] = {}
        self.interrupts: dict[str, Any] = {}
        """The interrupts reported so far, value by id: code that reads a run's pending
        interrupts from its result need not report these again."""

    def _send(self, draft: Draft) -> None:
        if threading.get_ident() == self._thread:
            self._emit(draft)
        else:
            self._loop.call_soon_threadsafe(self._emit, draft)

    def _step(
        self,
        message: str,
        *,
        event: FrameEvent | None = None,
        data: dict[str, Any] | None = None,
        partial_result: Any = None,
    ) -> None:
        """Send a ``processing`` frame at the run's current progress."""
        self._send(
            Draft(
                status=PROCESSING,
                progress=self.progress,
                message=message,
                partial_result=partial_result,
                event=event,
                data=data,
            )
        )

    def _tool_data(self, run_id: UUID) -> tuple[str, dict[str, Any]]:
        """The ending tool run's name, and the ``data`` that names it (and its call id)."""
        name, call_id = self._tools.pop(run_id, ("tool", None))
        data: dict[str, Any] = {"tool": name}
        if call_id is not None:
            data["tool_call_id"] = call_id
        return name, data

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
        if self._usage is not None:
            self._usage.on_llm_new_token(token, chunk=chunk, run_id=run_id)
        text = _token_text(token, chunk)
        if text:
            self._step(TOKEN_MESSAGE, event=TOKEN, partial_result=text)

    # Model calls: only the usage handler's (frames come from their tokens).
    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], **kwargs: Any
    ) -> None:
        """A chat model call starts."""
        if self._usage is not None:
            self._usage.on_chat_model_start(serialized, messages, **kwargs)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        """A completion model call starts."""
        if self._usage is not None:
            self._usage.on_llm_start(serialized, prompts, **kwargs)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        """A model call answered."""
        if self._usage is not None:
            self._usage.on_llm_end(response, **kwargs)

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        """A model call failed."""
        if self._usage is not None:
            self._usage.on_llm_error(error, **kwargs)

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
        self._step(
            str(fields.get("message") or "Processing"),
            partial_result=fields.get("partial_result"),
        )

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A tool was called: ``tool_start`` with its name and input (its arguments)."""
        name = str((serialized or {}).get("name") or kwargs.get("name") or "tool")
        if self._usage is not None:
            self._usage.tracker.tool_started(run_id, name)
        call_id = kwargs.get("tool_call_id")
        self._tools[run_id] = (name, call_id)
        data: dict[str, Any] = {"tool": name, "input": input_str if inputs is None else inputs}
        if call_id is not None:
            data["tool_call_id"] = call_id
        self._step(f"Calling tool {name}", event=TOOL_START, data=data)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool returned: ``tool_end`` with its output as (capped) text."""
        if self._usage is not None:
            self._usage.on_tool_end(output, run_id=run_id)
        name, data = self._tool_data(run_id)
        _put_capped(data, "output", _output_text(output), self._max_output)
        self._step(f"Tool {name} finished", event=TOOL_END, data=data)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool raised: ``tool_error`` with the error as (capped) text."""
        if self._usage is not None:
            self._usage.on_tool_error(error, run_id=run_id)
        name, data = self._tool_data(run_id)
        _put_capped(data, "error", f"{type(error).__name__}: {error}", self._max_output)
        self._step(f"Tool {name} failed", event=TOOL_ERROR, data=data)

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Note the runs that are graph nodes (see the module docstring)."""
        if metadata:
            node = metadata.get("langgraph_node")
            if (
                node is not None
                and node == kwargs.get("name")
                and (not tags or TAG_HIDDEN not in tags)
                # a runnable of the node's name that the node runs is the same node
                and (parent_run_id is None or self._nodes.get(parent_run_id) != node)
            ):
                self._nodes[run_id] = node

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A node finished: ``node`` with its name."""
        if self._nodes:
            node = self._nodes.pop(run_id, None)
            if node is not None:
                self._step(f"Node {node} finished", event=NODE, data={"node": node})

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A node raised; if it was LangGraph's ``GraphInterrupt``, ``interrupt`` per question."""
        node = self._nodes.pop(run_id, None) if self._nodes else None
        if node is not None and isinstance(error, GraphInterrupt):
            self._interrupted(error)

    def _interrupted(self, error: GraphInterrupt) -> None:
        found = error.args[0] if error.args else ()
        for interrupt in found if isinstance(found, Sequence) else ():
            interrupt_id = getattr(interrupt, "id", None)
            if interrupt_id in self.interrupts:
                continue  # already reported by the subgraph it came from
            value = getattr(interrupt, "value", None)
            if interrupt_id is not None:
                self.interrupts[interrupt_id] = value
            self._send(interrupt_draft(value, progress=self.progress, interrupt_id=interrupt_id))

    # The streaming-handler protocol (see the module docstring): outputs pass unchanged.
    def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Pass a streamed output through untouched."""
        return output

    def tap_output_iter(self, run_id: UUID, output: Iterator[Any]) -> Iterator[Any]:
        """Pass a streamed output through untouched."""
        return output


async def stream_agent(
    agent: ResolvedAgent,
    value: Any,
    config: RunnableConfig,
    emit: Callable[[Draft], None],
    *,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
    runnable: Runnable[Any, Any] | None = None,
) -> Any:
    """Run ``agent`` on ``value``, emitting a draft per token or step; return its output.

    ``max_output_bytes``: how much of a tool's output or error text a frame carries;
    ``runnable``: what to run instead of the agent's own Runnable (its graph on a thread).
    A ``UsageCallbacks`` among the config's callbacks is taken over by the frame handler.
    """
    callbacks = config.get("callbacks")
    if callbacks is None:
        handler = FrameCallbacks(emit, max_output_bytes=max_output_bytes)
        config = {**config, "callbacks": [handler]}
    elif isinstance(callbacks, list):
        usage = next((c for c in callbacks if isinstance(c, UsageCallbacks)), None)
        handler = FrameCallbacks(emit, max_output_bytes=max_output_bytes, usage=usage)
        others = [c for c in callbacks if c is not usage]
        config = {**config, "callbacks": [*others, handler]}
    else:  # a callback manager: a copy of it with ours added
        handler = FrameCallbacks(emit, max_output_bytes=max_output_bytes)
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        config = {**config, "callbacks": manager}
    return await (runnable or agent.runnable).ainvoke(value, config)
