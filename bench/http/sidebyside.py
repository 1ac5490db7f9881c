"""``python -m bench.http.sidebyside``: the worker against a baseline, loaded at once.

This machine's speed drifts by ±15% from one minute to the next, so a ratio of two req/s
figures measured one after the other (``python -m bench.http``) moves by as much as the
differences it is meant to show. Here the worker and its baseline run side by side on the same
core, each loaded by its own wrk at the same time for the same seconds, so both see the same
drift; what is compared is the server CPU time per response (from ``/proc``), and each round
gives one ratio. The rounds' median is the figure. Loopback only; every run is bounded in time.

Baselines (``--against``):

- ``bare`` (default): the bare aiohttp floor; the ratio is bare µs/response over worker
  µs/response (1.0x: the worker costs what the floor costs).
- ``static``: a worker whose callers send a static token (``WORKER_AUTH_TOKENS``), beside one
  whose callers send a JWT (RS256, a PEM key, issuer, audience, scopes and a tenant; one token
  reused, as a Go backend does until it expires); the figure is the JWT worker's extra CPU per
  response, as a share of the static one's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.http import loadgen, machine, procs, runnables, targets
from tests.fakes.issuer import Issuer

RESULTS = procs.REPO_ROOT / "bench" / "results"
DEFAULT_OUTPUT = {
    "bare": RESULTS / "http-side-by-side.md",
    "static": RESULTS / "http-jwt-side-by-side.md",
}
STATIC_TOKEN = "bench-static-token"  # noqa: S105 - loopback only, made up for the run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.http.sidebyside", description=__doc__)
    p.add_argument("--agent", choices=runnables.AGENTS, default="echo")
    p.add_argument("--against", choices=tuple(DEFAULT_OUTPUT), default="bare")
    p.add_argument("--connections", type=int, default=64, help="per server (default 64)")
    p.add_argument("--seconds", type=int, default=8, help="per round (default 8)")
    p.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    p.add_argument("--output", type=Path, default=None)
    return p.parse_args(argv)


def _auth_settings(
    base: targets.Settings, lifetime: float
) -> tuple[targets.Settings, targets.Settings]:
    """The JWT worker's settings and the static-token worker's, in folders of their own."""
    issuer = Issuer(base.workdir / "issuer")
    token = issuer.token(key="rsa", scopes="agents:write agents:invoke", lifetime=lifetime)
    jwt = dataclasses.replace(
        base,
        workdir=base.workdir / "jwt",
        worker_env=tuple(issuer.env(jwks=False, secret=False, pem=True).items()),
        token=token,
    )
    static = dataclasses.replace(
        base,
        workdir=base.workdir / "static",
        worker_env=(("WORKER_AUTH_TOKENS", STATIC_TOKEN),),
        token=STATIC_TOKEN,
    )
    jwt.workdir.mkdir()
    static.workdir.mkdir()
    return jwt, static


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = loadgen.find_wrk()
    if wrk is None:
        print(loadgen.INSTALL_HINT, file=sys.stderr)
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, wrk_cpus = ({cpus[0]}, set(cpus[1:])) if len(cpus) >= 2 else (None, None)
    procs.raise_nofile_limit()
    source: runnables.Source = "registry" if runnables.registry_available() else "stand-in"
    loop = "uvloop" if machine.worker_uses_uvloop() else "asyncio"

    def load(target: targets.Target, seconds: int) -> loadgen.RunResult:
        return loadgen.run(
            wrk=wrk,
            url=target.url,
            connections=args.connections,
            seconds=seconds,
            threads=1,
            timeout_s=10,
            cpus=wrk_cpus,
            server_pids=target.pids,
            headers=target.headers,
        )

    rounds: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp, contextlib.ExitStack() as st:
        settings = targets.Settings(source, loop, server_cpus, Path(tmp))
        if args.against == "bare":
            base = st.enter_context(targets.start("bare", args.agent, settings))
            worker = st.enter_context(targets.start("worker", args.agent, settings))
        else:
            lifetime = 3600 + (args.rounds + 1) * args.seconds
            jwt, static = _auth_settings(settings, lifetime)
            base = st.enter_context(targets.start("worker", args.agent, static))
            worker = st.enter_context(targets.start("worker", args.agent, jwt))
        with ThreadPoolExecutor(2) as pool:
            for i in range(args.rounds + 1):  # the first round warms both up
                seconds = 2 if i == 0 else args.seconds
                both = [pool.submit(load, t, seconds) for t in (worker, base)]
                w, b = (f.result() for f in both)
                if i == 0:
                    continue
                rounds.append((w.cpu_us_per_response, b.cpu_us_per_response))
                print(
                    f"round {i}: {_names(args.against)[0]} {w.cpu_us_per_response:,.0f} µs/resp "
                    f"({w.rps:,.0f} req/s)  {_names(args.against)[1]} "
                    f"{b.cpu_us_per_response:,.0f} µs/resp ({b.rps:,.0f} req/s)",
                    flush=True,
                )
    text = _report(args, rounds, cpus, wrk, loop)
    print(text)
    output = args.output or DEFAULT_OUTPUT[args.against]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return 0


def _names(against: str) -> tuple[str, str]:
    return ("worker", "bare") if against == "bare" else ("JWT", "static token")


def _report(
    args: argparse.Namespace,
    rounds: list[tuple[float, float]],
    cpus: list[int],
    wrk: str,
    loop: str,
) -> str:
    command = f"python -m bench.http.sidebyside --agent {args.agent} --against {args.against} "
    command += f"--connections {args.connections} --seconds {args.seconds} --rounds {args.rounds}"
    setup = (
        f"Setup: {machine.describe(len(cpus), wrk)}; both servers on CPU {cpus[0]}, the two wrk "
        "on the other(s); event loop " + loop + "."
    )
    if args.against == "bare":
        ratios = sorted(b / w for w, b in rounds)
        title = "worker and bare floor"
        header = "| round | worker CPU µs/resp | bare CPU µs/resp | bare/worker |"
        rows = [f"| {i} | {w:,.0f} | {b:,.0f} | {b / w:.2f}x |" for i, (w, b) in _numbered(rounds)]
        summary = (
            f"Median {statistics.median(ratios):.2f}x (range {ratios[0]:.2f} to "
            f"{ratios[-1]:.2f}x): the worker's throughput as a share of the floor's on the same "
            "CPU time."
        )
    else:
        extra = sorted((w - b) / b * 100 for w, b in rounds)
        title = "JWT and static-token workers"
        header = "| round | JWT CPU µs/resp | static CPU µs/resp | JWT's extra CPU |"
        rows = [
            f"| {i} | {w:,.0f} | {b:,.0f} | {(w - b) / b * 100:+.1f}% |"
            for i, (w, b) in _numbered(rounds)
        ]
        summary = (
            f"Median {statistics.median(extra):+.1f}% (range {extra[0]:+.1f}% to "
            f"{extra[-1]:+.1f}%): the CPU a JWT-authenticated echo invoke costs beyond a "
            "static-token one (RS256, one token reused: its signature is checked once, then "
            "the verified-token cache answers)."
        )
    lines = [
        f"# HTTP, {title} side by side ({args.agent}, {args.connections} connections each)",
        "",
        f"Command: `{command}`",
        "",
        header,
        "| ---: | ---: | ---: | ---: |",
        *rows,
        "",
        summary,
        "",
        setup,
    ]
    return "\n".join(lines) + "\n"


def _numbered(rounds: list[tuple[float, float]]) -> list[tuple[int, tuple[float, float]]]:
    return list(enumerate(rounds, start=1))


if __name__ == "__main__":
    sys.exit(main())
