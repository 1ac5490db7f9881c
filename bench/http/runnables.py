"""The Runnables under test, shared by the bare and LangServe servers.

With ``source="registry"`` they come from the worker's own agent registry, so
all three servers run the very same objects; ``source="stand-in"`` builds
equivalent chains from langchain-core alone (for benchmarking the baselines
before or without the worker package).
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda

Source = Literal["registry", "stand-in"]

AGENTS = ("echo", "chat")
INPUT = "hello"
FAKE_RESPONSE = "Hello from the fake model"
AGENT_CONFIGS: dict[str, dict[str, Any]] = {
    "echo": {},
    "chat": {"model": {"provider": "fake", "responses": [FAKE_RESPONSE]}},
}
EXPECTED_OUTPUT: dict[str, str] = {"echo": INPUT, "chat": FAKE_RESPONSE}


def registry_available() -> bool:
    """True when ``worker.agents.registry`` can be imported."""
    try:
        return importlib.util.find_spec("worker.agents.registry") is not None
    except ModuleNotFoundError:
        return False


def build(agent: str, source: Source) -> Runnable[Any, Any]:
    """Build the Runnable for ``agent`` ("echo" or "chat")."""
    if agent not in AGENT_CONFIGS:
        raise ValueError(f"unknown agent {agent!r}; expected one of {AGENTS}")
    if source == "registry":
        # Imported lazily: the baselines also run without the worker package.
        from worker.agents.registry import AgentTypeRegistry  # noqa: PLC0415

        runnable: Runnable[Any, Any] = AgentTypeRegistry.discover().build(
            agent, AGENT_CONFIGS[agent]
        )
        return runnable
    return _stand_in(agent)


def _stand_in(agent: str) -> Runnable[Any, Any]:
    if agent == "echo":

        async def echo(value: Any) -> Any:
            return value

        return RunnableLambda(echo, name="echo")
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are helpful."), ("human", "{input}")]
    )
    return prompt | FakeListChatModel(responses=[FAKE_RESPONSE]) | StrOutputParser()
