"""The interactive chat socket, ``GET /v1/agents/{agent_id}/ws``: each ``{"input": ...}`` starts
a run whose frames follow on the socket; ``{"cancel": true}`` cancels it. With ``thread_id``
the run continues that conversation thread (a thread another run holds: a ``thread_busy`` error
message, at once)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from worker.agents.store import ResolvedAgent
from worker.agents.thread_runs import OnThread
from worker.errors import WorkerError, validation_details
from worker.http import sockets
from worker.http.auth.scopes import Scope
from worker.http.envelope import error_body
from worker.http.middleware import REQUEST_ID
from worker.http.openapi import Operation
from worker.http.state import Services, services
from worker.http.streams import hub_of, start_run, stop_run, until_begun
from worker.streaming.hub import StreamHub
from worker.streaming.schemas import ChatMessage


async def agent_socket(request: web.Request) -> web.StreamResponse:
    """The chat socket: one run at a time; errors come back as messages."""
    svc = services(request)
    hub = hub_of(svc)
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
    """One chat socket's state: at most one run, whose frames a pump task sends to the socket.

    The pump holds the run's invocation slot from start to end (``async with``), so a pump
    cancelled before it starts (the socket closed right after its input) holds none.
    """

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
        """The newest pump; an older one may still be sending its run's last frames."""
        self.pumps: set[asyncio.Task[None]] = set()
        self.run: asyncio.Task[Any] | None = None
        self.cancel_asked = False

    @property
    def busy(self) -> bool:
        """A run is starting or running. Busy until the run has ended (its final frame is out),
        not until the pump has: a client may send its next input on the final frame."""
        if self.run is not None:
            return not self.run.done()
        return self.pump is not None and not self.pump.done()

    async def error(self, code: str, message: str, details: Any = None) -> None:
        await self.ws.send_str(error_body(code, message, self.rid, details=details).decode())

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
            await self.error("validation_error", "message is invalid", validation_details(exc))
            return
        if message.cancel:
            if self.busy:
                self.cancel()
            return
        if self.busy:
            await self.error("busy", 'a run is in progress; send {"cancel": true} to stop it')
            return
        if message.input is None:
            await self.error("validation_error", "input is required")
            return
        try:
            value = self.agent.agent_type.parse_input(message.input)
            limit = self.svc.time_limit(message.timeout)
            thread = self.svc.maybe_on_thread(message.thread_id)
        except WorkerError as exc:
            await self.error(exc.code, exc.message, exc.details)
            return
        self.run = None
        self.cancel_asked = False
        self.pump = asyncio.create_task(self._pump(value, limit, thread))
        self.pumps.add(self.pump)
        self.pump.add_done_callback(self.pumps.discard)

    def cancel(self) -> None:
        """Cancel the run; one still starting is cancelled as soon as it has started."""
        if self.run is not None:
            self.run.cancel()
        else:
            self.cancel_asked = True

    async def _pump(self, value: Any, limit: float, thread: OnThread | None) -> None:
        run_id = uuid.uuid4()  # also the task id of its frames
        try:
            # No waiting for a slot: a full worker says so at once, and the socket keeps being
            # read meanwhile (a cancel may come).
            async with (
                self.svc.limiter.slot(limit, wait=False) as remaining,
                self.hub.reader(str(run_id)) as reader,
            ):
                run, started = start_run(
                    self.hub,
                    reader,
                    self.agent,
                    value,
                    run_id=run_id,
                    limit=remaining,
                    thread=thread,
                )
                try:
                    if thread is not None:
                        # thread_busy and the like come back as an error message, at once; a
                        # cancel meanwhile waits for the run to begin (below).
                        await until_begun(run, started)
                    self.run = run
                    if self.cancel_asked:
                        # After the run's first step, so that it ends with a cancelled frame
                        # like any cancelled run (cancelled before it starts, it would send
                        # none at all).
                        asyncio.get_running_loop().call_soon(run.cancel)
                    code, reason = await sockets.pump_websocket(
                        self.ws,
                        reader,
                        service=self.hub.service,
                        send_timeout=self.hub.options.send_timeout,
                    )
                finally:
                    await stop_run(run)
            if code != sockets.DONE:
                await self.ws.close(code=code, message=reason.encode())
        except WorkerError as exc:  # no slot free, or the thread cannot be had
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.error(exc.code, exc.message, exc.details)
        except (ConnectionError, RuntimeError):
            pass  # the client went away mid-run

    async def stop(self) -> None:
        """Cancel every pump (and so its run) and wait for them: the socket is closed."""
        pumps = list(self.pumps)
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


ROUTES: list[tuple[Operation, Handler]] = [
    (
        Operation(
            method="GET",
            path="/v1/agents/{agent_id}/ws",
            operation_id="agentSocket",
            scope=Scope.AGENTS_INVOKE,
            summary='Chat socket: send {"input": ...} (or {"cancel": true}), receive frames',
            tag="streaming",
            responses={101: None},
        ),
        agent_socket,
    ),
]
