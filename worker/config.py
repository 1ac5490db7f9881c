"""The one settings object: ``WORKER_*`` variables and the matching command-line flags.

Built once at start (``Settings.load``); nothing reads the environment after that. A bad value
stops start-up with a message naming the variable and the flag.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker.durations import SettingDuration

ENV_PREFIX = "WORKER_"


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "agentos-worker"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of a worker. Field ``x`` is ``WORKER_X`` and ``--x`` (dashes for underscores)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="ignore",
        cli_kebab_case=True,
        cli_prog_name="agentos-worker",
        cli_implicit_flags=True,
    )

    # --- identity -------------------------------------------------------------------------
    service_name: str = Field("ai-worker", description="`service` label of metrics and spans.")
    worker_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        description="This worker's name in job metadata and logs.",
    )

    # --- HTTP door ------------------------------------------------------------------------
    http_host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer tokens; when set, every endpoint but /healthz and "
        "/readyz needs `Authorization: Bearer <token>`.",
    )
    allow_unauthenticated: bool = Field(
        False,
        description="Start without auth even when bound beyond loopback (protected mode off).",
    )
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Largest request body (413 past).")
    max_concurrent_invocations: int = Field(
        256, ge=1, description="Invocations running at once on this worker; past it, 503."
    )
    invoke_timeout: SettingDuration = Field(30.0, gt=0, description="Default invoke deadline.")
    max_invoke_timeout: SettingDuration = Field(
        300.0, gt=0, description="Largest deadline a caller may ask for."
    )
    sync_pool_size: int = Field(
        8, ge=1, description="Threads that run Runnables with no async implementation."
    )
    access_log: bool = Field(False, description="Log every HTTP request (errors always are).")
    demo_agents: bool = Field(
        False, description="Create the demo agents (demo-echo, demo-chat, demo-steps) at start."
    )

    # --- NATS -----------------------------------------------------------------------------
    nats_url: str | None = Field(
        None, description="NATS server(s), comma-separated; unset starts an embedded one."
    )
    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Where the embedded nats-server keeps its JetStream data.",
    )
    nats_server_bin: Path | None = Field(
        None, description="nats-server binary for the embedded mode (default: the bundled one)."
    )
    agents_bucket: str = Field("agentos_agents", description="JetStream KV bucket of agents.")
    kv_replicas: int = Field(1, ge=1, le=5, description="Replicas of the worker's KV buckets.")

    # --- callbacks (CONTRACT section 2) ---------------------------------------------------
    callback_secret: SecretStr | None = Field(
        None, description="Standard Webhooks signing secret (`whsec_...`) for callbacks."
    )
    callback_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts or CIDRs allowed as callback targets (comma-separated).",
    )

    # --- model providers ------------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(
        None, description="Default API key for `openai` model providers."
    )
    openai_base_url: str | None = Field(
        None, description="Default base URL for `openai` providers (any compatible endpoint)."
    )

    # --- telemetry ------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    log_format: Literal["json", "console"] = Field("json")

    @field_validator("auth_tokens", "callback_allow", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("callback_allow")
    @classmethod
    def _check_allow(cls, value: list[str]) -> list[str]:
        for entry in value:
            if "/" in entry:
                ipaddress.ip_network(entry, strict=False)
        return value

    @model_validator(mode="after")
    def _protected_mode(self) -> Settings:
        if (
            not self.auth_tokens
            and not self.allow_unauthenticated
            and not _is_loopback(self.http_host)
        ):
            raise ValueError(
                f"refusing to listen on {self.http_host} without authentication: set "
                "WORKER_AUTH_TOKENS, or WORKER_ALLOW_UNAUTHENTICATED=true if this is intended"
            )
        if self.invoke_timeout > self.max_invoke_timeout:
            raise ValueError("WORKER_INVOKE_TIMEOUT is larger than WORKER_MAX_INVOKE_TIMEOUT")
        return self

    @property
    def embedded_nats(self) -> bool:
        """True when the worker runs its own nats-server."""
        return not self.nats_url

    def token_values(self) -> frozenset[bytes]:
        """The configured bearer tokens, as bytes for constant-time comparison."""
        return frozenset(t.get_secret_value().encode() for t in self.auth_tokens)

    @classmethod
    def load(cls, argv: Sequence[str] | None = None) -> Settings:
        """Build from the environment and ``argv``; exit with a clear message on a bad value."""
        args = list(sys.argv[1:] if argv is None else argv)
        try:
            return cls(_cli_parse_args=args)
        except ValidationError as exc:
            raise SystemExit(describe_errors(exc)) from None


def _is_loopback(host: str) -> bool:
    if host in {"localhost", ""}:
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe_errors(exc: ValidationError) -> str:
    """Turn a settings ``ValidationError`` into lines that name the variable and the flag."""
    lines = ["agentos-worker: invalid configuration"]
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        if field:
            flag = "--" + field.replace("_", "-")
            value = err.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            lines.append(f"  {ENV_PREFIX}{field.upper()} / {flag}: {msg}{shown}")
        else:
            lines.append(f"  {msg}")
    return "\n".join(lines)
