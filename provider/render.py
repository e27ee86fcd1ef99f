"""Report output: an aligned terminal table, CSV, JSON, and one self-contained HTML file.

Money is shown as USD with two decimals and credits as whole numbers; JSON keeps the exact
figures. The HTML report draws its stacked bar chart as inline SVG, so it needs no network,
no script and no font download.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.table import Table

from provider.reports import Report, columns_of, group_label

PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip


def usd(value: float) -> str:
    return f"${value:,.2f}"


def credits(value: float) -> str:
    return f"{round(value):,}"


def change(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}%"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    table = Table(show_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def print_report(report: Report) -> None:
    request = report.request
    period = request.period
    title = f"Costs {period.start} .. {period.end} (previous period {period.previous().start} .. {period.previous().end})"
    table = Table(title=title, show_edge=False, header_style="bold")
    for name in columns_of(request):
        table.add_column(name)
    for name in ("credits", "USD", "previous USD", "change"):
        table.add_column(name, justify="right")
    for row in report.rows:
        table.add_row(*report_cells(report, row))
    total = report.total
    labels = ["total"] + [""] * (len(columns_of(request)) - 1) if columns_of(request) else []
    table.add_section()
    table.add_row(
        *labels,
        credits(total["credits"]),
        usd(total["amount_usd"]),
        usd(total["previous_amount_usd"]),
        change(total["change_pct"]),
        style="bold",
    )
    Console(width=200).print(table)


def report_cells(report: Report, row: dict[str, Any]) -> list[str]:
    labels = [group_label(row.get(name)) for name in columns_of(report.request)]
    return [
        *labels,
        credits(row["credits"]),
        usd(row["amount_usd"]),
        usd(row["previous_amount_usd"]),
        change(row["change_pct"]),
    ]


def as_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


def as_csv(report: Report) -> str:
    buffer = io.StringIO()
    names = list(columns_of(report.request))
    figures = ["credits", "amount_usd", "previous_credits", "previous_amount_usd", "change_pct"]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names + figures)
    for row in report.rows:
        writer.writerow([row.get(name) for name in names] + [row[name] for name in figures])
    writer.writerow(
        ["total"] + [""] * max(len(names) - 1, 0) + [report.total[name] for name in figures]
    )
    return buffer.getvalue()


# --- HTML ---------------------------------------------------------------------------------------


def chart_series(report: Report) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    """Bins (x), stack keys (first group-by dimension) and the amount for each pair."""
    request = report.request
    stack_dimension = request.group_by[0] if request.group_by else None
    amounts: dict[tuple[str, str], float] = defaultdict(float)
    bins: list[str] = []
    keys: list[str] = []
    for row in report.rows:
        bin_label = row.get("bin") or f"{request.period.start} .. {request.period.end}"
        key = group_label(row.get(stack_dimension)) if stack_dimension else "total"
        amounts[(bin_label, key)] += row["amount_usd"]
        if bin_label not in bins:
            bins.append(bin_label)
        if key not in keys:
            keys.append(key)
    totals = {key: sum(amounts[(b, key)] for b in bins) for key in keys}
    keys.sort(key=lambda key: -totals[key])
    return sorted(bins), keys, amounts


def chart_svg(report: Report) -> str:
    bins, keys, amounts = chart_series(report)
    width, height, left, bottom, top = 760, 320, 70, 40, 10
    plot_height = height - bottom - top
    highest = max((sum(amounts[(b, k)] for k in keys) for b in bins), default=0.0) or 1.0
    slot = (width - left - 10) / max(len(bins), 1)
    bar = max(min(slot * 0.7, 80), 2)
    parts = [
        f'<svg id="cost-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="Stacked cost by {html.escape(report.request.group_by[0] if report.request.group_by else "total")}">',
        f'<line x1="{left}" y1="{top + plot_height}" x2="{width - 10}" y2="{top + plot_height}" stroke="#999"/>',
    ]
    for step in range(5):
        value = highest * step / 4
        y = top + plot_height - plot_height * step / 4
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{usd(value)}</text>'
        )
    for index, bin_label in enumerate(bins):
        x = left + index * slot + (slot - bar) / 2
        y = float(top + plot_height)
        for key_index, key in enumerate(keys):
            amount = amounts.get((bin_label, key), 0.0)
            if amount <= 0:
                continue
            h = plot_height * amount / highest
            y -= h
            colour = PALETTE[key_index % len(PALETTE)]
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}" data-bin="{html.escape(bin_label)}" data-key="{html.escape(key)}" '
                f'data-amount="{amount:.2f}"><title>{html.escape(bin_label)} · {html.escape(key)}: {usd(amount)}</title></rect>'
            )
        if len(bins) <= 16 or index % max(len(bins) // 16, 1) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_height + 16}" text-anchor="middle" font-size="11">{html.escape(bin_label)}</text>'
            )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{html.escape(key)}</span>'
        for i, key in enumerate(keys)
    )
    return "\n".join(parts) + f'\n<div class="legend">{legend}</div>'


def as_html(report: Report) -> str:
    request = report.request
    period = request.period
    total = report.total
    header_cells = "".join(f"<th>{html.escape(name)}</th>" for name in columns_of(request))
    rows = "\n".join(
        "<tr>"
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in report_cells(report, row))
        + "</tr>"
        for row in report.rows
    )
    filter_line = (
        f"<p>Filter: <code>{html.escape(request.filter)}</code></p>" if request.filter else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>circlecost report {period.start} .. {period.end}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
.totals {{ display: flex; gap: 2em; margin: 1em 0; }}
.totals div {{ background: #f4f6f8; padding: .8em 1.2em; border-radius: 6px; }}
.totals b {{ display: block; font-size: 1.6em; }}
table {{ border-collapse: collapse; margin-top: 1.5em; }}
th, td {{ padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: left; }}
td:nth-last-child(-n+4), th:nth-last-child(-n+4) {{ text-align: right; }}
.legend .key {{ margin-right: 1em; font-size: .9em; }}
.legend i {{ display: inline-block; width: .8em; height: .8em; margin-right: .3em; }}
</style>
</head>
<body>
<h1>CircleCI costs</h1>
<p>{period.start} .. {period.end}, compared with {period.previous().start} .. {period.previous().end}.
Grouped by {html.escape(", ".join(request.group_by) or "nothing")}{f", binned by {request.bin}" if request.bin else ""}.</p>
{filter_line}
<div class="totals">
<div id="total-usd">Total <b>{usd(total["amount_usd"])}</b></div>
<div id="total-credits">Credits <b>{credits(total["credits"])}</b></div>
<div id="previous-usd">Previous period <b>{usd(total["previous_amount_usd"])}</b></div>
<div id="change">Change <b>{change(total["change_pct"])}</b></div>
</div>
{chart_svg(report)}
<table id="cost-table">
<thead><tr>{header_cells}<th>credits</th><th>USD</th><th>previous USD</th><th>change</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p><small>Generated by circlecost.</small></p>
</body>
</html>
"""
