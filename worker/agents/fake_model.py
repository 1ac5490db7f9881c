"""The ``fake`` model provider: a scripted, deterministic chat model that can call tools.

Each scripted reply is either a text answer (a string, or a ``TextReply``), streamed token by
token (words and the whitespace between, as langchain-core's ``GenericFakeChatModel`` splits
them) with ``token_delay`` seconds before each token, or a ``ToolCallReply``: an ``AIMessage``
with ``tool_calls``, as a model asking for tools answers. Replies are used in order and cycle.

Every answer reports its token usage (``usage_metadata``) as a provider does: the reply's
scripted ``usage``, or by default one input token per token of the input messages and one
output token per token streamed (and per tool call), as ``split_tokens`` counts them. A
streamed answer reports it on its last chunk, as OpenAI reports it after the last token.

Why not langchain-core's fake chat models: ``FakeListChatModel`` and ``GenericFakeChatModel``
script text only and cannot ``bind_tools``, so LangGraph's agents refuse them. This one binds
tools the way a real provider does (formatted into the call's keyword arguments) and sleeps on
the event loop, so a fake agent behaves like a remote model: async, streamed, tool-calling.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import orjson
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, model_validator

_TOKENS = re.compile(r"(\s)")


def split_tokens(text: str) -> list[str]:
    """The tokens the fake model streams for ``text`` (words and the whitespace between)."""
    return [t for t in _TOKENS.split(text) if t]


class ScriptedUsage(BaseModel):
    """The token counts a scripted reply reports, as a provider reports them."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="ScriptedUsage")
    input_tokens: int = Field(ge=0, le=1_000_000_000, description="Prompt tokens.")
    output_tokens: int = Field(ge=0, le=1_000_000_000, description="Completion tokens.")
    cached_input_tokens: int = Field(
        0, ge=0, le=1_000_000_000, description="Of the input tokens, read from a prompt cache."
    )
    reasoning_tokens: int = Field(
        0, ge=0, le=1_000_000_000, description="Of the output tokens, spent reasoning."
    )

    @model_validator(mode="after")
    def _parts_fit(self) -> ScriptedUsage:
        if self.cached_input_tokens > self.input_tokens:
            raise ValueError("cached_input_tokens is more than input_tokens")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("reasoning_tokens is more than output_tokens")
        return self

    def metadata(self) -> UsageMetadata:
        """The counts as LangChain's ``usage_metadata``."""
        return _usage_metadata(
            self.input_tokens, self.output_tokens, self.cached_input_tokens, self.reasoning_tokens
        )


def _usage_metadata(
    inputs: int, outputs: int, cached: int = 0, reasoning: int = 0
) -> UsageMetadata:
    usage: UsageMetadata = {
        "input_tokens": inputs,
        "output_tokens": outputs,
        "total_tokens": inputs + outputs,
    }
    if cached:
        usage["input_token_details"] = {"cache_read": cached}
    if reasoning:
        usage["output_token_details"] = {"reasoning": reasoning}
    return usage


class TextReply(BaseModel):
    """A scripted text answer with the usage it reports: ``{"content", "usage"?}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="TextReply")
    content: str = Field(max_length=1_000_000)
    usage: ScriptedUsage | None = Field(None, description="Default: counted from the text.")


class ScriptedToolCall(BaseModel):
    """One tool the scripted reply asks for."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="ScriptedToolCall")
    name: str = Field(min_length=1, max_length=128, description="The tool's name.")
    args: dict[str, Any] = Field(default_factory=dict, description="The tool's arguments.")
    id: str | None = Field(None, max_length=128, description="Call id (default: generated).")


