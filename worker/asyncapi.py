"""``/asyncapi.json``: the NATS and WebSocket side of the contract as an AsyncAPI 3.0 document,
generated from the same pydantic models the worker validates and sends with."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from worker import __version__
from worker.config import Settings
from worker.jobs.models import CallbackBody, TaskMessage
from worker.streaming.schemas import ChatMessage, Frame, SocketError

REF = "#/components/schemas/{model}"
Mode = Literal["validation", "serialization"]


def _message(
    name: str, ref: dict[str, Any], summary: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "name": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": ref,
    }
    if headers:
        msg["headers"] = {
            "type": "object",
            "properties": {k: {"type": "string", "description": v} for k, v in headers.items()},
        }
    return msg


def build_asyncapi(settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the jobs and streaming doors."""
    models: list[tuple[type[BaseModel], Mode]] = [
        (TaskMessage, "validation"),
        (CallbackBody, "serialization"),
        (Frame, "serialization"),
        (ChatMessage, "validation"),
        (SocketError, "serialization"),
    ]
    refs, top = models_json_schema(models, ref_template=REF)
    ref = {model: refs[(model, mode)] for model, mode in models}
    task_id = {"description": "The task's id."}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "AgentOS worker: jobs and streams",
            "version": __version__,
            "description": "Long jobs over NATS JetStream with HTTP callbacks, and the frames of "
            "every run over NATS, WebSocket and SSE. The synchronous HTTP API is /openapi.json.",
        },
        "servers": {
            "nats": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "The pool's NATS (JetStream) server.",
            },
            "worker": {
                "host": f"localhost:{settings.http_port}",
                "protocol": "ws",
                "description": "Any worker of the pool.",
            },
        },
        "channels": {
            "agentExecute": {
                "address": settings.tasks_subject,
                "servers": [{"$ref": "#/servers/nats"}],
                "description": "Jobs, captured by a work-queue JetStream stream (24 h). A plain "
                "core-NATS publish is persisted. At-least-once; one run to completion per id.",
                "messages": {"taskMessage": {"$ref": "#/components/messages/taskMessage"}},
            },
            "agentCancel": {
                "address": "agent.cancel.{task_id}",
                "servers": [{"$ref": "#/servers/nats"}],
                "parameters": {"task_id": task_id},
                "description": "Publish (any payload) to cancel a job wherever it runs.",
                "messages": {"cancel": {"$ref": "#/components/messages/cancel"}},
            },
            "callback": {
                "address": "{callback}",
                "parameters": {"callback": {"description": "The job's callback URL."}},
                "description": "HTTP POST of the outcome (Standard Webhooks headers). Only 2xx "
                "is success; 5xx, 408, 429 and connection errors are retried for hours.",
                "messages": {"callback": {"$ref": "#/components/messages/callback"}},
                "bindings": {"http": {"method": "POST"}},
            },
            "frames": {
                "address": "agentos.frames.{task_id}",
                "servers": [{"$ref": "#/servers/nats"}],
                "parameters": {"task_id": task_id},
                "description": "Every run's frames, kept in a JetStream stream for replay.",
                "messages": {"frame": {"$ref": "#/components/messages/frame"}},
            },
            "streamPush": {
                "address": "{stream_url}",
                "parameters": {"stream_url": {"description": "The job's stream_url."}},
                "description": "The worker connects as a WebSocket client and sends the frames; "
                "it reconnects and resends from the first frame not yet sent.",
                "messages": {"frame": {"$ref": "#/components/messages/frame"}},
            },
            "taskEvents": {
                "address": "/v1/tasks/{task_id}/events",
                "servers": [{"$ref": "#/servers/worker"}],
                "parameters": {"task_id": task_id},
                "description": "WebSocket (or SSE with Accept: text/event-stream): replay from "
                "?from_seq= (SSE: Last-Event-ID), then follow live.",
                "messages": {
                    "frame": {"$ref": "#/components/messages/frame"},
                    "error": {"$ref": "#/components/messages/socketError"},
                },
            },
            "agentChat": {
                "address": "/v1/agents/{agent_id}/ws",
                "servers": [{"$ref": "#/servers/worker"}],
                "parameters": {"agent_id": {"description": "The agent's id."}},
                "description": 'Interactive: send {"input": ...}, receive the run\'s frames.',
                "messages": {
                    "chat": {"$ref": "#/components/messages/chat"},
                    "frame": {"$ref": "#/components/messages/frame"},
                    "error": {"$ref": "#/components/messages/socketError"},
                },
            },
        },
        "operations": {
            "runJob": {
                "action": "receive",
                "channel": {"$ref": "#/channels/agentExecute"},
                "summary": "The pool consumes jobs.",
            },
            "cancelJob": {"action": "receive", "channel": {"$ref": "#/channels/agentCancel"}},
            "deliverCallback": {"action": "send", "channel": {"$ref": "#/channels/callback"}},
            "publishFrames": {"action": "send", "channel": {"$ref": "#/channels/frames"}},
            "pushFrames": {"action": "send", "channel": {"$ref": "#/channels/streamPush"}},
            "serveTaskEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/taskEvents"},
                "messages": [{"$ref": "#/channels/taskEvents/messages/frame"}],
            },
            "chatIn": {
                "action": "receive",
                "channel": {"$ref": "#/channels/agentChat"},
                "messages": [{"$ref": "#/channels/agentChat/messages/chat"}],
            },
            "chatOut": {
                "action": "send",
                "channel": {"$ref": "#/channels/agentChat"},
                "messages": [{"$ref": "#/channels/agentChat/messages/frame"}],
            },
        },
        "components": {
            "schemas": top.get("$defs", {}),
            "messages": {
                "taskMessage": _message(
                    "TaskMessage",
                    ref[TaskMessage],
                    "A job to run.",
                    {
                        "Nats-Msg-Id": "Deduplication id (the task id is a good one).",
                        "traceparent": "W3C trace context, continued into the job and callback.",
                    },
                ),
                "cancel": {
                    "name": "Cancel",
                    "summary": "Cancel a job.",
                    "payload": {"type": "string", "description": "Ignored."},
                },
                "callback": _message(
                    "Callback",
                    ref[CallbackBody],
                    "A job's outcome.",
                    {
                        "webhook-id": "msg_<task_id>: the same on every retry; deduplicate by it.",
                        "webhook-timestamp": "Unix seconds of this attempt.",
                        "webhook-signature": "v1,<base64 HMAC-SHA256> with the configured secret.",
                        "traceparent": "The job's trace.",
                    },
                ),
                "frame": _message("Frame", ref[Frame], "One frame of a run."),
                "chat": _message("ChatMessage", ref[ChatMessage], "A chat socket request."),
                "socketError": _message("SocketError", ref[SocketError], "An error."),
            },
        },
    }
