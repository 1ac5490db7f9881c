"""``python -m bench.streaming``: WebSocket watchers of the worker against a bare aiohttp loop.

Starts a nats-server, a worker (``python -m worker``) and the bare server
(``bench.streaming.serve_bare``) as subprocesses on 127.0.0.1, then for each level of
concurrent WebSocket connections (default 100 and 1,000) runs, for ``--seconds`` each:

- paced: every connection gets 10 frames per second. Worker: each watcher follows its own
  task at ``GET /v1/tasks/{id}/events``, whose frames a publisher process puts in the frames
  stream at 10/s per task (as runs on other workers would). Bare: the server's own 10/s send
  loop per connection.
- flood: as many frames as the server can send. Worker: ``--flood-watchers`` (100) watchers
  per task, each task's frames published at ``--flood-rate`` (1,000/s: 100,000 frames/s to
  send at 100 connections, more than the worker can, so readers fall behind and their progress
  frames coalesce). Bare: a tight send loop per connection.

Once every watcher is connected (and frames flow for a second), the clients count the
WebSocket messages they receive for ``--seconds`` and the frame lag (receive time minus the
frame's ``ts``); the CPU time of every process over those seconds is read from ``/proc``. The
server under test gets a CPU of its own (``procs.Placement``).

- stalled (worker only, ``bench.streaming.stalled``): one run streaming thousands of frames to
  readers that stop reading and to one that keeps reading; that reader's frame lag.

Results go to ``bench/results/streaming.md``, their plot beside it (``streaming.png``). All
traffic is on loopback and every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.plot import Point, Series, png_beside, write_png
from bench.streaming import procs
from bench.streaming.clients import Result, run_bare_phase, run_worker_phase
from bench.streaming.procs import CpuMeter, Placement
from bench.streaming.stalled import StalledResult, run_stalled_phase
from worker.testing import NatsServer, WorkerProcess, free_port, wait_for_port

OUTPUT = Path("bench/results/streaming.md")


def table(results: list[Result]) -> str:
    lines = [
        "| mode | connections | target | frames/s delivered | p50 lag ms | p99 lag ms | "
        "errors | ratio to bare | server CPU | server CPU µs/frame | nats-server CPU | "
        "load generator CPU |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    bare = {(r.mode, r.connections): r.rate for r in results if r.target != "worker"}
    for r in results:
        ratio = r.rate / bare[(r.mode, r.connections)] if bare.get((r.mode, r.connections)) else 0
        loadgen = r.cpu_share("clients") + r.cpu_share("publisher")
        nats = f"{r.cpu_share('nats'):.0%}" if r.target == "worker" else "-"
        lines.append(
            f"| {r.mode} | {r.connections} | {r.target} | {r.rate:,.0f} | {r.pct(0.5):.1f} | "
            f"{r.pct(0.99):.1f} | {r.errors} | {ratio:.2f} | {r.cpu_share('server'):.0%} | "
            f"{r.cpu_per_frame_us('server'):.0f} | {nats} | {loadgen:.0%} |"
        )
    return "\n".join(lines)


def plot(results: list[Result], path: Path) -> Path:
    """frames/s, p50 and p99 lag against connections, a row of panels per mode."""
    series = [
        Series(
            target,
            [Point(r.connections, r.rate, r.pct(0.5), r.pct(0.99)) for r in runs],
            group=mode,
        )
        for mode in dict.fromkeys(r.mode for r in results)
        for target in dict.fromkeys(r.target for r in results)  # the worker first
        if (runs := [r for r in results if (r.mode, r.target) == (mode, target)])
    ]
    return write_png(
        path,
        title="Streaming: worker WebSocket watchers vs a bare aiohttp send loop",
        series=series,
        load="WebSocket connections",
        throughput="frames/s delivered",
        latency="frame lag",
    )


async def main(args: argparse.Namespace) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    place = Placement.plan(pin=not args.no_pin, nats=args.nats_cpu)
    state = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    with procs.placed(place.nats):
        server = NatsServer().start()
    with procs.placed(place.server):
        worker = WorkerProcess(
            {
                "WORKER_NATS_URL": server.url,
                "WORKER_HTTP_PORT": "0",
                "WORKER_STATE_DIR": str(state),
                "WORKER_LOG_LEVEL": "warning",
                "WORKER_JOBS_ENABLED": "false",
                **dict(kv.split("=", 1) for kv in args.worker_env),
            }
        ).start()
        bare_port = free_port()
        bare = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
            [sys.executable, "-m", "bench.streaming.serve_bare", "--port", str(bare_port)],
            stderr=subprocess.DEVNULL,
        )
    if place.loadgen is not None:
        os.sched_setaffinity(0, place.loadgen)  # the clients, and the publisher it starts
    pids = {
        "worker": worker.proc.pid if worker.proc else 0,
        "bare": bare.pid,
        "nats": server.proc.pid if server.proc else 0,
    }

    def meter(target: str) -> Callable[[dict[str, int]], CpuMeter]:
        fixed = {"server": pids[target], "nats": pids["nats"], "clients": os.getpid()}
        return lambda extra: CpuMeter({**fixed, **extra})

    results: list[Result] = []
    stalled: StalledResult | None = None
    try:
        wait_for_port(bare_port)
        bare_url = f"ws://127.0.0.1:{bare_port}"
        for mode in (m for m in args.modes if m != "stalled"):
            for conns in args.levels if mode == "paced" else args.flood_levels:
                for target in ("worker", "bare"):
                    if target == "worker":
                        r = await run_worker_phase(
                            worker.url,
                            server.url,
                            conns,
                            mode=mode,
                            seconds=args.seconds,
                            sample=args.sample,
                            flood_rate=args.flood_rate,
                            flood_watchers=args.flood_watchers,
                            meter=meter(target),
                        )
                    else:
                        r = await run_bare_phase(
                            bare_url,
                            conns,
                            mode=mode,
                            seconds=args.seconds,
                            sample=args.sample,
                            meter=meter(target),
                        )
                    results.append(r)
                    print(
                        f"{mode:6} {conns:5} {target:7} {r.rate:10,.0f} frames/s  "
                        f"p99 {r.pct(0.99):7.1f} ms  errors {r.errors}  "
                        f"server CPU {r.cpu_share('server'):4.0%} "
                        f"({r.cpu_per_frame_us('server'):.0f} µs/frame)  "
                        f"nats {r.cpu_share('nats'):4.0%}  clients {r.cpu_share('clients'):4.0%}  "
                        f"publisher {r.cpu_share('publisher'):4.0%}",
                        flush=True,
                    )
                    await asyncio.sleep(1)
        if "stalled" in args.modes:
            stalled = await run_stalled_phase(
                worker.url, words=args.stalled_words, stalled=args.stalled_readers
            )
            print(stalled.line(), flush=True)
    finally:
        worker.stop()
        bare.terminate()
        bare.wait(10)
        server.close()
        shutil.rmtree(state, ignore_errors=True)
    report = (
        "# Streaming benchmark\n\n"
        f"Command: `python -m bench.streaming` ({args.seconds:g} s per phase). "
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; worker, nats-server, bare server and the load "
        f"generator all on this machine; {place.describe()}.\n\n"
        "paced: every connection receives 10 frames/s (worker: one task per watcher, frames "
        "published to the frames stream at 10/s per task). flood: as many as the server sends "
        f"(worker: {args.flood_watchers} watchers per task, {args.flood_rate:,.0f} frames/s "
        "published per task; "
        "frames a reader falls behind on coalesce, and a coalesced frame counts once). "
        "Lag = client receive time - frame `ts` (ms resolution). "
        "CPU: share of one CPU over the measured seconds (server: the worker or the bare "
        "server process; load generator: the clients and the publisher).\n\n"
        + table(results)
        + "\n"
        + (f"\n{stalled.line()}\n" if stalled is not None else "")
    )
    print(report)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report)
        print(f"saved to {args.output} and {plot(results, png_beside(args.output))}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__)
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    p.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000])
    p.add_argument(
        "--flood-levels",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[100],
        help="connections of the flood phase (1,000 flooding sockets starve the 2-core "
        "load generator itself)",
    )
    p.add_argument("--modes", type=lambda s: s.split(","), default=["paced", "flood", "stalled"])
    p.add_argument(
        "--stalled-words",
        type=int,
        default=4000,
        help="stalled: words of the run's reply (a frame per word and per space)",
    )
    p.add_argument(
        "--stalled-readers", type=int, default=5, help="stalled: readers that stop reading"
    )
    p.add_argument(
        "--flood-rate",
        type=float,
        default=1000.0,
        help="flood: frames per second published for each task",
    )
    p.add_argument(
        "--flood-watchers",
        type=int,
        default=100,
        help="flood: watchers per task (many watchers of few tasks: the fan-out is what is "
        "measured, while the publisher and nats-server stay light on the load generator's CPU)",
    )
    p.add_argument("--sample", type=int, default=1, help="measure the lag of every Nth frame")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument(
        "--nats-cpu",
        choices=("server", "loadgen", "any"),
        default="loadgen",
        help="where nats-server runs when pinning: with the server under test, with the load "
        "generator, or on any CPU",
    )
    p.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="WORKER_X=VALUE",
        help="a setting for the worker (repeatable)",
    )
    p.add_argument(
        "--output", type=Path, default=OUTPUT, help="markdown to write, its plot beside it (.png)"
    )
    p.add_argument("--quick", action="store_true", help="2 s phases, not saved")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.output = 2.0, None
        args.stalled_words = min(args.stalled_words, 500)
    return args


if __name__ == "__main__":
    procs.run(main(parse_args()))
