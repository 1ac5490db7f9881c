"""The one way the worker opens connections to addresses a job names: ``checked_session``.

Callbacks POST with such a session and ``stream_url`` pushes dial WebSockets with one
(``ws_connect``), so both go through the policy, twice:

- before anything is sent, the request's URL gets the static checks (host listed, literal
  addresses allowed). This is the only check a literal IP gets: aiohttp connects to one without
  asking the resolver;
- the resolver keeps only allowed addresses, so the address checked is the address connected to.

A redirect is refused: its target would get neither check. Proxies from the environment are
ignored for the same reason (a proxy would connect on the worker's behalf).
"""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp

from worker.outbound.ssrf import PUSH_SCHEMES, CallbackPolicy, CallbackRefused, CheckedResolver


def checked_session(
    policy: CallbackPolicy,
    *,
    timeout: aiohttp.ClientTimeout,
    limit: int,
    limit_per_host: int = 0,
) -> aiohttp.ClientSession:
    """A client session whose every request and WebSocket is checked against ``policy``.

    ``limit`` bounds its connections at once (0: no bound; a WebSocket holds one while open).
    The caller closes it.
    """

    async def url_allowed(
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        # Every scheme a connection may use: callers check their own kind (a callback is http).
        policy.check_url(str(params.url), schemes=PUSH_SCHEMES)

    async def no_redirect(
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestRedirectParams,
    ) -> None:
        params.response.close()
        raise CallbackRefused(
            f"{params.url} answered {params.response.status}: redirects are not followed"
        )

    checks = aiohttp.TraceConfig()
    checks.on_request_start.append(url_allowed)
    checks.on_request_redirect.append(no_redirect)
    connector = aiohttp.TCPConnector(
        resolver=CheckedResolver(policy),
        limit=limit,
        limit_per_host=limit_per_host,
        use_dns_cache=False,  # resolve (and check) for every new connection
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trust_env=False,
        raise_for_status=False,
        trace_configs=[checks],
    )
