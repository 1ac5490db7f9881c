"""Which outbound targets are allowed (SSRF protection): callbacks and ``stream_url`` pushes.

A job names the addresses the worker connects to, so every such connection is checked. A target
is allowed when its host is listed in ``WORKER_CALLBACK_ALLOW`` (a name, ``*.suffix`` or ``*``
for any public host) or its address lies in a listed IP or CIDR; and every address it resolves
to is either public or inside a listed network. The check runs in the HTTP client's resolver, so
the address checked is the address connected to: DNS rebinding fails, and so does any connection
to an unlisted internal address. (The names say "callback" after the setting, which predates
pushes; they cover both.)
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from worker.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


HTTP_SCHEMES = frozenset({"http", "https"})
"""What a callback URL may use."""
PUSH_SCHEMES = frozenset({"ws", "wss", "http", "https"})
"""What a push (a WebSocket handshake, itself an HTTP request) may use."""
LOOPBACK = ("127.0.0.0/8", "::1")


class CallbackRefused(OSError):
    """The target is not allowed; connecting to it is never retried."""


def _address(value: str) -> IPAddress | None:
    try:
        addr = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _numeric_host(host: str) -> bool:
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


_PASSED_KEPT = 4096  # checked URLs remembered


class CallbackPolicy:
    """The allow-list of outbound targets, and the checks made against it."""

    def __init__(self, allow: list[str]) -> None:
        self.networks: list[IPNetwork] = []
        self.hosts: set[str] = set()
        self.suffixes: list[str] = []
        self.any_public = False
        # URLs that passed the static checks: jobs of one caller name the same callback URL
        # again and again, and the policy never changes.
        self._passed: dict[str, URL] = {}
        for entry in (e.strip().lower() for e in allow if e.strip()):
            addr = _address(entry)
            if entry == "*":
                self.any_public = True
            elif "/" in entry or addr is not None:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            elif entry.startswith("*."):
                self.suffixes.append(entry[1:])
            else:
                self.hosts.add(entry.rstrip("."))

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackPolicy:
        """``WORKER_CALLBACK_ALLOW``; the embedded demo (no NATS URL, nothing listed) allows
        loopback."""
        return cls(settings.callback_allow or list(LOOPBACK if settings.embedded_nats else []))

    def _host_listed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return (
            self.any_public
            or host in self.hosts
            or any(host.endswith(suffix) for suffix in self.suffixes)
        )

    def _in_networks(self, addr: IPAddress) -> bool:
        return any(addr in net for net in self.networks)

    def address_allowed(self, host: str, addr: IPAddress) -> bool:
        """May a connection for ``host`` go to ``addr``?"""
        if self._in_networks(addr):
            return True
        return addr.is_global and self._host_listed(host)

    def check_url(self, url: str, *, schemes: frozenset[str] = HTTP_SCHEMES) -> URL:
        """Static checks (scheme, host, literal addresses); raises ``CallbackRefused``."""
        parsed = self._passed.get(url)
        if parsed is None:
            parsed = self._check(url)
            if len(self._passed) >= _PASSED_KEPT:
                self._passed.clear()
            self._passed[url] = parsed
        if parsed.scheme not in schemes:
            allowed = ", ".join(sorted(schemes))
            raise CallbackRefused(f"URL scheme {parsed.scheme!r} is not one of {allowed}")
        return parsed

    def push_refusal(self, url: str | None) -> str | None:
        """Why a push to ``url`` would be refused by the static checks (``None``: it would
        not, or there is no URL)."""
        if not url:
            return None
        try:
            self.check_url(url, schemes=PUSH_SCHEMES)
        except CallbackRefused as exc:
            return str(exc)
        return None

    def _check(self, url: str) -> URL:
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            raise CallbackRefused(f"URL {url!r} is not a URL: {exc}") from None
        host = parsed.raw_host
        if not host:
            raise CallbackRefused(f"URL {url!r} has no host")
        addr = _address(host)
        if addr is None and _numeric_host(host):
            # 2130706433, 0x7f000001, 0177.0.0.1: resolvers read these as IPv4 addresses.
            raise CallbackRefused(f"host {host!r} is a non-canonical IP address")
        if addr is not None:
            if not self.address_allowed(host, addr):
                raise CallbackRefused(f"address {addr} is not in WORKER_CALLBACK_ALLOW")
        elif not self._host_listed(host) and not self.networks:
            raise CallbackRefused(f"host {host!r} is not in WORKER_CALLBACK_ALLOW")
        return parsed


class CheckedResolver(AbstractResolver):
    """aiohttp resolver that connects only to addresses the policy allows."""

    def __init__(self, policy: CallbackPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and keep only allowed addresses (refuse if none is left)."""
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refused: list[str] = []
        for result in results:
            addr = _address(result["host"])
            if addr is not None and self._policy.address_allowed(host, addr):
                allowed.append(result)
            else:
                refused.append(result["host"])
        if not allowed:
            raise CallbackRefused(
                f"host {host!r} resolves to {', '.join(refused)}, not in WORKER_CALLBACK_ALLOW"
            )
        return allowed

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


def refusal_in(exc: BaseException) -> CallbackRefused | None:
    """The ``CallbackRefused`` behind an aiohttp connection error, if that is what it was."""
    seen: set[int] = set()
    current: Any = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CallbackRefused):
            return current
        seen.add(id(current))
        current = getattr(current, "os_error", None) or current.__cause__
    return None
