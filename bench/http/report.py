"""The report: one markdown table of all runs, the goals, how it was run, and its plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.http.loadgen import RunResult
from bench.plot import Point, Series, write_png

NOISY_OTHER_CPU = 0.10
SHORT_MARK = " (short)"


@dataclass(frozen=True)
class Row:
    agent: str
    connections: int
    server: str
    result: RunResult


def _find(rows: Sequence[Row], agent: str, conns: int, server: str) -> RunResult | None:
    for row in rows:
        if (row.agent, row.connections, row.server) == (agent, conns, server):
            return row.result
    return None


def _ratio(num: RunResult | None, den: RunResult | None) -> str:
    """``raw (per core)``: req/s ratio, then the ratio of req/s per server CPU-second."""
    if num is None or den is None or den.rps == 0 or den.rps_per_core == 0:
        return ""
    return f"{num.rps / den.rps:.2f}x ({num.rps_per_core / den.rps_per_core:.2f}x)"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| agent | conns | server | req/s | p50 ms | p99 ms | errors "
        "| CPU µs/resp | server CPU | wrk CPU | other CPU | worker/bare | worker/langserve |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        res = row.result
        vs_bare = vs_ls = ""
        if row.server == "worker":
            vs_bare = _ratio(res, _find(rows, row.agent, row.connections, "bare"))
            vs_ls = _ratio(res, _find(rows, row.agent, row.connections, "langserve"))
        short = SHORT_MARK if res.requests < row.connections else ""
        lines.append(
            f"| {row.agent} | {row.connections} | {row.server} | {res.rps:,.0f}{short} "
            f"| {res.p50_ms:.2f} | {res.p99_ms:.2f} | {res.error_detail()} "
            f"| {res.cpu_us_per_response:,.0f} | {res.server_cpu:.0%} "
            f"| {res.loadgen_cpu:.0%} | {res.other_cpu:.0%} | {vs_bare} | {vs_ls} |"
        )
    return "\n".join(lines)


def progress(row: Row) -> str:
    """One line per run, printed as the bench goes."""
    res = row.result
    return (
        f"{row.agent:5} {row.server:9} c={row.connections:<5} {res.rps:9,.0f} req/s  "
        f"p50 {res.p50_ms:8.2f} ms  p99 {res.p99_ms:8.2f} ms  errors {res.error_detail():<8} "
        f"{res.cpu_us_per_response:6,.0f} CPU µs/resp  server CPU {res.server_cpu:4.0%}  "
        f"wrk CPU {res.loadgen_cpu:4.0%}  other CPU {res.other_cpu:4.0%}"
    )


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _level(rows: Sequence[Row], agent: str, server: str) -> dict[int, RunResult]:
    return {r.connections: r.result for r in rows if (r.agent, r.server) == (agent, server)}


def _speedup(num: RunResult, den: RunResult) -> float:
    return num.rps / den.rps if den.rps else 0.0


def _per_core(num: RunResult, den: RunResult) -> str:
    ratio = num.rps_per_core / den.rps_per_core if den.rps_per_core else 0.0
    return f"{ratio:.2f}x per core"


def goals(rows: Sequence[Row]) -> list[str]:
    """The worker's goals, checked wherever the needed runs exist (bare for reference)."""
    out: list[str] = []
    for agent in dict.fromkeys(row.agent for row in rows):
        worker = _level(rows, agent, "worker")
        bare = _level(rows, agent, "bare")
        ls = _level(rows, agent, "langserve")
        if 64 in worker and 64 in bare:
            ratio = _speedup(worker[64], bare[64])
            out.append(
                f"- {agent}, 64 conns, worker ≥ 0.8x bare req/s: {ratio:.2f}x "
                f"({_per_core(worker[64], bare[64])}) — {_mark(ratio >= 0.8)}"
            )
        if 64 in worker and 64 in ls:
            ratio = _speedup(worker[64], ls[64])
            ref = f"; bare: {_speedup(bare[64], ls[64]):.2f}x" if 64 in bare else ""
            out.append(
                f"- {agent}, 64 conns, worker ≥ 3x langserve req/s: {ratio:.2f}x "
                f"({_per_core(worker[64], ls[64])}{ref}) — {_mark(ratio >= 3.0)}"
            )
        if 8 in worker:
            p99 = worker[8].p99_ms
            ref = f" (bare: {bare[8].p99_ms:.2f} ms)" if 8 in bare else ""
            out.append(
                f"- {agent}, 8 conns, worker p99 < 5 ms: {p99:.2f} ms{ref} — {_mark(p99 < 5.0)}"
            )
        if 1000 in worker:
            errs = worker[1000].errors
            ref = f" (bare: {bare[1000].errors})" if 1000 in bare else ""
            out.append(
                f"- {agent}, 1000 conns, worker errors = 0: {errs}{ref} — {_mark(errs == 0)}"
            )
    return out


