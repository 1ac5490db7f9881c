"""``steps``: N steps with a delay each, reporting progress; the stand-in for long agent work.

Progress goes out as LangChain custom events (``adispatch_custom_event``), so it reaches the
streaming door's callback handler and any ``astream_events`` consumer without a side channel.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks.manager import adispatch_custom_event
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from pydantic import BaseModel, ConfigDict, Field

from worker.agents.agent_type import AgentType, BuildContext
from worker.durations import GoDuration

PROGRESS_EVENT = "agentos.progress"


class StepsConfig(BaseModel):
    """How many steps, and how long each takes."""

    model_config = ConfigDict(extra="forbid", title="StepsConfig")
    steps: int = Field(5, ge=1, le=10_000)
    step_delay: GoDuration = Field(0.1, ge=0, le=3600, description="Time each step takes.")


def build(spec: StepsConfig, _: BuildContext) -> Runnable[Any, str]:
    """A Runnable that works through ``steps`` steps and reports progress after each."""
    total = spec.steps
    delay = spec.step_delay

    # LangChain passes the run's config to a parameter named exactly ``config``.
    async def run(value: Any, config: RunnableConfig) -> str:
        for step in range(1, total + 1):
            await asyncio.sleep(delay)
            await adispatch_custom_event(
                PROGRESS_EVENT,
                {
                    "step": step,
                    "steps": total,
                    "progress": step * 100 // total,
                    "message": f"Processing step {step} of {total}",
                    "partial_result": f"step {step} done",
                },
                config=config,
            )
        return f"completed {total} steps for input: {value}"

    return RunnableLambda(run, name="steps")


AGENT_TYPE = AgentType(
    name="steps",
    description="Works through N steps with a delay each, reporting progress.",
    config_model=StepsConfig,
    build=build,
    usage_from="providers",  # it calls no model: nothing is attached to its runs
    output_type=str,
)
