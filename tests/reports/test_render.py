"""Report output: JSON shape, CSV that parses back, a terminal table with money and credits."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from rich.console import Console

from circlecost import render, reports

from .conftest import BuildReport


def test_json_has_rows_and_total_with_credits_and_usd(build: BuildReport) -> None:
    report = build(group_by=("tag:circleci:vcs_branch",), bin="month")

    data = json.loads(render.as_json(report))

    assert data["total"]["credits"] == 793487
    assert data["total"]["amount_usd"] == pytest.approx(476.0922, abs=1e-9)
    assert len(data["rows"]) == 7
    assert {"bin", "tag:circleci:vcs_branch", "credits", "amount_usd"} <= set(data["rows"][0])
    unbranched = [row for row in data["rows"] if row["tag:circleci:vcs_branch"] is None]
    assert [row["credits"] for row in unbranched] == [66246]
    assert data["period"] == {"from": "2026-10-01", "to": "2026-10-31"}
    assert data["previous_period"] == {"from": "2026-08-31", "to": "2026-09-30"}


def test_json_keeps_fractional_figures(build: BuildReport) -> None:
    data = json.loads(render.as_json(build(group_by=("service",))))

    amounts = {row["service"]: row["amount_usd"] for row in data["rows"]}
    assert amounts["Network"] == 4.0278  # 6713 credits × 0.0006
    assert isinstance(data["rows"][0]["credits"], int)


def test_csv_parses_back_to_the_rows_and_the_total(build: BuildReport) -> None:
    report = build(group_by=("tag:circleci:vcs_branch",), bin="week")

    lines = list(csv.DictReader(io.StringIO(render.as_csv(report))))

    *rows, total = lines
    assert len(rows) == len(report.rows)
    assert total["bin"] == "total"
    assert Decimal(total["credits"]) == 793487
    assert Decimal(total["amount_usd"]) == Decimal("476.0922")
    assert sum(Decimal(row["amount_usd"]) for row in rows) == Decimal("476.0922")
    branches = {row["tag:circleci:vcs_branch"] for row in rows}
    assert {"feature,comma", "déploiement-été", ""} <= branches
    for line, row in zip(rows, report.rows, strict=True):
        assert line["bin"] == row["bin"]
        assert Decimal(line["credits"]) == row["credits"]


def test_csv_without_groups_is_one_line_of_totals(build: BuildReport) -> None:
    lines = list(csv.reader(io.StringIO(render.as_csv(build()))))

    assert lines == [
        ["credits", "amount_usd", "previous_credits", "previous_amount_usd", "change_pct"],
        ["793487", "476.0922", "0", "0", ""],
    ]


def test_table_shows_money_in_dollars_and_credits_as_whole_numbers(build: BuildReport) -> None:
    console = Console(record=True, width=160, color_system=None)

    render.print_report(build(group_by=("tag:circleci:vcs_branch",)), console)

    text = console.export_text()
    assert "CircleCI costs 2026-10-01 .. 2026-10-31" in text
    assert "compared with 2026-08-31 .. 2026-09-30" in text
    assert "793,487" in text
    assert "$476.09" in text
    assert "(none)" in text
    assert "feature,comma" in text
    assert "66,246" in text
    assert ".000000" not in text


def test_table_of_a_hand_made_report_rounds_half_up() -> None:
    request = reports.ReportRequest(
        reports.Period(date(2026, 10, 1), date(2026, 10, 31)), group_by=("service",)
    )
    figures = reports.figures((Decimal("2057608.5"), Decimal("1234.565")), (Decimal(0), Decimal(0)))
    report = reports.Report(request, [{"service": "Compute", **figures}], figures)
    console = Console(record=True, width=160, color_system=None)

    render.print_report(report, console)

    text = console.export_text()
    assert "$1,234.57" in text
    assert "2,057,609" in text
    assert "—" in text  # no previous amount to compare with


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.56"), "$1,234.56"),
        (Decimal("0.015"), "$0.02"),
        (Decimal("0.0149"), "$0.01"),
        (Decimal("1234567.891"), "$1,234,567.89"),
        (Decimal("-3.2"), "-$3.20"),
        (Decimal(0), "$0.00"),
        (12.5, "$12.50"),
    ],
)
def test_usd_has_a_dollar_sign_thousands_separators_and_cents(
    value: Decimal | float, shown: str
) -> None:
    assert render.usd(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(Decimal("793487.000000"), "793,487"), (Decimal("2.5"), "3"), (Decimal("0.123456"), "0")],
)
def test_credits_are_whole_numbers(value: Decimal, shown: str) -> None:
    assert render.credits(value) == shown


@pytest.mark.parametrize(("value", "shown"), [(12.34, "+12.3%"), (-100.0, "-100.0%"), (None, "—")])
def test_change_has_a_sign_or_a_dash(value: float | None, shown: str) -> None:
    assert render.change(value) == shown


def test_table_without_groups_shows_only_the_total(build: BuildReport) -> None:
    console = Console(record=True, width=160, color_system=None)

    render.print_report(build(filter="costs.service = 'Users'"), console)

    text = console.export_text()
    assert text.count("275,000") == 1
    assert "$165.00" in text
    assert "filter: costs.service = 'Users'" in text
