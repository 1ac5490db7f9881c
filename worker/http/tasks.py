"""Handlers for jobs over HTTP (CONTRACT section 1): submit, read, cancel; dead letters."""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from nats.js.errors import NotFoundError

from worker.errors import BadRequest, Conflict, NotFound, Unavailable
from worker.http.auth.scopes import Scope
from worker.http.middleware import read_json
from worker.http.openapi import Operation
from worker.http.state import json_response, services
from worker.jobs.dead_letters import DeadLetterList, ReplayResult
from worker.jobs.models import MessageRejected, TaskAccepted, TaskMessage, TaskView, parse_task
from worker.jobs.results import Stored
from worker.jobs.service import Jobs
from worker.outbound.ssrf import CallbackRefused


def _jobs(request: web.Request) -> Jobs:
    jobs = services(request).jobs
    if jobs is None:
        raise Unavailable("the jobs door is not running on this worker")
    return jobs


async def submit_task(request: web.Request) -> web.Response:
    """Queue a job (a ``TaskMessage``) exactly as if published on ``agent.execute``."""
    jobs = _jobs(request)
    body = await read_json(request)
    raw = orjson.dumps(body)
    try:
        task = parse_task(raw)
    except MessageRejected as rej:
        raise BadRequest(rej.detail, code=rej.reason) from None
    if task.callback:
        try:
            jobs.policy.check_url(task.callback)
        except CallbackRefused as exc:
            raise BadRequest(str(exc), code="callback_not_allowed") from None
    await services(request).store.get(task.agent_id)  # 404 now rather than a dead letter later
    record = await jobs.submit(task, raw=raw)
    location = f"/v1/tasks/{task.id}"
    return json_response(
        TaskAccepted(id=task.id, status=record.status, location=location),
        status=202,
        headers={"Location": location},
    )


async def _stored(jobs: Jobs, task_id: str) -> Stored:
    """The stored record of ``task_id`` (404 ``task_not_found`` if none)."""
    stored = await jobs.tasks.get(task_id)
    if stored is None:
        raise NotFound(f"task {task_id!r} not found", code="task_not_found")
    return stored


async def get_task(request: web.Request) -> web.Response:
    """A job's state, attempts, timestamps and result or error."""
    stored = await _stored(_jobs(request), request.match_info["task_id"])
    return json_response(TaskView.of(stored.record))


async def cancel_task(request: web.Request) -> web.Response:
    """Cancel a job wherever it is; its callback reports ``cancelled``."""
    jobs = _jobs(request)
    task_id = request.match_info["task_id"]
    stored = await _stored(jobs, task_id)
    if stored.record.status.final:
        raise Conflict(
            f"task {task_id!r} is already {stored.record.status.value}", code="task_finished"
        )
    await jobs.control.request_cancel(task_id)
    after = await jobs.tasks.get(task_id)
    view = TaskView.of(after.record) if after else None
    return json_response(view, status=202)


async def list_dead_letters(request: web.Request) -> web.Response:
    """Dead letters, oldest first; page with ``?after_seq=`` and ``?limit=``."""
    try:
        after = int(request.query.get("after_seq", "0"))
        limit = min(int(request.query.get("limit", "100")), 1000)
    except ValueError:
        raise BadRequest("after_seq and limit are integers") from None
    page: DeadLetterList = await _jobs(request).dead_letters.list(after_seq=after, limit=limit)
    return json_response(page)


async def replay_dead_letter(request: web.Request) -> web.Response:
    """Republish a dead letter to its original subject and remove it."""
    try:
        seq = int(request.match_info["seq"])
    except ValueError:
        raise NotFound("dead letter not found", code="dead_letter_not_found") from None
    try:
        result = await _jobs(request).dead_letters.replay(seq)
    except NotFoundError:
        raise NotFound(f"dead letter {seq} not found", code="dead_letter_not_found") from None
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    return json_response(result, status=202)


ROUTES: list[tuple[Operation, Handler]] = [
    (
        Operation(
            method="POST",
            path="/v1/tasks",
            operation_id="submitTask",
            scope=Scope.TASKS_WRITE,
            summary="Queue a long job (a TaskMessage) as if published on agent.execute",
            tag="tasks",
            request=TaskMessage,
            responses={202: TaskAccepted},
        ),
        submit_task,
    ),
    (
        Operation(
            method="GET",
            path="/v1/tasks/{task_id}",
            operation_id="getTask",
            scope=Scope.TASKS_READ,
            summary="A job's state, attempts, timestamps, result or error",
            tag="tasks",
            responses={200: TaskView},
        ),
        get_task,
    ),
    (
        Operation(
            method="POST",
            path="/v1/tasks/{task_id}/cancel",
            operation_id="cancelTask",
            scope=Scope.TASKS_WRITE,
            summary="Cancel a job wherever it runs",
            tag="tasks",
            responses={202: TaskView},
        ),
        cancel_task,
    ),
    (
        Operation(
            method="GET",
            path="/v1/dead-letters",
            operation_id="listDeadLetters",
            scope=Scope.ADMIN,
            summary="Dead letters with their reason, oldest first",
            tag="operations",
            responses={200: DeadLetterList},
        ),
        list_dead_letters,
    ),
    (
        Operation(
            method="POST",
            path="/v1/dead-letters/{seq}/replay",
            operation_id="replayDeadLetter",
            scope=Scope.ADMIN,
            summary="Republish a dead letter to its original subject",
            tag="operations",
            responses={202: ReplayResult},
        ),
        replay_dead_letter,
    ),
]
