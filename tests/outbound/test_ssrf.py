"""Callback targets are checked, and the address checked is the address connected to."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.jobs.receiver import Receiver
from worker.outbound.ssrf import CallbackPolicy, CallbackRefused, CheckedResolver, refusal_in


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/cb",
        "http://[::1]/cb",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/cb",
        "http://192.168.1.1/cb",
        "http://172.16.0.1/cb",
        "http://[::ffff:127.0.0.1]/cb",
        "http://0.0.0.0/cb",
        "ftp://example.com/cb",
        "file:///etc/passwd",
        "http:///no-host",
    ],
)
def test_internal_and_odd_targets_are_refused_by_default(url: str) -> None:
    with pytest.raises(CallbackRefused):
        CallbackPolicy(["hooks.example.com"]).check_url(url)


def test_listed_networks_and_hosts_are_allowed() -> None:
    policy = CallbackPolicy(["127.0.0.1", "10.0.0.0/8", "hooks.example.com", "*.example.org"])
    for url in (
        "http://127.0.0.1:9/cb",
        "http://10.1.2.3/cb",
        "https://hooks.example.com/x",
        "https://a.b.example.org/x",
    ):
        policy.check_url(url)
    with pytest.raises(CallbackRefused):
        policy.check_url("http://[::1]/cb")
    # A listed name that resolves into an unlisted internal range is refused (rebinding).
    assert not CallbackPolicy(["hooks.example.com"]).address_allowed(
        "hooks.example.com", ipaddress.ip_address("169.254.169.254")
    )
    assert CallbackPolicy(["hooks.example.com"]).address_allowed(
        "hooks.example.com", ipaddress.ip_address("93.184.216.34")
    )


class _Rebinding(AbstractResolver):
    """A DNS that answers with whatever address it is told (a rebinding attacker)."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": self.address,
                "port": port,
                "family": 2,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


@pytest.fixture
async def target() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def _post(policy: CallbackPolicy, url: str, inner: AbstractResolver | None = None) -> int:
    connector = aiohttp.TCPConnector(resolver=CheckedResolver(policy, inner), use_dns_cache=False)
    async with (
        aiohttp.ClientSession(connector=connector, trust_env=False) as s,
        s.post(url, data=b"{}", allow_redirects=False) as resp,
    ):
        return resp.status


async def test_resolved_address_is_the_one_checked(target: Receiver) -> None:
    # A name that resolves to loopback is refused unlisted, whatever the list says of public
    # hosts; decimal, hex and octal spellings of loopback are refused before any connection.
    with pytest.raises(aiohttp.ClientError) as info:
        await _post(CallbackPolicy(["*"]), f"http://localhost:{target.port}/cb/x")
    assert refusal_in(info.value) is not None
    for url in (
        f"http://2130706433:{target.port}/cb/x",
        f"http://0x7f000001:{target.port}/cb/x",
        f"http://0177.0.0.1:{target.port}/cb/x",
    ):
        with pytest.raises(CallbackRefused):
            CallbackPolicy(["*"]).check_url(url)
    # Listed, the same names connect.
    assert (
        await _post(CallbackPolicy(["127.0.0.0/8"]), f"http://localhost:{target.port}/cb/x") == 200
    )
    # A public-looking listed name rebinding to loopback is refused at connect time.
    with pytest.raises(aiohttp.ClientError) as info:
        await _post(
            CallbackPolicy(["hooks.example.com"]),
            f"http://hooks.example.com:{target.port}/cb/x",
            _Rebinding("127.0.0.1"),
        )
    assert refusal_in(info.value) is not None


async def test_redirects_are_not_followed() -> None:
    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    app = web.Application()
    app.router.add_post("/cb", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await _post(CallbackPolicy(["127.0.0.1"]), f"http://127.0.0.1:{port}/cb") == 302
    finally:
        await runner.cleanup()
