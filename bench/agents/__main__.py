"""``python -m bench.agents``: concurrent agent conversations on one worker against the floor.

One command, loopback only, every loop bounded in count and time (issue 12's benchmark):

- **conversations**: for each count of the sweep (``--levels``: 25, 50, 75, 100, 150, 250,
  500, ...), that many conversations at once on ONE worker process, each on its own thread,
  each turn one tool call (the calculator) then an answer streamed by the fake OpenAI provider
  at a real provider's pace (``--token-rate`` tokens/s for ``--answer-seconds``), driven over
  ``POST /v1/agents/{id}/stream`` by a load generator process (``bench.agents.clients``);
  then the same count on **the floor** (``bench.agents.floor``): the same graph, provider and
  checkpointer driven directly in a bare process. Measured per level: token lag p50/p99
  (provider sends -> client receives, stamped in the tokens), CPU per token of the worker,
  resp. floor, process, RSS per conversation (growth over the idle baseline), and the CPU of
  the provider processes, the load generator and nats-server, so a reader can tell whether the
  target or the rig was the limit. A target stops at its first count whose token lag p99 is
  100 ms or more (``--keep-going`` runs every count), and the sweep stops at ``--budget``.
- **jobs**: 10-second jobs that only wait on a model, under the old ``WORKER_MAX_JOBS``
  default and the new one (``bench.agents.jobs``).

Pinning as in ``bench.streaming``: the target (worker or floor) on the first CPU, the
provider processes, the load generator and nats-server on the others. Results go to
``bench/results/agents.md``, the conversations' plot beside it (``agents.png``).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

from bench.agents import jobs, report
from bench.agents.provider import Pace, Providers
from bench.agents.sweep import FLOOR, WORKER, Level, Plan, run_level
from bench.plot import png_beside
from bench.streaming import procs
from bench.streaming.procs import Placement
from worker.testing import NatsServer

OUTPUT = Path("bench/results/agents.md")
LEVELS = [25, 50, 75, 100, 150, 250, 500, 1000, 2000]


async def conversations(args: argparse.Namespace, plan: Plan) -> list[Level]:
    levels: list[Level] = []
    threads: bool | None = {"auto": None, "on": True, "off": False}[args.threads]
    failed: set[str] = set()
    deadline = time.monotonic() + args.budget
    per_level = plan.ramp + plan.seconds + 30  # start-up, warm-up, the window
    for count in args.levels:
        for target in args.targets:
            if target in failed and not args.keep_going:
                continue
            if time.monotonic() + per_level > deadline:
                print(f"budget spent: {target} at {count} not run", flush=True)
                continue
            level = await run_level(plan, target, count, threads)
            if target == WORKER:
                threads = level.threads  # the floor runs as the worker could
            levels.append(level)
            s = level.summary
            print(
                f"{count:6,} {level.label:20} {level.tokens_per_s:8,.0f} tokens/s  lag p50 "
                f"{s.p50_ms:7.1f} p99 {s.p99_ms:7.1f} ms  turns {s.turns:5}  errors {s.errors}  "
                f"{level.cpu_us_per_token:6,.0f} µs/token  "
                f"{level.rss_per_conversation / 1024:6,.0f} KiB/conv  "
                f"target {level.share('target'):4.0%}  providers {level.share('providers'):4.0%}"
                f"  loadgen {level.share('loadgen'):4.0%}  nats {level.share('nats'):4.0%}",
                flush=True,
            )
            for sample in s.error_samples:
                print(f"    error: {sample}", flush=True)
            if not level.holds:
                failed.add(target)
        if failed >= set(args.targets) and not args.keep_going:
            break
    return levels


async def main(args: argparse.Namespace) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    place = Placement.plan(pin=not args.no_pin, nats="loadgen")
    pace = Pace(args.token_rate, round(args.token_rate * args.answer_seconds), args.first_token)
    with procs.placed(place.nats):
        nats = NatsServer().start()
    providers = Providers(args.providers, place.loadgen)
    if place.loadgen is not None:
        os.sched_setaffinity(0, place.loadgen)  # this process: the jobs mode's publisher
    plan = Plan(
        nats=nats,
        providers=providers,
        place=place,
        pace=pace,
        ramp=args.ramp if args.ramp is not None else pace.turn_seconds(),
        seconds=args.seconds,
        warmup=args.warmup,
        worker_env=dict(kv.split("=", 1) for kv in args.worker_env),
    )
    levels: list[Level] = []
    job_rows: list[jobs.JobsRun] = []
    try:
        # Jobs first: a sweep that ends past a target's limit leaves the provider and
        # nats-server busy with its unfinished turns for a while.
        if "jobs" in args.modes:
            job_rows = await jobs.compare(plan, args)
        if "conversations" in args.modes:
            levels = await conversations(args, plan)
    finally:
        providers.stop()
        nats.close()
    text = render(args, plan, levels, job_rows)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        if levels:
            print(f"saved to {args.output} and {report.plot(levels, png_beside(args.output))}")


def render(
    args: argparse.Namespace, plan: Plan, levels: list[Level], job_rows: list[jobs.JobsRun]
) -> str:
    pace = plan.pace
    parts = [
        "# Agents benchmark\n",
        f"Command: `{args.command}`. Machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; {placement(plan.place)}; "
        f"{args.providers} provider process(es).\n",
    ]
    if levels:
        parts += [
            "## Conversations\n",
            f"Each turn: the calculator called once, then an answer of {pace.tokens} tokens at "
            f"{pace.rate:g} tokens/s, each model call starting after {pace.first_token:g} s "
            f"(a turn ≈ {pace.turn_seconds():.1f} s); conversations started over {plan.ramp:g} s, "
            f"then measured for {plan.seconds:g} s. Token lag: provider sends -> client "
            "receives (the worker: the SSE client in the load generator; the floor: its own "
            "callback handler). CPU µs/token: the target process's CPU time over the window "
            "/ tokens delivered. RSS/conversation: peak RSS in the window minus the idle "
            "RSS after warm-up, / conversations. CPU columns: share of one CPU. 'no threads': "
            "turns without thread_id, the graph without checkpointer (the worker did not take "
            "thread_id). The worker runs with WORKER_MAX_CONCURRENT_INVOCATIONS at twice the "
            "count (256 at least), so that no turn waits for a slot.\n",
            report.table(levels) + "\n",
            report.goals(levels) + "\n",
        ]
    if job_rows:
        parts += ["## Jobs that only wait on a model\n", jobs.table(job_rows) + "\n"]
    return "\n".join(parts)


def placement(place: Placement) -> str:
    if place.server is None or place.loadgen is None:
        return "no CPU pinning"
    other = ",".join(map(str, sorted(place.loadgen)))
    return (
        f"the worker, resp. the floor, on CPU {','.join(map(str, sorted(place.server)))}; "
        f"nats-server, the provider processes and the load generator on CPU {other}"
    )


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.agents", description=__doc__)
    p.add_argument("--modes", type=lambda s: s.split(","), default=["conversations", "jobs"])
    p.add_argument(
        "--levels",
        type=_ints,
        default=None,
        help="conversations at once, one count after the "
        "other (default 25,50,75,100,150,250,500,1000,2000: one Python process streams "
        "a few thousand tokens a second, so the low counts are where the limits are)",
    )
    p.add_argument("--targets", type=lambda s: s.split(","), default=[WORKER, FLOOR])
    p.add_argument("--token-rate", type=float, default=20.0, help="tokens/s of an answer")
    p.add_argument("--answer-seconds", type=float, default=10.0, help="length of an answer")
    p.add_argument("--first-token", type=float, default=0.5, help="seconds before each answer")
    p.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="seconds over which to start the conversations (default: one turn)",
    )
    p.add_argument("--seconds", type=float, default=20.0, help="measured window per level")
    p.add_argument("--warmup", type=int, default=4, help="quick turns before each level")
    p.add_argument("--providers", type=int, default=1, help="fake provider processes")
    p.add_argument(
        "--threads",
        choices=("auto", "on", "off"),
        default="auto",
        help="turns on threads (auto: if the worker takes thread_id; the floor follows the worker)",
    )
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="run every count, even past the first a target does not hold",
    )
    p.add_argument("--budget", type=float, default=3600.0, help="seconds for the whole sweep")
    jobs.add_arguments(p)
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--worker-env", action="append", default=[], metavar="WORKER_X=VALUE")
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"markdown to write, its plot beside it (.png) (default {OUTPUT}; --quick: none)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a short run, not saved: 2 s answers, 20 and 50 conversations, 5 s "
        "windows, 200 jobs of 2 s",
    )
    args = p.parse_args()
    if args.quick:
        args.answer_seconds, args.seconds = 2.0, 5.0
        args.levels = args.levels or [20, 50]
        args.jobs, args.job_seconds = 200, 2.0
    args.levels = args.levels or LEVELS
    if args.output is None and not args.quick:
        args.output = OUTPUT
    args.command = "python -m bench.agents " + " ".join(a for a in sys.argv[1:])
    return args


if __name__ == "__main__":
    procs.run(main(parse_args()))
