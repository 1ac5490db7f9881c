"""A small OpenAI-compatible chat completions server that fails on command (aiohttp).

Tests start it in process (``async with FakeOpenAI() as provider``) and steer it directly; other
test suites (the Go ones) run it as a process, ``python -m tests.fakes.openai_server --port N``,
and steer it over HTTP:

- ``POST /_fake/behaviour`` ``{"mode": ..., ...}``: how every request is answered from now on;
- ``POST /_fake/script`` ``[{"mode": ...}, ...]``: how the next requests are answered, one each,
  before the behaviour applies again;
- ``GET /_fake/stats``: requests received, ``POST /_fake/reset``: back to answering ``ok``.

Modes: ``ok`` (a chat completion, streamed as SSE when asked, after ``delay`` and with
``token_delay`` between tokens; with ``tool_calls`` set, an answer that calls those tools,
streamed as OpenAI streams them: each call's ``id`` and ``name`` first, then its
``arguments`` in pieces, ``finish_reason: "tool_calls"``; with ``reply_after_tools`` too, a
request whose last message is a tool result gets the reply instead, so each turn of an agent
calls the tools once then answers; with ``stamped_tokens``, a streamed reply of that many
tokens, each the time it was sent, for benchmarks that measure token lag; its ``usage`` as set,
by default 5 prompt tokens and one completion token per word of the reply, in the answer or, for
a stream whose request asks for it with ``stream_options.include_usage``, in a last chunk of its
own, as OpenAI sends them), ``status`` (an OpenAI-style error
with ``status`` and, when set, ``Retry-After``), ``hang`` (answer nothing for ``hang`` seconds,
then close), ``close`` (drop the connection without a response). Everything listens on
loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

Mode = Literal["ok", "status", "hang", "close"]
ARGUMENT_PIECE = 8  # characters of a tool call's arguments per streamed delta


class ToolCall(BaseModel):
    """A tool the answer calls."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class Usage(BaseModel):
    """The token counts an answer reports (OpenAI's ``usage`` object)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cached_tokens: int | None = Field(None, ge=0, description="prompt_tokens_details")
    reasoning_tokens: int | None = Field(None, ge=0, description="completion_tokens_details")

    def to_json(self) -> dict[str, Any]:
        """The ``usage`` object of a completion."""
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return usage


class Behaviour(BaseModel):
    """How to answer one request."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Mode = "ok"
    reply: str = "Hello from the fake OpenAI server."
    tool_calls: list[ToolCall] | None = Field(
        None, description="Call these tools instead of replying (ok mode)."
    )
    reply_after_tools: bool = Field(
        False,
        description="With tool_calls: answer a request whose last message is a tool result "
        "with the reply, so every turn of an agent calls the tools once, then answers (one "
        "behaviour serves any number of conversations at once).",
    )
    stamped_tokens: int = Field(
        0,
        ge=0,
        le=100_000,
        description="Stream this many tokens instead of the reply, each the time it is sent: "
        "time.time_ns() in decimal and a space (a client on the same host subtracts it from "
        "its receive time: the token's lag).",
    )
    delay: float = Field(0.0, ge=0, le=60, description="Seconds before answering (ok mode).")
    token_delay: float = Field(0.0, ge=0, le=10, description="Seconds between streamed tokens.")
    status: int = Field(500, ge=400, le=599)
    retry_after: float | None = Field(None, ge=0, description="Retry-After seconds (status).")
    hang: float = Field(30.0, ge=0, le=300, description="Seconds to hang before closing.")
    usage: Usage | None = Field(None, description="Usage reported (default: from the reply).")


_SCRIPT = TypeAdapter(list[Behaviour])


