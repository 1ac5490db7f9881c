"""A real Prometheus for tests: Debian's ``prometheus`` binary on a loopback port, with a
config and a data directory of its own, and the few calls of its HTTP API the tests make.

Prometheus applies scrape targets at most every 5 seconds, so it is started with the targets'
addresses fixed in advance (before the workers listen on them) and its first scrape comes
while the workers start.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from worker.testing import free_port, wait_for_port

JOB = "agentos-worker"


class PrometheusError(AssertionError):
    """Prometheus answered an API call with an error."""


class Prometheus:
    """``prometheus`` scraping ``targets`` (``host:port``) every second and evaluating
    ``rule_files`` every second."""

    def __init__(
        self, binary: str, workdir: Path, *, targets: Sequence[str], rule_files: Sequence[Path]
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def _write_config(self) -> Path:
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def start(self) -> Prometheus:
        """Start and wait until it accepts connections (it then serves its API at once)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.port)
        except OSError:
            self.stop()
            raise AssertionError("prometheus did not start:\n" + self.log_tail()) from None
        return self

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.stop()
        if exc_type is not None:
            # Captured by pytest and shown with the failure: a bad rule file, a crash.
            print("prometheus log:\n" + self.log_tail())

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it takes more than 10 seconds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The end of what Prometheus logged (warnings and errors)."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # --- HTTP API (https://prometheus.io/docs/prometheus/latest/querying/api/) ----------------

    async def api(self, http: aiohttp.ClientSession, path: str, **params: str) -> Any:
        """The ``data`` of a successful ``GET /api/v1/<path>``."""
        async with http.get(f"{self.url}/api/v1/{path}", params=params) as resp:
            body = await resp.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    async def query(self, http: aiohttp.ClientSession, expr: str) -> list[dict[str, Any]]:
        """An instant query at the current time; its result vector."""
        data = await self.api(http, "query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    async def label_values(self, http: aiohttp.ClientSession, label: str, match: str) -> list[str]:
        """The values of ``label`` on the series ``match`` selects."""
        values: list[str] = await self.api(http, f"label/{label}/values", **{"match[]": match})
        return values

    async def alerts(self, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
        """The pending and firing alerts."""
        alerts: list[dict[str, Any]] = (await self.api(http, "alerts"))["alerts"]
        return alerts


def has_number(result: list[dict[str, Any]]) -> bool:
    """Whether a query's result has at least one sample that is a number (not NaN or ±Inf:
    what a quantile of a histogram without new observations gives)."""
    return any(math.isfinite(float(sample["value"][1])) for sample in result)
