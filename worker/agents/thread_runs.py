"""Runs on a conversation thread (CONTRACT section 6): the lease, the graph, interrupts, cancel.

Every door runs an agent on a thread the same way::

    async with thread_runs.hold(agent, value, OnThread(threads=store, thread_id=tid)) as run:
        result = await run.execute(time_limit=30)    # or execute(call) to stream its frames

- ``hold`` takes the thread's lease (``ThreadStore.lease``) for the task that enters it, for as
  long as its block runs: ``ThreadBusy`` (409) at once, or after ``OnThread.wait`` seconds (a
  job waits its turn). A thread named for the first time is created; a resume needs a thread
  that exists (404) and asks something (409 ``thread_not_interrupted``). The agent's graph on
  the pool's checkpointer comes from its type (400 ``threads_unsupported``).
- ``execute`` runs that graph under ``runtime.execute`` (deadline, metrics, error mapping) with
  ``configurable.thread_id``, on the turn's input or on ``Command(resume=...)``. A graph that
  stopped in ``interrupt()`` ends ``interrupted``, its question in the ``RunResult``.
- Cancel and deadline leave the thread at its last complete step. LangGraph checkpoints after
  each step, writing in the background while the next step runs; the step a cancel stops
  writes nothing, and as it unwinds LangGraph awaits the writes still in flight. The graph
  runs in a task of its own that is cancelled once and then given the time to unwind
  (``_unwound``), however often the run is cancelled meanwhile, so that no write of this run
  lands after the lease is let go and the next run has taken the thread.
- A lease lost mid-run (this worker stalled past the lease's TTL and another run took the
  thread over) cancels the run at once with 409 ``thread_lease_lost`` instead of letting it
  write on.
- What a turn spent (its ``usage`` and ``time_to_first_token``) is merged into the metadata of
  the last checkpoint the run wrote, before the thread is let go, so the thread's history shows
  it per turn; a run that wrote no checkpoint leaves the previous turn's alone.

Nothing here is per process: the lease and the checkpoints live in the pool's NATS, so any
worker continues (or resumes) any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.checkpoint.serde.types import INTERRUPT
from langgraph.types import Command

from worker.agents import runtime
from worker.agents.accounting import UsageTracker
from worker.agents.runtime import RunResult
from worker.agents.store import ResolvedAgent
from worker.agents.thread_graph import ThreadGraph
from worker.errors import Conflict
from worker.telemetry.logs import get_logger
from worker.threads import Lease, ThreadStore
from worker.threads.state import jsonable

log = get_logger(__name__)
_WRITES_GRACE = 10.0
"""Seconds a cancelled run waits for its graph to unwind (its last checkpoint writes) before
letting the thread go."""
_LEASE_LOST = "agentos:thread-lease-lost"
TURN_RUN_ID = "run_id"
"""The checkpoint metadata key naming the run that wrote the checkpoint."""

Call = Callable[[Runnable[Any, Any], Any, RunnableConfig], Awaitable[Any]]
"""How a run calls its graph: ``ainvoke`` (the default), or with frame callbacks attached."""


async def ainvoke(runnable: Runnable[Any, Any], value: Any, config: RunnableConfig) -> Any:
    """``runnable.ainvoke(value, config)``."""
    return await runnable.ainvoke(value, config)


@dataclass(frozen=True, slots=True)
class Resume:
    """The answer to an interrupted thread's question: the graph gets ``Command(resume=value)``
    (a class of its own, so that ``None`` can be an answer too)."""

    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class OnThread:
    """What a run on a thread needs to know: where threads are, which one, how to wait."""

    threads: ThreadStore
    thread_id: str
    wait: float | None = None
    """None: ``ThreadBusy`` at once while another run holds the thread (HTTP); seconds: wait up
    to that long for it first (a job), then ``ThreadBusy``."""
    resume: Resume | None = None
    """Continue an interrupted thread with this answer instead of starting a turn."""


@dataclass(frozen=True, slots=True)
class _Interrupted:
    """What ``work`` returns for a graph that stopped in ``interrupt()``."""

    interrupts: tuple[dict[str, Any], ...]


class ThreadRun:
    """One run holding its thread (inside ``hold``)."""

    def __init__(
        self,
        *,
        agent: ResolvedAgent,
        graph: ThreadGraph,
        graph_input: Any,
        lease: Lease,
        threads: ThreadStore,
        run_id: uuid.UUID,
    ) -> None:
        self._agent = agent
        self._graph = graph
        self._input = graph_input
        self._lease = lease
        self._threads = threads
        self.run_id = run_id
        self.thread_id = lease.thread_id

    async def execute(
        self,
        call: Call = ainvoke,
        *,
        time_limit: float,
        tags: list[str] | None = None,
        tracker: UsageTracker | None = None,
    ) -> RunResult:
        """Run the agent's graph on the thread within ``time_limit`` seconds (``call`` says how
        it is called; ``tracker``: see ``runtime.execute``); ``RunResult`` with status
        ``completed`` or ``interrupted``."""
        graph, graph_input, lease = self._graph, self._input, self._lease
        thread = {"thread_id": self.thread_id}
        run_id = str(self.run_id)

        async def work(config: RunnableConfig) -> Any:
            # The run's id goes into the metadata of every checkpoint it writes: its turn.
            metadata = {**config.get("metadata", {}), TURN_RUN_ID: run_id}
            config = {**config, "configurable": thread, "metadata": metadata}
            with _cancelled_if_lost(lease):
                values = await _unwound(call(graph.graph, graph_input, config))
            found = interrupts_of(values)
            return _Interrupted(found) if found else graph.to_output(values)

        if tracker is None:
            tracker = self._agent.tracker()
        try:
            result = await runtime.execute(
                self._agent,
                work,
                time_limit=time_limit,
                run_id=self.run_id,
                tags=tags,
                tracker=tracker,
            )
        finally:
            if tracker is not None and not lease.lost.is_set():
                await self._note_turn(tracker)
        if isinstance(result.output, _Interrupted):
            return replace(
                result,
                output=None,
                status="interrupted",
                interrupts=result.output.interrupts,
                thread_id=self.thread_id,
            )
        return replace(result, thread_id=self.thread_id)

    async def _note_turn(self, tracker: UsageTracker) -> None:
        """Merge what the run spent into its last checkpoint's metadata. Best effort: the turn
        itself is stored already, and the run's callers get its usage all the same."""
        try:
            # Shielded: a run cancelled again while this is written still gets it written.
            await asyncio.shield(
                self._threads.note_turn(
                    self.thread_id, {TURN_RUN_ID: str(self.run_id)}, tracker.to_json()
                )
            )
        except Exception as exc:
            log.warning("a turn's usage was not stored", thread_id=self.thread_id, error=repr(exc))


