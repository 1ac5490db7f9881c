"""Graphs the pool tests register as agent types through ``WORKER_AGENT_TYPES`` only (compiled
without a checkpointer: the worker gives them its own when a run names a thread)."""

from __future__ import annotations

from typing import Any

from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import interrupt

QUESTION = {"question": "Deploy to production?"}


def reply(state: MessagesState) -> dict[str, Any]:
    """Acknowledge the last message."""
    return {"messages": [("ai", f"echo: {state['messages'][-1].content}")]}


def ask(state: MessagesState) -> dict[str, Any]:
    """Stop to ask a person (``interrupt``); once resumed, say what they answered."""
    answer = interrupt(QUESTION)
    return {"messages": [("ai", f"approved: {answer}")]}


approval = (
    StateGraph(MessagesState)
    .add_node(reply)
    .add_node(ask)
    .add_edge(START, "reply")
    .add_edge("reply", "ask")
    .compile()
)