class ToolCallReply(BaseModel):
    """A scripted reply that calls tools: ``{"tool_calls": [{"name", "args"}], "content"?}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="ToolCallReply")
    tool_calls: list[ScriptedToolCall] = Field(min_length=1, max_length=32)
    content: str = Field("", description="Text said along with the calls (usually none).")
    usage: ScriptedUsage | None = Field(None, description="Default: counted from the reply.")


ScriptedReply = str | TextReply | ToolCallReply


def _text(reply: ScriptedReply) -> str:
    return reply if isinstance(reply, str) else reply.content


def reply_usage(reply: ScriptedReply, messages: Sequence[BaseMessage]) -> UsageMetadata:
    """The usage an answer of ``reply`` to ``messages`` reports (see the module docstring)."""
    if not isinstance(reply, str) and reply.usage is not None:
        return reply.usage.metadata()
    inputs = sum(len(split_tokens(m.text)) for m in messages)
    outputs = len(split_tokens(_text(reply)))
    if isinstance(reply, ToolCallReply):
        outputs += len(reply.tool_calls)
    return _usage_metadata(inputs, outputs)


def _message(reply: ScriptedReply, usage: UsageMetadata) -> AIMessage:
    if not isinstance(reply, ToolCallReply):
        return AIMessage(content=_text(reply), usage_metadata=usage)
    return AIMessage(
        content=reply.content,
        tool_calls=[
            {"name": c.name, "args": c.args, "id": c.id or _call_id(), "type": "tool_call"}
            for c in reply.tool_calls
        ],
        usage_metadata=usage,
    )


def _chunks(reply: ScriptedReply, usage: UsageMetadata) -> Iterator[AIMessageChunk]:
    """The reply as a provider streams it: text token by token, then each tool call whole; the
    last chunk carries the usage."""
    tokens = split_tokens(_text(reply))
    calls: list[ToolCallChunk] = []
    if isinstance(reply, ToolCallReply):
        calls = [
            {
                "name": c.name,
                "args": orjson.dumps(c.args).decode(),
                "id": c.id or _call_id(),
                "index": i,
                "type": "tool_call_chunk",
            }
            for i, c in enumerate(reply.tool_calls)
        ]
    last = len(tokens) - 1 if not calls and tokens else -1
    for i, token in enumerate(tokens):
        yield AIMessageChunk(content=token, usage_metadata=usage if i == last else None)
    if calls or not tokens:
        yield AIMessageChunk(content="", tool_call_chunks=calls, usage_metadata=usage)


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


class ScriptedChatModel(BaseChatModel):
    """Scripted replies (text or tool calls), text streamed with ``token_delay`` per token."""

    responses: list[ScriptedReply]
    token_delay: float = 0.0
    provider: str = "fake"
    """The provider's name in traces, usage and metrics (LangSmith's ``ls_provider``)."""
    model: str = "fake"
    """The model's name in traces, usage, metrics and the price table (``ls_model_name``)."""
    i: int = 0
    """The next reply's index (replies cycle, shared by every run of the model)."""

    @property
    def _llm_type(self) -> str:
        return "scripted-fake-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"responses": len(self.responses), "token_delay": self.token_delay}

    def _next_reply(self) -> ScriptedReply:
        reply = self.responses[self.i]
        self.i = (self.i + 1) % len(self.responses)
        return reply

    def _tokens(self, reply: ScriptedReply) -> int:
        return len(split_tokens(_text(reply)))

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """Name the provider and model, as every LangChain provider does; accounting reads
        them from the call's metadata."""
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        params["ls_model_name"] = self.model
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools as an OpenAI-style provider does; the script decides what is called."""
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._next_reply()
        if self.token_delay:
            time.sleep(self.token_delay * self._tokens(reply))
        message = _message(reply, reply_usage(reply, messages))
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._next_reply()
        if self.token_delay:
            await asyncio.sleep(self.token_delay * self._tokens(reply))
        message = _message(reply, reply_usage(reply, messages))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._next_reply()
        for message in _chunks(reply, reply_usage(reply, messages)):
            if self.token_delay and message.content:
                time.sleep(self.token_delay)
            chunk = ChatGenerationChunk(message=message)
            if run_manager:
                run_manager.on_llm_new_token(message.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = self._next_reply()
        for message in _chunks(reply, reply_usage(reply, messages)):
            # Even with no delay, each chunk comes on a turn of the event loop of its own, as
            # chunks read from a provider's network stream do.
            await asyncio.sleep(self.token_delay if message.content else 0)
            chunk = ChatGenerationChunk(message=message)
            if run_manager:
                await run_manager.on_llm_new_token(message.text, chunk=chunk)
            yield chunk
