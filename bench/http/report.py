"""Markdown report: one table of all runs, the goals, and how it was run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.http.loadgen import RunResult


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
    if num is None or den is None or den.rps == 0:
        return ""
    return f"{num.rps / den.rps:.2f}x"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| agent | conns | server | req/s | p50 ms | p99 ms | errors "
        "| server CPU | wrk CPU | worker/bare | worker/langserve |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        res = row.result
        vs_bare = vs_ls = ""
        if row.server == "worker":
            vs_bare = _ratio(res, _find(rows, row.agent, row.connections, "bare"))
            vs_ls = _ratio(res, _find(rows, row.agent, row.connections, "langserve"))
        lines.append(
            f"| {row.agent} | {row.connections} | {row.server} | {res.rps:,.0f} "
            f"| {res.p50_ms:.2f} | {res.p99_ms:.2f} | {res.error_detail()} "
            f"| {res.server_cpu:.0%} | {res.loadgen_cpu:.0%} | {vs_bare} | {vs_ls} |"
        )
    return "\n".join(lines)


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def goals(rows: Sequence[Row]) -> list[str]:
    """The worker's goals, checked wherever the needed runs exist."""
    out: list[str] = []
    for agent in dict.fromkeys(row.agent for row in rows):
        worker = {
            r.connections: r.result for r in rows if r.agent == agent and r.server == "worker"
        }
        bare = {r.connections: r.result for r in rows if r.agent == agent and r.server == "bare"}
        ls = {r.connections: r.result for r in rows if r.agent == agent and r.server == "langserve"}
        if 64 in worker and 64 in bare:
            ratio = worker[64].rps / bare[64].rps if bare[64].rps else 0.0
            out.append(
                f"- {agent}, 64 conns, worker ≥ 0.8x bare req/s: {ratio:.2f}x "
                f"— {_mark(ratio >= 0.8)}"
            )
        if 64 in worker and 64 in ls:
            ratio = worker[64].rps / ls[64].rps if ls[64].rps else 0.0
            out.append(
                f"- {agent}, 64 conns, worker ≥ 3x langserve req/s: {ratio:.2f}x "
                f"— {_mark(ratio >= 3.0)}"
            )
        if 8 in worker:
            p99 = worker[8].p99_ms
            ref = f" (bare {bare[8].p99_ms:.2f} ms)" if 8 in bare else ""
            out.append(
                f"- {agent}, 8 conns, worker p99 < 5 ms: {p99:.2f} ms{ref} — {_mark(p99 < 5.0)}"
            )
        if 1000 in worker:
            errs = worker[1000].errors
            out.append(f"- {agent}, 1000 conns, worker errors = 0: {errs} — {_mark(errs == 0)}")
    return out


def document(rows: Sequence[Row], command: str, setup: Sequence[str]) -> str:
    parts = ["# HTTP benchmark: worker vs bare aiohttp vs LangServe", ""]
    parts += [f"Command (from the repo root): `{command}`", ""]
    parts += [table(rows), ""]
    goal_lines = goals(rows)
    if goal_lines:
        parts += ["Goals:", "", *goal_lines, ""]
    parts += ["Setup:", "", *(f"- {line}" for line in setup), ""]
    parts += [
        "Columns: req/s counts successful responses only (HTTP < 400) per second of "
        "the measured run; p50/p99 come from wrk's histogram of all responses "
        "(fast error responses included); errors = HTTP >= 400 plus socket errors "
        "(connect, read, write, timeout); server CPU and wrk CPU are in cores "
        "(100% = one core); worker/bare and worker/langserve divide the worker's "
        "req/s by the other server's at the same level.",
        "",
    ]
    return "\n".join(parts)
