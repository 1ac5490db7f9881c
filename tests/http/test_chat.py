"""The chat socket of ``worker.http.chat`` in real worker processes, with real clients over
real sockets: ``/v1/agents/{id}/ws``, its bad input, and its token in a header or a
subprotocol."""

from __future__ import annotations

import base64

import aiohttp
import orjson
import pytest

from tests.conftest import SpawnWorker
from tests.streaming.helpers import assert_run, create_agent, ws_frames
from worker.testing import WorkerProcess

REPLY = "Streaming works token by token."


async def test_chat_socket_runs_each_input_and_reports_bad_input(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    config = {"model": {"provider": "fake", "responses": [REPLY], "token_delay": "20ms"}}
    agent_id = await create_agent(http, worker.url, "chat", config)
    url = f"{worker.url}/v1/agents/{agent_id}/ws"
    async with http.ws_connect(url, protocols=("agentos.v1",)) as ws:
        assert ws.protocol == "agentos.v1"
        await ws.send_str("{not json")
        err = orjson.loads((await ws.receive()).data)["error"]
        assert err["code"] == "malformed_json"
        await ws.send_str('{"input": "hi", "bogus": 1}')
        err = orjson.loads((await ws.receive()).data)["error"]
        assert err["code"] == "validation_error"
        assert err["details"][0]["field"] == "bogus"
        await ws.send_str("{}")
        assert orjson.loads((await ws.receive()).data)["error"]["code"] == "validation_error"

        await ws.send_str('{"input": "first"}')
        first = orjson.loads((await ws.receive()).data)
        assert first["status"] == "started"
        await ws.send_str('{"input": "second"}')  # one run at a time
        busy = orjson.loads((await ws.receive()).data)
        while "error" not in busy:
            busy = orjson.loads((await ws.receive()).data)
        assert busy["error"]["code"] == "busy"
        await ws.send_str('{"Cancel": true}')
        rest = await ws_frames(ws)
        assert rest[-1]["status"] == "cancelled"

        await ws.send_str('{"Input": "again"}')  # Go-style keys work too
        frames = await ws_frames(ws)
        assert_run(frames)
        assert frames[-1]["result"] == REPLY

        await ws.send_bytes(b"\x00\x01")
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1003

    async with http.ws_connect(url) as ws:
        await ws.send_str('{"input": "' + "x" * (70 << 10) + '"}')
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1009

    # The worker keeps serving.
    async with http.ws_connect(url) as ws:
        await ws.send_str('{"input": "still there?"}')
        assert_run(await ws_frames(ws))


async def test_websocket_upgrade_needs_a_token_in_a_header_or_a_subprotocol(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    token = "s3cret/token+with=odd chars"  # noqa: S105 - a test token
    w = spawn_worker({"WORKER_AUTH_TOKENS": token})
    auth = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{w.url}/v1/agents", json={"type": "echo"}, headers=auth) as resp:
        agent_id = (await resp.json())["id"]
    url = f"{w.url}/v1/agents/{agent_id}/ws"
    async with http.get(url, headers={"Upgrade": "websocket", "Connection": "Upgrade"}) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"
    wrong = base64.urlsafe_b64encode(b"nope").decode().rstrip("=")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url, protocols=("agentos.v1", f"base64url.bearer.agentos.{wrong}"))
    assert refused.value.status == 401
    good = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    async with http.ws_connect(
        url, protocols=("agentos.v1", f"base64url.bearer.agentos.{good}")
    ) as ws:
        assert ws.protocol == "agentos.v1"
        await ws.send_str('{"input": {"a": 1}}')
        frames = await ws_frames(ws)
        assert frames[-1]["result"] == {"a": 1}
    async with http.ws_connect(url, headers=auth) as ws:
        await ws.send_str('{"input": 2}')
        assert (await ws_frames(ws))[-1]["result"] == 2
