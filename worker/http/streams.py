"""The streaming endpoints: a task's frames (WebSocket or SSE) and a streamed invocation (SSE);
the helpers the chat socket (``chat``) shares with them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler
from aiohttp_sse import EventSourceResponse, sse_response

from worker.agents.store import ResolvedAgent
from worker.agents.thread_runs import OnThread
from worker.errors import BadRequest, NotFound, Unavailable
from worker.http import sockets
from worker.http.auth.scopes import Scope
from worker.http.envelope import error_body
from worker.http.middleware import REQUEST_ID, read_json
from worker.http.openapi import Operation
from worker.http.schemas import InvokeRequest
from worker.http.state import SERVICES, Services, services
from worker.streaming.feed import Reader
from worker.streaming.frames import WireFrame
from worker.streaming.hub import StreamHub
from worker.streaming.schemas import Frame
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import STREAM_READERS

log = get_logger(__name__)
# After its run ends, a stream waits this long for the final frame to come back from the log.
_FINAL_FRAME_GRACE = 15.0


def hub_of(svc: Services) -> StreamHub:
    """The worker's ``StreamHub`` (503 when the streaming door is not running)."""
    hub = svc.streams
    if hub is None:
        raise Unavailable("the streaming door is not running on this worker")
    return hub


def _from_seq(request: web.Request) -> int:
    """``Last-Event-ID`` (an SSE reconnect: the next frame) or ``?from_seq=`` (default 1)."""
    last_event = request.headers.get("Last-Event-ID")
    raw, offset, name = (
        (last_event, 1, "Last-Event-ID")
        if last_event is not None
        else (request.query.get("from_seq", "1"), 0, "from_seq")
    )
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(f"{name} must be an integer", code="invalid_from_seq") from None
    if value + offset < 1:
        raise BadRequest(f"{name} must be at least {1 - offset}", code="invalid_from_seq")
    return value + offset


