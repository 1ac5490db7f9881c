"""A LangGraph tool-calling graph for the step-frame tests: a scripted model node and a ToolNode.

The model is the worker's ``fake`` provider model (``ScriptedChatModel``), which streams text
token by token and each tool call as one chunk, as a provider does.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from worker.agents.fake_model import (
    ScriptedChatModel,
    ScriptedReply,
    ScriptedToolCall,
    ToolCallReply,
)


def _reply(reply: str | list[tuple[str, dict[str, Any]]]) -> ScriptedReply:
    """Text as it is; a list of ``(name, args)`` as one reply calling those tools."""
    if isinstance(reply, str):
        return reply
    return ToolCallReply(
        tool_calls=[
            ScriptedToolCall(name=name, args=args, id=f"call-{i}")
            for i, (name, args) in enumerate(reply)
        ]
    )


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
    model = ScriptedChatModel(responses=[_reply(r) for r in replies])

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