@contextlib.asynccontextmanager
async def hold(
    agent: ResolvedAgent, value: Any, on: OnThread, *, run_id: uuid.UUID | None = None
) -> AsyncIterator[ThreadRun]:
    """Hold ``on.thread_id`` for one run of ``agent`` on ``value`` (ignored when resuming)."""
    graph = agent.on_thread()  # 400 threads_unsupported, before anything is taken
    graph_input = Command(resume=on.resume.value) if on.resume else graph.to_input(value)
    run_id = run_id or uuid.uuid4()
    async with on.threads.lease(
        on.thread_id,
        str(run_id),
        wait=on.wait,
        create=on.resume is None,
        # Which agent ran the thread last: the one a resume continues with by default.
        metadata={"agent_id": agent.record.id},
    ) as lease:
        if on.resume is not None and not await on.threads.interrupts(on.thread_id):
            raise not_interrupted(on.thread_id)
        yield ThreadRun(
            agent=agent,
            graph=graph,
            graph_input=graph_input,
            lease=lease,
            threads=on.threads,
            run_id=run_id,
        )


async def invoke(
    agent: ResolvedAgent,
    value: Any,
    on: OnThread,
    *,
    time_limit: float,
    run_id: uuid.UUID | None = None,
    tags: list[str] | None = None,
    tracker: UsageTracker | None = None,
) -> RunResult:
    """``runtime.invoke`` on a thread: hold it, run the graph, let it go."""
    async with hold(agent, value, on, run_id=run_id) as run:
        return await run.execute(time_limit=time_limit, tags=tags, tracker=tracker)


def interrupts_of(values: Any) -> tuple[dict[str, Any], ...]:
    """The interrupts a graph's output reports (``__interrupt__``): ``{"id", "value"}`` each,
    the value in JSON types."""
    if not isinstance(values, Mapping):
        return ()
    return tuple(
        {"id": getattr(i, "id", None), "value": jsonable(getattr(i, "value", i))}
        for i in values.get(INTERRUPT) or ()
    )


async def _unwound(run: Awaitable[Any]) -> Any:
    """Await ``run`` in a task of its own; if this task is cancelled, cancel ``run`` once and
    wait (``_WRITES_GRACE`` seconds at most, whatever other cancels come meanwhile) for it to
    unwind: LangGraph then awaits the checkpoint writes it still has in flight, which a second
    cancel would cut short, leaving them to land after the lease is let go."""
    inner = asyncio.ensure_future(run)
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        if inner.done():
            raise
        inner.cancel()
        loop = asyncio.get_running_loop()
        until = loop.time() + _WRITES_GRACE
        while not inner.done() and (left := until - loop.time()) > 0:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([inner], timeout=left)
        if not inner.done():
            log.warning("a cancelled run on a thread did not unwind in time")
        elif not inner.cancelled() and inner.exception() is not None:
            log.info("a cancelled run failed as it unwound", error=repr(inner.exception()))
        raise


@contextlib.contextmanager
def _cancelled_if_lost(lease: Lease) -> Iterator[None]:
    """Cancel the task running the block when ``lease`` is lost; raise 409
    ``thread_lease_lost`` from the block then."""
    task = asyncio.current_task()
    if task is None:  # not in a task: nothing to cancel
        yield
        return
    fired = False
    inside = True  # a callback already scheduled may run after the block has ended

    def lost(watch: asyncio.Future[Any]) -> None:
        nonlocal fired
        if inside and not watch.cancelled():
            fired = True
            task.cancel(_LEASE_LOST)

    watch = asyncio.ensure_future(lease.lost.wait())
    watch.add_done_callback(lost)
    try:
        yield
    except asyncio.CancelledError:
        if not fired:
            raise
        task.uncancel()
        raise Conflict(
            f"thread {lease.thread_id!r} was taken over by another run (this run's lease "
            "could not be renewed in time); the run was stopped before it wrote on",
            code="thread_lease_lost",
        ) from None
    finally:
        inside = False
        watch.cancel()


def not_interrupted(thread_id: str) -> Conflict:
    """409 ``thread_not_interrupted``: a resume of a thread that asks nothing."""
    return Conflict(
        f"thread {thread_id!r} is not interrupted: it asks nothing to resume",
        code="thread_not_interrupted",
    )
