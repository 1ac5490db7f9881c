"""Running jobs from the pool's durable pull consumer: claim once, store first, then ack.

For every message: parse it (dead letter if it can never run), claim it with a compare-and-set
write of its record (``claim``; a finished job gets its stored result delivered again, never a
second run), run it while its heartbeats tell JetStream it is still in progress
(``heartbeats``), and end it one of the ways of ``outcomes``: store the result, put the callback
in the outbox, and only then ack the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import propagate, trace

from worker.agents import thread_runs
from worker.agents.accounting import RunUsage, UsageTracker
from worker.agents.runtime import RunResult, invoke
from worker.agents.store import AgentStore, ResolvedAgent
from worker.agents.thread_runs import OnThread, Resume
from worker.broker.dead_letters import DeadLetterWriter
from worker.broker.pull import PullConsumer
from worker.callbacks.outbox import CallbackOutbox
from worker.config import Settings
from worker.errors import (
    HANDBACK,
    AgentFailed,
    DeadlineExceeded,
    NotFound,
    Unavailable,
    WorkerError,
)
from worker.jobs.claim import Blocked, Claims, NotNow
from worker.jobs.heartbeats import Heartbeats
from worker.jobs.history import event
from worker.jobs.models import (
    MessageRejected,
    TaskError,
    TaskMessage,
    TaskRecord,
    TaskStatus,
    parse_task,
)
from worker.jobs.outcomes import Finals, Outcomes
from worker.jobs.results import Stored, TaskStore
from worker.outbound.ssrf import CallbackPolicy, CallbackRefused
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import (
    JOB_DURATION,
    JOB_QUEUE_WAIT,
    JOBS_IN_FLIGHT,
    NATS_MESSAGES,
    labelled,
)
from worker.telemetry.tracing import TRACER_NAME
from worker.threads import ThreadStore

log = get_logger(__name__)
tracer = trace.get_tracer(TRACER_NAME)


class Execute(Protocol):
    """How a job's agent is run (the streaming door supplies one that also emits frames)."""

    def __call__(
        self,
        agent: ResolvedAgent,
        value: Any,
        *,
        task_id: str,
        time_limit: float,
        stream_url: str | None,
        traceparent: str | None,
        thread: OnThread | None,
        tracker: UsageTracker | None,
    ) -> Awaitable[RunResult]: ...


async def invoke_without_frames(
    agent: ResolvedAgent,
    value: Any,
    *,
    task_id: str,
    time_limit: float,
    stream_url: str | None,
    traceparent: str | None,
    thread: OnThread | None,
    tracker: UsageTracker | None,
) -> RunResult:
    """Run the agent with no progress frames."""
    if thread is not None:
        return await thread_runs.invoke(
            agent, value, thread, time_limit=time_limit, tracker=tracker
        )
    return await invoke(agent, value, time_limit=time_limit, run_id=None, tracker=tracker)


