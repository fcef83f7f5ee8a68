"""A self-contained HTML page: the table, its checks, and an inline SVG chart (no scripts, no network)."""

from __future__ import annotations

from html import escape

from ..domain.money import MICROS_PER_UNIT, format_micros
from ..reports.model import Chart, Report
from .cells import cell_text, header_lines

WIDTH, HEIGHT, PAD = 760, 280, 56
COLOURS = ("#1f6feb", "#d1242f", "#2da44e", "#8250df")

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1f2328; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #d0d7de; text-align: left; }
td.money, td.int, td.percent { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; border-top: 2px solid #1f2328; }
.ok { color: #1a7f37; } .failed { color: #d1242f; font-weight: bold; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { color: #656d76; }
"""


def _chart_svg(chart: Chart) -> str:
    points = [p for series in chart.series.values() for p in series]
    if len(points) < 2:
        return ""
    t0 = min(t for t, _ in points).timestamp()
    t1 = max(t for t, _ in points).timestamp()
    lo, hi = min(0, *(v for _, v in points)), max(v for _, v in points) or 1
    span_t, span_v = (t1 - t0) or 1, (hi - lo) or 1

    def xy(t, v) -> str:  # type: ignore[no-untyped-def]
        x = PAD + (t.timestamp() - t0) / span_t * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD - (v - lo) / span_v * (HEIGHT - 2 * PAD)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="{escape(chart.title)}">',
             f'<text x="{PAD}" y="20" font-weight="bold">{escape(chart.title)}</text>',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#8c959f"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#8c959f"/>',
             f'<text x="4" y="{PAD + 4}" font-size="11">{format_micros(hi // MICROS_PER_UNIT * MICROS_PER_UNIT)}</text>',
             f'<text x="4" y="{HEIGHT - PAD + 4}" font-size="11">{format_micros(lo)}</text>']
    for i, (name, series) in enumerate(chart.series.items()):
        colour = COLOURS[i % len(COLOURS)]
        # Balances are step functions: hold each value until the next change.
        steps = [series[0]] + [p for prev, cur in zip(series, series[1:]) for p in ((cur[0], prev[1]), cur)]
        path = " ".join(xy(t, v) for t, v in steps)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts.append(f'<text x="{PAD + 10 + i * 170}" y="{HEIGHT - 18}" fill="{colour}">■ {escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(report: Report) -> bytes:
    meta = "".join(
        f"<dt>{escape(k)}</dt><dd class=\"{'failed' if v == 'FAILED' else 'ok' if v == 'ok' else ''}\">{escape(v)}</dd>"
        for k, v in header_lines(report))
    head = "".join(f"<th>{escape(c.title)}</th>" for c in report.columns)
    body = []
    for row in report.rows:
        body.append("<tr>" + "".join(f'<td class="{c.kind}">{escape(cell_text(c, row.get(c.key)))}</td>'
                                     for c in report.columns) + "</tr>")
    if report.totals:
        body.append('<tr class="total">' + "".join(
            f'<td class="{c.kind}">{escape(cell_text(c, report.totals.get(c.key)))}</td>' for c in report.columns) + "</tr>")
    chart = _chart_svg(report.chart) if report.chart else ""
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(report.title)}</title>"
            f"<style>{STYLE}</style></head><body>\n<h1>{escape(report.title)}</h1>\n<dl>{meta}</dl>\n{chart}\n"
            f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>\n</body></html>\n")
    return page.encode()
