"""``StreamHub``: frames for every run, published to the pool's log, pushed, and served.

``run`` is what the job runner and the streaming endpoints call instead of ``runtime.invoke``:
the same deadline, limits, metrics and errors, plus frames. What a watcher of a task sees:

- ``started`` (seq continues after the task's last stored frame, ``attempt`` counts runs),
  ``processing`` frames (tokens, steps), then one final ``completed`` / ``failed`` /
  ``cancelled`` / ``interrupted`` frame holding ``result``, ``error`` or ``interrupt`` (what a
  run on a thread asks a person, CONTRACT section 6);
- if the job runs again (a worker crashed mid-run, or the run was handed back), the frames of
  the new attempt follow with the next ``seq``: a new ``started`` frame with a higher
  ``attempt``, progress from 0 and partial results from scratch. A handed-back or retryable
  failed attempt ends with a ``processing`` frame saying so, never a final frame;
- a deadline ends with ``failed``, error code ``timeout`` (as the job callback says);
- the final frame carries what the run spent (``usage``, ``time_to_first_token``), whatever
  ended it; a run stopped by its agent's limits ends ``failed`` with ``budget_exceeded``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from langchain_core.runnables import Runnable, RunnableConfig
from nats.aio.client import Client
from nats.js import JetStreamContext
from opentelemetry import trace

from worker.agents import runtime, thread_runs
from worker.agents.accounting import UsageTracker
from worker.agents.runtime import RunResult
from worker.agents.store import ResolvedAgent
from worker.agents.thread_runs import OnThread, ThreadRun
from worker.broker.connection import ConnectOptions
from worker.config import Settings
from worker.errors import HANDBACK, AgentFailed, DeadlineExceeded, WorkerError
from worker.outbound.session import checked_session
from worker.outbound.ssrf import CallbackPolicy
from worker.streaming.agent_events import MAX_OUTPUT_BYTES, interrupt_draft, stream_agent
from worker.streaming.feed import Fanout, Reader
from worker.streaming.frames import (
    CANCELLED,
    COMPLETED,
    FAILED,
    INTERRUPT,
    INTERRUPTED,
    PROCESSING,
    STARTED,
    Draft,
    WireFrame,
)
from worker.streaming.live import LiveConnection
from worker.streaming.log import FrameLog, LogLimits
from worker.streaming.outbox import FrameQueue
from worker.streaming.push import Pusher, PushOptions
from worker.streaming.writer import FrameWriter, claim_next

_FINAL_MESSAGES = {COMPLETED: "Execution completed", CANCELLED: "Execution cancelled"}
_NO_THREAD: AbstractAsyncContextManager[None] = contextlib.nullcontext()


@dataclass(frozen=True, kw_only=True)
class StreamOptions:
    """Every knob of the streaming door (from ``Settings``: ``StreamOptions.from_settings``)."""

    stream: str = "AGENTOS_FRAMES"
    limits: LogLimits = field(
        default_factory=lambda: LogLimits(max_age=86400.0, max_bytes=1 << 30, max_per_task=10_000)
    )
    queue_frames: int = 256
    queue_bytes: int = 1 << 20
    socket_buffer: int = 256 << 10
    send_timeout: float = 30.0
    ws_heartbeat: float = 20.0
    ws_max_message_bytes: int = 64 << 10
    sse_keepalive: float = 15.0
    flush_timeout: float = 10.0
    idle_check: float = 5.0
    tool_output_bytes: int = MAX_OUTPUT_BYTES
    """Bytes of a tool's output or error text its frame carries (longer: cut, ``truncated``)."""
    own_live_connection: bool = True
    """Live feeds on a NATS connection of their own (with nats-py's fast path): see ``live``."""
    push: PushOptions = field(default_factory=PushOptions)

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamOptions:
        """The options the ``WORKER_*`` settings say."""
        return cls(
            stream=settings.frames_stream,
            limits=LogLimits(
                max_age=settings.frames_max_age,
                max_bytes=settings.frames_max_bytes,
                max_per_task=settings.frames_max_per_task,
                replicas=settings.frames_replicas,
            ),
            queue_frames=settings.stream_queue_frames,
            queue_bytes=settings.stream_queue_bytes,
            socket_buffer=settings.stream_socket_buffer,
            send_timeout=settings.stream_send_timeout,
            tool_output_bytes=settings.stream_tool_output_bytes,
            ws_heartbeat=settings.ws_heartbeat,
            ws_max_message_bytes=settings.ws_max_message_bytes,
            sse_keepalive=settings.sse_keepalive,
            push=PushOptions(
                give_up=settings.push_give_up,
                max_backoff=settings.push_max_backoff,
                queue_frames=settings.stream_queue_frames,
                queue_bytes=settings.stream_queue_bytes,
            ),
        )


def _failed(code: str, message: str, progress: int) -> Draft:
    return Draft(
        status=FAILED,
        progress=progress,
        message="Execution failed",
        error={"code": code, "message": message},
    )


