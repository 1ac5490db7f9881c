"""Small LangGraph graphs for thread tests: they answer each human message, and can ask."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt


def _reply(state: MessagesState) -> dict[str, list[BaseMessage]]:
    last = state["messages"][-1]
    return {"messages": [AIMessage(f"echo: {last.content}")]}


def _ask(state: MessagesState) -> dict[str, list[BaseMessage]]:
    answer = interrupt({"question": "approve?"})
    return {"messages": [AIMessage(f"approved: {answer}")]}


def echo_graph(checkpointer: BaseCheckpointSaver[Any] | None) -> CompiledStateGraph[Any]:
    """Answers ``echo: <last message>``."""
    builder = StateGraph(MessagesState)
    builder.add_node("reply", _reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=checkpointer)


def approval_graph(checkpointer: BaseCheckpointSaver[Any] | None) -> CompiledStateGraph[Any]:
    """Answers, then stops to ask a person (``interrupt``), then says what they answered."""
    builder = StateGraph(MessagesState)
    builder.add_node("reply", _reply)
    builder.add_node("ask", _ask)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", "ask")
    return builder.compile(checkpointer=checkpointer)


approval = approval_graph(None)
"""The approval graph with no checkpointer, as a module offers it to ``WORKER_AGENT_TYPES``."""


def turn(text: str) -> dict[str, list[BaseMessage]]:
    """One human message as graph input."""
    return {"messages": [HumanMessage(text)]}


def contents(messages: list[BaseMessage]) -> list[str]:
    """The text of each message."""
    return [str(m.content) for m in messages]
