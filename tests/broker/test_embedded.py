"""With no WORKER_NATS_URL the worker runs, watches and stops its own nats-server."""

from __future__ import annotations

import json
import os
import signal

import aiohttp

from tests.conftest import SpawnWorker
from tests.http.helpers import call
from worker.testing import wait_for


def _server_pid(log_text: str) -> int:
    for line in reversed(log_text.splitlines()):
        if "embedded nats-server started" in line:
            return int(json.loads(line)["pid"])
    raise AssertionError("no embedded nats-server in the log")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def _ready(http: aiohttp.ClientSession, url: str) -> bool:
    status, _, _ = await call(http, "GET", url + "/readyz")
    return status == 200


async def test_embedded_nats_lifecycle(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker({"WORKER_NATS_URL": ""})
    await wait_for(lambda: _ready(http, w.url), what="the worker ready")
    _, created, _ = await call(http, "POST", w.url + "/v1/agents", json={"type": "echo"})
    pid = _server_pid(w.log_text())

    # The server dies: the worker notices, restarts it on the same port with the same data.
    os.kill(pid, signal.SIGKILL)
    await wait_for(
        lambda: "embedded nats-server died" in w.log_text(), what="the worker to log the death"
    )
    await wait_for(lambda: _server_pid(w.log_text()) != pid, what="a new embedded nats-server")
    await wait_for(lambda: _ready(http, w.url), what="the worker ready again")
    status, out, _ = await call(
        http, "POST", f"{w.url}/v1/agents/{created['id']}/invoke", json={"input": "still here"}
    )
    assert (status, out["output"]) == (200, "still here")

    # SIGTERM: the worker exits 0 and its server is gone.
    new_pid = _server_pid(w.log_text())
    assert _alive(new_pid)
    assert w.stop() == 0
    await wait_for(lambda: not _alive(new_pid), what="the embedded nats-server gone")


async def test_embedded_data_survives_worker_restart(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker({"WORKER_NATS_URL": ""})
    _, created, _ = await call(http, "POST", w.url + "/v1/agents", json={"type": "echo"})
    pid = _server_pid(w.log_text())
    w.kill()  # SIGKILL: the kernel takes the server down with it (PR_SET_PDEATHSIG)
    await wait_for(lambda: not _alive(pid), what="the embedded nats-server gone with the worker")
    w.start()
    status, got, _ = await call(http, "GET", f"{w.url}/v1/agents/{created['id']}")
    assert status == 200
    assert got["id"] == created["id"]
