"""Report output: an aligned terminal table, CSV, JSON, and one self-contained HTML file.

Money is shown as USD with two decimals and credits as whole numbers, both rounded half up from
the exact figures; CSV and JSON keep the exact figures. The HTML report draws its stacked bar
chart as inline SVG, so it needs no network, no script and no font download.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from circlecost.reports import Report, bin_starts, columns_of, group_label

# Tableau 10: distinct for most colour-blind readers; grey is kept for "other".
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
)  # fmt: skip
OTHER_COLOUR = "#bab0ac"
FIGURES = ("credits", "amount_usd", "previous_credits", "previous_amount_usd", "change_pct")
CENT = Decimal("0.01")


def usd(value: Decimal | float) -> str:
    cents = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    return f"{'-' if cents < 0 else ''}${abs(cents):,}"


def credits(value: Decimal | float) -> str:
    whole = Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"{int(whole):,}"


def change(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}%"


def exact(value: Any) -> Any:
    """A figure as CSV text: whole numbers without decimals, others without trailing zeros."""
    if not isinstance(value, Decimal):
        return value
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def print_table(
    headers: list[str],
    rows: list[list[str]],
    *,
    numeric: Collection[str] = (),
    unbroken: Collection[str] = (),
) -> None:
    """An aligned table: `numeric` columns right-justified, `unbroken` ones never wrapped or
    cut (ids that people copy), whatever the terminal's width."""
    table = Table(show_edge=False, header_style="bold")
    for header in headers:
        table.add_column(
            header,
            justify="right" if header in numeric else "left",
            no_wrap=header in unbroken,
            min_width=len(header),
        )
    for row in rows:
        table.add_row(*row)
    Console().print(table)


# --- terminal ------------------------------------------------------------------------------------


def print_report(report: Report, console: Console | None = None) -> None:
    """The rows and a bold total; with nothing to group by, the total alone."""
    request = report.request
    period, previous = request.period, request.period.previous()
    caption = f"compared with {previous.start} .. {previous.end}"
    if request.filter:
        caption += f"; filter: {request.filter}"
    table = Table(
        title=f"CircleCI costs {period.start} .. {period.end}",
        caption=caption,
        show_edge=False,
        header_style="bold",
    )
    labels = list(columns_of(request))
    for name in labels:
        table.add_column(name)
    for name in ("credits", "USD", "previous USD", "change"):
        table.add_column(name, justify="right")
    if labels:
        for row in report.rows:
            table.add_row(*report_cells(report, row))
        table.add_section()
    total_labels = ["total", *[""] * (len(labels) - 1)] if labels else []
    table.add_row(*total_labels, *figure_cells(report.total), style="bold")
    (console or Console(width=200)).print(table)


def report_cells(report: Report, row: dict[str, Any]) -> list[str]:
    labels = [group_label(row.get(name)) for name in columns_of(report.request)]
    return [*labels, *figure_cells(row)]


def figure_cells(figures: dict[str, Any]) -> list[str]:
    return [
        credits(figures["credits"]),
        usd(figures["amount_usd"]),
        usd(figures["previous_amount_usd"]),
        change(figures["change_pct"]),
    ]


# --- JSON and CSV --------------------------------------------------------------------------------


def as_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"


def as_csv(report: Report) -> str:
    """One line per row, then a `total` line (or only the total when nothing is grouped)."""
    buffer = io.StringIO()
    names = list(columns_of(report.request))
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*names, *FIGURES])
    if names:
        for row in report.rows:
            writer.writerow([row.get(name) for name in names] + [exact(row[f]) for f in FIGURES])
        total_labels = ["total", *[""] * (len(names) - 1)]
        writer.writerow(total_labels + [exact(report.total[f]) for f in FIGURES])
    else:
        writer.writerow([exact(report.total[f]) for f in FIGURES])
    return buffer.getvalue()


# --- HTML ----------------------------------------------------------------------------------------


@dataclass
class Series:
    """What the chart draws: bins along x, stacked keys in each, previous totals per bin."""

    bins: list[str]
    keys: list[str]
    amounts: dict[tuple[str, str], float]
    previous: dict[str, float]
    dimension: str | None


