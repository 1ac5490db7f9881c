"""``chat``: prompt -> chat model -> output parser, with a model provider and its fallbacks.

The model is the chain of the agent's providers: ``model`` first, then each of ``fallbacks`` in
order (e.g. a secondary OpenAI-compatible endpoint, then ``basic``), each behind its guard. An
answer from anything but ``model`` is marked degraded.
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from worker.agents.agent_type import AgentType, BuildContext
from worker.agents.providers import FakeProvider, ProviderSpec, build_provider
from worker.resilience import provider_chain


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


def build(config: ChatConfig, ctx: BuildContext) -> Runnable[Any, str]:
    """The LCEL chain ``prompt | providers | StrOutputParser()``."""
    # The template is built from messages, so braces in the system prompt stay literal.
    prompt = ChatPromptTemplate.from_messages(
        [("system", "{system_prompt}"), ("human", "{input}")]
    ).partial(system_prompt=config.system_prompt)
    models = [
        build_provider(spec, ctx, fallback=i > 0)
        for i, spec in enumerate([config.model, *config.fallbacks])
    ]
    providers = provider_chain(models)
    ctx.requires(providers)  # every run calls it: refused at once while it cannot answer
    chain: Runnable[Any, str] = prompt | providers | StrOutputParser()
    return chain.with_config(run_name="chat")


AGENT_TYPE = AgentType(
    name="chat",
    description="A chat model behind a system prompt, with fallbacks. Providers: fake "
    "(scripted), openai (any compatible endpoint), basic (a fixed degraded answer).",
    config_model=ChatConfig,
    build=build,
    input_type=Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)],
    output_type=str,
)
