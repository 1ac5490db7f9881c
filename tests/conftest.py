"""Shared fixtures: a real nats-server per test session, real worker processes on real ports."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from worker.testing import NatsServer, WorkerProcess, nats_server

ROOT = Path(__file__).resolve().parent.parent
SpawnWorker = Callable[..., WorkerProcess]


@pytest.fixture(scope="session")
def nats() -> Iterator[NatsServer]:
    """One real nats-server with JetStream for the whole session."""
    with nats_server() as server:
        yield server


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin package, pip-installed into a folder of its own (not the venv)."""
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT / "tests" / "plugins" / "agentos-example"),
        ],
        check=True,
    )
    return target


def _worker_env(nats: NatsServer, state: Path, bucket: str) -> dict[str, str]:
    return {
        "WORKER_NATS_URL": nats.url,
        "WORKER_HTTP_HOST": "127.0.0.1",
        "WORKER_HTTP_PORT": "0",
        "WORKER_STATE_DIR": str(state),
        "WORKER_AGENTS_BUCKET": bucket,
        "WORKER_LOG_LEVEL": "info",
    }


@pytest.fixture
def spawn_worker(nats: NatsServer, tmp_path: Path) -> Iterator[SpawnWorker]:
    """Factory of worker processes on a bucket of this test's own; all stopped at the end."""
    bucket = f"agents_{uuid.uuid4().hex[:10]}"
    started: list[WorkerProcess] = []

    def spawn(
        env: dict[str, str] | None = None, args: list[str] | None = None, *, start: bool = True
    ) -> WorkerProcess:
        proc = WorkerProcess({**_worker_env(nats, tmp_path / "state", bucket), **(env or {})}, args)
        started.append(proc)
        return proc.start() if start else proc

    yield spawn
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def worker(nats: NatsServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One worker shared by the API tests of the session."""
    proc = WorkerProcess(
        _worker_env(nats, tmp_path_factory.mktemp("state"), "agents_shared")
    ).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client (no proxies from the environment: everything is on loopback)."""
    async with aiohttp.ClientSession(trust_env=False) as session:
        yield session
