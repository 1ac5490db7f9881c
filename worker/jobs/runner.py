"""Running jobs from the pool's durable pull consumer: claim once, store first, then ack.

For every message: parse it (dead letter if it can never run), look up its stored record (a
finished job gets its stored result delivered again, never a second run), claim it with a
compare-and-set write, run it while telling JetStream it is still in progress, store the
result, put the callback in the outbox, and only then ack the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import FetchTimeoutError
from opentelemetry import propagate, trace

from worker.agents.runtime import RunResult, invoke
from worker.agents.store import AgentStore, ResolvedAgent
from worker.broker.dead_letters import DeadLetterWriter
from worker.callbacks.outbox import CallbackOutbox
from worker.config import Settings
from worker.errors import HANDBACK, AgentFailed, DeadlineExceeded, NotFound, WorkerError
from worker.jobs.models import (
    CallbackBody,
    MessageRejected,
    TaskError,
    TaskMessage,
    TaskRecord,
    TaskStatus,
    parse_task,
)
from worker.jobs.results import StaleRecord, Stored, TaskStore
from worker.outbound.ssrf import CallbackPolicy, CallbackRefused
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import (
    JOB_DURATION,
    JOB_PUBLISH_TO_DONE,
    JOBS_IN_FLIGHT,
    NATS_MESSAGES,
    labelled,
)

log = get_logger(__name__)
tracer = trace.get_tracer("agentos.worker")


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
    ) -> Awaitable[RunResult]: ...


async def invoke_without_frames(
    agent: ResolvedAgent,
    value: Any,
    *,
    task_id: str,
    time_limit: float,
    stream_url: str | None,
    traceparent: str | None,
) -> RunResult:
    """Run the agent with no progress frames."""
    return await invoke(agent, value, time_limit=time_limit, run_id=None)


class Finals(Protocol):
    """Where a job's final frame goes when no run emitted one (the streaming door)."""

    async def ensure_final(
        self,
        task_id: str,
        *,
        status: str,
        result: Any = None,
        error: dict[str, str] | None = None,
    ) -> None: ...


def _traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


