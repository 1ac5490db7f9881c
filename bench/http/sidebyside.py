"""``python -m bench.http.sidebyside``: the worker against the bare floor, loaded at once.

This machine's speed drifts by ±15% from one minute to the next, so a ratio of two req/s
figures measured one after the other (``python -m bench.http``) moves by as much as the
differences it is meant to show. Here the worker and the bare floor run side by side on the same
core, each loaded by its own wrk at the same time for the same seconds, so both see the same
drift; what is compared is the server CPU time per response (from ``/proc``), and each round
gives one ratio: bare µs/response over worker µs/response (1.0x: the worker costs what the floor
costs). The rounds' median is the figure. Loopback only; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.http import loadgen, machine, procs, runnables, targets

DEFAULT_OUTPUT = procs.REPO_ROOT / "bench" / "results" / "http-side-by-side.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.http.sidebyside", description=__doc__)
    p.add_argument("--agent", choices=runnables.AGENTS, default="echo")
    p.add_argument("--connections", type=int, default=64, help="per server (default 64)")
    p.add_argument("--seconds", type=int, default=8, help="per round (default 8)")
    p.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    return p.parse_args(argv)


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
        )

    rounds: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp, contextlib.ExitStack() as st:
        settings = targets.Settings(source, loop, server_cpus, Path(tmp))
        bare = st.enter_context(targets.start("bare", args.agent, settings))
        worker = st.enter_context(targets.start("worker", args.agent, settings))
        with ThreadPoolExecutor(2) as pool:
            for i in range(args.rounds + 1):  # the first round warms both up
                seconds = 2 if i == 0 else args.seconds
                both = [pool.submit(load, t, seconds) for t in (worker, bare)]
                w, b = (f.result() for f in both)
                if i == 0:
                    continue
                rounds.append((w.cpu_us_per_response, b.cpu_us_per_response))
                print(
                    f"round {i}: worker {w.cpu_us_per_response:,.0f} µs/resp ({w.rps:,.0f} req/s)"
                    f"  bare {b.cpu_us_per_response:,.0f} µs/resp ({b.rps:,.0f} req/s)"
                    f"  ratio {b.cpu_us_per_response / w.cpu_us_per_response:.2f}x",
                    flush=True,
                )
    ratios = sorted(b / w for w, b in rounds)
    command = f"python -m bench.http.sidebyside --agent {args.agent} --connections "
    command += f"{args.connections} --seconds {args.seconds} --rounds {args.rounds}"
    lines = [
        f"# HTTP, worker and bare floor side by side ({args.agent}, {args.connections} "
        "connections each)",
        "",
        f"Command: `{command}`",
        "",
        "| round | worker CPU µs/resp | bare CPU µs/resp | bare/worker |",
        "| ---: | ---: | ---: | ---: |",
        *(
            f"| {i} | {w:,.0f} | {b:,.0f} | {b / w:.2f}x |"
            for i, (w, b) in enumerate(rounds, start=1)
        ),
        "",
        f"Median {statistics.median(ratios):.2f}x (range {ratios[0]:.2f} to {ratios[-1]:.2f}x):"
        " the worker's throughput as a share of the floor's on the same CPU time.",
        "",
        f"Setup: {machine.describe(len(cpus), wrk)}; both servers on CPU {cpus[0]}, the two wrk "
        "on the other(s); event loop " + loop + ".",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
