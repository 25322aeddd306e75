"""``genlab tour``: run every bundled model once and write one self-contained HTML report.

Each family contributes a section function ``fn(out_dir, quick) -> html`` (see ``Commands.tour_sections``); the
tour times each, and a section that cannot run (weights not installed, say) shows its one-line reason instead of
stopping the others. Sections take minutes on a CPU, so the tour says on stdout which section starts and how long
each took.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .errors import GenlabError

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; text-align: center; }
figure img { image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; max-width: 320px; }
table { border-collapse: collapse; font-size: .9em; } td, th { border: 1px solid #ccc; padding: .25em .6em; }
th { background: #f4f4f4; } .note { color: #666; font-size: .9em; } .timing { color: #888; font-size: .8em; }
code, pre { background: #f6f6f6; padding: .1em .3em; }
"""


def write_tour(out: str | os.PathLike, sections: list[Callable], quick: bool = False) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".write-test").write_text("")
        (out / ".write-test").unlink()
    except OSError as e:
        raise GenlabError(f"cannot write the tour to {out}: {e.strerror}") from None
    parts = []
    total = time.perf_counter()
    names = [section_name(s) for s in sections]
    print(f"tour: {len(sections)} sections ({', '.join(names)}), report in {out / 'index.html'}", flush=True)
    for i, (name, section) in enumerate(zip(names, sections), 1):
        print(f"tour: [{i}/{len(sections)}] {name} section started", flush=True)
        t0 = time.perf_counter()
        try:
            body = section(out, quick)
            status = "done"
        except GenlabError as e:
            body = f"<h2>{html.escape(name)}</h2><p class='note'>Could not run: {html.escape(str(e))}</p>"
            status = f"could not run ({e})"
        elapsed = time.perf_counter() - t0
        parts.append(f"<section>{body}<p class='timing'>section took {elapsed:.1f} s</p></section>")
        print(f"tour: [{i}/{len(sections)}] {name} section {status} in {elapsed:.1f} s", flush=True)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>genlab tour</title><style>{STYLE}</style></head>"
        f"<body><h1>genlab tour</h1><p class='note'>genlab {__version__} — learn a distribution, sample from it. "
        f"Every bundled model, run on this machine just now ({time.perf_counter() - total:.0f} s in all).</p>"
        + "".join(parts)
        + "<p class='note'>Emoji images: OpenMoji — the open-source emoji and icon project, CC BY-SA 4.0.</p>"
        "</body></html>\n"
    )
    tmp = out / f".index.html.tmp-{os.getpid()}"
    tmp.write_text(page)
    os.replace(tmp, out / "index.html")
    print(f"wrote {out / 'index.html'}")
    return out / "index.html"


def section_name(section: Callable) -> str:
    """``genlab.diffusion.cli.tour_section`` -> ``diffusion``."""
    parts = section.__module__.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "genlab" else section.__name__


def svg_line_plot(series: dict[str, list[tuple[float, float]]], x_label: str, y_label: str, log_x: bool = True,
                  width: int = 560, height: int = 320) -> str:
    """A small dependency-free SVG line chart: one polyline per named series of (x, y) points."""
    import math

    points = [p for pts in series.values() for p in pts]
    if not points:
        return "<p class='note'>no data</p>"
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs, ys = [fx(x) for x, _ in points], [y for _, y in points]
    x0, x1, y0, y1 = min(xs), max(xs), 0.0, max(ys) * 1.05
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    left, right, top, bottom = 60, 150, 15, 40
    sx = lambda v: left + (fx(v) - x0) / (x1 - x0) * (width - left - right)  # noqa: E731
    sy = lambda v: height - bottom - (v - y0) / (y1 - y0) * (height - top - bottom)  # noqa: E731
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-size='11'>",
           f"<line x1='{left}' y1='{height - bottom}' x2='{width - right}' y2='{height - bottom}' stroke='#444'/>",
           f"<line x1='{left}' y1='{top}' x2='{left}' y2='{height - bottom}' stroke='#444'/>"]
    for xv in sorted({x for x, _ in points}):
        out.append(f"<text x='{sx(xv):.1f}' y='{height - bottom + 14}' text-anchor='middle'>{xv:g}</text>")
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        out.append(f"<text x='{left - 6}' y='{sy(yv) + 4:.1f}' text-anchor='end'>{yv:.3g}</text>")
    out.append(f"<text x='{(width - right + left) / 2}' y='{height - 5}' text-anchor='middle'>{html.escape(x_label)}"
               f"</text><text x='12' y='{top + 10}' >{html.escape(y_label)}</text>")
    for i, (name, pts) in enumerate(series.items()):
        c = colors[i % len(colors)]
        pts = sorted(pts)
        out.append(f"<polyline fill='none' stroke='{c}' stroke-width='2' points='"
                   + " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts) + "'/>")
        out += [f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='3' fill='{c}'/>" for x, y in pts]
        out.append(f"<text x='{width - right + 8}' y='{top + 14 + 15 * i}' fill='{c}'>{html.escape(name)}</text>")
    out.append("</svg>")
    return "".join(out)