def document(rows: Sequence[Row], command: str, setup: Sequence[str]) -> str:
    parts = ["# HTTP benchmark: worker vs bare aiohttp vs LangServe", ""]
    parts += [f"Command (from the repo root): `{command}`", ""]
    parts += [table(rows), ""]
    goal_lines = goals(rows)
    if goal_lines:
        parts += ["Goals:", "", *goal_lines, ""]
    if any(row.result.requests < row.connections for row in rows):
        parts += [
            f"{SHORT_MARK.strip()}: fewer responses than connections, the run was "
            "shorter than the server's latency at that level; use a longer --duration.",
            "",
        ]
    noisy = [row for row in rows if row.result.other_cpu > NOISY_OTHER_CPU]
    if noisy:
        parts += [
            f"Warning: in {len(noisy)} of {len(rows)} runs other processes used more "
            f"than {NOISY_OTHER_CPU:.0%} of a core (column other CPU); those numbers "
            "are disturbed. Run again on a quiet machine.",
            "",
        ]
    parts += ["Setup:", "", *(f"- {line}" for line in setup), ""]
    parts += [
        "Columns: req/s counts successful responses only (HTTP < 400) per second of "
        "the measured run; p50/p99 come from wrk's histogram of all responses "
        "(fast error responses included); errors = HTTP >= 400 plus socket errors "
        "(connect, read, write, timeout); CPU µs/resp = the server's CPU time per "
        "response, which other load on the machine disturbs much less than req/s; "
        "server CPU (the server process, plus "
        "nats-server for the worker), wrk CPU and other CPU (everything else on the "
        "machine, hypervisor steal included, interrupts not) are in cores "
        "(100% = one core); worker/bare and "
        "worker/langserve divide the worker's req/s by the other server's at the "
        "same level, and in parentheses its req/s per second of server CPU by the "
        "other's (the ratio had each server had its core to itself, which other load "
        "on the machine disturbs much less).",
        "",
    ]
    return "\n".join(parts)


# The worker first (it takes the first colour), then its baselines.
PLOT_LABELS = {"worker": "worker", "bare": "bare aiohttp (floor)", "langserve": "LangServe"}


def plot(rows: Sequence[Row], path: Path) -> Path:
    """The table's req/s, p50 and p99 against connections, a row of panels per agent."""
    series = [
        Series(
            label,
            [Point(r.connections, r.result.rps, r.result.p50_ms, r.result.p99_ms) for r in runs],
            group=agent,
        )
        for agent in dict.fromkeys(row.agent for row in rows)
        for server, label in PLOT_LABELS.items()
        if (runs := [r for r in rows if (r.agent, r.server) == (agent, server)])
    ]
    return write_png(
        path,
        title="HTTP: worker vs bare aiohttp vs LangServe",
        series=series,
        load="connections (wrk, keep-alive)",
        throughput="successful req/s",
    )