class JobRunner:
    """Fetches jobs in batches and runs up to ``max_jobs`` of them at once."""

    def __init__(
        self,
        *,
        nc: Client,
        js: JetStreamContext,
        settings: Settings,
        agents: AgentStore,
        tasks: TaskStore,
        outbox: CallbackOutbox,
        dead_letters: DeadLetterWriter,
        policy: CallbackPolicy,
        execute: Execute = invoke_without_frames,
        finals: Finals | None = None,
        on_fetch_error: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._nc = nc
        self._js = js
        self._s = settings
        self._agents = agents
        self._tasks = tasks
        self._outbox = outbox
        self._dead = dead_letters
        self._policy = policy
        self.execute = execute
        self._finals = finals
        self._on_fetch_error = on_fetch_error
        self._subject = settings.tasks_subject
        self._inflight: dict[asyncio.Task[None], Msg] = {}
        self._finishing: set[asyncio.Task[Any]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._beat_every = max(settings.job_ack_wait / 3, 0.2)
        self._beats: dict[str, tuple[Msg, TaskRecord, float]] = {}
        """Running jobs: their message, record and when their next heartbeat is due."""
        self._stopping = False
        self._gauge = JOBS_IN_FLIGHT.labels(settings.service_name)

    @property
    def in_flight(self) -> int:
        """Jobs running now on this worker."""
        return len(self._inflight)

    async def start(self) -> None:
        """Bind to the pool's consumer and start fetching."""
        self._loop_task = asyncio.create_task(self._fetch_loop(), name="job-fetch")
        self._beat_task = asyncio.create_task(self._heartbeats(), name="job-heartbeats")

    async def stop(self, grace: float) -> None:
        """Stop fetching; give in-flight jobs ``grace`` seconds, then hand the rest back."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._inflight:
            log.info("draining jobs", in_flight=len(self._inflight), grace=grace)
            _, pending = await asyncio.wait(list(self._inflight), timeout=grace)
            # A job whose result is stored is finishing (callback, ack): let it, rather than
            # hand it back to be delivered twice. The rest go back to the pool.
            for task in pending - self._finishing:
                # HANDBACK: watchers see "will run again", not a final `cancelled` frame.
                task.cancel(HANDBACK)
            if pending:
                await asyncio.wait(pending, timeout=self._s.callback_timeout + 5)
        if self._beat_task is not None:
            self._beat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat_task

    def cancel_local(self, task_id: str) -> bool:
        """Cancel ``task_id`` if it runs on this worker."""
        task = self._running.get(task_id)
        if task is None:
            return False
        self._cancelled.add(task_id)
        task.cancel()
        return True

    # --- fetching -----------------------------------------------------------------------

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        return await self._js.pull_subscribe_bind(
            durable=self._s.tasks_consumer, stream=self._s.tasks_stream
        )

    async def _fetch_loop(self) -> None:
        sub = await self._subscribe()
        failures = 0
        waiting = self._s.job_fetch_batch  # messages the consumer holds, as last reported
        while not self._stopping:
            free = self._s.max_jobs - len(self._inflight)
            if free <= 0:
                await asyncio.wait(list(self._inflight), return_when=asyncio.FIRST_COMPLETED)
                continue
            # Ask for no more than are waiting. When none are, nats-py's fetch turns into a
            # lingering pull that, once the first message comes, holds it until the whole batch
            # has arrived or the fetch times out: at a trickle that is up to a second of
            # latency per job. A batch of one returns with its message.
            want = min(free, self._s.job_fetch_batch, max(1, waiting))
            try:
                msgs = await sub.fetch(want, timeout=1.0)
                failures = 0
            except (FetchTimeoutError, TimeoutError):
                waiting = 0
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("job fetch failed", error=repr(exc), failures=failures)
                await asyncio.sleep(min(0.2 * failures, 2.0))
                if failures % 5 == 0:
                    # After a server restart a pull subscription can stall for good: bind anew.
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                    if self._on_fetch_error is not None:
                        with contextlib.suppress(Exception):
                            await self._on_fetch_error()
                    with contextlib.suppress(Exception):
                        sub = await self._subscribe()
                continue
            waiting = (msgs[-1].metadata.num_pending or 0) if msgs else 0
            for msg in msgs:
                task = asyncio.create_task(self._handle(msg))
                self._inflight[task] = msg
                task.add_done_callback(self._done)
            self._gauge.set(len(self._inflight))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._gauge.set(len(self._inflight))
        if not task.cancelled() and task.exception() is not None:
            log.error("job handler crashed", error=repr(task.exception()))

    # --- one message ----------------------------------------------------------------------

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
                await self._reject(msg, rej, attempt)
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
                    await self._reject(msg, refused, attempt, notify=False)
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
            value = agent.agent_type.parse_input(task.input)
        except WorkerError as exc:
            await self._unrunnable(msg, task, attempt, exc)
            return
        # The usual job has no record yet: claiming it is creating its record, one round trip.
        stored: Stored | None = None
        record = self._record(task, None, attempt=1)
        try:
            await self._tasks.put(record, revision=None)
        except StaleRecord:
            stored = await self._tasks.get(task.id)
            if await self._settled(msg, task, stored, attempt):
                return
            record = self._record(
                task, stored, attempt=(stored.record.attempts if stored else 0) + 1
            )
            try:
                await self._tasks.put(record, revision=stored.revision if stored else None)
            except StaleRecord:
                await msg.nak(delay=1.0)  # another worker claimed it a moment ago
                return
        await self._run(msg, task=task, agent=agent, value=value, record=record)

    async def _unrunnable(
        self, msg: Msg, task: TaskMessage, attempt: int, exc: WorkerError
    ) -> None:
        """The agent is unknown or the input invalid: a dead letter, unless this is a
        re-published job whose result is already stored (then that result goes out again)."""
        stored = await self._tasks.get(task.id)
        if stored is not None and await self._settled(msg, task, stored, attempt):
            return
        reason = "unknown_agent" if isinstance(exc, NotFound) else "invalid_input"
        rej = MessageRejected(reason, exc.message, task_id=task.id, callback=task.callback or "")
        await self._reject(msg, rej, attempt)

    async def _settled(
        self, msg: Msg, task: TaskMessage, stored: Stored | None, attempt: int
    ) -> bool:
        """Handle the cases where the job must not run now; True when one applied."""
        if stored is not None and stored.record.status.settled:
            # Claim once: the result exists; deliver it again, never run the model again.
            labelled(NATS_MESSAGES, self._subject, "duplicate").inc()
            await self._deliver(stored.record)
            await msg.ack()
            return True
        if stored is not None and self._running_elsewhere(stored.record):
            await msg.nak(delay=self._s.job_ack_wait / 2)
            return True
        if stored is not None and stored.record.cancel_requested:
            record = self._record(task, stored, attempt=stored.record.attempts)
            error = TaskError(code="cancelled", message="cancelled before it ran")
            await self._finish(msg, task, record, TaskStatus.CANCELLED, error=error)
            return True
        return False

    def _running_elsewhere(self, record: TaskRecord) -> bool:
        if record.status != TaskStatus.RUNNING or record.worker_id == self._s.worker_id:
            return False
        beat = record.heartbeat_at or record.started_at
        if beat is None:
            return False
        return (datetime.now(UTC) - beat).total_seconds() < self._s.job_ack_wait / 2

    def _record(self, task: TaskMessage, stored: Stored | None, *, attempt: int) -> TaskRecord:
        now = datetime.now(UTC)
        # Built without validation: the task was validated, the rest is the worker's own.
        return TaskRecord.model_construct(
            id=task.id,
            status=TaskStatus.RUNNING,
            agent_id=task.agent_id,
            callback=task.callback,
            stream_url=task.stream_url,
            stream_refused=self._policy.push_refusal(task.stream_url),
            attempts=attempt,
            worker_id=self._s.worker_id,
            created_at=stored.record.created_at if stored else now,
            started_at=now,
            heartbeat_at=now,
            cancel_requested=stored.record.cancel_requested if stored else False,
            traceparent=_traceparent(),
        )

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
        self._beats[task.id] = (msg, record, asyncio.get_running_loop().time() + self._beat_every)
        time_limit = task.timeout or self._s.job_timeout
        start = time.perf_counter()
        status, result, error = TaskStatus.FAILED, None, None
        try:
            run = await self.execute(
                agent,
                value,
                task_id=task.id,
                time_limit=time_limit,
                stream_url=task.stream_url,
                traceparent=record.traceparent,
            )
            status, result = TaskStatus.COMPLETED, run.output
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
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._tasks.overwrite(record))
                raise
            status = TaskStatus.CANCELLED
            error = TaskError(code="cancelled", message="the job was cancelled")
        except AgentFailed as exc:
            error = TaskError(code="agent_error", message=exc.message)
        except WorkerError as exc:
            if exc.retryable:
                await self._hand_back(msg, record, exc)
                return
            error = TaskError(code=exc.code, message=exc.message)
        finally:
            self._beats.pop(task.id, None)
            self._running.pop(task.id, None)
            self._cancelled.discard(task.id)
        record.execution_time = time.perf_counter() - start
        labelled(JOB_DURATION, agent.record.type, status.value).observe(record.execution_time)
        await self._finish(msg, task, record, status, result=result, error=error, ran=True)

    async def _heartbeats(self) -> None:
        """Keep long runs' messages from being redelivered, and show they are alive.

        One loop for every running job rather than a task per job: most jobs end long before
        their first heartbeat is due, and a task each would be created and cancelled for
        nothing on every job.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._beat_every / 4)
            now = loop.time()
            due = [(tid, msg, rec) for tid, (msg, rec, at) in self._beats.items() if at <= now]
            for task_id, msg, record in due:
                self._beats[task_id] = (msg, record, now + self._beat_every)
            if due:
                await asyncio.gather(*(self._beat(t, m, r) for t, m, r in due))

    async def _beat(self, task_id: str, msg: Msg, record: TaskRecord) -> None:
        with contextlib.suppress(Exception):
            await msg.in_progress()
            if task_id in self._beats and record.status == TaskStatus.RUNNING:
                record.heartbeat_at = datetime.now(UTC)
                await self._tasks.overwrite(record)

    async def _exhausted(self, msg: Msg, task: TaskMessage, attempt: int) -> None:
        """Past its last delivery (its workers died each time): dead, without running again."""
        stored = await self._tasks.get(task.id)
        if stored is not None and stored.record.status.settled:
            await self._deliver(stored.record)  # it did finish: its result still goes out
            await msg.ack()
            return
        await self._dead.add(
            reason="max_deliveries",
            detail=f"not finished after {self._s.job_max_deliver} deliveries",
            original=msg.data,
            subject=self._subject,
            attempts=attempt - 1,
            task_id=task.id,
            headers=dict(msg.headers or {}),
        )
        record = self._record(task, stored, attempt=stored.record.attempts if stored else 0)
        error = TaskError(
            code="max_deliveries", message="the job's worker stopped answering on every delivery"
        )
        await self._finish(msg, task, record, TaskStatus.DEAD, error=error)

    async def _hand_back(self, msg: Msg, record: TaskRecord, exc: WorkerError) -> None:
        """Not the job's fault (a provider is down): give it back with a delay, if it has
        deliveries left; otherwise it is dead."""
        attempt = msg.metadata.num_delivered or 1
        if attempt >= self._s.job_max_deliver:
            task = parse_task(msg.data)
            await self._dead.add(
                reason="max_deliveries",
                detail=exc.message,
                original=msg.data,
                subject=self._subject,
                attempts=attempt,
                task_id=record.id,
                headers=dict(msg.headers or {}),
            )
            await self._finish(
                msg,
                task,
                record,
                TaskStatus.DEAD,
                error=TaskError(code=exc.code, message=exc.message),
            )
            return
        record.status = TaskStatus.QUEUED
        with contextlib.suppress(Exception):
            await self._tasks.overwrite(record)
        delay = exc.retry_after if exc.retry_after is not None else self._s.job_retry_delay
        labelled(NATS_MESSAGES, self._subject, "handed_back").inc()
        log.info(
            "job handed back", task_id=record.id, attempt=attempt, delay=delay, why=exc.message
        )
        await msg.nak(delay=delay)

    async def _finish(
        self,
        msg: Msg,
        task: TaskMessage,
        record: TaskRecord,
        status: TaskStatus,
        *,
        result: Any = None,
        error: TaskError | None = None,
        ran: bool = False,
    ) -> None:
        """Store the outcome, send its callback, then ack: in that order."""
        current = asyncio.current_task()
        if current is not None:
            self._finishing.add(current)
            current.add_done_callback(self._finishing.discard)
        record.status = status
        record.result = result
        record.error = error
        record.finished_at = datetime.now(UTC)
        await self._tasks.overwrite(record)
        if not ran:
            await self._final_frame(record)
        await self._deliver(record)
        await msg.ack()
        labelled(NATS_MESSAGES, self._subject, status.value).inc()
        published = msg.metadata.timestamp
        if published is not None:
            JOB_PUBLISH_TO_DONE.observe(max(0.0, (datetime.now(UTC) - published).total_seconds()))

    async def _final_frame(self, record: TaskRecord) -> None:
        """A job that ended without a run ending it: watchers still get a final frame."""
        if self._finals is None:
            return
        status = "cancelled" if record.status == TaskStatus.CANCELLED else "failed"
        error = record.error.model_dump() if record.error else None
        with contextlib.suppress(Exception):
            await self._finals.ensure_final(record.id, status=status, error=error)

    async def _deliver(self, record: TaskRecord) -> None:
        if record.callback:
            await self._outbox.send(
                task_id=record.id,
                url=record.callback,
                body=CallbackBody.of(record).to_json(),
                traceparent=record.traceparent,
            )

    async def _reject(
        self, msg: Msg, rej: MessageRejected, attempt: int, *, notify: bool = True
    ) -> None:
        """A message that can never run: dead letter, a `failed` callback where possible."""
        await self._dead.add(
            reason=rej.reason,
            detail=rej.detail,
            original=msg.data,
            subject=self._subject,
            attempts=attempt,
            task_id=rej.task_id,
            headers=dict(msg.headers or {}),
        )
        if rej.task_id:
            record = TaskRecord(
                id=rej.task_id,
                status=TaskStatus.DEAD,
                callback=rej.callback or None,
                attempts=attempt,
                worker_id=self._s.worker_id,
                finished_at=datetime.now(UTC),
                error=TaskError(code=rej.reason, message=rej.detail),
                traceparent=_traceparent(),
            )
            with contextlib.suppress(Exception):
                await self._tasks.overwrite(record)
            await self._final_frame(record)
            if notify and rej.callback:
                try:
                    self._policy.check_url(rej.callback)
                except CallbackRefused:
                    pass
                else:
                    await self._deliver(record)
        await msg.ack()