def chart_series(report: Report, most: int = len(PALETTE)) -> Series:
    """Stacks by the first group-by dimension: the `most` costliest keys, the rest as `other`.

    Every bin of the period gets a place on the x axis, so that gaps in time show as gaps.
    """
    request = report.request
    dimension = request.group_by[0] if request.group_by else None
    bins = chart_bins(report)
    by_key: dict[tuple[str, str], float] = defaultdict(float)
    previous: dict[str, float] = defaultdict(float)
    for row in report.rows:
        bin_label = row.get("bin") or bins[0]
        key = group_label(row.get(dimension)) if dimension else "total"
        by_key[(bin_label, key)] += float(row["amount_usd"])
        previous[bin_label] += float(row["previous_amount_usd"])
    if request.bin == "cumulative":
        carry_forward(bins, by_key, previous)
    keys = ranked_keys(by_key, bins[-1:] if request.bin == "cumulative" else bins, most)
    amounts: dict[tuple[str, str], float] = defaultdict(float)
    for (bin_label, key), amount in by_key.items():
        amounts[(bin_label, key if key in keys else "other")] += amount
    return Series(bins, keys, dict(amounts), dict(previous), dimension)


def chart_bins(report: Report) -> list[str]:
    period, bin_name = report.request.period, report.request.bin
    if bin_name is None:
        return [f"{period.start} .. {period.end}"]
    return [start.isoformat() for start in bin_starts(period, bin_name)]


def carry_forward(
    bins: list[str], by_key: dict[tuple[str, str], float], previous: dict[str, float]
) -> None:
    """Running totals hold on days without costs (the report has rows only for days with some)."""
    present = {bin_label for bin_label, _ in by_key} | set(previous)
    for before, day in itertools.pairwise(bins):
        if day not in present:
            for (bin_label, key), amount in list(by_key.items()):
                if bin_label == before:
                    by_key[(day, key)] = amount
            previous[day] = previous.get(before, 0.0)


def ranked_keys(by_key: dict[tuple[str, str], float], bins: list[str], most: int) -> list[str]:
    """Keys by their amount over `bins`, costliest first, the tail folded into `other`."""
    totals: dict[str, float] = defaultdict(float)
    for (bin_label, key), amount in by_key.items():
        totals[key] += amount if bin_label in bins else 0.0
    ranked = sorted(totals, key=lambda key: (-totals[key], key))
    return ranked if len(ranked) <= most else [*ranked[: most - 1], "other"]


def colour(index: int, key: str) -> str:
    return OTHER_COLOUR if key == "other" else PALETTE[index % len(PALETTE)]


def nice_step(highest: float, ticks: int = 5) -> float:
    """A round axis step (1, 2, 2.5 or 5 times a power of ten) giving about `ticks` lines."""
    raw = max(highest, 0.01) / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(power * m for m in (1, 2, 2.5, 5, 10) if power * m >= raw)


@dataclass(frozen=True)
class Plot:
    width: int = 960
    height: int = 380
    left: int = 84
    right: int = 44  # room for the last bin's label, centred under its bar
    top: int = 16
    bottom: int = 44

    @property
    def inner_height(self) -> int:
        return self.height - self.top - self.bottom

    @property
    def baseline(self) -> int:
        return self.top + self.inner_height


def chart_svg(report: Report, anomalies: Mapping[str, str] | None = None) -> str:
    """The stacked bars; `anomalies` maps a bin to the text of the anomalies found on it, each
    marked by a red triangle over its bar."""
    series = chart_series(report)
    plot = Plot()
    highest = max(
        [sum(series.amounts.get((b, k), 0.0) for k in series.keys) for b in series.bins]
        + list(series.previous.values())
        + [0.0]
    )
    step = nice_step(highest)
    top_value = step * max(math.ceil(highest / step), 1)
    label = html.escape(series.dimension or "total")
    parts = [
        f'<svg id="cost-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {plot.width} {plot.height}" '
        f'width="{plot.width}" height="{plot.height}" role="img" aria-label="Costs in USD per bin, stacked by {label}">',
        *axis(plot, step, top_value),
        *bars(plot, series, top_value),
        *anomaly_marks(plot, series, top_value, anomalies or {}),
        "</svg>",
    ]
    return "\n".join(parts) + "\n" + legend(series)