@dataclass(slots=True)
class Seen:
    """One request the server received."""

    at: float
    model: str
    stream: bool
    mode: Mode
    tools: list[str] = field(default_factory=list)
    """Names of the tools the request offered."""
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeOpenAI:
    """The server; ``base_url`` is what a provider's ``base_url`` should be."""

    host: str = "127.0.0.1"
    port: int = 0
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[Seen] = field(default_factory=list)
    _script: deque[Behaviour] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # --- steering ---------------------------------------------------------------------------

    def set(self, **behaviour: Any) -> None:
        """Answer every request this way from now on (``set(mode="status", status=503)``)."""
        self.behaviour = Behaviour(**behaviour)

    def script(self, *behaviours: Behaviour | dict[str, Any]) -> None:
        """Answer the next requests this way, one behaviour per request."""
        self._script.extend(b if isinstance(b, Behaviour) else Behaviour(**b) for b in behaviours)

    def reset(self) -> None:
        """Answer ``ok`` again and forget the requests seen."""
        self.behaviour = Behaviour()
        self._script.clear()
        self.requests.clear()

    @property
    def count(self) -> int:
        """Requests received so far."""
        return len(self.requests)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_post("/_fake/behaviour", self._set_behaviour)
        app.router.add_post("/_fake/script", self._set_script)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_post("/_fake/reset", self._reset)
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        self._stopping.set()  # releases hanging requests
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- the OpenAI API -----------------------------------------------------------------------

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _bad_request(str(exc))
        if not isinstance(body, dict):
            return _bad_request("a JSON object is expected")
        how = self._script.popleft() if self._script else self.behaviour
        stream = bool(body.get("stream"))
        model = str(body.get("model", "fake"))
        tools = [t.get("function", {}).get("name", "") for t in body.get("tools") or []]
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        answered = bool(messages) and messages[-1].get("role") == "tool"
        if how.tool_calls and how.reply_after_tools and answered:
            how = how.model_copy(update={"tool_calls": None})
        self.requests.append(Seen(time.monotonic(), model, stream, how.mode, tools, messages))
        if how.mode != "ok":
            return await self._fail(request, how)
        if how.delay:
            await asyncio.sleep(how.delay)  # the behaviour asked for: a slow provider
        if stream:
            return await self._stream(request, how, model, body)
        return web.json_response(_completion(how, model))

    async def _fail(self, request: web.Request, how: Behaviour) -> web.StreamResponse:
        if how.mode == "status":
            headers = {}
            if how.retry_after is not None:
                headers["Retry-After"] = f"{how.retry_after:g}"
            error = {
                "message": f"fake provider answering {how.status} on command",
                "type": "rate_limit_error" if how.status == 429 else "server_error",
                "code": None,
                "param": None,
            }
            return web.json_response({"error": error}, status=how.status, headers=headers)
        if how.mode == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), how.hang)
        _drop(request)  # "close", or the end of a hang
        return web.Response()  # never written: the connection is gone

    async def _stream(
        self, request: web.Request, how: Behaviour, model: str, body: dict[str, Any]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        if how.tool_calls:
            await self._stream_tool_calls(resp, how, cid, model)
        elif how.stamped_tokens:
            await _event(resp, _chunk(cid, model, {"role": "assistant", "content": ""}))
            for _ in range(how.stamped_tokens):
                if how.token_delay:
                    await asyncio.sleep(how.token_delay)  # the behaviour asked for: slow tokens
                await _event(resp, _chunk(cid, model, {"content": f"{time.time_ns()} "}))
            await _event(resp, _chunk(cid, model, {}, finish="stop"))
        else:
            tokens = [t for t in _split(how.reply) if t]
            await _event(resp, _chunk(cid, model, {"role": "assistant", "content": ""}))
            for token in tokens:
                if how.token_delay:
                    await asyncio.sleep(how.token_delay)  # the behaviour asked for: slow tokens
                await _event(resp, _chunk(cid, model, {"content": token}))
            await _event(resp, _chunk(cid, model, {}, finish="stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = _usage(how)
            await _event(resp, {**_chunk(cid, model, {}), "choices": [], "usage": usage})
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _stream_tool_calls(
        self, resp: web.StreamResponse, how: Behaviour, cid: str, model: str
    ) -> None:
        """Each call's id, type and name with empty arguments, then the arguments in pieces
        (only ``index`` says which call a piece belongs to), as OpenAI streams them."""
        for index, call in enumerate(how.tool_calls or []):
            head = {
                "index": index,
                "id": call.id or _call_id(),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            delta: dict[str, Any] = {"tool_calls": [head]}
            if index == 0:
                delta = {"role": "assistant", "content": None, **delta}
            await _event(resp, _chunk(cid, model, delta))
            arguments = orjson.dumps(call.args).decode()
            for start in range(0, len(arguments), ARGUMENT_PIECE):
                if how.token_delay:
                    await asyncio.sleep(how.token_delay)  # the behaviour asked for: slow tokens
                piece = {
                    "index": index,
                    "function": {"arguments": arguments[start : start + ARGUMENT_PIECE]},
                }
                await _event(resp, _chunk(cid, model, {"tool_calls": [piece]}))
        await _event(resp, _chunk(cid, model, {}, finish="tool_calls"))

    # --- steering over HTTP -----------------------------------------------------------------

    async def _set_behaviour(self, request: web.Request) -> web.Response:
        try:
            self.behaviour = Behaviour.model_validate_json(await request.read())
        except ValidationError as exc:
            return _bad_request(str(exc))
        return web.json_response(self.behaviour.model_dump())

    async def _set_script(self, request: web.Request) -> web.Response:
        try:
            self._script.extend(_SCRIPT.validate_json(await request.read()))
        except ValidationError as exc:
            return _bad_request(str(exc))
        return web.json_response({"queued": len(self._script)})

    async def _stats(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": self.count,
                "by_mode": _by_mode(self.requests),
                "scripted": len(self._script),
            }
        )

    async def _reset(self, _: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"requests": 0})


def _bad_request(message: str) -> web.Response:
    error = {"message": message, "type": "invalid_request_error", "code": None, "param": None}
    return web.json_response({"error": error}, status=400)


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _split(text: str) -> list[str]:
    out: list[str] = []
    word = ""
    for ch in text:
        if ch.isspace():
            out.extend([word, ch])
            word = ""
        else:
            word += ch
    out.append(word)
    return out


def _usage(how: Behaviour) -> dict[str, Any]:
    if how.usage is not None:
        return how.usage.to_json()
    words = how.stamped_tokens or len(how.reply.split())
    return Usage(prompt_tokens=5, completion_tokens=words).to_json()


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _completion(how: Behaviour, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": how.reply}
    finish = "stop"
    if how.tool_calls:
        finish = "tool_calls"
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id or _call_id(),
                    "type": "function",
                    "function": {"name": call.name, "arguments": orjson.dumps(call.args).decode()},
                }
                for call in how.tool_calls
            ],
        }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": _usage(how),
    }


def _chunk(
    cid: str, model: str, delta: dict[str, Any], finish: str | None = None
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


async def _event(resp: web.StreamResponse, data: dict[str, Any]) -> None:
    await resp.write(b"data: " + orjson.dumps(data) + b"\n\n")


def _by_mode(seen: list[Seen]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in seen:
        counts[s.mode] = counts.get(s.mode, 0) + 1
    return counts


@contextlib.asynccontextmanager
async def fake_openai(**behaviour: Any) -> AsyncIterator[FakeOpenAI]:
    """A started server answering as ``behaviour`` says (``ok`` by default)."""
    server = FakeOpenAI(behaviour=Behaviour(**behaviour))
    async with server:
        yield server


async def _main(host: str, port: int) -> None:
    server = await FakeOpenAI(host=host, port=port).start()
    print(f"fake openai listening on {server.base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    """``python -m tests.fakes.openai_server --port N``: serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port))


if __name__ == "__main__":
    main()
