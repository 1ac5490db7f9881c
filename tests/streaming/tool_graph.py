"""A LangGraph tool-calling graph for the step-frame tests: a scripted model node and a ToolNode.

The model is a few lines of ``BaseChatModel`` here on purpose: langchain-core's fake chat models
do not stream tool calls, and the tests must not depend on the worker's own fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from worker.agents.fake_model import split_tokens


class ScriptedToolModel(BaseChatModel):
    """Answers with ``replies`` in turn: a reply is either text (streamed token by token) or a
    list of tool calls ``(name, args)`` (one chunk, as a provider streams a call)."""

    replies: list[str | list[tuple[str, dict[str, Any]]]]
    turn: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-calls"

    def _reply(self) -> AIMessageChunk:
        reply = self.replies[self.turn]
        self.turn += 1
        if isinstance(reply, str):
            return AIMessageChunk(content=reply)
        calls = [
            ToolCallChunk(name=name, args=orjson.dumps(args).decode(), id=f"call-{i}", index=i)
            for i, (name, args) in enumerate(reply)
        ]
        return AIMessageChunk(content="", tool_call_chunks=calls)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunk = self._reply()
        message = AIMessage(content=chunk.content, tool_calls=chunk.tool_calls)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        chunk = self._reply()
        if chunk.tool_call_chunks or not isinstance(chunk.content, str):
            yield ChatGenerationChunk(message=chunk)
            return
        for token in split_tokens(chunk.content):
            await asyncio.sleep(0)  # a real stream yields to the loop between tokens
            token_chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager:
                await run_manager.on_llm_new_token(token, chunk=token_chunk)
            yield token_chunk


@tool
def add(a: int, b: int) -> int:
    """Add two integers (a plain function: LangChain runs it in a worker thread)."""
    return a + b


@tool
async def broken(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(reason)


@tool
async def dump(n: int) -> str:
    """``n`` two-byte characters."""
    return "é" * n


@tool
async def lookup(key: str) -> dict[str, Any]:
    """A structured answer (not text)."""
    return {"key": key, "found": True}


TOOLS: list[BaseTool] = [add, broken, dump, lookup]


def tool_graph(*replies: str | list[tuple[str, dict[str, Any]]]) -> Runnable[Any, Any]:
    """A compiled graph ``model`` ⇄ ``tools`` whose model answers ``replies`` in turn; its input
    is ``{"messages": [...]}``."""
    model = ScriptedToolModel(replies=list(replies))

    async def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    # A tool that raises answers the model with the error, as the `agent` type does.
    graph.add_node("tools", ToolNode(TOOLS, handle_tool_errors=True))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    return graph.compile()
