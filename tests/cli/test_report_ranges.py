"""`circlecost report`: what each period is compared with, clipped bins, and refused ranges."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Travel
from tests.reports.samples import october_days

from .conftest import run


def report(store: Path, *args: str) -> dict[str, Any]:
    result = run("--store", str(store), "report", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# (the day the command runs, period, the period, the period it is compared with)
@pytest.mark.parametrize(
    ("today", "period", "expected", "previous"),
    [
        ("2026-11-25", "last_month", "2026-10-01 .. 2026-10-31", "2026-09-01 .. 2026-09-30"),
        ("2027-04-02", "last_month", "2027-03-01 .. 2027-03-31", "2027-02-01 .. 2027-02-28"),
        ("2027-03-31", "this_month", "2027-03-01 .. 2027-03-31", "2027-02-01 .. 2027-02-28"),
        ("2026-11-15", "this_month", "2026-11-01 .. 2026-11-15", "2026-10-01 .. 2026-10-15"),
        ("2028-02-29", "year_to_date", "2028-01-01 .. 2028-02-29", "2027-01-01 .. 2027-02-28"),
        ("2026-11-15", "last_7_days", "2026-11-09 .. 2026-11-15", "2026-11-02 .. 2026-11-08"),
    ],
)
def test_report_compares_with_the_previous_period_of_the_same_kind(
    sample_store: Path, travel: Travel, today: str, period: str, expected: str, previous: str
) -> None:
    travel(datetime.fromisoformat(today).replace(hour=15, minute=30, tzinfo=UTC))

    data = report(sample_store, "--period", period)

    assert "{from} .. {to}".format(**data["period"]) == expected
    assert "{from} .. {to}".format(**data["previous_period"]) == previous


def test_this_month_sums_the_same_days_of_the_month_before(
    sample_store: Path, travel: Travel
) -> None:
    travel(datetime(2026, 11, 15, 15, 30, tzinfo=UTC))

    data = report(sample_store, "--period", "this_month")

    assert (data["total"]["credits"], data["total"]["previous_credits"]) == (0, october_days(1, 15))


def test_a_week_binned_report_from_a_wednesday_starts_its_first_bin_on_it(
    sample_store: Path,
) -> None:
    result = run(
        "--store", str(sample_store), "report", "--from", "2026-10-14", "--to", "2026-10-27",
        "--bin", "week", "--format", "csv",
    )  # fmt: skip

    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["bin"], Decimal(row["credits"])) for row in rows] == [
        ("2026-10-14", october_days(14, 18)),
        ("2026-10-19", october_days(19, 25)),
        ("2026-10-26", october_days(26, 27)),
        ("total", october_days(14, 27)),
    ]


def test_the_html_chart_labels_the_first_week_with_the_reports_first_day(
    sample_store: Path, tmp_path: Path
) -> None:
    page = tmp_path / "r.html"
    result = run(
        "--store", str(sample_store), "report", "--from", "2026-10-14", "--to", "2026-10-27",
        "--bin", "week", "--format", "html", "--output", str(page),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert 'data-bin="2026-10-14"' in html
    assert ">2026-10-14</text>" in html
    assert "2026-10-12" not in html  # the Monday before the report


# --- refused ranges -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (
            ["--from", "0001-01-01", "--to", "2026-10-31"],
            "--from 0001-01-01: reports cover 2000-01-01 .. 2099-12-31",
            "give --from a day in that range",
        ),
        (
            ["--from", "1999-12-31", "--to", "2026-10-31"],
            "--from 1999-12-31: reports cover 2000-01-01 .. 2099-12-31",
            "give --from a day in that range",
        ),
        (
            ["--from", "2026-10-01", "--to", "9999-12-31"],
            "--to 9999-12-31: reports cover 2000-01-01 .. 2099-12-31",
            "give --to a day in that range",
        ),
        (
            ["--from", "2026-10-01", "--to", "2100-01-01"],
            "--to 2100-01-01: reports cover 2000-01-01 .. 2099-12-31",
            "give --to a day in that range",
        ),
        (
            ["--from", "2020-01-01", "--to", "2025-12-31", "--bin", "day"],
            "--bin day: 2020-01-01 .. 2025-12-31 makes 2,192 bins, more than the 2,000 a report "
            "shows",
            "use --bin week (314 bins) or a shorter period",
        ),
        (
            ["--from", "2000-01-01", "--to", "2099-12-31", "--bin", "week"],
            "--bin week: 2000-01-01 .. 2099-12-31 makes 5,219 bins, more than the 2,000 a report "
            "shows",
            "use --bin month (1,200 bins) or a shorter period",
        ),
    ],
)
def test_an_absurd_range_is_refused_in_one_line_with_a_hint(
    sample_store: Path, args: list[str], error: str, hint: str
) -> None:
    result = run("--store", str(sample_store), "report", *args)

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [f"error: {error}", f"hint: {hint}"]


def test_an_export_from_year_one_is_refused_too(sample_store: Path, tmp_path: Path) -> None:
    result = run(
        "--store", str(sample_store), "export", "--from", "0001-01-01", "--to", "2026-10-31",
        "--output", str(tmp_path / "focus.csv"),
    )  # fmt: skip

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "error: --from 0001-01-01: reports cover 2000-01-01 .. 2099-12-31"
    )


def test_the_widest_allowed_range_reports(sample_store: Path) -> None:
    data = report(sample_store, "--from", "2000-01-01", "--to", "2099-12-31", "--bin", "quarter")

    assert data["previous_period"] == {"from": "1899-12-31", "to": "1999-12-31"}
    assert [row["bin"] for row in data["rows"]] == ["2026-10-01"]


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("--from", "2026-02-30", "'2026-02-30' is not a date: February 2026 has 28 days"),
        ("--from", "2028-02-30", "'2028-02-30' is not a date: February 2028 has 29 days"),
        ("--to", "2026-04-31", "'2026-04-31' is not a date: April 2026 has 30 days"),
        ("--to", "2026-13-01", "'2026-13-01' is not a date: there is no month 13"),
        ("--from", "0000-01-01", "'0000-01-01' is not a date: there is no year 0"),
        ("--from", "2026-10-00", "'2026-10-00' is not a date: October 2026 has 31 days"),
        ("--from", "2026-1-5", "'2026-1-5' is not a date: write YYYY-MM-DD"),
        ("--to", "20261031", "'20261031' is not a date: write YYYY-MM-DD"),
        ("--from", "yesterday", "'yesterday' is not a date: write YYYY-MM-DD"),
    ],
)
def test_a_day_that_is_not_in_the_calendar_is_bad_usage_naming_the_option(
    sample_store: Path, option: str, value: str, reason: str
) -> None:
    other = "--to" if option == "--from" else "--from"
    result = run("--store", str(sample_store), "report", option, value, other, "2026-10-15")

    assert result.exit_code == 2
    assert f"Invalid value for '{option}': {reason}" in result.stderr
    assert "Traceback" not in result.stderr
