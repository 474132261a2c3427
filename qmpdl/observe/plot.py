"""``qmpdl-plot RUN -o run.png --html run.html``: a recorded run as a picture.

RUN is a trace log of QEMU (``-trace 'dirtylimit_*' -trace 'dirtyrate_*' -msg
timestamp=on -D FILE``) or of qmpdl (``-trace 'dirtylimit_*' -D FILE``), plain or
gzipped, or a ``qmpdl-top --record`` file.  The PNG shows per vCPU the dirty rate and
its limit over time, the penalty per ring-full below, and migration phases as shaded
spans; the HTML page is self-contained (the PNG inline, a table per limit phase; no
scripts, nothing fetched).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qmpdl.observe.run import Run, RunFormatError, Series, load

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROG = "qmpdl-plot"
#: QEMU's dead band: a rate within this of the quota counts as converged.
TOLERANCE = 25
_PHASE_COLOURS = {
    "setup": "#dddddd",
    "active": "#cfe3ff",
    "pre-switchover": "#ffe9b3",
    "device": "#ffd1a8",
    "completed": "#d5f5d5",
    "cancelling": "#f5d5d5",
    "cancelled": "#f0c0c0",
    "failed": "#f0a0a0",
}


def render(run: Run, title: str | None = None) -> Figure:
    """The figure: rate and limit per vCPU (top), penalty per ring-full (bottom, when
    the run has penalties)."""
    from matplotlib.figure import Figure

    with_penalty = any(len(s) for s in run.penalties.values())
    fig = Figure(figsize=(10, 6.5 if with_penalty else 4.5), dpi=100, layout="constrained")
    axes = fig.subplots(2 if with_penalty else 1, 1, sharex=True, squeeze=False)[:, 0]
    rate_ax = axes[0]
    colours = [f"C{i % 10}" for i in range(max(run.vcpus, default=0) + 1)]
    for cpu in run.vcpus:
        colour = colours[cpu]
        rates = run.rates.get(cpu)
        if rates:
            rate_ax.plot(
                rates.t, rates.v, "-o", ms=2.5, lw=1.2, color=colour, label=f"vCPU {cpu} rate"
            )
        calc = run.calc_rates.get(cpu)
        if calc:
            rate_ax.plot(
                calc.t, calc.v, "x", ms=5, color=colour, label=f"vCPU {cpu} calc-dirty-rate"
            )
        limits = run.limits.get(cpu)
        if limits:
            t, v = _steps(limits, run.duration)
            rate_ax.plot(
                t, v, "--", lw=1.2, color=colour, drawstyle="steps-post", label=f"vCPU {cpu} limit"
            )
    rate_ax.set_ylabel("dirty rate, MiB/s")
    rate_ax.set_ylim(bottom=0)
    rate_ax.grid(True, alpha=0.3)
    rate_ax.set_title(title or f"{run.title} ({_SOURCES.get(run.source, run.source)})")
    if with_penalty:
        pen_ax = axes[1]
        for cpu, series in sorted(run.penalties.items()):
            if series:
                t, v = _steps(series, run.duration)
                pen_ax.plot(
                    t,
                    [x / 1000 for x in v],
                    lw=1.2,
                    color=colours[cpu],
                    drawstyle="steps-post",
                    label=f"vCPU {cpu}",
                )
        pen_ax.set_ylabel("penalty, ms per ring-full")
        pen_ax.set_ylim(bottom=0)
        pen_ax.grid(True, alpha=0.3)
        pen_ax.legend(loc="upper right", fontsize=8)
    for ax in axes:
        for phase in run.phases:
            ax.axvspan(
                phase.start,
                max(phase.end, phase.start + 0.05),
                color=_PHASE_COLOURS.get(phase.label, "#eeeeee"),
                alpha=0.6,
                lw=0,
            )
    for phase in run.phases:
        rate_ax.annotate(
            f"migration: {phase.label}",
            (phase.start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            va="top",
            fontsize=7,
            rotation=90,
        )
    axes[-1].set_xlabel("seconds")
    margin = max(run.duration, 1.0) * 0.02
    axes[-1].set_xlim(-margin, max(run.duration, 1.0) + margin)
    if rate_ax.get_lines():
        rate_ax.legend(loc="upper right", fontsize=8, ncol=2 if len(run.vcpus) > 1 else 1)
    return fig


_SOURCES = {"trace": "trace log", "recording": "qmpdl-top recording"}


def _steps(series: Series, end: float) -> tuple[list[float], list[float]]:
    """A step series held until ``end``."""
    t, v = list(series.t), list(series.v)
    if t and t[-1] < end:
        t.append(end)
        v.append(v[-1])
    return t, v


def png_bytes(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


@dataclass(frozen=True)
class LimitPhase:
    """One vCPU under one limit, and how its rate behaved."""

    cpu: int
    limit: int
    start: float
    end: float
    periods: int
    first_within: int | None
    mean_second_half: float | None
    #: the penalty in force at the end (None: none seen)
    last_penalty_us: int | None


def limit_phases(run: Run) -> list[LimitPhase]:
    out = []
    for cpu, limits in sorted(run.limits.items()):
        bounds = list(zip(limits.t, limits.v, strict=True))
        for i, (start, limit) in enumerate(bounds):
            if not limit:
                continue
            end = bounds[i + 1][0] if i + 1 < len(bounds) else run.duration
            rates = _between(run.rates.get(cpu), start, end)
            within = next((n for n, r in enumerate(rates, 1) if abs(r - limit) <= TOLERANCE), None)
            half = rates[len(rates) // 2 :]
            penalty = _at(run.penalties.get(cpu), end)
            out.append(
                LimitPhase(
                    cpu,
                    int(limit),
                    start,
                    end,
                    len(rates),
                    within,
                    statistics.mean(half) if half else None,
                    int(penalty) if penalty is not None else None,
                )
            )
    return out


def _at(series: Series | None, t: float) -> float | None:
    """The value ``series`` holds just before ``t`` (None before its first point or in a
    gap)."""
    value = None
    for when, v in zip(series.t, series.v, strict=True) if series is not None else ():
        if when >= t:
            break
        value = None if math.isnan(v) else v
    return value


def _between(series: Series | None, start: float, end: float) -> list[float]:
    if series is None:
        return []
    return [
        v for t, v in zip(series.t, series.v, strict=True) if start < t <= end and not math.isnan(v)
    ]


def html_page(run: Run, png: bytes, title: str | None = None) -> str:
    """A self-contained page: the PNG inline, the limit phases and migration phases."""
    name = html.escape(title or run.title)
    rows = []
    for p in limit_phases(run):
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>"
                for c in (
                    p.cpu,
                    p.limit,
                    f"{p.start:.1f}",
                    f"{p.end:.1f}",
                    p.periods,
                    p.first_within if p.first_within is not None else "never",
                    f"{p.mean_second_half:.1f}" if p.mean_second_half is not None else "-",
                    p.last_penalty_us if p.last_penalty_us is not None else "-",
                )
            )
            + "</tr>"
        )
    phases = "".join(
        f"<tr><td>{html.escape(p.label)}</td><td>{p.start:.1f}</td><td>{p.end:.1f}</td></tr>"
        for p in run.phases
    )
    image = base64.b64encode(png).decode()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{name}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: right; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{name}</h1>
<p>{html.escape(_SOURCES.get(run.source, run.source))}, {run.duration:.1f} s,
vCPUs {", ".join(str(c) for c in run.vcpus) or "none"}.</p>
<img alt="dirty rate, limit and penalty per vCPU over time" src="data:image/png;base64,{image}">
<h2>Limits</h2>
<table><tr><th>vCPU</th><th>limit MiB/s</th><th>from s</th><th>to s</th><th>periods</th>
<th>first period within &plusmn;{TOLERANCE}</th><th>mean rate, second half</th>
<th>last penalty us</th></tr>
{"".join(rows) or '<tr><td colspan="8">no limit was set</td></tr>'}
</table>
<h2>Migration</h2>
<table><tr><th>status</th><th>from s</th><th>to s</th></tr>
{phases or '<tr><td colspan="3">no migration</td></tr>'}
</table>
</body></html>
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", help="trace log (.log or .log.gz) or qmpdl-top recording")
    parser.add_argument("-o", "--output", help="PNG to write (default: RUN's name + .png)")
    parser.add_argument("--html", help="also write a self-contained HTML page")
    parser.add_argument("--title", help="the figure's title (default: the file's name)")
    opts = parser.parse_args(argv)
    try:
        run = load(opts.run)
    except (RunFormatError, OSError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    try:
        fig = render(run, opts.title)
    except ImportError:
        print(f"{PROG}: needs matplotlib: pip install 'qmpdl[plot]'", file=sys.stderr)
        return 1
    png = png_bytes(fig)
    output = opts.output or (None if opts.html else _default_output(opts.run))
    try:
        if output:
            Path(output).write_bytes(png)
            print(f"wrote {output}")
        if opts.html:
            Path(opts.html).write_text(html_page(run, png, opts.title))
            print(f"wrote {opts.html}")
    except OSError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    return 0


def _default_output(run: str) -> str:
    name = Path(run).name
    for suffix in (".gz", ".log", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return f"{name}.png"


if __name__ == "__main__":
    sys.exit(main())
