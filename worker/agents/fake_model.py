"""The ``fake`` model provider: langchain-core's fake chat model, scripted and deterministic.

``FakeListChatModel`` cycles through scripted replies but streams character by character and
runs its non-streaming path in a thread. This subclass streams whitespace-separated tokens (as
``GenericFakeChatModel`` splits them), sleeps ``token_delay`` per token on the event loop, and
answers ``ainvoke`` natively, so a fake agent behaves like a remote model: async and streamed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

_TOKENS = re.compile(r"(\s)")


def split_tokens(text: str) -> list[str]:
    """The tokens the fake model streams for ``text`` (words and the whitespace between)."""
    return [t for t in _TOKENS.split(text) if t]


class ScriptedChatModel(FakeListChatModel):
    """Scripted replies, streamed token by token with ``token_delay`` seconds between tokens."""

    token_delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "scripted-fake-chat-model"

    def _next_reply(self) -> str:
        reply = self.responses[self.i]
        self.i = (self.i + 1) % len(self.responses)
        return reply

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._next_reply()
        if self.token_delay:
            time.sleep(self.token_delay * len(split_tokens(reply)))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._next_reply()
        if self.token_delay:
            await asyncio.sleep(self.token_delay * len(split_tokens(reply)))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for token in split_tokens(self._next_reply()):
            if self.token_delay:
                time.sleep(self.token_delay)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for token in split_tokens(self._next_reply()):
            # Even with no delay, each token comes on a turn of the event loop of its own, as
            # tokens read from a provider's network stream do.
            await asyncio.sleep(self.token_delay)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
