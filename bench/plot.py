"""One PNG per bench: throughput and p50/p99 against load, the project beside its baselines.

Every bench calls :func:`write_png` with the figures it has just written to its markdown, so the
picture and the table never disagree. A figure has two panels per row, throughput on the left and
p50 (solid) / p99 (dashed) on the right, both against the load (connections, workers, watchers,
concurrency); a bench measured in several modes (agents, paced and flood) gets one row per mode.
A series keeps its colour across rows, and one legend under the panels names them all.

Drawn with matplotlib's object API on its Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

# From this ratio of largest to smallest value an axis is drawn on a log scale (1,000 connections
# beside 100; a queue's seconds beside an idle server's milliseconds).
LOG_RATIO = 10.0
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


@dataclass(frozen=True)
class Point:
    """What one run at one load measured; ``None`` where that run measures no such figure."""

    load: float
    throughput: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True)
class Series:
    """One server or process measured at several loads; ``label`` names it in the legend.

    Colours go to labels in the order they come: put the project first, its baselines after.
    ``group`` names the row it is drawn in, for a bench measured in several modes (``echo`` and
    ``chat``; ``paced`` and ``flood``); series without one share a single row.
    """

    label: str
    points: Sequence[Point]
    group: str = ""


def write_png(
    path: Path,
    *,
    title: str,
    series: Sequence[Series],
    load: str,
    throughput: str,
    latency: str = "latency",
) -> Path:
    """Draw ``series`` to ``path`` (a PNG) and return it.

    ``title`` names the bench (the machine's CPU count is added); ``load`` labels the x axis with
    its unit (``"connections"``, ``"worker processes"``); ``throughput`` is the left panel's unit
    (``"req/s"``); ``latency`` says what the right panel's percentiles measure (in ms).
    """
    if not series:
        raise ValueError(f"nothing to plot in {path.name}")
    groups = list(dict.fromkeys(s.group for s in series))
    # Styles in the caller's order, whichever panels a series appears in.
    labels = dict.fromkeys(s.label for s in series)
    styles = {label: _Style.of(i) for i, label in enumerate(labels)}

    fig = Figure(figsize=(11, 3.6 * len(groups) + 0.9), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(f"{title} ({os.cpu_count()} CPUs)", fontsize=13)
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for (left, right), group in zip(axes, groups, strict=True):
        members = [s for s in series if s.group == group]
        heading = f"{group}: " if group else ""
        _throughput(left, members, styles, f"{heading}throughput", unit=throughput)
        _latency(right, members, styles, f"{heading}p50 / p99 {latency}", what=latency)
        for ax in (left, right):
            _load_axis(ax, members, load)
    handles = _legend(styles)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def png_beside(markdown: Path) -> Path:
    """Where a bench's plot goes: beside its markdown, same name, ``.png``."""
    return markdown.with_suffix(".png")


@dataclass(frozen=True)
class _Style:
    """A series' colour, line width and marker size, drawn in the callers' order.

    Lines and markers thin out from the first series to the last, so where a baseline matches the
    project (paced streaming delivers what is paced) the project's line still shows around it.
    """

    colour: str
    width: float
    marker: float
    order: int

    @classmethod
    def of(cls, index: int) -> _Style:
        step = min(index, 3)
        return cls(COLOURS[index % len(COLOURS)], 2.6 - 0.6 * step, 8.0 - 1.5 * step, 2 + index)

    def draw(self, ax: Axes, xs: list[float], ys: list[float], fmt: str) -> None:
        ax.plot(
            xs,
            ys,
            fmt,
            color=self.colour,
            linewidth=self.width,
            markersize=self.marker,
            zorder=self.order,
        )


def _throughput(
    ax: Axes, series: Sequence[Series], styles: dict[str, _Style], title: str, *, unit: str
) -> None:
    for s in series:
        xs, ys = _xy(s.points, "throughput")
        if xs:
            styles[s.label].draw(ax, xs, ys, "o-")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(f"throughput ({unit})")


def _latency(
    ax: Axes, series: Sequence[Series], styles: dict[str, _Style], title: str, *, what: str
) -> None:
    values: list[float] = []
    for s in series:
        for key, fmt in (("p50_ms", "o-"), ("p99_ms", "^--")):
            xs, ys = _xy(s.points, key)
            if xs:
                styles[s.label].draw(ax, xs, ys, fmt)
                values += ys
    if _spread(values):
        ax.set_yscale("log")
        # 1-2-5 ticks while they fit: decades alone leave a one-decade axis with two labels.
        decades = math.log10(max(values) / min(values))
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 3 else (1.0,)))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(f"{what} (ms)")


def _load_axis(ax: Axes, series: Sequence[Series], label: str) -> None:
    """The x axis, ticked at the loads measured, and the grid."""
    loads = sorted({p.load for s in series for p in s.points})
    if _spread(loads):
        ax.set_xscale("log")
    if loads:
        ax.set_xticks(loads, [f"{x:,g}" for x in loads])
        ax.xaxis.set_minor_locator(NullLocator())
        if len(loads) == 1:  # one load: centre it rather than pin it to an edge
            ax.set_xlim(loads[0] * 0.5, loads[0] * 1.5)
    ax.set_xlabel(label)
    ax.grid(True, which="major", alpha=0.3)


def _xy(points: Iterable[Point], key: str) -> tuple[list[float], list[float]]:
    """The points that have ``key``, by load (a NaN, a percentile of no sample, has not)."""
    pairs = sorted(
        (p.load, v) for p in points if (v := getattr(p, key)) is not None and math.isfinite(v)
    )
    return [x for x, _ in pairs], [y for _, y in pairs]


def _spread(values: Sequence[float]) -> bool:
    """Whether the values are all positive and far enough apart for a log scale."""
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) > 1 and max(positive) / min(positive) >= LOG_RATIO


def _legend(styles: dict[str, _Style]) -> list[Line2D]:
    """One entry per series (its colour), then the two line styles."""
    return [
        *(Line2D([], [], color=st.colour, marker="o", label=label) for label, st in styles.items()),
        Line2D([], [], color="grey", marker="o", linestyle="-", label="p50"),
        Line2D([], [], color="grey", marker="^", linestyle="--", label="p99"),
    ]
