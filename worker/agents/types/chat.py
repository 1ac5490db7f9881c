"""``chat``: prompt -> chat model -> output parser, with a configurable model provider."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from worker.agents.providers import FakeProvider, ProviderSpec, build_model
from worker.agents.registry import AgentType, BuildContext


class ChatConfig(BaseModel):
    """A system prompt and the model that answers."""

    model_config = ConfigDict(extra="forbid", title="ChatConfig")
    system_prompt: str = Field("You are a helpful assistant.", max_length=100_000)
    model: ProviderSpec = Field(default_factory=FakeProvider)


def build(config: ChatConfig, ctx: BuildContext) -> Runnable[Any, str]:
    """The LCEL chain ``prompt | model | StrOutputParser()``."""
    # The template is built from messages, so braces in the system prompt stay literal.
    prompt = ChatPromptTemplate.from_messages(
        [("system", "{system_prompt}"), ("human", "{input}")]
    ).partial(system_prompt=config.system_prompt)
    chain: Runnable[Any, str] = prompt | build_model(config.model, ctx) | StrOutputParser()
    return chain.with_config(run_name="chat")


AGENT_TYPE = AgentType(
    name="chat",
    description="A chat model behind a system prompt. Providers: fake (scripted), openai.",
    config_model=ChatConfig,
    build=build,
    input_type=Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)],
    output_type=str,
)