def _wants_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _accepts_sse(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return not accept or any(
        part.split(";")[0].strip() in {"text/event-stream", "text/*", "*/*"}
        for part in accept.split(",")
    )


async def _task_known(svc: Services, task_id: str) -> bool:
    """A job queued but not started has no frames yet; the jobs door knows it."""
    if svc.jobs is None:
        return False
    with contextlib.suppress(Exception):
        return await svc.jobs.tasks.get(task_id) is not None
    return False


async def task_events(request: web.Request) -> web.StreamResponse:
    """A task's frames from ``from_seq`` on, then live to the final frame: a WebSocket on an
    upgrade, else SSE (``Last-Event-ID`` resumes)."""
    svc = services(request)
    hub = hub_of(svc)
    task_id = request.match_info["task_id"]
    from_seq = _from_seq(request)
    if await hub.last_seq(task_id) is None and not await _task_known(svc, task_id):
        raise NotFound(f"task {task_id!r} not found", code="task_not_found")
    if _wants_websocket(request):
        return await _events_websocket(request, svc, hub, task_id, from_seq)
    if not _accepts_sse(request):
        raise web.HTTPNotAcceptable(reason="this endpoint answers text/event-stream or WebSocket")
    async with hub.reader(task_id, from_seq=from_seq) as reader:
        return await _serve_sse(request, svc, reader, task_id)


async def _serve_sse(
    request: web.Request,
    svc: Services,
    reader: Reader,
    task_id: str,
    first: WireFrame | None = None,
) -> EventSourceResponse:
    """Stream an entered ``reader`` as SSE, ``first`` (already taken from it) first."""
    hub = hub_of(svc)
    rid = request[REQUEST_ID]
    gauge = STREAM_READERS.labels(svc.settings.service_name, "sse")
    async with sse_response(
        request,
        headers={"X-Task-ID": task_id, "X-Request-ID": rid},
        send_timeout=hub.options.send_timeout,
        ping_interval=hub.options.sse_keepalive,
        allow_all_methods=True,
    ) as resp:
        sockets.bound_send_buffer(request, hub.options)
        gauge.inc()
        try:
            await sockets.pump_sse(resp, reader, service=hub.service, request_id=rid, first=first)
        except TimeoutError:  # aiohttp-sse aborted a socket that took nothing for too long
            sockets.slow_reader_closed(hub.service, "sse", reader)
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        finally:
            gauge.dec()
    return resp


async def _events_websocket(
    request: web.Request, svc: Services, hub: StreamHub, task_id: str, from_seq: int
) -> web.WebSocketResponse:
    ws = sockets.websocket(hub.options)
    await ws.prepare(request)
    sockets.bound_send_buffer(request, hub.options)
    rid = request[REQUEST_ID]
    with sockets.Connections(hub, ws):
        async with hub.reader(task_id, from_seq=from_seq) as reader:
            inbound = asyncio.create_task(_refuse_inbound(ws, rid))
            # The socket closed (by the client, or for a binary message): stop now, not at the
            # next frame, which a quiet task may not send for a long time.
            inbound.add_done_callback(lambda _: reader.outbox.close())
            try:
                code, reason = await sockets.pump_websocket(
                    ws, reader, service=hub.service, send_timeout=hub.options.send_timeout
                )
            except (ConnectionError, RuntimeError):
                code, reason = sockets.DONE, ""
            finally:
                inbound.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await inbound
        await ws.close(code=code, message=reason.encode())
    return ws


async def _refuse_inbound(ws: web.WebSocketResponse, request_id: str) -> None:
    """The events socket only sends: text gets an error message, binary closes it (1003)."""
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(
                error_body(
                    "unexpected_message", "this socket only sends frames", request_id
                ).decode()
            )
        elif msg.type == WSMsgType.BINARY:
            await ws.close(
                code=sockets.UNSUPPORTED_DATA, message=b"binary messages are not accepted"
            )
            return


def start_run(
    hub: StreamHub,
    reader: Reader,
    agent: ResolvedAgent,
    value: Any,
    *,
    run_id: uuid.UUID,
    limit: float,
    thread: OnThread | None = None,
) -> tuple[asyncio.Task[Any], asyncio.Future[None]]:
    """Start the run ``run_id`` of ``agent`` (on ``thread``, if given) as the task ``reader``
    (entered) follows; ``reader`` ends ``_FINAL_FRAME_GRACE`` seconds after the run even if its
    final frame never comes. Returns the run and a future resolved once it has begun (see
    ``until_begun``)."""
    begun = asyncio.get_running_loop().create_future()
    run = asyncio.create_task(
        hub.run(
            agent,
            value,
            task_id=reader.task_id,
            time_limit=limit,
            run_id=run_id,
            thread=thread,
            begun=begun,
        )
    )
    loop = asyncio.get_running_loop()
    # If the final frame never comes back (log unreachable), the stream still ends.
    run.add_done_callback(lambda _: loop.call_later(_FINAL_FRAME_GRACE, reader.outbox.close))
    return run, begun


async def until_begun(run: asyncio.Task[Any], started: asyncio.Future[None]) -> None:
    """Wait until ``run`` has begun (held its thread, emitted ``started``); what stopped it
    before (``ThreadBusy``, an unknown thread...) is raised here, before any frame was sent."""
    if not started.done():
        await asyncio.wait([run, started], return_when=asyncio.FIRST_COMPLETED)
    if not started.done() and run.done():
        run.result()  # raises what ended it


async def stop_run(run: asyncio.Task[Any]) -> None:
    """Cancel ``run`` unless it has ended, and wait for it (its final frame is out then)."""
    if not run.done():
        run.cancel()
    await asyncio.gather(run, return_exceptions=True)


async def agent_stream(request: web.Request) -> web.StreamResponse:
    """Run an agent and stream its frames as SSE; the client leaving cancels the run."""
    svc = services(request)
    hub = hub_of(svc)
    body = InvokeRequest.model_validate(await read_json(request))
    thread = svc.maybe_on_thread(body.thread_id)
    agent = await svc.store.resolve(request.match_info["agent_id"])
    value = agent.agent_type.parse_input(body.input)
    # One id names the run: the task id of its frames (X-Task-ID) and LangChain's run id.
    run_id = uuid.uuid4()
    task_id = str(run_id)
    async with (
        svc.limiter.slot(svc.time_limit(body.timeout)) as limit,
        hub.reader(task_id) as reader,
    ):
        run, started = start_run(
            hub, reader, agent, value, run_id=run_id, limit=limit, thread=thread
        )
        try:
            if thread is not None:
                # A run that cannot have its thread answers here, as JSON (409 thread_busy).
                await until_begun(run, started)
            # Answer once the run's first frame is stored, so a watcher given X-Task-ID finds
            # the task on any worker.
            first = await anext(reader, None)
            if first is None:
                raise Unavailable("the run's frames could not be published; try again")
            return await _serve_sse(request, svc, reader, task_id, first)
        finally:
            await stop_run(run)


ROUTES: list[tuple[Operation, Handler]] = [
    (
        Operation(
            method="GET",
            path="/v1/tasks/{task_id}/events",
            operation_id="taskEvents",
            scope=Scope.STREAMS_READ,
            summary="A task's frames from from_seq (SSE: Last-Event-ID), then live to the final "
            "frame; a WebSocket on an upgrade (subprotocol agentos.v1), else SSE",
            tag="streaming",
            responses={200: Frame, 101: None},
            content_types={200: "text/event-stream"},
            parameters=(
                {
                    "name": "from_seq",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "default": 1},
                    "description": "First seq to send (frames before it are skipped).",
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "SSE reconnect: resume after this seq (wins over from_seq).",
                },
            ),
        ),
        task_events,
    ),
    (
        Operation(
            method="POST",
            path="/v1/agents/{agent_id}/stream",
            operation_id="streamAgent",
            scope=Scope.AGENTS_INVOKE,
            summary="Run an agent and stream its frames as SSE (X-Task-ID names the run; "
            "any worker serves it at /v1/tasks/{task_id}/events); with thread_id, on that "
            "conversation thread (409 thread_busy, as JSON, while another run holds it)",
            tag="streaming",
            request=InvokeRequest,
            responses={200: Frame},
            content_types={200: "text/event-stream"},
        ),
        agent_stream,
    ),
]


async def on_shutdown(app: web.Application) -> None:
    """Close open sockets with 1001 and end SSE streams, so shutdown does not wait on them;
    clients reconnect (to any worker) with ``from_seq`` / ``Last-Event-ID``."""
    hub = app[SERVICES].streams
    if hub is None:
        return
    hub.fanout.shut_down()
    for ws in list(hub.connections):
        with contextlib.suppress(Exception):
            await ws.close(code=sockets.GOING_AWAY, message=b"worker shutting down")
