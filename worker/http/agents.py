"""Handlers for agents: the seed's ``POST /create-agent``, ``/v1/agents`` CRUD, types, invoke."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import trace

from worker.agents import runtime, thread_runs
from worker.agents.runtime import RunResult
from worker.agents.store import AgentRecord
from worker.durations import seconds_to_go
from worker.gojson import dumps
from worker.http.auth.scopes import Scope
from worker.http.middleware import read_json
from worker.http.openapi import Operation
from worker.http.schemas import (
    Agent,
    AgentConfig,
    AgentList,
    AgentPatch,
    AgentTypeInfo,
    AgentTypeList,
    ErrorBody,
    InvokeRequest,
    InvokeResponse,
)
from worker.http.state import Services, json_response, services

AI_FRAMEWORK = "langchain"


def _agent(record: AgentRecord) -> Agent:
    return Agent(
        id=record.id,
        type=record.type,
        name=record.name,
        config=_redacted(record.config),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _redacted(value: object) -> object:
    """Config as shown to callers: secrets (``api_key``) never leave the worker."""
    if isinstance(value, dict):
        return {
            k: ("**********" if k == "api_key" and v else _redacted(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _annotate(record: AgentRecord) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(
            {"ai.framework": AI_FRAMEWORK, "agent.type": record.type, "agent.id": record.id}
        )


async def create_agent(request: web.Request) -> web.Response:
    """Create an agent (the seed's call and ``POST /v1/agents``)."""
    body = AgentConfig.model_validate(await read_json(request))
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({"ai.framework": AI_FRAMEWORK, "agent.type": body.type})
    record = await services(request).store.create(
        type_name=body.type, name=body.name, config=body.config
    )
    _annotate(record)
    return json_response(
        _agent(record), status=201, headers={"Location": f"/v1/agents/{record.id}"}
    )


async def list_agents(request: web.Request) -> web.Response:
    """Every agent of the pool."""
    records = services(request).store.list()
    return json_response(AgentList(agents=[_agent(r) for r in records]))


async def get_agent(request: web.Request) -> web.Response:
    """One agent."""
    record = await services(request).store.get(request.match_info["agent_id"])
    _annotate(record)
    return json_response(_agent(record))


async def patch_agent(request: web.Request) -> web.Response:
    """Rename an agent and/or merge-patch its config."""
    body = AgentPatch.model_validate(await read_json(request))
    record = await services(request).store.update(
        request.match_info["agent_id"], name=body.name, config_patch=body.config
    )
    _annotate(record)
    return json_response(_agent(record))


async def delete_agent(request: web.Request) -> web.Response:
    """Delete an agent."""
    await services(request).store.delete(request.match_info["agent_id"])
    return web.Response(status=204)


async def list_agent_types(request: web.Request) -> web.Response:
    """Each registered type with the JSON Schema of its config, input and output."""
    registry = services(request).registry
    return json_response(
        AgentTypeList(agent_types=[AgentTypeInfo(**t.describe()) for t in registry])
    )


async def invoke_agent(request: web.Request) -> web.Response:
    """Run an agent now and answer with its output (504 past the deadline); with
    ``thread_id``, on that conversation thread."""
    svc = services(request)
    raw = await read_json(request)
    # The hot path's usual body is exactly {"input": ...}: take it without the model (the
    # same result, a few microseconds less); anything else goes through InvokeRequest.
    if type(raw) is dict and len(raw) == 1 and "input" in raw:
        given, deadline, thread = raw["input"], None, None
    else:
        body = InvokeRequest.model_validate(raw)
        given, deadline, thread = body.input, body.timeout, svc.maybe_on_thread(body.thread_id)
    agent = await svc.store.resolve(request.match_info["agent_id"])
    _annotate(agent.record)
    value = agent.agent_type.parse_input(given)
    async with svc.limiter.slot(svc.time_limit(deadline)) as remaining:
        if thread is None:
            result = await runtime.invoke(agent, value, time_limit=remaining)
        else:
            result = await thread_runs.invoke(agent, value, thread, time_limit=remaining)
    return answer(result, agent.record, svc)


def answer(result: RunResult, record: AgentRecord, svc: Services) -> web.Response:
    """The invoke answer for ``result`` (the ``InvokeResponse`` shape), also the resume's."""
    # Written directly rather than as an InvokeResponse: every value is already checked, and a
    # model built only to be serialised costs more than the rest of the invoke handler.
    metadata = {
        "run_id": result.run_id,
        "execution_time": seconds_to_go(result.seconds),
        "agent_id": record.id,
        "agent_type": record.type,
        "worker_id": svc.settings.worker_id,
        "provider": result.provider,
        "degraded": result.degraded,
    }
    body = {"output": result.output, "status": result.status, "metadata": metadata}
    if result.thread_id is not None:
        metadata["thread_id"] = result.thread_id
    if result.spent is not None:
        metadata.update(result.spent)
    if result.status == "interrupted":
        body["interrupt"] = result.interrupt
    return web.Response(body=dumps(body), content_type="application/json")


ROUTES: list[tuple[Operation, Handler]] = [
    (
        Operation(
            method="POST",
            path="/create-agent",
            operation_id="createAgentSeed",
            scope=Scope.AGENTS_WRITE,
            summary="Create an agent (the seed's call; an untagged Go struct works)",
            tag="agents",
            request=AgentConfig,
            responses={201: Agent},
        ),
        create_agent,
    ),
    (
        Operation(
            method="POST",
            path="/v1/agents",
            operation_id="createAgent",
            scope=Scope.AGENTS_WRITE,
            summary="Create an agent",
            tag="agents",
            request=AgentConfig,
            responses={201: Agent},
        ),
        create_agent,
    ),
    (
        Operation(
            method="GET",
            path="/v1/agents",
            operation_id="listAgents",
            scope=Scope.AGENTS_READ,
            summary="List the pool's agents",
            tag="agents",
            responses={200: AgentList},
        ),
        list_agents,
    ),
    (
        Operation(
            method="GET",
            path="/v1/agents/{agent_id}",
            operation_id="getAgent",
            scope=Scope.AGENTS_READ,
            summary="Get an agent",
            tag="agents",
            responses={200: Agent},
        ),
        get_agent,
    ),
    (
        Operation(
            method="PATCH",
            path="/v1/agents/{agent_id}",
            operation_id="patchAgent",
            scope=Scope.AGENTS_WRITE,
            summary="Rename an agent or merge-patch its config (RFC 7386)",
            tag="agents",
            request=AgentPatch,
            responses={200: Agent},
        ),
        patch_agent,
    ),
    (
        Operation(
            method="DELETE",
            path="/v1/agents/{agent_id}",
            operation_id="deleteAgent",
            scope=Scope.AGENTS_WRITE,
            summary="Delete an agent",
            tag="agents",
            responses={204: None},
        ),
        delete_agent,
    ),
    (
        Operation(
            method="POST",
            path="/v1/agents/{agent_id}/invoke",
            operation_id="invokeAgent",
            scope=Scope.AGENTS_INVOKE,
            summary="Run an agent and wait for its output (504 past the deadline; 422 "
            "budget_exceeded when the run would pass its agent's limits); with thread_id, on "
            "that conversation thread (409 thread_busy while another run holds it)",
            tag="agents",
            request=InvokeRequest,
            responses={200: InvokeResponse, 422: ErrorBody},
        ),
        invoke_agent,
    ),
    (
        Operation(
            method="GET",
            path="/v1/agent-types",
            operation_id="listAgentTypes",
            scope=Scope.AGENTS_READ,
            summary="Agent types with the JSON Schemas of their config, input and output",
            tag="agents",
            responses={200: AgentTypeList},
        ),
        list_agent_types,
    ),
]
