"""Conversation threads over HTTP (CONTRACT section 6), on a real worker process: the thread
routes and their errors, runs on a thread from invoke, stream and the chat socket, a busy
thread, and a graph that asks a person and is resumed. Only the model is fake."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import ROOT
from tests.http.helpers import assert_error, call
from tests.streaming.helpers import assert_run, create_agent, sse_frames
from worker.testing import NatsServer, WorkerProcess

DEPLOY = {"messages": [{"role": "user", "content": "deploy"}]}


@pytest.fixture(scope="module")
def threads_worker(
    nats: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker with a graph that asks a person (``approval``), on buckets of its own."""
    tag = uuid.uuid4().hex[:8]
    proc = WorkerProcess(
        {
            "WORKER_NATS_URL": nats.url,
            "WORKER_HTTP_HOST": "127.0.0.1",
            "WORKER_HTTP_PORT": "0",
            "WORKER_STATE_DIR": str(tmp_path_factory.mktemp("state")),
            "WORKER_AGENTS_BUCKET": f"agents_{tag}",
            "WORKER_THREADS_BUCKET": f"threads_{tag}",
            "WORKER_AGENT_TYPES": "approval=tests.threads.helpers:approval",
            "PYTHONPATH": str(ROOT),
        }
    ).start()
    yield proc
    proc.stop()


def new_thread() -> str:
    return f"t-{uuid.uuid4().hex}"


async def chat_agent(
    http: aiohttp.ClientSession, url: str, *replies: str, delay: str = "0s"
) -> str:
    model = {"provider": "fake", "responses": list(replies), "token_delay": delay}
    return await create_agent(http, url, "chat", {"model": model})


