"""``echo``: returns its input. The cheapest agent; the floor of every benchmark."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict

from worker.agents.agent_type import AgentType, BuildContext


class EchoConfig(BaseModel):
    """``echo`` takes no configuration."""

    model_config = ConfigDict(extra="forbid", title="EchoConfig")


def _echo(value: Any) -> Any:
    return value


async def _aecho(value: Any) -> Any:
    return value


def build(_: EchoConfig, __: BuildContext) -> Runnable[Any, Any]:
    """An async-native Runnable that returns its input."""
    return RunnableLambda(_echo, afunc=_aecho, name="echo")


AGENT_TYPE = AgentType(
    name="echo",
    description="Returns its input unchanged.",
    config_model=EchoConfig,
    build=build,
    usage_from="providers",  # it calls no model: nothing is attached to its runs
)
