"""A self-contained HTML page: the table, its checks, and an inline SVG chart (no scripts, no network).

The page prints: landscape A4, the table at the page width with long names
and ids wrapping inside their cells (so no column is cut off), the header
row repeated on every page. ``scripts/print_reports.py`` renders every page
to PDF in headless Chromium and checks that every column survives.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from ..domain.money import MICROS_PER_UNIT
from ..reports.model import Chart, Report
from .cells import cell_text, header_lines, moment_text

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 300, 84, 24, 34, 64
TICKS = 5
# One colour, width and dash per series: lines that nearly coincide both stay visible
# (a wide pale band under a narrow dashed line).
SERIES_STYLES = (
    ("#1f6feb", 6, "", 0.45),
    ("#d1242f", 2, "6 4", 1.0),
    ("#2da44e", 2, "2 3", 1.0),
    ("#8250df", 2, "10 3 2 3", 1.0),
)

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1f2328; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #d0d7de; text-align: left; vertical-align: top; }
td.money, td.int, td.percent, td.decimal { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: bold; border-top: 2px solid #1f2328; }
.ok { color: #1a7f37; } .failed { color: #d1242f; font-weight: bold; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { color: #656d76; }
svg { max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #1f2328; }
@page { size: A4 landscape; margin: 10mm; }
@media print {
  body { margin: 0; font-size: 7.5pt; }
  table { width: 100%; margin-top: 0.5em; }
  th, td { padding: 1px 3px; overflow-wrap: anywhere; word-break: break-word; }
  th, td.money, td.int, td.percent, td.decimal, td.time { white-space: nowrap; overflow-wrap: normal; word-break: normal; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  svg { max-height: 6.5cm; }
}
"""


def _nice_step(span: float) -> float:
    raw = span / TICKS
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    while magnitude > raw and magnitude > 1e-6:
        magnitude /= 10
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def _amount_label(units: float, step: float) -> str:
    """``145,322`` or ``12.50``: as many decimals as the tick step needs, thousands separated."""
    decimals = 0 if step >= 1 else 2
    return f"{units:,.{decimals}f}"


def _time_label(moment: datetime, span_seconds: float, tz: str) -> str:
    text = moment_text(moment, tz)
    day, clock = text[:10], text[11:16]
    return day if span_seconds > 3 * 86_400 else f"{day[5:]} {clock}"


def _chart_svg(chart: Chart, tz: str = "UTC") -> str:
    points = [p for series in chart.series.values() for p in series]
    if len(points) < 2:
        return ""
    t0 = min(t for t, _ in points).timestamp()
    t1 = max(t for t, _ in points).timestamp()
    lo_units = min(0, *(v for _, v in points)) / MICROS_PER_UNIT
    hi_units = max(v for _, v in points) / MICROS_PER_UNIT or 1
    step = _nice_step(hi_units - lo_units or 1)
    lo_axis = (lo_units // step) * step
    hi_axis = -((-hi_units) // step) * step
    span_t, span_v = (t1 - t0) or 1, (hi_axis - lo_axis) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(seconds: float) -> float:
        return LEFT + (seconds - t0) / span_t * plot_w

    def y_of(units: float) -> float:
        return TOP + plot_h - (units - lo_axis) / span_v * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
             f'height="{HEIGHT}" role="img" aria-label="{escape(chart.title)}">',
             f'<text x="{LEFT}" y="18" font-weight="bold">{escape(chart.title)}</text>']
    ticks = int(round(span_v / step))
    for i in range(ticks + 1):
        units = lo_axis + i * step
        y = y_of(units)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eaeef2"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_amount_label(units, step)}</text>')
    for i in range(TICKS + 1):
        seconds = t0 + span_t * i / TICKS
        x = x_of(seconds)
        label = _time_label(datetime.fromtimestamp(seconds, tz=min(t for t, _ in points).tzinfo), t1 - t0, tz)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" y2="{TOP + plot_h + 4}" stroke="#8c959f"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 17}" text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#8c959f"/>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#8c959f"/>')
    for i, (name, series) in enumerate(chart.series.items()):
        colour, width, dash, opacity = SERIES_STYLES[i % len(SERIES_STYLES)]
        # Balances are step functions: hold each value until the next change.
        steps = [series[0]] + [p for prev, cur in zip(series, series[1:]) for p in ((cur[0], prev[1]), cur)]
        path = " ".join(f"{x_of(t.timestamp()):.1f},{y_of(v / MICROS_PER_UNIT):.1f}" for t, v in steps)
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" stroke-opacity="{opacity}"'
                     f'{dashing} points="{path}"/>')
        legend_x, legend_y = LEFT + (i % 3) * 220, HEIGHT - 22 + (i // 3) * 14
        last = series[-1][1] / MICROS_PER_UNIT if series else 0
        parts.append(f'<line x1="{legend_x}" y1="{legend_y - 4}" x2="{legend_x + 22}" y2="{legend_y - 4}" '
                     f'stroke="{colour}" stroke-width="{min(width, 4)}" stroke-opacity="{opacity}"{dashing}/>')
        parts.append(f'<text x="{legend_x + 28}" y="{legend_y}">{escape(name)} ({last:,.2f})</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(report: Report) -> bytes:
    meta = "".join(
        f"<dt>{escape(k)}</dt><dd class=\"{'failed' if v == 'FAILED' else 'ok' if v == 'ok' else ''}\">{escape(v)}</dd>"
        for k, v in header_lines(report))
    head = "".join(f'<th class="{c.kind}">{escape(c.title)}</th>' for c in report.columns)
    body = []
    for row in report.rows:
        body.append("<tr>" + "".join(f'<td class="{c.kind}">{escape(cell_text(c, row.get(c.key), report.tz))}</td>'
                                     for c in report.columns) + "</tr>")
    if report.totals:
        body.append('<tr class="total">' + "".join(
            f'<td class="{c.kind}">{escape(cell_text(c, report.totals.get(c.key), report.tz))}</td>'
            for c in report.columns) + "</tr>")
    chart = _chart_svg(report.chart, report.tz) if report.chart else ""
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(report.title)}</title>"
            f"<style>{STYLE}</style></head><body>\n<h1>{escape(report.title)}</h1>\n<dl>{meta}</dl>\n{chart}\n"
            f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>\n</body></html>\n")
    return page.encode()