class JobRunner:
    """Fetches jobs in batches and runs up to ``max_jobs`` of them at once."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        settings: Settings,
        agents: AgentStore,
        tasks: TaskStore,
        outbox: CallbackOutbox,
        dead_letters: DeadLetterWriter,
        policy: CallbackPolicy,
        execute: Execute = invoke_without_frames,
        finals: Finals | None = None,
        on_stall: Callable[[], Awaitable[None]] | None = None,
        threads: ThreadStore | None = None,
    ) -> None:
        self._s = settings
        self._threads = threads
        self._subject = settings.tasks_subject
        self._agents = agents
        self._tasks = tasks
        self._policy = policy
        self._execute = execute
        self._claims = Claims(
            tasks,
            worker_id=settings.worker_id,
            fresh_for=settings.job_ack_wait / 2,
            policy=policy,
        )
        self._outcomes = Outcomes(
            settings=settings,
            tasks=tasks,
            outbox=outbox,
            dead_letters=dead_letters,
            policy=policy,
            finals=finals,
        )
        self._heartbeats = Heartbeats(tasks, every=max(settings.job_ack_wait / 3, 0.2))
        self._pull = PullConsumer(
            js,
            stream=settings.tasks_stream,
            durable=settings.tasks_consumer,
            handle=self._handle,
            limit=settings.max_jobs,
            batch=settings.job_fetch_batch,
            gauge=JOBS_IN_FLIGHT.labels(settings.service_name),
            on_stall=on_stall,
        )
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()
        """Jobs whose run was cancelled on request (any other cancel is a drain)."""
        self._stopping = False

    async def start(self) -> None:
        """Bind to the pool's consumer and start fetching."""
        await self._pull.start()
        self._heartbeats.start()

    async def stop(self, grace: float) -> None:
        """Stop fetching; give in-flight jobs ``grace`` seconds, then hand the rest back."""
        self._stopping = True
        await self._pull.stop()
        if self._pull.in_flight:
            log.info("draining jobs", in_flight=self._pull.in_flight, grace=grace)
        pending = await self._pull.wait(grace)
        # A job whose result is stored is finishing (callback, ack): let it, rather than hand
        # it back to be delivered twice. The rest go back to the pool.
        for task in pending - self._outcomes.finishing:
            # HANDBACK: watchers see "will run again", not a final `cancelled` frame.
            task.cancel(HANDBACK)
        if pending:
            await asyncio.wait(pending, timeout=self._s.callback_timeout + 5)
        await self._heartbeats.stop()

    def cancel_local(self, task_id: str) -> bool:
        """Cancel ``task_id`` if it runs on this worker."""
        task = self._running.get(task_id)
        if task is None:
            return False
        self._cancelled.add(task_id)
        task.cancel()
        return True

    async def _handle(self, msg: Msg) -> None:
        meta = msg.metadata
        attempt = meta.num_delivered or 1
        labelled(NATS_MESSAGES, self._subject, "received" if attempt == 1 else "redelivered").inc()
        # The publisher's trace, when it sent one (a plain Go publish usually has no headers).
        parent = propagate.extract(msg.headers) if msg.headers else None
        with tracer.start_as_current_span(
            f"{self._subject} process",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": self._subject,
                "agentos.attempt": attempt,
            },
        ) as span:
            try:
                task = parse_task(msg.data)
            except MessageRejected as rej:
                await self._outcomes.reject(msg, rej, attempt)
                return
            span.set_attributes(
                {"agentos.task_id": task.id, "agent.id": task.agent_id, "ai.framework": "langchain"}
            )
            if attempt > self._s.job_max_deliver:
                await self._exhausted(msg, task, attempt)
                return
            if task.callback:
                try:
                    self._policy.check_url(task.callback)
                except CallbackRefused as exc:
                    refused = MessageRejected("callback_refused", str(exc), task_id=task.id)
                    await self._outcomes.reject(msg, refused, attempt, notify=False)
                    return
            try:
                await self._process(msg, task, attempt)
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                # Draining: hand the job back at once so another worker runs it.
                labelled(NATS_MESSAGES, self._subject, "handed_back").inc()
                with contextlib.suppress(Exception):
                    await msg.nak()

    async def _process(self, msg: Msg, task: TaskMessage, attempt: int) -> None:
        try:
            agent = await self._agents.resolve(task.agent_id)
            # A resume answers the thread's question: its input, if any, is not used.
            value = None if task.resuming else agent.agent_type.parse_input(task.input)
        except WorkerError as exc:
            await self._unrunnable(msg, task, attempt, exc)
            return
        published = msg.metadata.timestamp
        claim = await self._claims.claim(task, delivery=attempt, published_at=published)
        if isinstance(claim, Blocked):
            await self._not_now(msg, task, claim.why, claim.stored)
            return
        if published is not None and claim.started_at is not None:
            waited = (claim.started_at - published).total_seconds()
            labelled(JOB_QUEUE_WAIT, agent.record.type).observe(max(0.0, waited))
        await self._run(msg, task=task, agent=agent, value=value, record=claim)

    async def _unrunnable(
        self, msg: Msg, task: TaskMessage, attempt: int, exc: WorkerError
    ) -> None:
        """The agent is unknown or the input invalid: a dead letter, unless this is a
        re-published job whose result is already stored (then that result goes out again)."""
        stored = await self._tasks.get(task.id)
        why = self._claims.why_not_now(stored)
        if why is not None:
            await self._not_now(msg, task, why, stored)
            return
        reason = "unknown_agent" if isinstance(exc, NotFound) else "invalid_input"
        rej = MessageRejected(reason, exc.message, task_id=task.id, callback=task.callback or "")
        await self._outcomes.reject(msg, rej, attempt)

    async def _not_now(
        self, msg: Msg, task: TaskMessage, why: NotNow, stored: Stored | None
    ) -> None:
        """Act on why the job must not run now."""
        if why is NotNow.FINISHED and stored is not None:
            await self._outcomes.redeliver(msg, stored)
        elif why is NotNow.RUNNING_ELSEWHERE:
            await msg.nak(delay=self._s.job_ack_wait / 2)
        elif why is NotNow.CANCEL_REQUESTED and stored is not None:
            record = self._claims.running_record(
                task, stored, attempt=stored.record.attempts, published_at=msg.metadata.timestamp
            )
            error = TaskError(code="cancelled", message="cancelled before it ran")
            await self._outcomes.finish(msg, record, TaskStatus.CANCELLED, error=error)
        else:  # claimed by another worker a moment ago
            await msg.nak(delay=1.0)

    async def _run(
        self,
        msg: Msg,
        *,
        task: TaskMessage,
        agent: ResolvedAgent,
        value: Any,
        record: TaskRecord,
    ) -> None:
        current = asyncio.current_task()
        if current is not None:
            self._running[task.id] = current
        self._heartbeats.track(task.id, msg, record)
        time_limit = task.timeout or self._s.job_timeout
        start = time.perf_counter()
        status, result, error = TaskStatus.FAILED, None, None
        # Ours, not the run's: a run that raised spent all the same, and the record says so.
        tracker = agent.tracker()
        try:
            run = await self._execute(
                agent,
                value,
                task_id=task.id,
                time_limit=time_limit,
                stream_url=task.stream_url,
                traceparent=record.traceparent,
                thread=self._on_thread(task, time_limit),
                tracker=tracker,
            )
            status, result = TaskStatus.COMPLETED, run.output
            if run.status == "interrupted":
                status, record.interrupt = TaskStatus.INTERRUPTED, run.interrupt
        except DeadlineExceeded:
            error = TaskError(
                code="timeout", message=f"the job ran past its {time_limit:g}s timeout"
            )
        except asyncio.CancelledError:
            if task.id not in self._cancelled:
                # Draining: _handle hands the job back. Mark its record queued first, so the
                # next worker takes it at once instead of waiting out a "fresh" heartbeat.
                record.status = TaskStatus.QUEUED
                record.heartbeat_at = None
                record.note(
                    event(
                        "handed_back",
                        attempt=record.attempts,
                        worker_id=self._s.worker_id,
                        reason="draining",
                        detail="its worker is shutting down",
                    )
                )
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._tasks.overwrite(record))
                raise
            status = TaskStatus.CANCELLED
            error = TaskError(code="cancelled", message="the job was cancelled")
        except AgentFailed as exc:
            error = TaskError(code="agent_error", message=exc.message)
        except WorkerError as exc:
            if exc.retryable:
                await self._outcomes.hand_back(msg, record, exc)
                return
            error = TaskError(code=exc.code, message=exc.message)
        finally:
            self._heartbeats.untrack(task.id)
            self._running.pop(task.id, None)
            self._cancelled.discard(task.id)
        record.execution_time = time.perf_counter() - start
        if tracker is not None:
            spent = tracker.to_json()
            record.usage = RunUsage.model_validate(spent["usage"])
            record.time_to_first_token = spent.get("time_to_first_token")
        labelled(JOB_DURATION, agent.record.type, status.value).observe(record.execution_time)
        await self._outcomes.finish(msg, record, status, result=result, error=error, ran=True)

    def _on_thread(self, task: TaskMessage, time_limit: float) -> OnThread | None:
        """How the job runs on its thread: it waits its turn up to its own time limit (then
        ``ThreadBusy``, which hands it back), where a second HTTP run gets 409 at once."""
        if task.thread_id is None:
            return None
        if self._threads is None:
            raise Unavailable("this worker keeps no conversation threads")
        return OnThread(
            threads=self._threads,
            thread_id=task.thread_id,
            wait=time_limit,
            resume=Resume(task.resume) if task.resuming else None,
        )

    async def _exhausted(self, msg: Msg, task: TaskMessage, attempt: int) -> None:
        """Past its last delivery (its workers died each time): dead, without running again."""
        stored = await self._tasks.get(task.id)
        if stored is not None and stored.record.status.settled:
            await self._outcomes.redeliver(msg, stored)  # its result still goes out
            return
        attempts = stored.record.attempts if stored else 0
        record = self._claims.running_record(
            task, stored, attempt=attempts, published_at=msg.metadata.timestamp
        )
        error = TaskError(
            code="max_deliveries", message="the job's worker stopped answering on every delivery"
        )
        detail = f"not finished after {self._s.job_max_deliver} deliveries"
        await self._outcomes.dead(msg, record, detail=detail, attempts=attempt - 1, error=error)
