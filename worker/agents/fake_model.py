"""The ``fake`` model provider: a scripted, deterministic chat model that can call tools.

Each scripted reply is either a text answer, streamed token by token (words and the whitespace
between, as langchain-core's ``GenericFakeChatModel`` splits them) with ``token_delay`` seconds
before each token, or a ``ToolCallReply``: an ``AIMessage`` with ``tool_calls``, as a model
asking for tools answers. Replies are used in order and cycle.

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
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field

_TOKENS = re.compile(r"(\s)")


def split_tokens(text: str) -> list[str]:
    """The tokens the fake model streams for ``text`` (words and the whitespace between)."""
    return [t for t in _TOKENS.split(text) if t]


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


ScriptedReply = str | ToolCallReply


def _message(reply: ScriptedReply) -> AIMessage:
    if isinstance(reply, str):
        return AIMessage(content=reply)
    return AIMessage(
        content=reply.content,
        tool_calls=[
            {"name": c.name, "args": c.args, "id": c.id or _call_id(), "type": "tool_call"}
            for c in reply.tool_calls
        ],
    )


def _chunks(reply: ScriptedReply) -> Iterator[AIMessageChunk]:
    """The reply as a provider streams it: text token by token, then each tool call whole."""
    text = reply if isinstance(reply, str) else reply.content
    for token in split_tokens(text):
        yield AIMessageChunk(content=token)
    if isinstance(reply, ToolCallReply):
        calls: list[ToolCallChunk] = [
            {
                "name": c.name,
                "args": orjson.dumps(c.args).decode(),
                "id": c.id or _call_id(),
                "index": i,
                "type": "tool_call_chunk",
            }
            for i, c in enumerate(reply.tool_calls)
        ]
        yield AIMessageChunk(content="", tool_call_chunks=calls)


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


class ScriptedChatModel(BaseChatModel):
    """Scripted replies (text or tool calls), text streamed with ``token_delay`` per token."""

    responses: list[ScriptedReply]
    token_delay: float = 0.0
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
        return len(split_tokens(reply if isinstance(reply, str) else reply.content))

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
        return ChatResult(generations=[ChatGeneration(message=_message(reply))])

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
        return ChatResult(generations=[ChatGeneration(message=_message(reply))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for message in _chunks(self._next_reply()):
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
        for message in _chunks(self._next_reply()):
            # Even with no delay, each chunk comes on a turn of the event loop of its own, as
            # chunks read from a provider's network stream do.
            await asyncio.sleep(self.token_delay if message.content else 0)
            chunk = ChatGenerationChunk(message=message)
            if run_manager:
                await run_manager.on_llm_new_token(message.text, chunk=chunk)
            yield chunk
