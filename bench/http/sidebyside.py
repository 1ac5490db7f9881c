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
- ``accounting``: a worker with accounting off (``--no-accounting``), beside one counting what
  runs spend (with a price table, so every call is priced); the figure is accounting's extra
  CPU per response (goal: below 3% for ``chat``).
- ``control``: two identical workers (accounting off): what the method reads where there is no
  difference, the yardstick for the others' small figures.

``--restart`` (the default for ``accounting`` and ``control``) starts a new pair for every
round: a process's own luck (its hash seed and memory layout, worth a few percent between two
identical workers) then averages out over the rounds instead of biasing them all.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.http import loadgen, machine, procs, runnables, targets
from tests.fakes.issuer import Issuer

RESULTS = procs.REPO_ROOT / "bench" / "results"
DEFAULT_OUTPUT = {
    "bare": RESULTS / "http-side-by-side.md",
    "static": RESULTS / "http-jwt-side-by-side.md",
    "accounting": RESULTS / "http-accounting-side-by-side.md",
    "control": RESULTS / "http-control-side-by-side.md",
}
WARM_UP = 2  # seconds of load before the measured rounds of a pair
RESTARTED = frozenset({"accounting", "control"})  # a new pair of servers per round by default
STATIC_TOKEN = "bench-static-token"  # noqa: S105 - loopback only, made up for the run
# The fake model of the bench's chat agent, priced: the accounting worker prices every call.
PRICES = """[models."fake"]
input = 0.15
output = 0.60
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.http.sidebyside", description=__doc__)
    p.add_argument("--agent", choices=runnables.AGENTS, default="echo")
    p.add_argument("--against", choices=tuple(DEFAULT_OUTPUT), default="bare")
    p.add_argument("--connections", type=int, default=64, help="per server (default 64)")
    p.add_argument("--seconds", type=int, default=8, help="per round (default 8)")
    p.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    p.add_argument("--output", type=Path, default=None)
    p.add_argument(
        "--restart",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a new pair of servers for every round (default: against accounting and control)",
    )
    args = p.parse_args(argv)
    if args.restart is None:
        args.restart = args.against in RESTARTED
    return args


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


def _accounting_settings(
    base: targets.Settings, *, on: bool
) -> tuple[targets.Settings, targets.Settings]:
    """The settings of a worker counting what runs spend (``on``; else a second one that does
    not) and of one that does not, in folders of their own."""
    prices = base.workdir / "prices.toml"
    prices.write_text(PRICES)
    priced = ("--prices-file", str(prices))
    off = ("--no-accounting",)
    pair = []
    for name, extra in (("worker", () if on else off), ("base", off)):
        side = dataclasses.replace(base, workdir=base.workdir / name, worker_args=(*priced, *extra))
        side.workdir.mkdir()
        pair.append(side)
    return pair[0], pair[1]


@contextlib.contextmanager
def _servers(
    args: argparse.Namespace, settings: targets.Settings
) -> Iterator[tuple[targets.Target, targets.Target]]:
    """The worker under test and its baseline, started."""
    with contextlib.ExitStack() as st:
        if args.against == "bare":
            base = st.enter_context(targets.start("bare", args.agent, settings))
            worker = st.enter_context(targets.start("worker", args.agent, settings))
        elif args.against == "static":
            lifetime = 3600 + (args.rounds + 1) * args.seconds
            jwt, static = _auth_settings(settings, lifetime)
            base = st.enter_context(targets.start("worker", args.agent, static))
            worker = st.enter_context(targets.start("worker", args.agent, jwt))
        else:
            tried, baseline = _accounting_settings(settings, on=args.against == "accounting")
            base = st.enter_context(targets.start("worker", args.agent, baseline))
            worker = st.enter_context(targets.start("worker", args.agent, tried))
        yield worker, base


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

    def measure(pair: tuple[targets.Target, targets.Target], *, warm_up: bool = False) -> None:
        both = [pool.submit(load, t, WARM_UP if warm_up else args.seconds) for t in pair]
        w, b = (f.result() for f in both)
        if warm_up:
            return
        rounds.append((w.cpu_us_per_response, b.cpu_us_per_response))
        print(
            f"round {len(rounds)}: {_names(args.against)[0]} {w.cpu_us_per_response:,.0f} "
            f"µs/resp ({w.rps:,.0f} req/s)  {_names(args.against)[1]} "
            f"{b.cpu_us_per_response:,.0f} µs/resp ({b.rps:,.0f} req/s)",
            flush=True,
        )

    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp, ThreadPoolExecutor(2) as pool:
        settings = targets.Settings(source, loop, server_cpus, Path(tmp))
        if args.restart:
            for i in range(args.rounds):
                fresh = dataclasses.replace(settings, workdir=Path(tmp) / f"round-{i}")
                fresh.workdir.mkdir()
                with _servers(args, fresh) as pair:
                    measure(pair, warm_up=True)
                    measure(pair)
        else:
            with _servers(args, settings) as pair:
                measure(pair, warm_up=True)
                for _ in range(args.rounds):
                    measure(pair)
    text = _report(args, rounds, cpus, wrk, loop)
    print(text)
    output = args.output or DEFAULT_OUTPUT[args.against]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return 0


def _names(against: str) -> tuple[str, str]:
    return {
        "bare": ("worker", "bare"),
        "static": ("JWT", "static token"),
        "accounting": ("accounting on", "accounting off"),
        "control": ("worker A", "worker B"),
    }[against]


def _report(
    args: argparse.Namespace,
    rounds: list[tuple[float, float]],
    cpus: list[int],
    wrk: str,
    loop: str,
) -> str:
    command = f"python -m bench.http.sidebyside --agent {args.agent} --against {args.against} "
    command += f"--connections {args.connections} --seconds {args.seconds} --rounds {args.rounds}"
    if args.restart != (args.against in RESTARTED):
        command += " --restart" if args.restart else " --no-restart"
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
        a, b_name = _names(args.against)
        title = {
            "static": "JWT and static-token workers",
            "accounting": "workers with accounting on and off",
            "control": "two identical workers",
        }[args.against]
        header = f"| round | {a} CPU µs/resp | {b_name} CPU µs/resp | extra CPU |"
        rows = [
            f"| {i} | {w:,.0f} | {b:,.0f} | {(w - b) / b * 100:+.1f}% |"
            for i, (w, b) in _numbered(rounds)
        ]
        meaning = {
            "static": "the CPU a JWT-authenticated echo invoke costs beyond a static-token one "
            "(RS256, one token reused: its signature is checked once, then the verified-token "
            "cache answers).",
            "accounting": f"the CPU a {args.agent} invoke spends on accounting (usage, price, "
            "metrics, time to first token) beyond one with accounting off.",
            "control": "what the method reads between two identical workers, where the truth is 0.",
        }[args.against]
        summary = (
            f"Median {statistics.median(extra):+.1f}% (range {extra[0]:+.1f}% to "
            f"{extra[-1]:+.1f}%): {meaning}"
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
