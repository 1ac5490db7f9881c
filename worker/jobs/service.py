"""The jobs door assembled: topology, result store, outbox, dead letters, runner, control."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.client import Client
from nats.js import JetStreamContext
from opentelemetry import propagate

from worker.agents.store import AgentStore
from worker.broker.dead_letters import DeadLetterWriter
from worker.callbacks.outbox import CallbackBreakers, CallbackOutbox
from worker.callbacks.signing import CallbackSigner
from worker.config import Settings
from worker.jobs.callback_trail import CallbackTrail
from worker.jobs.control import JobControl
from worker.jobs.dead_letters import DeadLetters
from worker.jobs.history import event
from worker.jobs.models import TaskMessage, TaskRecord, TaskStatus
from worker.jobs.outcomes import Finals
from worker.jobs.results import StaleRecord, TaskStore
from worker.jobs.runner import Execute, JobRunner, invoke_without_frames
from worker.jobs.topology import Topology, ensure_all
from worker.outbound.ssrf import CallbackPolicy
from worker.telemetry.metrics import NATS_MESSAGES
from worker.threads import ThreadStore


@dataclass(slots=True)
class Jobs:
    """Everything of the jobs door a handler may need."""

    settings: Settings
    js: JetStreamContext
    tasks: TaskStore
    dead_letters: DeadLetters
    control: JobControl
    policy: CallbackPolicy

    async def submit(self, task: TaskMessage, *, raw: bytes) -> TaskRecord:
        """Publish a job as the Go side would (for clients without NATS); returns its record."""
        stored = await self.tasks.get(task.id)
        record = (
            stored.record
            if stored
            else TaskRecord(
                id=task.id,
                status=TaskStatus.QUEUED,
                agent_id=task.agent_id,
                callback=task.callback,
                stream_url=task.stream_url,
                created_at=datetime.now(UTC),
            )
        )
        if stored is None:
            record.note(event("queued", at=record.created_at))
            with contextlib.suppress(StaleRecord):
                await self.tasks.put(record, revision=None)
        headers: dict[str, str] = {"Nats-Msg-Id": task.id}
        propagate.inject(headers)
        await self.js.publish(self.settings.tasks_subject, raw, headers=headers)
        NATS_MESSAGES.labels(self.settings.tasks_subject, "published").inc()
        return record


@contextlib.asynccontextmanager
async def running_jobs(
    *,
    nc: Client,
    js: JetStreamContext,
    settings: Settings,
    agents: AgentStore,
    policy: CallbackPolicy,
    execute: Execute = invoke_without_frames,
    finals: Finals | None = None,
    threads: ThreadStore | None = None,
) -> AsyncIterator[Jobs]:
    """Start the jobs door; on exit drain the runner (grace period), then stop the rest.

    ``policy`` checks callback targets (the worker's one outbound policy, shared with pushes);
    ``threads``: where jobs naming a ``thread_id`` find it (None: such jobs fail)."""
    topology = Topology.from_settings(settings)
    kv = await ensure_all(js, topology)
    tasks = TaskStore(kv)
    dead = DeadLetterWriter(js, subject=settings.dlq_subject)
    breakers = CallbackBreakers(
        fail_max=settings.callback_breaker_fail_max,
        reset_timeout=settings.callback_breaker_reset,
    )
    outbox = CallbackOutbox(
        js=js,
        stream=settings.callback_stream,
        subject=settings.callback_subject,
        policy=policy,
        signer=CallbackSigner(
            settings.callback_secret.get_secret_value() if settings.callback_secret else None
        ),
        dead_letters=dead,
        breakers=breakers,
        timeout=settings.callback_timeout,
        retry_for=settings.callback_retry_for,
        max_backoff=settings.callback_max_backoff,
        concurrency=settings.callback_concurrency,
        attempt_log=CallbackTrail(tasks),
    )

    async def rebind() -> None:
        await ensure_all(js, topology)

    runner = JobRunner(
        execute=execute,
        finals=finals,
        js=js,
        settings=settings,
        agents=agents,
        tasks=tasks,
        outbox=outbox,
        dead_letters=dead,
        policy=policy,
        on_stall=rebind,
        threads=threads,
    )
    control = JobControl(
        nc=nc,
        js=js,
        settings=settings,
        runner=runner,
        tasks=tasks,
    )
    jobs = Jobs(
        settings=settings,
        js=js,
        tasks=tasks,
        dead_letters=DeadLetters(js=js, stream=settings.dlq_stream, subject=settings.dlq_subject),
        control=control,
        policy=policy,
    )
    await outbox.start()
    await control.start()
    if settings.jobs_enabled:
        await runner.start()
    try:
        yield jobs
    finally:
        try:
            await runner.stop(settings.shutdown_grace)
        finally:
            try:
                await control.stop()
            finally:
                await outbox.stop()
