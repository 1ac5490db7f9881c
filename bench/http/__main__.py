"""``python -m bench.http``: drive the same wrk load against three servers.

For each agent (echo, chat) and each server (bare aiohttp, the worker,
LangServe) in turn: start the server in its own subprocess, then for each
concurrency level run a warmup and a measured wrk run (waiting for the server
to go idle before each), print a markdown table and save it (default
``bench/results/http.md``, its plot beside it in ``http.png``). Only 127.0.0.1
is loaded; every run is bounded by ``--duration``. When the worker is among the
servers, ``bench.http.loopstall`` follows: the worker's event loop during a
CPU-bound sync agent.

By default the servers (and the worker's nats-server) are pinned to the first
CPU and wrk to the others, so each server gets one core and the load
generator does not compete with it; ``--no-pin`` turns that off.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import plot
from bench.http import loadgen, loopstall, machine, procs, report, runnables, targets
from bench.http.serverargs import Loop

DEFAULT_OUTPUT = procs.REPO_ROOT / "bench" / "results" / "http.md"


def _ints(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item.strip()]


def _names(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        bad = [item for item in items if item not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"{bad} not in {list(choices)}")
        return items

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.http",
        description="HTTP benchmark: worker vs bare aiohttp vs LangServe, "
        "all serving the same Runnable, loaded by wrk on 127.0.0.1.",
    )
    add = p.add_argument
    add("--duration", type=int, default=8, help="measured seconds per run (default 8)")
    add("--warmup", type=int, default=2, help="warmup seconds per run (default 2)")
    add("--quick", action="store_true", help="smoke run: 1 s warmup + 3 s, not saved")
    add("--levels", type=_ints, default=[64, 8, 1000], help="connections, e.g. 64,8,1000")
    add(
        "--servers",
        type=_names(targets.SERVERS),
        default=list(targets.SERVERS),
        help="subset of bare,worker,langserve (default: all three)",
    )
    add(
        "--agents",
        type=_names(runnables.AGENTS),
        default=list(runnables.AGENTS),
        help="subset of echo,chat (default: both)",
    )
    add(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="event loop of all three servers; auto: uvloop iff the worker uses it",
    )
    add(
        "--runnables",
        choices=("auto", "registry", "stand-in"),
        default="auto",
        help="auto: the worker's agent registry when importable",
    )
    add(
        "--worker-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `python -m worker` (repeatable), "
        "e.g. --worker-arg=--max-concurrent-invocations=2000",
    )
    add(
        "--repeat",
        type=int,
        default=1,
        help="measured runs per level, the fastest kept (default 1)",
    )
    add("--no-pin", action="store_true", help="do not pin servers and wrk to CPUs")
    add("--threads", type=int, default=0, help="wrk threads (default: one per wrk CPU)")
    add("--timeout", type=int, default=10, help="wrk request timeout, s (default 10)")
    add(
        "--output",
        type=Path,
        default=None,
        help="markdown file to write, its plot beside it as .png (default "
        "bench/results/http.md; none with --quick)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3, 1
    if args.duration < 1 or args.warmup < 0 or args.repeat < 1:
        p.error("--duration and --repeat must be >= 1, --warmup >= 0 (whole seconds)")
    if args.output is None and not args.quick:
        args.output = DEFAULT_OUTPUT
    return args


@dataclass(frozen=True)
class Plan:
    """What the arguments and the machine resolve to."""

    wrk: str
    source: runnables.Source
    loop: Loop
    server_cpus: set[int] | None
    wrk_cpus: set[int] | None
    threads: int
    nofile: int
    ncpus: int


def make_plan(args: argparse.Namespace, wrk: str) -> Plan:
    source: runnables.Source = (
        ("registry" if runnables.registry_available() else "stand-in")
        if args.runnables == "auto"
        else args.runnables
    )
    loop: Loop = (
        ("uvloop" if machine.worker_uses_uvloop() else "asyncio")
        if args.loop == "auto"
        else args.loop
    )
    cpus = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cpus) >= 2
    server_cpus, wrk_cpus = ({cpus[0]}, set(cpus[1:])) if pin else (None, None)
    threads = args.threads or len(wrk_cpus or cpus)
    nofile = procs.raise_nofile_limit()
    return Plan(wrk, source, loop, server_cpus, wrk_cpus, threads, nofile, len(cpus))


def describe(plan: Plan, args: argparse.Namespace) -> list[str]:
    """The report's setup lines."""
    placement = "no CPU pinning"
    if plan.server_cpus and plan.wrk_cpus:
        placement = (
            f"servers pinned to CPU {','.join(map(str, sorted(plan.server_cpus)))}, "
            f"wrk to CPU {','.join(map(str, sorted(plan.wrk_cpus)))}"
        )
    best = f"best of {args.repeat} x " if args.repeat > 1 else ""
    runnable_source = (
        "the worker's agent registry (same objects in all three)"
        if plan.source == "registry"
        else "stand-ins (not the worker's)"
    )
    lines = [
        machine.describe(plan.ncpus, plan.wrk),
        f"{placement}; wrk threads: {plan.threads}; event loop of all servers: "
        f"{plan.loop}; open-files limit: {plan.nofile}",
        f"per level: {args.warmup} s warmup + {best}{args.duration} s measured; "
        f'request timeout {args.timeout} s; body {{"input": "hello"}}',
        f"Runnables: {runnable_source}",
        machine.stack_versions(),
    ]
    if args.worker_arg:
        lines.append(f"worker args: {shlex.join(args.worker_arg)}")
    return lines


