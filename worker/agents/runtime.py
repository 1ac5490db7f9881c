"""Running an agent: a deadline, metrics, usage accounting, and error mapping. (A run on a
conversation thread goes through ``worker.agents.thread_runs``, which calls ``execute`` too.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig

from worker.agents.accounting import UsageCallbacks, UsageTracker
from worker.agents.store import ResolvedAgent
from worker.errors import AgentFailed, DeadlineExceeded, WorkerError
from worker.resilience.scope import run_scope
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import AGENT_INVOCATION_DURATION, AGENT_INVOCATIONS, labelled

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run produced, and how long it took."""

    output: Any
    run_id: str
    """LangChain's id of the run (a UUID, as text)."""
    seconds: float
    provider: str | None = None
    """The model provider that produced the answer, when a model did."""
    degraded: bool = False
    """True when a fallback or the ``basic`` provider answered."""
    status: Literal["completed", "interrupted"] = "completed"
    """``interrupted``: the run stopped in LangGraph's ``interrupt()`` to ask a person (its
    thread is resumed with the answer); ``output`` is then None."""
    interrupts: tuple[dict[str, Any], ...] = ()
    """What an interrupted run asks: ``{"id", "value"}`` per ``interrupt()`` pending."""
    thread_id: str | None = None
    """The conversation thread the run continued, if any."""
    spent: dict[str, Any] | None = None
    """What the run spent (``UsageTracker.to_json``: ``usage``, and ``time_to_first_token``
    when it streamed tokens), keys to merge into its metadata; None with accounting off."""

    @property
    def interrupt(self) -> Any:
        """The question of an interrupted run: the value given to ``interrupt()``, or the list
        of values when several are pending (None when the run was not interrupted)."""
        if len(self.interrupts) == 1:
            return self.interrupts[0]["value"]
        return [i["value"] for i in self.interrupts] or None


Work = Callable[[RunnableConfig], Awaitable[Any]]
"""What a run does with its ``RunnableConfig``: ``ainvoke``, or stream it and return the output."""


async def invoke(
    agent: ResolvedAgent,
    value: Any,
    *,
    time_limit: float,
    run_id: uuid.UUID | None = None,
    tags: list[str] | None = None,
    tracker: UsageTracker | None = None,
) -> RunResult:
    """Run ``agent`` on ``value`` within ``time_limit`` seconds (``run_id``, ``tracker``: see
    ``execute``).

    A Runnable with no async implementation is run by LangChain in the loop's default executor,
    which the server replaces with a bounded pool at start, so it never blocks the event loop.
    """

    async def work(config: RunnableConfig) -> Any:
        return await agent.runnable.ainvoke(value, config)

    return await execute(
        agent, work, time_limit=time_limit, run_id=run_id, tags=tags, tracker=tracker
    )


async def execute(
    agent: ResolvedAgent,
    work: Work,
    *,
    time_limit: float,
    run_id: uuid.UUID | None = None,
    tags: list[str] | None = None,
    tracker: UsageTracker | None = None,
) -> RunResult:
    """Do ``work`` for one run of ``agent``: its config, deadline, metrics, usage and error
    mapping.

    ``invoke`` passes ``ainvoke``; the streaming door passes one that also turns the run's
    callbacks into frames, so both share one set of limits and metrics. ``run_id`` (a fresh
    one when not given) is the run's one id: LangChain's run id, which its callbacks and
    tracers see, and ``RunResult.run_id``. ``tracker`` (one of the agent's, ``tracker()``,
    when not given) counts what the run spends; a caller that passes its own reads it after a
    run that raised, which spent all the same. It is closed when the run ends.
    """
    if agent.admission is not None:
        # Every provider it needs is down: 503 (a job: handed back) without starting the run.
        agent.admission.check()
    run_id = run_id or uuid.uuid4()
    agent_type = agent.record.type
    config: RunnableConfig = {
        "run_id": run_id,
        "run_name": f"agent:{agent_type}",
        "tags": tags or [],
        "metadata": {"agent_id": agent.record.id, "agent_type": agent_type},
    }
    if tracker is None:
        tracker = agent.tracker()
    if tracker is not None:
        tracker.begin()
        # The worker's providers report to the tracker through the run's scope; a handler is
        # attached only for calls that do not (see ``AgentType.usage_from``).
        if agent.accounting is not None and agent.accounting.callbacks:
            config["callbacks"] = [UsageCallbacks(tracker)]
    start = time.perf_counter()
    outcome = "error"
    try:
        # The scope carries the deadline down to model calls (their retries stop at it),
        # brings back which provider answered, and takes their usage.
        with run_scope(time_limit=time_limit, meter=tracker) as report:
            async with asyncio.timeout(time_limit):
                output = await work(config)
        outcome = "ok"
    except TimeoutError:
        outcome = "timeout"
        raise DeadlineExceeded(
            f"agent did not answer within {time_limit:g}s", code="deadline_exceeded"
        ) from None
    except WorkerError:
        raise
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    except Exception as exc:
        log.warning("agent run failed", agent_id=agent.record.id, error=repr(exc))
        raise AgentFailed(f"agent run failed: {type(exc).__name__}: {exc}") from exc
    finally:
        elapsed = time.perf_counter() - start
        labelled(AGENT_INVOCATIONS, agent_type, outcome).inc()
        labelled(AGENT_INVOCATION_DURATION, agent_type).observe(elapsed)
        if tracker is not None:
            tracker.close()
    return RunResult(
        output=output,
        run_id=str(run_id),
        seconds=elapsed,
        provider=report.provider,
        degraded=report.degraded,
        spent=None if tracker is None else tracker.to_json(),
    )
