"""deploy/prometheus/alerts.yml is valid, and each alert fires when it should (promtool).

promtool comes from Debian's `prometheus` package, which .ci/run installs. Without it the
test is skipped on a developer's machine and fails in CI, where it must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.deploy.helpers import PROMETHEUS

PROMTOOL = shutil.which("promtool")


@pytest.fixture
def promtool() -> str:
    if PROMTOOL is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return PROMTOOL


@pytest.mark.parametrize(
    "command",
    [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]],
    ids=["check", "unit-tests"],
)
def test_promtool(promtool: str, command: list[str]) -> None:
    done = subprocess.run(
        [promtool, *command],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
