"""The worker's NATS connections: how every one of them connects (servers, credentials, TLS),
and the shared one with its JetStream context and its health.

nats-py does the authenticating and the TLS; what it does not do is tell a connection that can
never succeed from one that can later: asked to reconnect forever (the worker waits for a NATS
that is still starting), it also retries a wrong password or an untrusted certificate forever.
``open_connection`` watches the first connect's errors and stops at the first refusal with
``NatsRefused``, which says which it was; start-up ends there with that one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from pydantic import SecretStr

from worker.config import ConfigError, Settings
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import NATS_CONNECTED

log = get_logger(__name__)

ErrorCallback = Callable[[Exception], Awaitable[None]]


class NatsRefused(Exception):
    """NATS refused this worker's first connect: its credentials or its TLS. Retrying cannot
    help, so start-up stops; the message says which and names the settings to check."""


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """How every connection of the worker reaches NATS: the servers, at most one way to
    authenticate, and TLS. Built once at start (``connect_options``); the secrets stay
    ``SecretStr`` until nats-py needs them, so printing the options shows none."""

    servers: tuple[str, ...]
    credentials: Path | None = None
    nkey_seed: Path | None = None
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    tls: ssl.SSLContext | None = None
    tls_hostname: str | None = None
    authenticated_by: str | None = None
    """The settings the credentials come from (None: none set), for a refusal's message."""

    def connect_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``nats.aio.client.Client.connect`` for these options."""
        kwargs: dict[str, Any] = {"servers": list(self.servers)}
        if self.credentials is not None:
            kwargs["user_credentials"] = str(self.credentials)
        if self.nkey_seed is not None:
            kwargs["nkeys_seed"] = str(self.nkey_seed)
        if self.user is not None and self.password is not None:
            kwargs["user"] = self.user
            kwargs["password"] = self.password.get_secret_value()
        if self.token is not None:
            kwargs["token"] = self.token.get_secret_value()
        if self.tls is not None:
            kwargs["tls"] = self.tls
        if self.tls_hostname is not None:
            kwargs["tls_hostname"] = self.tls_hostname
        return kwargs


def split_servers(servers: str) -> tuple[str, ...]:
    """The URLs of a comma-separated ``WORKER_NATS_URL``."""
    return tuple(s.strip() for s in servers.split(",") if s.strip())


def connect_options(settings: Settings) -> ConnectOptions:
    """The options every NATS connection of a worker with ``settings`` uses: the servers of
    ``WORKER_NATS_URL``, the credentials and the TLS context (built here, once).

    Raises ``ConfigError`` naming the setting when a file it names cannot be used.
    """
    servers = split_servers(settings.nats_url or "")
    if settings.embedded_nats:
        # The embedded server listens on loopback with no credentials and no TLS; its URL is
        # known once it runs (``dataclasses.replace(options, servers=...)``).
        return ConnectOptions(servers=servers)
    if settings.nats_creds is not None:
        _check_creds(settings.nats_creds)
    if settings.nats_nkey_seed is not None:
        _check_seed(settings.nats_nkey_seed)
    return ConnectOptions(
        servers=servers,
        credentials=settings.nats_creds,
        nkey_seed=settings.nats_nkey_seed,
        user=settings.nats_user,
        password=settings.nats_password,
        token=settings.nats_token,
        tls=_tls_context(settings),
        tls_hostname=settings.nats_tls_server_name,
        authenticated_by=_authenticated_by(settings),
    )


def _authenticated_by(settings: Settings) -> str | None:
    if settings.nats_creds is not None:
        return "WORKER_NATS_CREDS"
    if settings.nats_nkey_seed is not None:
        return "WORKER_NATS_NKEY_SEED"
    if settings.nats_user is not None:
        return "WORKER_NATS_USER/WORKER_NATS_PASSWORD"
    if settings.nats_token is not None:
        return "WORKER_NATS_TOKEN"
    return None


def _read(path: Path, variable: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc}") from None


def _check_creds(path: Path) -> None:
    # nats-py reads the file at every connect (a rotated Secret is picked up), and loops
    # forever on a file without a JWT: check its shape once, here.
    text = _read(path, "WORKER_NATS_CREDS")
    if "BEGIN NATS USER JWT" not in text or "BEGIN USER NKEY SEED" not in text:
        raise ConfigError(
            f"WORKER_NATS_CREDS: {path} is not a NATS credentials file (a user JWT and an "
            "nkey seed, as `nsc generate creds` writes it)"
        )


def _check_seed(path: Path) -> None:
    import nkeys  # noqa: PLC0415 - nats-py's own optional dependency, only for nkeys

    try:
        nkeys.from_seed(bytearray(_read(path, "WORKER_NATS_NKEY_SEED").strip().encode()))
    except (nkeys.NkeysError, ValueError):
        raise ConfigError(
            f"WORKER_NATS_NKEY_SEED: {path} does not hold an nkey seed (SU...)"
        ) from None


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The client TLS context, or None for nats-py's default (the system's CAs, used when a
    server requires TLS and nothing here is set)."""
    ca, cert, key = settings.nats_tls_ca, settings.nats_tls_cert, settings.nats_tls_key
    if ca is None and cert is None and settings.nats_tls_server_name is None:
        return None
    try:
        # Given a CA, only that CA is trusted (not the system's as well).
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"WORKER_NATS_TLS_CA: cannot load {ca}: {exc}") from None
    if cert is not None and key is not None:
        try:
            context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"WORKER_NATS_TLS_CERT / WORKER_NATS_TLS_KEY: cannot load {cert} with {key}: {exc}"
            ) from None
    return context


