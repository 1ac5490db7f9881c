"""What the report says about how it was run: machine, versions, settings."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import importlib.util
import platform
import subprocess
from pathlib import Path


def worker_uses_uvloop() -> bool:
    """True when the worker package's source runs on uvloop."""
    try:
        spec = importlib.util.find_spec("worker")
    except ImportError:
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(
        "uvloop" in path.read_text(errors="replace")
        for root in spec.submodule_search_locations
        for path in Path(root).rglob("*.py")
    )


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].split(" [")[0] if lines else "wrk"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(ncpus: int, wrk: str) -> str:
    return (
        f"{dt.date.today().isoformat()}, {cpu_model()}, {ncpus} CPUs, "
        f"Linux {platform.release()}, Python {platform.python_version()}, "
        f"{wrk_version(wrk)}"
    )


def stack_versions() -> str:
    v = version
    return (
        f"worker {v('agentos-worker')} (aiohttp {v('aiohttp')}); "
        f"bare: aiohttp {v('aiohttp')} + orjson {v('orjson')}; "
        f"langserve: langserve {v('langserve')}, fastapi {v('fastapi')}, "
        f"uvicorn {v('uvicorn')} with httptools {v('httptools')}; "
        f"langchain-core {v('langchain-core')}, uvloop {v('uvloop')}"
    )
