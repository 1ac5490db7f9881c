"""Handlers for conversation threads (CONTRACT section 6): create, read, history, delete, and
resume an interrupted thread. Runs on a thread start from the invoke and stream bodies and the
chat socket (``thread_id``); the threads themselves live in the pool's NATS
(``worker.threads``), so any worker serves any thread."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from worker.agents import thread_runs
from worker.errors import BadRequest
from worker.http.agents import answer
from worker.http.auth.scopes import Scope
from worker.http.middleware import read_json
from worker.http.openapi import Operation
from worker.http.schemas import (
    CreateThread,
    ErrorBody,
    InvokeResponse,
    ResumeRequest,
    Thread,
    ThreadHistory,
    ThreadState,
)
from worker.http.state import json_response, services
from worker.threads import ThreadStore, check_thread_id
from worker.threads.keys import THREAD_ID_PATTERN

DEFAULT_HISTORY = 100
MAX_HISTORY = 1000


def _thread_id(request: web.Request) -> str:
    return check_thread_id(request.match_info["thread_id"])


async def create_thread(request: web.Request) -> web.Response:
    """A new thread (its id chosen by the caller or here); 409 ``thread_exists`` if taken."""
    body = CreateThread()
    if request.can_read_body:
        body = CreateThread.model_validate(await read_json(request))
    record = await services(request).thread_store().create(body.thread_id, metadata=body.metadata)
    return json_response(
        record.to_json(), status=201, headers={"Location": f"/v1/threads/{record.thread_id}"}
    )


async def get_thread(request: web.Request) -> web.Response:
    """The thread now: idle, busy or interrupted, and its latest values."""
    state = await services(request).thread_store().get(_thread_id(request))
    return json_response(state.to_json())


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_HISTORY
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_HISTORY:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_HISTORY}", code="invalid_limit")
    return limit


async def thread_history(request: web.Request) -> web.Response:
    """The thread's checkpoints, newest first (``?limit=``, older than ``?before=``)."""
    thread_id = _thread_id(request)
    found = (
        await services(request)
        .thread_store()
        .history(thread_id, limit=_limit(request), before=request.query.get("before") or None)
    )
    return json_response({"thread_id": thread_id, "checkpoints": [c.to_json() for c in found]})


async def delete_thread(request: web.Request) -> web.Response:
    """Remove the thread and its checkpoints; 409 ``thread_busy`` while a run holds it."""
    await services(request).thread_store().delete(_thread_id(request))
    return web.Response(status=204)


async def resume_thread(request: web.Request) -> web.Response:
    """Answer an interrupted thread's question and continue its run: the invoke answer."""
    svc = services(request)
    thread_id = _thread_id(request)
    body = ResumeRequest.model_validate(await read_json(request))
    on = svc.on_thread(thread_id, resume=thread_runs.Resume(body.resume))
    agent_id = body.agent_id or await _last_agent(svc.thread_store(), thread_id)
    agent = await svc.store.resolve(agent_id)
    async with svc.limiter.slot(svc.time_limit(body.timeout)) as remaining:
        result = await thread_runs.invoke(agent, None, on, time_limit=remaining)
    return answer(result, agent.record, svc)


async def _last_agent(threads: ThreadStore, thread_id: str) -> str:
    """The agent that last ran ``thread_id`` (404 for an unknown thread; 409
    ``thread_not_interrupted`` when it asks nothing, as the run itself would say)."""
    state = await threads.get(thread_id)
    if not state.interrupts:
        raise thread_runs.not_interrupted(thread_id)
    agent_id = state.metadata.get("agent_id")
    if not isinstance(agent_id, str) or not agent_id:
        raise BadRequest(
            f"no agent has run thread {thread_id!r} yet: name one with agent_id",
            code="validation_error",
        )
    return agent_id


_THREAD_PARAMETER = {
    "name": "thread_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": THREAD_ID_PATTERN},
    "description": "1 to 128 characters of A-Z a-z 0-9 _ . - (else 400 invalid_thread_id).",
}

ROUTES: list[tuple[Operation, Handler]] = [
    (
        Operation(
            method="POST",
            path="/v1/threads",
            operation_id="createThread",
            scope=Scope.THREADS_WRITE,
            summary="Create a conversation thread (a run naming a new thread_id creates it too)",
            tag="threads",
            request=CreateThread,
            request_required=False,
            responses={201: Thread},
        ),
        create_thread,
    ),
    (
        Operation(
            method="GET",
            path="/v1/threads/{thread_id}",
            operation_id="getThread",
            scope=Scope.THREADS_READ,
            summary="A thread now: idle, busy or interrupted, with its messages",
            tag="threads",
            responses={200: ThreadState},
            parameters=(_THREAD_PARAMETER,),
        ),
        get_thread,
    ),
    (
        Operation(
            method="DELETE",
            path="/v1/threads/{thread_id}",
            operation_id="deleteThread",
            scope=Scope.THREADS_WRITE,
            summary="Delete a thread and its checkpoints (409 thread_busy while a run holds it)",
            tag="threads",
            responses={204: None},
            parameters=(_THREAD_PARAMETER,),
        ),
        delete_thread,
    ),
    (
        Operation(
            method="GET",
            path="/v1/threads/{thread_id}/history",
            operation_id="threadHistory",
            scope=Scope.THREADS_READ,
            summary="A thread's checkpoints, newest first",
            tag="threads",
            responses={200: ThreadHistory},
            parameters=(
                _THREAD_PARAMETER,
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_HISTORY,
                        "default": DEFAULT_HISTORY,
                    },
                    "description": "The most checkpoints to return.",
                },
                {
                    "name": "before",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Only checkpoints older than this checkpoint id.",
                },
            ),
        ),
        thread_history,
    ),
    (
        Operation(
            method="POST",
            path="/v1/threads/{thread_id}/resume",
            operation_id="resumeThread",
            scope=Scope.AGENTS_INVOKE,
            summary="Answer an interrupted thread's question and continue its run (409 "
            "thread_not_interrupted when it asks nothing, thread_busy while a run holds it; "
            "422 budget_exceeded when the run would pass its agent's limits)",
            tag="threads",
            request=ResumeRequest,
            responses={200: InvokeResponse, 422: ErrorBody},
            parameters=(_THREAD_PARAMETER,),
        ),
        resume_thread,
    ),
]
