"""``UsageCallbacks``: the callback handler that reports to a run's ``UsageTracker`` what does
not report itself: models the worker did not build (an import-path graph's own), and tools.

The worker's own providers (``GuardedChatModel``, whose calls carry ``agentos_provider`` in
their metadata) report into the run's scope directly; the handler leaves their calls alone, so
no call is counted twice. It hears:

- each model call's start, with the provider and model LangChain names in the call's metadata
  (``ls_provider``, ``ls_model_name``: ``openai`` and ``gpt-4o-mini``);
- each streamed token (a stream's opening, closing and usage chunks carry none);
- each call's end or error, with the usage the provider reported (``usage_metadata``);
- each tool call's start, end or error: duration and outcome by tool.

A plain handler run inline: it asks LangChain for nothing else (chains, retrievers, custom
events are ignored), and it is not a streaming handler, so it never makes a model stream that
would not have streamed anyway. On a streamed run the frame handler
(``worker.streaming.agent_events.FrameCallbacks``) passes these events on to it instead, so
the run has one handler.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from worker.agents.accounting.tracker import ModelCall, UsageTracker
from worker.agents.accounting.usage import reported_usage
from worker.resilience.model import PROVIDER_KEY

UNKNOWN = "unknown"


class UsageCallbacks(BaseCallbackHandler):
    """Reports a run's model calls (other than the worker's providers') and tool calls to
    ``tracker``. With limits set, LangChain re-raises the handler's ``BudgetExceeded`` (its
    ``raise_error``); without, a failure in accounting can never fail a run."""

    run_inline = True
    # Events it does not need are never dispatched to it (tool events go by ignore_agent).
    ignore_chain = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, tracker: UsageTracker) -> None:
        self.tracker = tracker
        self.raise_error = tracker.budget is not None
        self._calls: dict[UUID, ModelCall] = {}

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A model call starts: note its provider and model."""
        self._start(run_id, metadata, kwargs.get("invocation_params"))

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A (completion) model call starts."""
        self._start(run_id, metadata, kwargs.get("invocation_params"))

    def _start(
        self, run_id: UUID, metadata: dict[str, Any] | None, params: dict[str, Any] | None
    ) -> None:
        if metadata and PROVIDER_KEY in metadata:
            return  # one of the worker's providers: it reports to the run's scope itself
        provider, model = call_names(metadata, params)
        self._calls[run_id] = self.tracker.model_call(provider, model)

    def on_llm_new_token(
        self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any
    ) -> None:
        """A streamed chunk."""
        call = self._calls.get(run_id)
        if call is not None and (token or _has_tool_call(chunk)):
            call.token()

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A model call answered."""
        call = self._calls.pop(run_id, None)
        if call is not None:
            usage = reported_usage(response)
            if usage is not None:
                call.report(usage)
            call.end()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A model call failed or was cancelled."""
        call = self._calls.pop(run_id, None)
        if call is None:
            return
        if error is self.tracker.exceeded and not call.chunks:
            call.discard()  # refused because the run was stopped: no model was called
            return
        usage = reported_usage(kwargs.get("response"))
        if usage is not None:
            call.report(usage)
        call.stop()

    def on_tool_start(
        self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """A tool was called."""
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        self.tracker.tool_started(run_id, str(name))

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool returned (an error ``ToolMessage`` is an error)."""
        failed = getattr(output, "status", None) == "error"
        self.tracker.tool_done(run_id, "error" if failed else "ok")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool raised."""
        self.tracker.tool_done(run_id, "error")


def call_names(metadata: dict[str, Any] | None, params: dict[str, Any] | None) -> tuple[str, str]:
    """The provider and model of a call: LangChain's ``ls_provider`` and ``ls_model_name``
    (every chat model of langchain-core 1.x sets them), else the invocation's ``model``."""
    provider = model = None
    if metadata:
        provider = metadata.get("ls_provider")
        model = metadata.get("ls_model_name")
    if model is None and params:
        model = params.get("model") or params.get("model_name")
    return str(provider or UNKNOWN), str(model or UNKNOWN)


def _has_tool_call(chunk: Any) -> bool:
    """True for a chunk carrying (a piece of) a tool call: output with no text."""
    message = getattr(chunk, "message", None)
    return bool(getattr(message, "tool_call_chunks", None))
