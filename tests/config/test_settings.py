"""Settings: WORKER_* variables and flags, and a clear stop on a bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.config import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("WORKER_"):
            monkeypatch.delenv(key)


def test_defaults_and_contract_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_HTTP_HOST", "127.0.0.2")
    monkeypatch.setenv("WORKER_HTTP_PORT", "9001")
    monkeypatch.setenv("WORKER_NATS_URL", "nats://127.0.0.1:4222")
    monkeypatch.setenv("WORKER_AUTH_TOKENS", "alpha, beta")
    monkeypatch.setenv("WORKER_CALLBACK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    monkeypatch.setenv("WORKER_CALLBACK_ALLOW", "127.0.0.1,10.0.0.0/8,example.com")
    s = Settings.load([])
    assert (s.http_host, s.http_port, s.nats_url) == ("127.0.0.2", 9001, "nats://127.0.0.1:4222")
    assert s.token_values() == {b"alpha", b"beta"}
    assert s.callback_allow == ["127.0.0.1", "10.0.0.0/8", "example.com"]
    assert not s.embedded_nats
    assert s.invoke_timeout == 30.0


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_HTTP_PORT", "9001")
    s = Settings.load(["--http-port", "9002", "--invoke-timeout", "1m30s"])
    assert s.http_port == 9002
    assert s.invoke_timeout == 90.0
    assert Settings.load([]).embedded_nats


def test_thread_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings.load([])
    assert (s.threads_bucket, s.thread_retention, s.thread_lease_ttl) == (
        "agentos_threads",
        30 * 86400.0,
        30.0,
    )
    monkeypatch.setenv("WORKER_THREAD_RETENTION", "168h")
    s = Settings.load(["--threads-bucket", "chats", "--thread-lease-ttl", "1m"])
    assert (s.threads_bucket, s.thread_retention, s.thread_lease_ttl) == ("chats", 604800.0, 60.0)
    with pytest.raises(SystemExit, match="WORKER_THREAD_LEASE_TTL is not shorter"):
        Settings.load(["--thread-retention", "10s", "--thread-lease-ttl", "10s"])


def test_import_paths_are_parsed_from_the_variable_and_the_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKER_AGENT_TYPES", "support=mypkg.agents:graph, triage=mypkg.t:AGENT")
    s = Settings.load(["--tools", "lookup=mypkg.tools:lookup"])
    assert [str(r) for r in s.agent_types] == [
        "support=mypkg.agents:graph",
        "triage=mypkg.t:AGENT",
    ]
    assert (s.tools[0].name, s.tools[0].module, s.tools[0].attribute) == (
        "lookup",
        "mypkg.tools",
        "lookup",
    )


def test_the_price_file_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.load([]).prices_file is None
    monkeypatch.setenv("WORKER_PRICES_FILE", "/etc/agentos/prices.toml")
    assert Settings.load([]).prices_file == Path("/etc/agentos/prices.toml")
    assert Settings.load(["--prices-file", "p.toml"]).prices_file == Path("p.toml")


def test_settings_are_frozen() -> None:
    s = Settings.load([])
    with pytest.raises(ValueError, match="frozen"):
        s.http_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WORKER_HTTP_PORT": "eighty"}, "WORKER_HTTP_PORT / --http-port"),
        ({"WORKER_HTTP_PORT": "70000"}, "WORKER_HTTP_PORT"),
        ({"WORKER_INVOKE_TIMEOUT": "soon"}, "WORKER_INVOKE_TIMEOUT"),
        ({"WORKER_CALLBACK_ALLOW": "10.0.0.0/33"}, "WORKER_CALLBACK_ALLOW"),
        ({"WORKER_LOG_LEVEL": "loud"}, "WORKER_LOG_LEVEL"),
        ({"WORKER_THREAD_RETENTION": "forever"}, "WORKER_THREAD_RETENTION"),
        ({"WORKER_HTTP_HOST": "0.0.0.0"}, "WORKER_AUTH_TOKENS"),
        ({"WORKER_AGENT_TYPES": "support=mypkg"}, "entry 'support=mypkg' is not name="),
        ({"WORKER_TOOLS": "a=m:x,a=m:y"}, "WORKER_TOOLS / --tools: name 'a' is given twice"),
        # Well-formed but not importable: found at start, before anything runs.
        ({"WORKER_AGENT_TYPES": "s=no_such_pkg.mod:g"}, "no module named 'no_such_pkg'"),
        ({"WORKER_TOOLS": "t=worker.config:nothing"}, "has no attribute 'nothing'"),
    ],
)
def test_bad_value_stops_start_with_the_variable_named(env: dict[str, str], needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "worker"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode != 0
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_protected_mode_can_be_lifted_explicitly() -> None:
    s = Settings.load(["--http-host", "0.0.0.0", "--allow-unauthenticated"])
    assert s.allow_unauthenticated
    s = Settings.load(["--http-host", "0.0.0.0", "--auth-tokens", "t"])
    assert s.auth_tokens


def test_help_lists_the_flags() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    for flag in (
        "--http-host",
        "--http-port",
        "--nats-url",
        "--auth-tokens",
        "--callback-secret",
        "--callback-allow",
    ):
        assert flag in proc.stdout


NATS = "tls://nats.example:4222"


def test_nats_credentials_and_tls_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_NATS_URL", NATS)
    monkeypatch.setenv("WORKER_NATS_PASSWORD", "hunter2")
    s = Settings.load(
        ["--nats-user", "worker", "--nats-tls-ca", "ca.pem", "--nats-tls-server-name", "nats"]
    )
    assert (s.nats_user, s.nats_tls_ca, s.nats_tls_server_name) == (
        "worker",
        Path("ca.pem"),
        "nats",
    )
    assert s.nats_password is not None
    assert s.nats_password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(s)
    # An empty variable (a manifest's "none") is unset, not a path to the working directory.
    monkeypatch.setenv("WORKER_NATS_CREDS", "")
    assert Settings.load(["--nats-user", "worker"]).nats_creds is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--nats-creds", "w.creds", "--nats-user", "w", "--nats-password", "p"],
            "WORKER_NATS_CREDS and WORKER_NATS_USER/WORKER_NATS_PASSWORD are both set",
        ),
        (
            ["--nats-nkey-seed", "w.nk", "--nats-token", "t", "--nats-creds", "w.creds"],
            "WORKER_NATS_CREDS, WORKER_NATS_NKEY_SEED and WORKER_NATS_TOKEN are all set",
        ),
        (["--nats-user", "w"], "WORKER_NATS_USER and WORKER_NATS_PASSWORD go together"),
        (["--nats-tls-key", "k.pem"], "WORKER_NATS_TLS_CERT and WORKER_NATS_TLS_KEY go together"),
    ],
)
def test_nats_settings_that_conflict_stop_start(args: list[str], needle: str) -> None:
    with pytest.raises(SystemExit, match=needle):
        Settings.load(["--nats-url", NATS, *args])


def test_the_embedded_nats_takes_no_credentials() -> None:
    with pytest.raises(SystemExit, match="WORKER_NATS_TLS_CA is set but WORKER_NATS_URL is not"):
        Settings.load(["--nats-tls-ca", "ca.pem"])
