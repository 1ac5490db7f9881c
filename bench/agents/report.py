"""The conversations' table and the goals of issue 12 beside the measures."""

from __future__ import annotations

from pathlib import Path

from bench.agents.sweep import FLOOR, WORKER, Level
from bench.plot import Point, Series, write_png

GOAL_COUNT = 0.8  # the worker holds at least this share of the floor's count
GOAL_CPU = 1.5  # CPU per token at most this multiple of the floor's
GOAL_RSS = 256 * 1024  # bytes per conversation
LAG_LIMIT_MS = 100


def marginal(levels: list[Level], level: Level) -> float | None:
    """Bytes of RSS each conversation added between the target's previous count and this
    one (the growth that does not depend on the count cancels out); None at its first."""
    before = [lv for lv in levels if lv.target == level.target and lv.count < level.count]
    if not before:
        return None
    prev = max(before, key=lambda lv: lv.count)
    return (level.rss_peak - prev.rss_peak) / (level.count - prev.count)


def table(levels: list[Level]) -> str:
    floor_cpu = {lv.count: lv.cpu_us_per_token for lv in levels if lv.target == FLOOR}
    lines = [
        "| conversations | target | tokens/s | lag p50 ms | lag p99 ms | turns | errors | "
        "CPU µs/token | worker/floor CPU per token | RSS KiB/conversation | marginal KiB/"
        "conversation | target CPU | provider CPU | load generator CPU | nats-server CPU | "
        "holds |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
        "---: | ---: | ---: | --- |",
    ]
    for lv in levels:
        more = marginal(levels, lv)
        more_text = f"{more / 1024:,.0f}" if more is not None else ""
        s = lv.summary
        ratio = ""
        if lv.target == WORKER and floor_cpu.get(lv.count):
            ratio = f"{lv.cpu_us_per_token / floor_cpu[lv.count]:.2f}x"
        loadgen = f"{lv.share('loadgen'):.0%}" if lv.target == WORKER else "(in target)"
        lines.append(
            f"| {lv.count:,} | {lv.label} | {lv.tokens_per_s:,.0f} | {s.p50_ms:.1f} | "
            f"{s.p99_ms:.1f} | {s.turns:,} | {s.errors} | {lv.cpu_us_per_token:,.0f} | {ratio} | "
            f"{lv.rss_per_conversation / 1024:,.0f} | {more_text} | {lv.share('target'):.0%} | "
            f"{lv.share('providers'):.0%} | {loadgen} | {lv.share('nats'):.0%} | "
            f"{'yes' if lv.holds else 'no'} |"
        )
    return "\n".join(lines)


def held(levels: list[Level], target: str) -> int:
    """The largest count ``target`` held (token lag p99 under the limit, no errors); 0: none."""
    return max((lv.count for lv in levels if lv.target == target and lv.holds), default=0)


def goals(levels: list[Level]) -> str:
    """The three goals, each with its measure and whether it is met."""
    ran = {lv.target for lv in levels}
    worker, floor = held(levels, WORKER), held(levels, FLOOR)
    out = [
        f"- Largest count held with token lag p99 < {LAG_LIMIT_MS} ms and no failed turn: "
        + ", ".join(f"{t} **{held(levels, t):,}**" for t in (WORKER, FLOOR) if t in ran)
        + "."
    ]
    if ran == {WORKER, FLOOR}:
        out.append(_count_goal(levels, worker, floor))
    out += _cpu_goal(levels)
    out += _rss_goal(levels)
    return "\n".join(out)


def _count_goal(levels: list[Level], worker: int, floor: int) -> str:
    goal = f"- Worker holds ≥ {GOAL_COUNT}x the floor's count:"
    if not floor:
        return f"{goal} the floor held no count."
    ratio = worker / floor
    capped = floor == max(lv.count for lv in levels if lv.target == FLOOR)
    note = " (the floor held every count it ran: its own limit is higher)" if capped else ""
    return f"{goal} **{ratio:.2f}x** ({'met' if ratio >= GOAL_COUNT else 'not met'}){note}."


def _cpu_goal(levels: list[Level]) -> list[str]:
    """Compared at the counts both held: past its limit a target's CPU per token says more
    about queueing than about the work."""
    pairs = [
        (w, f)
        for w in levels
        for f in levels
        if w.target == WORKER and f.target == FLOOR and w.count == f.count and f.summary.tokens
    ]
    both = [(w, f) for w, f in pairs if w.holds and f.holds] or pairs
    if not both:
        return []
    ratios = [w.cpu_us_per_token / f.cpu_us_per_token for w, f in both]
    where = "the counts both held" if both is not pairs else "the counts both ran"
    met = "met" if max(ratios) <= GOAL_CPU else "not met"
    return [
        f"- CPU per token ≤ {GOAL_CPU}x the floor's: **{min(ratios):.2f}x to "
        f"{max(ratios):.2f}x** over {where} ({met})."
    ]


def _rss_goal(levels: list[Level]) -> list[str]:
    ran = [lv for lv in levels if lv.target == WORKER]
    if not ran:
        return []
    top = max(lv.rss_per_conversation for lv in ran)
    largest = max(ran, key=lambda lv: lv.count)
    met = "met" if top < GOAL_RSS else "not met"
    steps = [m for m in (marginal(levels, lv) for lv in ran) if m is not None]
    step = f"; marginal, {min(steps) / 1024:,.0f} to {max(steps) / 1024:,.0f} KiB" if steps else ""
    return [
        f"- Worker RSS per conversation < {GOAL_RSS // 1024} KiB: at most **{top / 1024:,.0f} "
        f"KiB** ({met}); {largest.rss_per_conversation / 1024:,.0f} KiB at "
        f"{largest.count:,} conversations{step}."
    ]


def plot(levels: list[Level], path: Path) -> Path:
    """Tokens/s delivered, token lag p50 and p99 against conversations, the worker first."""
    series = [
        Series(
            label,
            [
                Point(lv.count, lv.tokens_per_s, lv.summary.p50_ms, lv.summary.p99_ms)
                for lv in levels
                if lv.label == label
            ],
        )
        for label in dict.fromkeys(lv.label for lv in levels)
    ]
    return write_png(
        path,
        title="Agents: conversations on one worker vs the same graph driven bare",
        series=series,
        load="conversations at once",
        throughput="tokens/s delivered",
        latency="token lag",
    )
