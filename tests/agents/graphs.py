"""Runnables that tests register as agent types through ``WORKER_AGENT_TYPES`` only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired

from langchain_core.runnables import ConfigurableField, RunnableLambda
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from worker.agents.fake_model import ScriptedChatModel
from worker.agents.types.echo import AGENT_TYPE as ECHO


class Greeting(TypedDict):
    """A name in, a greeting out."""

    name: str
    greeting: NotRequired[str]


@dataclass
class Style:
    """How the greeter greets (an agent's config)."""

    salutation: str = "Hello"
    punctuation: str = "!"


def greet(state: Greeting, runtime: Runtime[Style]) -> dict[str, Any]:
    style = runtime.context
    return {"greeting": f"{style.salutation}, {state['name']}{style.punctuation}"}


def shout(state: Greeting) -> dict[str, Any]:
    return {"greeting": state["greeting"].upper()}


_builder = StateGraph(Greeting, context_schema=Style)
_builder.add_node("greet", greet)
_builder.add_node("shout", shout)
_builder.add_edge(START, "greet")
_builder.add_edge("greet", "shout")
_builder.add_edge("shout", END)
graph = _builder.compile()


class Pair(TypedDict):
    """Two required keys."""

    left: str
    right: str


pair = StateGraph(Pair).add_node("noop", lambda _: {}).add_edge(START, "noop").compile()


# The README's example, word for word.
@dataclass
class Team:  # the agent's config, e.g. {"name": "billing"}
    name: str = "support"


def answer(state: MessagesState, runtime: Runtime[Team]) -> dict[str, Any]:
    question = state["messages"][-1].content
    return {"messages": [("ai", f"The {runtime.context.name} team got: {question}")]}


support = (
    StateGraph(MessagesState, context_schema=Team)
    .add_node(answer)
    .add_edge(START, "answer")
    .compile()
)

# A plain Runnable with a configurable field: its config schema comes from that field.
talker = ScriptedChatModel(responses=["scripted"]).configurable_fields(
    responses=ConfigurableField(id="responses", name="Replies", description="What it says.")
)
backwards = RunnableLambda(lambda text: str(text)[::-1], name="backwards")
ECHO_TYPE = ECHO
NOT_A_RUNNABLE = 42
