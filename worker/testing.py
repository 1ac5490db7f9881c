"""Helpers for tests of the worker and of code that talks to it: a real nats-server and real
worker processes, started and stopped cleanly, and ``wait_for`` to wait on what a test can
observe instead of sleeping (in the spirit of ``structlog.testing``)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TypeVar, overload

from worker.broker.embedded import find_nats_server

_LISTENING = re.compile(r"agentos-worker listening on (http://\S+)")

T = TypeVar("T")


# An async predicate's value is what it returns once awaited. (A sync predicate returning an
# awaitable would match both signatures; the first, which awaits it, is the one that applies.)
@overload
async def wait_for(
    predicate: Callable[[], Awaitable[T]], *, what: str, within: float = ..., interval: float = ...
) -> T: ...


@overload
async def wait_for(
    predicate: Callable[[], T], *, what: str, within: float = ..., interval: float = ...
) -> T: ...


async def wait_for(
    predicate: Callable[[], object],
    *,
    what: str,
    within: float = 30.0,
    interval: float = 0.02,
) -> object:
    """Call ``predicate`` (a plain or an ``async`` function) until it returns a truthy value, and
    return that value; after ``within`` seconds raise ``AssertionError`` saying what was waited
    for and the last value seen.

    Tests wait on what they can observe (a metric, a KV record, a frame, a log line, a request a
    server received) rather than sleep for a while and hope events came in order. The deadline
    is generous, since a loaded machine is slow, and the polling interval small, since an idle
    one is fast. Exceptions from ``predicate`` propagate: a probe that fails is a finding.
    (tenacity can poll too, but its error says which attempt failed, not what never happened.)
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            seen = repr(value)
            seen = seen if len(seen) <= 300 else seen[:300] + "..."
            raise AssertionError(f"waited {within:g}s for {what}; last seen: {seen}")
        await asyncio.sleep(interval)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class NatsServer:
    """A real nats-server with JetStream on a loopback port; restartable on the same port.

    ``config`` is the text of a configuration file (authorization, TLS, accounts) that the
    command line's address, port and JetStream store complete.
    """

    def __init__(
        self, store_dir: Path | None = None, port: int | None = None, *, config: str = ""
    ) -> None:
        self._tmp = None if store_dir else tempfile.TemporaryDirectory(prefix="agentos-nats-")
        self.store_dir = store_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.port = port or free_port()
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        """Start (or restart) the server and wait until it accepts connections."""
        config: list[str] = []
        if self.config:
            path = self.store_dir / "nats-server.conf"
            path.write_text(self.config, encoding="utf-8")
            config = ["-c", str(path)]
        self.proc = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [
                str(find_nats_server()),
                *config,
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        """Stop the server gracefully."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        """Stop and remove the store."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


class WorkerProcess:
    """``python -m worker`` in a subprocess, with its log lines collected."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        args: list[str] | None = None,
        *,
        cwd: Path | None = None,
    ) -> None:
        self.env = {**os.environ, **(env or {})}
        self.args = args or []
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.lines: deque[str] = deque(maxlen=5000)
        self._listening = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        """Start the worker and wait until it says where it listens."""
        self._listening.clear()
        self.proc = subprocess.Popen(  # noqa: S603 - the worker itself
            [sys.executable, "-m", "worker", *self.args],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if self.proc.stderr is None:
            raise RuntimeError("no stderr pipe")
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._reader.join(2)
                raise RuntimeError(
                    "worker did not start (exit code "
                    f"{self.proc.poll()}):\n" + "\n".join(list(self.lines)[-40:])
                )
        return self

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            match = _LISTENING.search(line)
            if match:
                self.url = match.group(1)
                self._listening.set()

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait; return the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._close_pipe()
        return code

    def _close_pipe(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_pipe()

    def log_text(self) -> str:
        """Everything the worker logged so far."""
        return "\n".join(self.lines)


@contextlib.contextmanager
def nats_server() -> Iterator[NatsServer]:
    """A started ``NatsServer``, closed on exit."""
    server = NatsServer().start()
    try:
        yield server
    finally:
        server.close()