def _ended(result: RunResult, progress: int) -> Draft:
    """The final frame of a run that ended by itself: completed, or asking a person."""
    if result.status == "interrupted":
        return Draft(
            status=INTERRUPTED,
            progress=progress,
            message="Waiting for input",
            interrupt=result.interrupt,
        )
    return Draft(
        status=COMPLETED, progress=100, message="Execution completed", result=result.output
    )


def _ending(exc: BaseException, progress: int) -> Draft | None:
    """The last frame of a run that raised ``exc``: final, unless the job runs again."""
    if isinstance(exc, asyncio.CancelledError):
        return _cancelled(exc, progress)
    if not isinstance(exc, WorkerError):
        return None
    if isinstance(exc, DeadlineExceeded):
        return _failed("timeout", exc.message, progress)
    if isinstance(exc, AgentFailed):
        return _failed("agent_error", exc.message, progress)
    if exc.retryable:  # the job is handed back and runs again: not the end
        return Draft(
            status=PROCESSING,
            progress=progress,
            message=f"Attempt failed ({exc.code}); the job will be retried",
        )
    return _failed(exc.code, exc.message, progress)


def _cancelled(exc: asyncio.CancelledError, progress: int) -> Draft:
    if exc.args and exc.args[0] == HANDBACK:
        return Draft(
            status=PROCESSING,
            progress=progress,
            message="Run interrupted; the job will run again on another worker",
        )
    return Draft(
        status=CANCELLED,
        progress=progress,
        message="Execution cancelled",
        error={"code": "cancelled", "message": "the run was cancelled"},
    )


