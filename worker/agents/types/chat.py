"""``chat``: prompt -> chat model -> output parser, with a model provider and its fallbacks.

The model is the chain of the agent's providers: ``model`` first, then each of ``fallbacks`` in
order (e.g. a secondary OpenAI-compatible endpoint, then ``basic``), each behind its guard. An
answer from anything but ``model`` is marked degraded.

On a thread (``thread_id``) the history is kept: the model reads the system prompt, the
thread's messages and the new human message, and its answer is appended to the thread. That is
a one-node LangGraph graph over ``MessagesState`` on the pool's checkpointer (the system prompt
is not stored: it is the agent's, and may change). Without a thread, chat stays the plain chain
above, with no graph and no checkpointer on its path.
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from langgraph.graph import START, MessagesState, StateGraph
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from worker.agents.accounting.budget import RunLimits
from worker.agents.agent_type import AgentType, BuildContext
from worker.agents.providers import FakeProvider, ProviderSpec, build_provider
from worker.agents.thread_graph import ThreadGraph, last_text
from worker.resilience import ProviderChain, provider_chain


class ChatConfig(BaseModel):
    """A system prompt and the model that answers."""

    model_config = ConfigDict(extra="forbid", title="ChatConfig")
    system_prompt: str = Field("You are a helpful assistant.", max_length=100_000)
    model: ProviderSpec = Field(default_factory=FakeProvider)
    fallbacks: list[ProviderSpec] = Field(
        default_factory=list,
        max_length=8,
        description="Providers tried in order when `model` fails or its breaker is open; "
        "their answers are marked degraded. End with `basic` for an answer even when every "
        "model is down (otherwise such calls get 503 with Retry-After).",
    )
    limits: RunLimits = Field(
        default_factory=RunLimits,
        description="What one run may spend on model calls; a run that would pass a limit "
        "stops with `budget_exceeded`.",
    )


def _providers(config: ChatConfig, ctx: BuildContext) -> ProviderChain:
    models = [
        build_provider(spec, ctx, fallback=i > 0)
        for i, spec in enumerate([config.model, *config.fallbacks])
    ]
    providers = provider_chain(models)
    ctx.requires(providers)  # every run calls it: refused at once while it cannot answer
    return providers


def build(config: ChatConfig, ctx: BuildContext) -> Runnable[Any, str]:
    """The LCEL chain ``prompt | providers | StrOutputParser()``."""
    # The template is built from messages, so braces in the system prompt stay literal.
    prompt = ChatPromptTemplate.from_messages(
        [("system", "{system_prompt}"), ("human", "{input}")]
    ).partial(system_prompt=config.system_prompt)
    chain: Runnable[Any, str] = prompt | _providers(config, ctx) | StrOutputParser()
    return chain.with_config(run_name="chat")


def build_on_thread(config: ChatConfig, ctx: BuildContext) -> ThreadGraph:
    """The graph ``START -> model`` over ``MessagesState``, on ``ctx.checkpointer``."""
    providers = _providers(config, ctx)
    system = SystemMessage(config.system_prompt)

    async def model(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await providers.ainvoke([system, *state["messages"]])]}

    graph = (
        StateGraph(MessagesState)
        .add_node("model", model)
        .add_edge(START, "model")
        .compile(checkpointer=ctx.checkpointer, name="chat")
    )
    return ThreadGraph(graph=graph, to_input=_turn, to_output=last_text)


def _turn(text: str) -> dict[str, list[BaseMessage]]:
    return {"messages": [HumanMessage(text)]}


AGENT_TYPE = AgentType(
    name="chat",
    description="A chat model behind a system prompt, with fallbacks. Providers: fake "
    "(scripted), openai (any compatible endpoint), basic (a fixed degraded answer).",
    config_model=ChatConfig,
    build=build,
    usage_from="providers",  # its only model calls are its providers', which report themselves
    on_thread=build_on_thread,
    input_type=Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)],
    output_type=str,
)
