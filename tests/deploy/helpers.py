"""The operator-facing files, loaded once for the deploy tests."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARDS = ROOT / "dashboards"

# A full variable name; `WORKER_FOO_*`-style families are not used in these files.
WORKER_VARIABLE = re.compile(r"\bWORKER_[A-Z0-9_]*[A-Z0-9]\b")

Manifest = dict[str, Any]

# Time the worker takes to exit once WORKER_SHUTDOWN_GRACE is over (closing NATS, finishing
# callbacks of stored results). Measured 1.9s with three long jobs handed back; 5s of room.
EXIT_MARGIN = 5.0


def yaml_files(folder: Path) -> list[Path]:
    """Every YAML file under ``folder``."""
    return sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")])


def load_documents(path: Path) -> list[Manifest]:
    """The documents of a YAML file (empty ones, between two ``---``, left out)."""
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def kubernetes_objects() -> list[tuple[Path, Manifest]]:
    """Every Kubernetes object of deploy/kubernetes/ (optional/ included), with its file."""
    return [
        (path, doc)
        for path in yaml_files(KUBERNETES)
        for doc in load_documents(path)
        if doc.get("kind") != "Kustomization"
    ]


def find(kind: str, name: str) -> Manifest:
    """The one object of ``kind`` named ``name``."""
    found = [
        doc
        for _, doc in kubernetes_objects()
        if doc["kind"] == kind and doc["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def setting_variables() -> set[str]:
    """The environment variable of every field of ``Settings``."""
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def debian_binary(name: str) -> str:
    """The path of ``name`` (``prometheus``, ``promtool``) from Debian's ``prometheus``
    package, which .ci/run installs: without it the test is skipped on a developer's machine
    and fails in CI, where it must run."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI: .ci/run installs Debian's prometheus package")
        pytest.skip(f"{name} not installed (apt-get install prometheus)")
    return path