def _measure(
    plan: Plan,
    target: targets.Target,
    conns: int,
    args: argparse.Namespace,
) -> loadgen.RunResult:
    def once(seconds: int) -> loadgen.RunResult:
        procs.wait_idle(target.pids, timeout=args.timeout + 5)
        return loadgen.run(
            wrk=plan.wrk,
            url=target.url,
            connections=conns,
            seconds=seconds,
            threads=plan.threads,
            timeout_s=args.timeout,
            cpus=plan.wrk_cpus,
            server_pids=target.pids,
        )

    if args.warmup:
        once(args.warmup)
    # Other processes only ever slow a run down: of several, keep the fastest.
    runs = [once(args.duration) for _ in range(args.repeat)]
    return max(runs, key=lambda run: run.rps)


def run_all(plan: Plan, args: argparse.Namespace, workdir: Path) -> list[report.Row]:
    settings = targets.Settings(
        plan.source, plan.loop, plan.server_cpus, workdir, worker_args=tuple(args.worker_arg)
    )
    rows: list[report.Row] = []
    for agent in args.agents:
        for server in args.servers:
            with targets.start(server, agent, settings) as target:
                for conns in args.levels:
                    res = _measure(plan, target, conns, args)
                    rows.append(report.Row(agent, conns, server, res))
                    print(report.progress(rows[-1]), flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = loadgen.find_wrk()
    if wrk is None:
        print(loadgen.INSTALL_HINT, file=sys.stderr)
        return 2
    plan = make_plan(args, wrk)
    if plan.nofile < max(args.levels) + 256:
        print(f"warning: open-files limit is only {plan.nofile}", file=sys.stderr)
    if "worker" in args.servers and plan.source == "stand-in":
        print(
            "warning: the worker's agent registry is not importable; bare and "
            "langserve serve stand-in Runnables",
            file=sys.stderr,
        )
    command = shlex.join(["python", "-m", "bench.http", *(sys.argv[1:] if argv is None else argv)])
    setup = describe(plan, args)
    print(f"# {command}", *(f"#   {line}" for line in setup), sep="\n", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        try:
            rows = run_all(plan, args, Path(tmp))
        except (RuntimeError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    doc = report.document(rows, command, setup)
    if "worker" in args.servers:
        stall = loopstall.measure(spins=2 if args.quick else 5, seconds=1.0 if args.quick else 2.0)
        doc = doc.rstrip("\n") + "\n\n" + "\n".join(stall.lines()) + "\n"
    print(f"\n{doc}")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(doc)
        picture = report.plot(rows, plot.png_beside(args.output))
        for path in (args.output, picture):
            shown = path.resolve()
            if shown.is_relative_to(procs.REPO_ROOT):
                shown = shown.relative_to(procs.REPO_ROOT)
            print(f"saved to {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
