"""The streaming endpoints: a task's frames (WebSocket or SSE), a streamed invocation (SSE),
and the interactive chat socket."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from aiohttp_sse import EventSourceResponse, sse_response
from pydantic import ValidationError

from worker.agents.store import ResolvedAgent
from worker.errors import BadRequest, NotFound, Unavailable, WorkerError
from worker.http.middleware import REQUEST_ID, read_json
from worker.http.openapi import Handler, Operation
from worker.http.schemas import InvokeRequest
from worker.http.state import SERVICES, Services, services
from worker.streaming import sockets
from worker.streaming.feed import Reader
from worker.streaming.frames import WireFrame
from worker.streaming.hub import StreamHub
from worker.streaming.schemas import ChatMessage, Frame
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import STREAM_READERS

log = get_logger(__name__)
# After its run ends, a stream waits this long for the final frame to come back from the log.
_FINAL_FRAME_GRACE = 15.0


def _hub(svc: Services) -> StreamHub:
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
    hub = _hub(svc)
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
    hub = _hub(svc)
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
                sockets.error_message(
                    "unexpected_message", "this socket only sends frames", request_id
                ).decode()
            )
        elif msg.type == WSMsgType.BINARY:
            await ws.close(
                code=sockets.UNSUPPORTED_DATA, message=b"binary messages are not accepted"
            )
            return


def _timeout(svc: Services, requested: float | None) -> float:
    if requested is not None and requested <= 0:
        raise BadRequest("timeout must be positive", code="validation_error")
    return min(requested or svc.settings.invoke_timeout, svc.settings.max_invoke_timeout)


def _start_run(
    hub: StreamHub,
    reader: Reader,
    agent: ResolvedAgent,
    value: Any,
    *,
    task_id: str,
    limit: float,
) -> asyncio.Task[Any]:
    run = asyncio.create_task(hub.run(agent, value, task_id=task_id, time_limit=limit))
    loop = asyncio.get_running_loop()
    # If the final frame never comes back (log unreachable), the stream still ends.
    run.add_done_callback(lambda _: loop.call_later(_FINAL_FRAME_GRACE, reader.outbox.close))
    return run


async def _stop(run: asyncio.Task[Any]) -> None:
    if not run.done():
        run.cancel()
    await asyncio.gather(run, return_exceptions=True)


async def agent_stream(request: web.Request) -> web.StreamResponse:
    """Run an agent and stream its frames as SSE; the client leaving cancels the run."""
    svc = services(request)
    hub = _hub(svc)
    body = InvokeRequest.model_validate(await read_json(request))
    agent = await svc.store.resolve(request.match_info["agent_id"])
    value = agent.agent_type.parse_input(body.input)
    limit = _timeout(svc, body.timeout)
    task_id = uuid.uuid4().hex
    limit -= await svc.limiter.acquire(limit)
    try:
        async with hub.reader(task_id) as reader:
            run = _start_run(hub, reader, agent, value, task_id=task_id, limit=limit)
            try:
                # Answer once the run's first frame is stored, so a watcher given X-Task-ID
                # finds the task on any worker.
                first = await anext(reader, None)
                if first is None:
                    raise Unavailable("the run's frames could not be published; try again")
                return await _serve_sse(request, svc, reader, task_id, first)
            finally:
                await _stop(run)
    finally:
        svc.limiter.release()


async def agent_socket(request: web.Request) -> web.StreamResponse:
    """The interactive chat socket: each ``{"input": ...}`` starts a run whose frames follow;
    ``{"cancel": true}`` cancels it. One run at a time; errors come back as messages."""
    svc = services(request)
    hub = _hub(svc)
    agent = await svc.store.resolve(request.match_info["agent_id"])
    rid = request[REQUEST_ID]
    ws = sockets.websocket(hub.options)
    await ws.prepare(request)
    sockets.bound_send_buffer(request, hub.options)
    chat = _Chat(svc=svc, hub=hub, ws=ws, agent=agent, request_id=rid)
    with sockets.Connections(hub, ws):
        try:
            await chat.serve()
        finally:
            await chat.stop()
    return ws


class _Chat:
    """One chat socket's state: at most one run, whose frames are pumped to the socket."""

    def __init__(
        self,
        *,
        svc: Services,
        hub: StreamHub,
        ws: web.WebSocketResponse,
        agent: ResolvedAgent,
        request_id: str,
    ) -> None:
        self.svc, self.hub, self.ws, self.agent, self.rid = svc, hub, ws, agent, request_id
        self.pump: asyncio.Task[None] | None = None
        self.run: asyncio.Task[Any] | None = None

    async def error(self, code: str, message: str, details: Any = None) -> None:
        await self.ws.send_str(
            sockets.error_message(code, message, self.rid, details=details).decode()
        )

    async def serve(self) -> None:
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY:
                await self.ws.close(
                    code=sockets.UNSUPPORTED_DATA, message=b"binary messages are not accepted"
                )
                return
            if msg.type == WSMsgType.TEXT:
                await self.on_text(msg.data)

    async def on_text(self, text: str) -> None:
        try:
            message = ChatMessage.model_validate(orjson.loads(text))
        except orjson.JSONDecodeError as exc:
            await self.error("malformed_json", f"message is not valid JSON: {exc}")
            return
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            await self.error("validation_error", "message is invalid", details)
            return
        # Busy until the run has ended (its final frame is out), not until the pump has.
        busy = self.run is not None and not self.run.done()
        if message.cancel:
            if busy and self.run is not None:
                self.run.cancel()
            return
        if busy:
            await self.error("busy", 'a run is in progress; send {"cancel": true} to stop it')
            return
        if message.input is None:
            await self.error("validation_error", "input is required")
            return
        try:
            value = self.agent.agent_type.parse_input(message.input)
            limit = _timeout(self.svc, message.timeout)
            # No waiting here: the socket must keep reading (a cancel may come).
            await self.svc.limiter.acquire(0)
        except WorkerError as exc:
            await self.error(exc.code, exc.message, exc.details)
            return
        self.pump = asyncio.create_task(self._run(value, limit))

    async def _run(self, value: Any, limit: float) -> None:
        task_id = uuid.uuid4().hex
        try:
            async with self.hub.reader(task_id) as reader:
                self.run = _start_run(
                    self.hub, reader, self.agent, value, task_id=task_id, limit=limit
                )
                try:
                    code, reason = await sockets.pump_websocket(
                        self.ws,
                        reader,
                        service=self.hub.service,
                        send_timeout=self.hub.options.send_timeout,
                    )
                finally:
                    await _stop(self.run)
            if code != sockets.DONE:
                await self.ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError):
            pass  # the client went away mid-run
        finally:
            self.svc.limiter.release()

    async def stop(self) -> None:
        if self.pump is not None and not self.pump.done():
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump


ROUTES: list[tuple[Operation, Handler]] = [
    (
        Operation(
            method="GET",
            path="/v1/tasks/{task_id}/events",
            operation_id="taskEvents",
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
            summary="Run an agent and stream its frames as SSE (X-Task-ID names the run; "
            "any worker serves it at /v1/tasks/{task_id}/events)",
            tag="streaming",
            request=InvokeRequest,
            responses={200: Frame},
            content_types={200: "text/event-stream"},
        ),
        agent_stream,
    ),
    (
        Operation(
            method="GET",
            path="/v1/agents/{agent_id}/ws",
            operation_id="agentSocket",
            summary='Chat socket: send {"input": ...} (or {"cancel": true}), receive frames',
            tag="streaming",
            responses={101: None},
        ),
        agent_socket,
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
