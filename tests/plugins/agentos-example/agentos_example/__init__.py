"""Example agent types from outside the worker: ``reverse``, a CPU-bound ``spin``, and ``run-id``,
which answers with the id LangChain gives its run."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, Field

from worker.agents.agent_type import AgentType, BuildContext


class ReverseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    upper: bool = False


def _build_reverse(config: ReverseConfig, _: BuildContext) -> Runnable[str, str]:
    def reverse(text: str) -> str:
        out = text[::-1]
        return out.upper() if config.upper else out

    return RunnableLambda(reverse, name="reverse")


class SpinConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(1.0, gt=0, le=30)


def _build_spin(config: SpinConfig, _: BuildContext) -> Runnable[Any, str]:
    # Synchronous and CPU-bound on purpose: it has no async implementation, so LangChain runs
    # it in the worker's thread pool; the event loop must stay responsive meanwhile.
    def spin(_: Any) -> str:
        deadline = time.perf_counter() + config.seconds
        n = 0
        while time.perf_counter() < deadline:
            n += sum(i * i for i in range(1000))
        return f"spun {n}"

    return RunnableLambda(spin, name="spin")


class RunIdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _build_run_id(_: RunIdConfig, __: BuildContext) -> Runnable[Any, str]:
    # LangChain passes a function that takes run_manager the callback manager of its run: its
    # run_id is the one every callback handler and tracer of the run is given.
    async def run_id(_: Any, run_manager: AsyncCallbackManagerForChainRun) -> str:
        return str(run_manager.run_id)

    return RunnableLambda(run_id, name="run_id")


REVERSE = AgentType(
    name="reverse",
    description="Reverses its text input.",
    config_model=ReverseConfig,
    build=_build_reverse,
    input_type=str,
    output_type=str,
)
SPIN = AgentType(
    name="spin",
    description="Burns CPU synchronously for a while.",
    config_model=SpinConfig,
    build=_build_spin,
    output_type=str,
)
RUN_ID = AgentType(
    name="run-id",
    description="Answers with the id LangChain gives its run.",
    config_model=RunIdConfig,
    build=_build_run_id,
    output_type=str,
)