def refusal(exc: BaseException, options: ConnectOptions) -> str | None:
    """Why NATS refused a connect for good (credentials, TLS), or None for what may pass
    (a server not up yet, a timeout)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the server's TLS certificate is not trusted (certificate verify failed: "
            f"{exc.verify_message}); check WORKER_NATS_TLS_CA and WORKER_NATS_TLS_SERVER_NAME"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"the TLS handshake failed ({exc.reason or exc}); check WORKER_NATS_TLS_CA, "
            "WORKER_NATS_TLS_CERT and WORKER_NATS_TLS_KEY"
        )
    said = str(exc).lower()
    if isinstance(exc, nats.errors.AuthorizationError) or "authorization violation" in said:
        if options.authenticated_by is None:
            return (
                "authorization violation: the server wants credentials and none are set "
                "(WORKER_NATS_CREDS, _NKEY_SEED, _USER and _PASSWORD, or _TOKEN)"
            )
        return f"authorization violation: the server refused {options.authenticated_by}"
    if "authentication expired" in said:
        return f"authentication expired: renew {options.authenticated_by or 'the credentials'}"
    return None


async def open_connection(
    client: Client,
    options: ConnectOptions,
    *,
    name: str,
    error_cb: ErrorCallback,
    **connect: Any,
) -> None:
    """Connect ``client`` with ``options``, reconnecting forever, as ``name``; ``connect``
    holds the rest of ``Client.connect``'s arguments (callbacks, timings).

    Until the first connect succeeds a refusal of the credentials or the TLS raises
    ``NatsRefused`` (other errors are retried: NATS may still be starting); after it every
    error goes to ``error_cb``.
    """
    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_error(exc: Exception) -> None:
        if not refused.done() and not client.is_connected:
            reason = refusal(exc, options)
            if reason is not None:
                refused.set_result(reason)
                return
        await error_cb(exc)

    connecting = asyncio.ensure_future(
        client.connect(
            name=name,
            error_cb=on_error,
            max_reconnect_attempts=-1,
            **options.connect_kwargs(),
            **connect,
        )
    )
    first: set[asyncio.Future[Any]] = {connecting, refused}
    try:
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # start-up itself was stopped: no connect left behind
        connecting.cancel()
        raise
    if not refused.done():
        refused.cancel()  # from now on every error is reported, none stops anything
        connecting.result()
        return
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await connecting
    with contextlib.suppress(Exception):
        await client.close()
    raise NatsRefused(f"{', '.join(options.servers)}: {refused.result()}")


class Broker:
    """A connected NATS client that reconnects forever and reports whether it is up."""

    def __init__(self, *, service: str) -> None:
        self._service = service
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self._closing = False

    @property
    def client(self) -> Client:
        """The NATS client (after ``connect``)."""
        if self.nc is None:
            raise RuntimeError("Broker.connect() was not awaited")
        return self.nc

    @property
    def jetstream(self) -> JetStreamContext:
        """The JetStream context (after ``connect``)."""
        if self.js is None:
            raise RuntimeError("Broker.connect() was not awaited")
        return self.js

    @property
    def connected(self) -> bool:
        """True while the client holds a live connection."""
        return self.nc is not None and self.nc.is_connected

    async def connect(self, options: ConnectOptions, *, name: str) -> None:
        """Connect with ``options``; ``NatsRefused`` if NATS refuses the credentials or TLS."""

        async def disconnected() -> None:
            NATS_CONNECTED.labels(self._service).set(0)
            if not self._closing:
                log.warning("nats disconnected")

        async def reconnected() -> None:
            NATS_CONNECTED.labels(self._service).set(1)
            log.info("nats reconnected", url=str(self.nc.connected_url) if self.nc else None)

        async def error(exc: Exception) -> None:
            log.warning("nats error", error=str(exc))

        async def closed() -> None:
            if self.js is not None and not self._closing:  # not a refused first connect
                log.error("nats connection closed")

        self.nc = Client()
        await open_connection(
            self.nc,
            options,
            name=name,
            error_cb=error,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            closed_cb=closed,
        )
        self.js = self.nc.jetstream()
        NATS_CONNECTED.labels(self._service).set(1)

    async def close(self) -> None:
        """Flush what is pending and close.

        Not ``drain()``: every component has already stopped its subscriptions, and draining
        a pull subscription whose messages were fetched (never "processed" by a callback)
        waits for its whole timeout.
        """
        self._closing = True
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=2)
            await self.nc.close()
        NATS_CONNECTED.labels(self._service).set(0)
