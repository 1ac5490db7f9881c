"""Running an agent in this process: the run's one id, as LangChain's callbacks see it."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig

from tests.agents.helpers import local_agent
from worker.agents import runtime


class RootRuns(BaseCallbackHandler):
    """The ids of the runs LangChain starts with no parent: the run itself."""

    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> None:
        if parent_run_id is None:
            self.ids.append(run_id)


async def _run(run_id: uuid.UUID | None) -> tuple[runtime.RunResult, RootRuns]:
    agent = local_agent("echo", {})
    seen = RootRuns()

    async def work(config: RunnableConfig) -> Any:
        return await agent.runnable.ainvoke("hi", {**config, "callbacks": [seen]})

    return await runtime.execute(agent, work, time_limit=5, run_id=run_id), seen


async def test_a_run_id_passed_in_is_the_one_langchain_sees() -> None:
    given = uuid.uuid4()
    result, seen = await _run(given)
    assert seen.ids == [given]
    assert result.run_id == str(given)


async def test_without_a_run_id_the_result_names_the_run_langchain_saw() -> None:
    result, seen = await _run(None)
    assert [str(i) for i in seen.ids] == [result.run_id]