class StreamHub:
    """Frames for every run: published to a JetStream stream, pushed to stream_url, served."""

    def __init__(
        self,
        *,
        nc: Client,
        js: JetStreamContext,
        service: str,
        policy: CallbackPolicy,
        options: StreamOptions | None = None,
        connect: ConnectOptions | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        """``connect``: how the live frames' own connection reaches NATS (see ``live``)."""
        self.options = options or StreamOptions()
        self.service = service
        self._policy = policy  # where pushes may connect (the worker's outbound policy)
        self._push_session: aiohttp.ClientSession | None = None
        self._tracer = tracer  # the push client's spans (default: the global provider's)
        self.log = FrameLog(nc=nc, js=js, stream=self.options.stream, limits=self.options.limits)
        self.live = LiveConnection(
            shared=nc, connect=connect, own_connection=self.options.own_live_connection
        )
        self.fanout = Fanout(log=self.log, live=self.live, idle_check=self.options.idle_check)
        self._pushers: set[asyncio.Task[None]] = set()
        self.connections: set[Any] = set()
        """Open server WebSockets, closed with 1001 at shutdown."""

    async def start(self) -> None:
        """Create or update the frames stream (bounded retention), start the live feeds and
        open the push client's session."""
        await self.log.ensure()
        await self.live.start()
        self.fanout.start()
        opening = self.options.push.open_timeout
        self._push_session = checked_session(
            self._policy,
            # The handshake is bounded; an open WebSocket is not (aiohttp lifts the read bound).
            timeout=aiohttp.ClientTimeout(total=None, connect=opening, sock_read=opening),
            limit=0,  # a push holds its connection for the whole run: no pool to wait for
        )

    async def stop(self) -> None:
        """Stop pushing and following."""
        for task in list(self._pushers):
            task.cancel()
        await asyncio.gather(*self._pushers, return_exceptions=True)
        if self._push_session is not None:
            await self._push_session.close()
        await self.fanout.stop()
        await self.live.stop()

    @property
    def pushing(self) -> int:
        """Push clients running now."""
        return len(self._pushers)

    async def run(
        self,
        agent: ResolvedAgent,
        value: Any,
        *,
        task_id: str,
        time_limit: float,
        stream_url: str | None = None,
        traceparent: str | None = None,
        run_id: uuid.UUID | None = None,
        thread: OnThread | None = None,
        begun: asyncio.Future[None] | None = None,
        tracker: UsageTracker | None = None,
    ) -> RunResult:
        """Run the agent with frame callbacks, emitting started, processing... and a final
        frame for ``task_id``; return ``RunResult`` like ``runtime.invoke`` and raise the same
        errors (``DeadlineExceeded``, ``AgentFailed``, ``asyncio.CancelledError`` after the
        final frame is published). ``run_id``, ``tracker``: see ``runtime.execute``.

        With ``thread`` the run holds that thread first (``thread_runs.hold``): what keeps it
        from getting the thread (busy, unknown, not interrupted...) is raised before any frame
        is emitted, and the final frame goes out once the thread is free again, so whoever
        reads it may start the thread's next run at once. ``begun`` is resolved when the run
        has emitted its ``started`` frame (a caller waiting on it learns of such errors first).
        """
        writer = FrameWriter(log=self.log, task_id=task_id, service=self.service)
        claim: AbstractAsyncContextManager[ThreadRun | None] = (
            _NO_THREAD if thread is None else thread_runs.hold(agent, value, thread, run_id=run_id)
        )
        last: Draft | None = None
        if tracker is None:
            tracker = agent.tracker()

        async def work(config: RunnableConfig) -> Any:
            return await stream_agent(
                agent, value, config, writer.emit, max_output_bytes=self.options.tool_output_bytes
            )

        try:
            async with claim as held:
                writer.start()  # not before: a run that cannot have its thread emits nothing
                if stream_url:
                    self._push(task_id, stream_url, writer.attempt, traceparent)
                writer.emit(Draft(status=STARTED, progress=0, message="Execution started"))
                if begun is not None and not begun.done():
                    begun.set_result(None)
                try:
                    if held is None:
                        result = await runtime.execute(
                            agent, work, time_limit=time_limit, run_id=run_id, tracker=tracker
                        )
                    else:
                        result = await self._on_thread(held, agent, writer, time_limit, tracker)
                except BaseException as exc:
                    last = _ending(exc, writer.progress)
                    raise
                last = _ended(result, writer.progress)
            return result
        finally:
            if last is not None:
                if last.final and tracker is not None:
                    last.spent = tracker.to_json()  # the tracker is closed: the run is over
                writer.emit(last)
            await asyncio.shield(writer.close(self.options.flush_timeout))

    async def _on_thread(
        self,
        run: ThreadRun,
        agent: ResolvedAgent,
        writer: FrameWriter,
        time_limit: float,
        tracker: UsageTracker | None,
    ) -> RunResult:
        """Execute ``run`` with frame callbacks. The callbacks report each ``interrupt()`` as
        its node raises it; one of the result they did not report still gets its ``interrupt``
        frame here, so that every interrupted run has one before its final frame."""
        asked: set[str | None] = set()  # the interrupts reported by frames so far, by id

        def emit(draft: Draft) -> None:
            if draft.event == INTERRUPT and draft.data is not None:
                asked.add(draft.data.get("id"))
            writer.emit(draft)

        async def call(graph: Runnable[Any, Any], graph_input: Any, config: RunnableConfig) -> Any:
            return await stream_agent(
                agent,
                graph_input,
                config,
                emit,
                max_output_bytes=self.options.tool_output_bytes,
                runnable=graph,
            )

        result = await run.execute(call, time_limit=time_limit, tracker=tracker)
        for question in result.interrupts:
            if question["id"] not in asked:
                progress = writer.progress
                writer.emit(
                    interrupt_draft(
                        question["value"], progress=progress, interrupt_id=question["id"]
                    )
                )
        return result

    def _push(
        self,
        task_id: str,
        url: str,
        attempt: asyncio.Future[int],
        traceparent: str | None,
    ) -> None:
        if self._push_session is None:
            raise RuntimeError("StreamHub.start() was not called")
        pusher = Pusher(
            fanout=self.fanout,
            session=self._push_session,
            task_id=task_id,
            url=url,
            attempt=attempt,
            service=self.service,
            options=self.options.push,
            traceparent=traceparent,
            tracer=self._tracer,
        )
        task = asyncio.create_task(pusher.run(), name=f"push:{task_id}")
        self._pushers.add(task)
        task.add_done_callback(self._pushers.discard)

    def reader(self, task_id: str, *, from_seq: int = 1) -> Reader:
        """A reader of ``task_id`` from ``from_seq`` with a coalescing, bounded queue."""
        queue = FrameQueue(max_frames=self.options.queue_frames, max_bytes=self.options.queue_bytes)
        return Reader(fanout=self.fanout, task_id=task_id, from_seq=from_seq, outbox=queue)

    async def last_seq(self, task_id: str) -> tuple[int, bool] | None:
        """``(seq, final)`` of the task's newest stored frame, or ``None`` if it has none."""
        last = await self.log.last(task_id)
        return None if last is None else (last.seq, last.final)

    async def ensure_final(
        self,
        task_id: str,
        *,
        status: str,
        result: Any = None,
        error: dict[str, str] | None = None,
    ) -> None:
        """Publish a final frame for ``task_id`` unless its newest frame is one already.

        For job outcomes reached without a run that ended itself (cancelled before it ran,
        dead after its last delivery), so watchers always see an end.
        """
        draft = Draft(
            status=status,
            progress=100 if status == COMPLETED else 0,
            message=_FINAL_MESSAGES.get(status, "Execution failed"),
            result=result,
            error=error,
        )

        def final(newest: WireFrame | None, seq: int) -> tuple[bytes, None] | None:
            if newest is not None and newest.final:
                return None
            attempt = newest.attempt if newest else 1
            return draft.encode(task_id=task_id, seq=seq, attempt=attempt), None

        # Such a task has frames more often than not: read the newest before guessing.
        await claim_next(self.log, task_id, final, newest=await self.log.last(task_id))