def axis(plot: Plot, step: float, top_value: float) -> list[str]:
    parts = []
    for index in range(round(top_value / step) + 1):
        value = step * index
        y = plot.baseline - plot.inner_height * value / top_value
        stroke = "#888" if index == 0 else "#e3e6ea"
        parts.append(
            f'<line x1="{plot.left}" y1="{y:.1f}" x2="{plot.width - plot.right}" y2="{y:.1f}" stroke="{stroke}"/>'
            f'<text class="tick" x="{plot.left - 8}" y="{y + 4:.1f}" text-anchor="end">{tick_label(value, step)}</text>'
        )
    return parts


def tick_label(value: float, step: float) -> str:
    """Whole dollars when the axis steps by whole dollars: `$150`, else `$0.25`."""
    return f"${value:,.0f}" if step >= 1 else usd(value)


def bars(plot: Plot, series: Series, top_value: float) -> list[str]:
    slot = (plot.width - plot.left - plot.right) / max(len(series.bins), 1)
    bar = max(min(slot * 0.72, 90.0), 1.0)
    longest = max((len(b) for b in series.bins), default=1)
    label_every = max(math.ceil((longest * 7 + 12) / slot), 1)  # ~7 px per character at 12 px
    parts = []
    for index, bin_label in enumerate(series.bins):
        x = plot.left + index * slot + (slot - bar) / 2
        parts.extend(stack(plot, series, bin_label, x, bar, top_value))
        before = series.previous.get(bin_label, 0.0)
        if before > 0:
            y = plot.baseline - plot.inner_height * before / top_value
            parts.append(
                f'<line class="previous" x1="{x - 2:.1f}" y1="{y:.1f}" x2="{x + bar + 2:.1f}" y2="{y:.1f}" '
                f'stroke="#222" stroke-width="2" stroke-dasharray="4 2"><title>{html.escape(bin_label)} · previous period: {usd(before)}</title></line>'
            )
        if index % label_every == 0:
            parts.append(
                f'<text class="tick" x="{x + bar / 2:.1f}" y="{plot.baseline + 18}" text-anchor="middle">{html.escape(bin_label)}</text>'
            )
    return parts


def anomaly_marks(
    plot: Plot, series: Series, top_value: float, anomalies: Mapping[str, str]
) -> list[str]:
    slot = (plot.width - plot.left - plot.right) / max(len(series.bins), 1)
    parts = []
    for index, bin_label in enumerate(series.bins):
        if bin_label not in anomalies:
            continue
        total = sum(series.amounts.get((bin_label, key), 0.0) for key in series.keys)
        x = plot.left + index * slot + slot / 2
        y = plot.baseline - plot.inner_height * total / top_value - 4
        parts.append(
            f'<path class="anomaly" data-bin="{html.escape(bin_label)}" fill="#d1242f" '
            f'd="M{x - 6:.1f},{y - 10:.1f} L{x + 6:.1f},{y - 10:.1f} L{x:.1f},{y:.1f} Z">'
            f"<title>{html.escape(anomalies[bin_label])}</title></path>"
        )
    return parts


def stack(
    plot: Plot, series: Series, bin_label: str, x: float, bar: float, top_value: float
) -> list[str]:
    parts = []
    y = float(plot.baseline)
    for key_index, key in enumerate(series.keys):
        amount = series.amounts.get((bin_label, key), 0.0)
        if amount <= 0:
            continue
        height = plot.inner_height * amount / top_value
        y -= height
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
            f'fill="{colour(key_index, key)}" data-bin="{html.escape(bin_label)}" data-key="{html.escape(key)}" '
            f'data-amount="{amount:.2f}"><title>{html.escape(bin_label)} · {html.escape(key)}: {usd(amount)}</title></rect>'
        )
    return parts


def legend(series: Series) -> str:
    entries = [
        f'<span class="key"><i style="background:{colour(index, key)}"></i>{html.escape(key)}</span>'
        for index, key in enumerate(series.keys)
    ]
    if series.previous and any(value > 0 for value in series.previous.values()):
        entries.append('<span class="key"><i class="dash"></i>previous period</span>')
    return f'<div class="legend">{"".join(entries)}</div>'


STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1000px; padding: 0 1em; color: #1f2328; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
.meta { color: #57606a; margin: 0 0 .3em; }
code { background: #f3f4f6; padding: .1em .35em; border-radius: 4px; }
.totals { display: flex; flex-wrap: wrap; gap: 1em; margin: 1.2em 0; }
.totals div { background: #f4f6f8; padding: .7em 1.2em; border-radius: 8px; min-width: 9em; }
.totals b { display: block; font-size: 1.5em; font-variant-numeric: tabular-nums; }
figure { margin: 0; }
#cost-chart { max-width: 100%; height: auto; }
#cost-chart .tick { font-size: 12px; fill: #57606a; }
.legend { display: flex; flex-wrap: wrap; gap: .4em 1.2em; margin: .6em 0 0 84px; font-size: .95em; }
.legend i { display: inline-block; width: .9em; height: .9em; margin-right: .35em; vertical-align: -.1em; border-radius: 2px; }
.legend i.dash { height: 0; border-top: 2px dashed #222; border-radius: 0; vertical-align: .25em; }
table { border-collapse: collapse; margin-top: 1.8em; width: 100%; }
th, td { padding: .35em .8em; border-bottom: 1px solid #e3e6ea; text-align: left; }
th { background: #f4f6f8; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tfoot td { font-weight: bold; border-top: 2px solid #888; }
footer { color: #57606a; margin-top: 2em; font-size: .9em; }
"""


def as_html(report: Report, more: str = "", anomalies: Mapping[str, str] | None = None) -> str:
    """The report as one page; `more` is HTML placed after the table (the right-sizing
    suggestions for the same period, scope and filter); `anomalies` marks bins on the chart."""
    request = report.request
    period, previous = request.period, request.period.previous()
    total = report.total
    grouping = html.escape(", ".join(request.group_by) or "nothing")
    binning = {
        None: "",
        "cumulative": ", as running totals by day",
    }.get(request.bin, f", binned by {request.bin}")
    filter_line = (
        f'<p class="meta">Filter: <code>{html.escape(request.filter)}</code></p>'
        if request.filter
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CircleCI costs {period.start} .. {period.end}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>CircleCI costs</h1>
<p class="meta">{period.start} .. {period.end}, compared with {previous.start} .. {previous.end}. Grouped by {grouping}{binning}.</p>
{filter_line}
<div class="totals">
<div id="total-usd">Total <b>{usd(total["amount_usd"])}</b></div>
<div id="total-credits">Credits <b>{credits(total["credits"])}</b></div>
<div id="previous-usd">Previous period <b>{usd(total["previous_amount_usd"])}</b></div>
<div id="change">Change <b>{change(total["change_pct"])}</b></div>
</div>
<figure>
{chart_svg(report, anomalies)}
</figure>
{table_html(report)}
{more}
<footer>Generated by circlecost. Amounts in USD at each integration's price per credit.</footer>
</body>
</html>
"""


def table_html(report: Report) -> str:
    labels = list(columns_of(report.request))
    header = "".join(f"<th>{html.escape(name)}</th>" for name in labels)
    header += "".join(
        f'<th class="num">{name}</th>' for name in ("credits", "USD", "previous USD", "change")
    )
    rows = report.rows if labels else []  # with nothing grouped, the total says it all
    body = "\n".join(row_html(labels, report_cells(report, row)) for row in rows)
    total_labels = ["total", *[""] * (len(labels) - 1)] if labels else []
    footer = row_html(labels, [*total_labels, *figure_cells(report.total)])
    return f"""<table id="cost-table">
<thead><tr>{header}</tr></thead>
<tbody>
{body}
</tbody>
<tfoot>{footer}</tfoot>
</table>"""


def row_html(labels: list[str], cells: list[str]) -> str:
    numeric = ' class="num"'
    tds = [
        f"<td{numeric if index >= len(labels) else ''}>{html.escape(cell)}</td>"
        for index, cell in enumerate(cells)
    ]
    return f"<tr>{''.join(tds)}</tr>"