async def test_thread_routes_and_their_errors(
    threads_worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    url = threads_worker.url
    thread = new_thread()
    status, body, headers = await call(
        http, "POST", url + "/v1/threads", json={"thread_id": thread, "metadata": {"user": "ada"}}
    )
    assert status == 201, body
    assert headers["Location"] == f"/v1/threads/{thread}"
    assert (body["thread_id"], body["metadata"]) == (thread, {"user": "ada"})
    assert body["created_at"].endswith("Z")
    status, chosen, _ = await call(http, "POST", url + "/v1/threads")  # no body at all
    assert status == 201
    assert uuid.UUID(chosen["thread_id"])

    assert_error(
        *await call(http, "POST", url + "/v1/threads", json={"thread_id": thread}),
        expect=409,
        code="thread_exists",
    )
    assert_error(
        *await call(http, "POST", url + "/v1/threads", json={"thread_id": "no spaces"}),
        expect=400,
        code="invalid_thread_id",
    )
    assert_error(
        *await call(http, "POST", url + "/v1/threads", json={"metadata": "x"}),
        expect=400,
        code="validation_error",
    )

    status, state, _ = await call(http, "GET", f"{url}/v1/threads/{thread}")
    assert status == 200
    assert (state["status"], state["values"], state["checkpoint_id"]) == ("idle", {}, None)
    status, history, _ = await call(http, "GET", f"{url}/v1/threads/{thread}/history")
    assert (status, history) == (200, {"thread_id": thread, "checkpoints": []})

    unknown = new_thread()
    for method, path in [
        ("GET", f"/v1/threads/{unknown}"),
        ("GET", f"/v1/threads/{unknown}/history"),
        ("DELETE", f"/v1/threads/{unknown}"),
        ("POST", f"/v1/threads/{unknown}/resume"),
    ]:
        body = {"resume": "yes"} if method == "POST" else None
        assert_error(
            *await call(http, method, url + path, json=body), expect=404, code="thread_not_found"
        )
    for path in ("/v1/threads/a*b", "/v1/threads/" + "x" * 129 + "/history"):
        assert_error(*await call(http, "GET", url + path), expect=400, code="invalid_thread_id")
    for limit in ("0", "abc", "1001"):
        assert_error(
            *await call(http, "GET", f"{url}/v1/threads/{thread}/history?limit={limit}"),
            expect=400,
            code="invalid_limit",
        )

    status, _, _ = await call(http, "DELETE", f"{url}/v1/threads/{thread}")
    assert status == 204
    assert_error(
        *await call(http, "GET", f"{url}/v1/threads/{thread}"), expect=404, code="thread_not_found"
    )


async def test_chat_holds_a_conversation_over_invoke_stream_and_socket(
    threads_worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    url = threads_worker.url
    agent_id = await chat_agent(http, url, "Hello Ada.", "You are Ada.", "Ada, again.")
    thread = new_thread()  # named by the first run, which creates it

    status, first, _ = await call(
        http,
        "POST",
        f"{url}/v1/agents/{agent_id}/invoke",
        json={"input": "I am Ada.", "thread_id": thread},
    )
    assert status == 200, first
    assert (first["output"], first["status"]) == ("Hello Ada.", "completed")
    assert first["metadata"]["thread_id"] == thread
    assert "interrupt" not in first

    body = {"input": "Who am I?", "thread_id": thread}
    async with http.post(f"{url}/v1/agents/{agent_id}/stream", json=body) as resp:
        assert resp.status == 200
        frames = await sse_frames(resp)
    assert_run(frames)
    assert frames[-1]["result"] == "You are Ada."

    async with http.ws_connect(f"{url}/v1/agents/{agent_id}/ws") as ws:
        await ws.send_str(orjson.dumps({"input": "x", "thread_id": "bad id"}).decode())
        error = orjson.loads((await ws.receive()).data)["error"]
        assert error["code"] == "invalid_thread_id"
        await ws.send_str(orjson.dumps({"Input": "Once more?", "Thread_ID": thread}).decode())
        frames = await ws_frames(ws)
    assert_run(frames)
    assert frames[-1]["result"] == "Ada, again."

    status, state, _ = await call(http, "GET", f"{url}/v1/threads/{thread}")
    assert status == 200
    said = [(m["type"], m["content"]) for m in state["values"]["messages"]]
    assert said == [
        ("human", "I am Ada."),
        ("ai", "Hello Ada."),
        ("human", "Who am I?"),
        ("ai", "You are Ada."),
        ("human", "Once more?"),
        ("ai", "Ada, again."),
    ]
    assert (state["status"], state["metadata"]) == ("idle", {"agent_id": agent_id})

    status, history, _ = await call(http, "GET", f"{url}/v1/threads/{thread}/history?limit=3")
    assert status == 200
    checkpoints = history["checkpoints"]
    assert len(checkpoints) == 3
    assert checkpoints[0]["checkpoint_id"] == state["checkpoint_id"]
    assert [c["created_at"] for c in checkpoints] == sorted(
        (c["created_at"] for c in checkpoints), reverse=True
    )
    _, everything, _ = await call(http, "GET", f"{url}/v1/threads/{thread}/history")
    full = [c["checkpoint_id"] for c in everything["checkpoints"]]
    assert full[:3] == [c["checkpoint_id"] for c in checkpoints]
    before = checkpoints[-1]["checkpoint_id"]
    _, older, _ = await call(
        http, "GET", f"{url}/v1/threads/{thread}/history?limit=2&before={before}"
    )
    assert [c["checkpoint_id"] for c in older["checkpoints"]] == full[3:5]


async def ws_frames(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    frames = []
    async for msg in ws:
        frames.append(orjson.loads(msg.data))
        if frames[-1].get("status") in {"completed", "failed", "cancelled", "interrupted"}:
            break
    return frames


async def test_a_second_run_on_a_busy_thread_gets_409_at_once(
    threads_worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    url = threads_worker.url
    agent_id = await chat_agent(http, url, "a slow answer of several words", delay="200ms")
    thread = new_thread()
    invoke = f"{url}/v1/agents/{agent_id}/invoke"
    first = asyncio.create_task(
        call(http, "POST", invoke, json={"input": "first", "thread_id": thread})
    )
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # until the first run holds the thread
        status, state, _ = await call(http, "GET", f"{url}/v1/threads/{thread}")
        if status == 200 and state["status"] == "busy":
            break
        assert asyncio.get_running_loop().time() < deadline, state
        await asyncio.sleep(0.02)

    body = {"input": "second", "thread_id": thread}
    assert_error(*await call(http, "POST", invoke, json=body), expect=409, code="thread_busy")
    assert_error(
        *await call(http, "POST", f"{url}/v1/agents/{agent_id}/stream", json=body),
        expect=409,
        code="thread_busy",
    )
    async with http.ws_connect(f"{url}/v1/agents/{agent_id}/ws") as ws:
        await ws.send_str(orjson.dumps(body).decode())
        assert orjson.loads((await ws.receive()).data)["error"]["code"] == "thread_busy"
    assert_error(
        *await call(http, "DELETE", f"{url}/v1/threads/{thread}"), expect=409, code="thread_busy"
    )
    assert not first.done()  # all of that while the first run went on
    status, answer, _ = await first
    assert (status, answer["output"]) == (200, "a slow answer of several words")
    _, state, _ = await call(http, "GET", f"{url}/v1/threads/{thread}")
    assert [m["content"] for m in state["values"]["messages"]][0::2] == ["first"]


async def test_agents_that_keep_no_thread_and_bad_thread_ids_get_400(
    threads_worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    url = threads_worker.url
    echo = await create_agent(http, url, "echo", {})
    chat = await chat_agent(http, url, "hi")
    for path in ("invoke", "stream"):
        assert_error(
            *await call(
                http,
                "POST",
                f"{url}/v1/agents/{echo}/{path}",
                json={"input": "x", "thread_id": new_thread()},
            ),
            expect=400,
            code="threads_unsupported",
        )
        assert_error(
            *await call(
                http,
                "POST",
                f"{url}/v1/agents/{chat}/{path}",
                json={"input": "x", "thread_id": "not a thread id!"},
            ),
            expect=400,
            code="invalid_thread_id",
        )


async def test_a_graph_asks_a_person_and_is_resumed(
    threads_worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    url = threads_worker.url
    agent_id = await create_agent(http, url, "approval", {})
    thread = new_thread()
    status, asked, _ = await call(
        http,
        "POST",
        f"{url}/v1/agents/{agent_id}/invoke",
        json={"input": DEPLOY, "thread_id": thread},
    )
    assert status == 200, asked
    assert (asked["status"], asked["output"]) == ("interrupted", None)
    assert asked["interrupt"] == {"question": "approve?"}
    assert asked["metadata"]["thread_id"] == thread

    _, state, _ = await call(http, "GET", f"{url}/v1/threads/{thread}")
    assert state["status"] == "interrupted"
    assert [i["value"] for i in state["interrupts"]] == [{"question": "approve?"}]

    resume = f"{url}/v1/threads/{thread}/resume"
    assert_error(
        *await call(http, "POST", resume, json={"agent_id": agent_id}),
        expect=400,
        code="validation_error",
    )
    status, done, _ = await call(http, "POST", resume, json={"resume": "yes"})  # agent: the last
    assert status == 200, done
    assert (done["status"], done["metadata"]["agent_id"]) == ("completed", agent_id)
    assert done["output"]["messages"][-1]["content"] == "approved: yes"
    assert_error(
        *await call(http, "POST", resume, json={"resume": "again"}),
        expect=409,
        code="thread_not_interrupted",
    )
    # A new thread created but never run asks nothing either.
    _, fresh, _ = await call(http, "POST", url + "/v1/threads", json={})
    assert_error(
        *await call(
            http, "POST", f"{url}/v1/threads/{fresh['thread_id']}/resume", json={"resume": 1}
        ),
        expect=409,
        code="thread_not_interrupted",
    )


async def test_a_streamed_run_that_asks_ends_with_an_interrupted_frame(
    threads_worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    url = threads_worker.url
    agent_id = await create_agent(http, url, "approval", {})
    body = {"input": DEPLOY, "thread_id": new_thread()}
    async with http.post(f"{url}/v1/agents/{agent_id}/stream", json=body) as resp:
        assert resp.status == 200
        frames = await sse_frames(resp)
    assert_run(frames, final="interrupted")
    assert frames[-1]["interrupt"] == {"question": "approve?"}
    asked = [f for f in frames if f.get("event") == "interrupt"]
    assert [f["data"]["value"] for f in asked] == [{"question": "approve?"}]
    assert asked[0]["seq"] == frames[-1]["seq"] - 1


async def test_the_thread_routes_are_in_the_openapi_document(
    threads_worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    _, spec, _ = await call(http, "GET", threads_worker.url + "/openapi.json")
    paths = spec["paths"]
    assert set(paths["/v1/threads"]) == {"post"}
    assert set(paths["/v1/threads/{thread_id}"]) == {"get", "delete"}
    assert set(paths["/v1/threads/{thread_id}/history"]) == {"get"}
    assert set(paths["/v1/threads/{thread_id}/resume"]) == {"post"}
    param = paths["/v1/threads/{thread_id}"]["get"]["parameters"][0]
    assert param["schema"]["pattern"] == "^[A-Za-z0-9_.-]{1,128}$"
    assert paths["/v1/threads"]["post"]["requestBody"]["required"] is False
    schemas = spec["components"]["schemas"]
    assert (
        schemas["InvokeRequest"]["properties"]["thread_id"]["pattern"] == param["schema"]["pattern"]
    )
    assert schemas["InvokeResponse"]["properties"]["status"]["enum"] == [
        "completed",
        "interrupted",
    ]
    assert "interrupted" in schemas["Frame"]["properties"]["status"]["enum"]
