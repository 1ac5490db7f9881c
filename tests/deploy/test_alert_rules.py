"""deploy/prometheus/alerts.yml is valid, and each alert fires when it should (promtool).

promtool comes from Debian's `prometheus` package, which .ci/run installs. Without it the
test is skipped on a developer's machine and fails in CI, where it must run.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.deploy.helpers import PROMETHEUS, debian_binary


@pytest.fixture
def promtool() -> str:
    return debian_binary("promtool")


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
