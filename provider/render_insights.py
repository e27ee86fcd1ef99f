"""Insight output: terminal tables, CSV, JSON and one self-contained HTML page.

Like reports: the table rounds money to cents and credits to whole numbers; CSV and JSON keep the
exact figures.
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from circlecost.insights import Column, Insight, Section
from circlecost.render import credits, exact, usd


def cell(column: Column, value: Any) -> str:
    if value is None:
        return "—"
    if column.kind == "usd":
        return usd(value)
    if column.kind == "credits":
        return credits(value)
    if column.kind == "count":
        return f"{value:,}"
    if column.kind == "seconds":
        return f"{value:,.1f}"
    if column.kind == "number":
        return f"{value:,.2f}"
    if column.kind == "pct":
        return f"{value:+.1f}%" if column.key.endswith("change_pct") else f"{value:.1f}%"
    return str(value)


def heading(insight: Insight) -> str:
    period = insight.request.period
    scope = f", filter {insight.request.filter}" if insight.request.filter else ""
    return f"{insight.name}: {period.start} .. {period.end}{scope}"


def print_insight(insight: Insight, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or file: keep rows on one line
            console = Console(width=200)
    console.print(heading(insight))
    for section in insight.sections:
        table = Table(title=section.title, title_justify="left")
        for column in section.columns:
            numeric = column.kind != "text"
            table.add_column(column.label, justify="right" if numeric else "left")
        for row in section.rows:
            table.add_row(*(cell(column, row.get(column.key)) for column in section.columns))
        if not section.rows:
            console.print(f"{section.title}: nothing in this period")
        else:
            console.print(table)
    for note in insight.notes:
        console.print(note, style="dim")


def as_json(insight: Insight) -> str:
    return json.dumps(insight.as_dict(), indent=2, ensure_ascii=False) + "\n"


def as_csv(insight: Insight) -> str:
    """One header for all sections: `section` (when there are several), then every column in
    the order the sections first name it; a row leaves the columns of other sections empty."""
    several = len(insight.sections) > 1
    keys: list[str] = ["section"] if several else []
    for section in insight.sections:
        keys += [column.key for column in section.columns if column.key not in keys]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(keys)
    for section in insight.sections:
        for row in section.rows:
            values = {**row, "section": section.name}
            writer.writerow([csv_value(values.get(key)) for key in keys])
    return buffer.getvalue()


def csv_value(value: Any) -> Any:
    return "" if value is None else exact(value)


def as_html(insight: Insight) -> str:
    """One page with a table per section; no script, no network."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>circlecost — {html.escape(heading(insight))}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em}"
        "table{border-collapse:collapse;margin-bottom:2em}"
        "th,td{padding:.25em .6em;border-bottom:1px solid #ddd}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}"
        ".note{color:#555}</style></head><body>",
        f"<h1>{html.escape(heading(insight))}</h1>",
    ]
    for section in insight.sections:
        parts.append(section_html(section))
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in insight.notes]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def section_html(section: Section) -> str:
    title = f"<h2>{html.escape(section.title)}</h2>"
    if not section.rows:
        return f"{title}\n<p>Nothing in this period.</p>"
    head = "".join(f"<th>{html.escape(column.label)}</th>" for column in section.columns)
    body = []
    for row in section.rows:
        cells = "".join(
            f"<td{'' if column.kind == 'text' else ' class=n'}>"
            f"{html.escape(cell(column, row.get(column.key)))}</td>"
            for column in section.columns
        )
        body.append(f"<tr>{cells}</tr>")
    return f"{title}\n<table><tr>{head}</tr>\n" + "\n".join(body) + "\n</table>"
