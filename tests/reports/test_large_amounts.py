"""Line items of $100 and more: a long GPU job, a large organization's seats.

DuckDB types DECIMAL(18, 6) credits times a DECIMAL(18, 10) price as DECIMAL(18, 16), which
holds less than $100; the costs view (so the FOCUS export) and the insights priced each line
item or run that way and failed on such an export. The expected figures are the generated rows'
own Decimals times the price, computed here; on both store engines.
"""

from __future__ import annotations

import dataclasses
import gzip
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from circlecost import focus, insights, reports
from circlecost.store import Store
from circlecost.usage_columns import CREDIT_SERVICES
from circlecost_emulator.generator import HEADER_LINE, GeneratedRow, UsageGenerator
from tests import engines
from tests.reports.conftest import OCTOBER_PERIOD
from tests.support import GENERATED_ORG, OCTOBER

PRICE = Decimal("0.0006")
GPU_JOB_CREDITS = Decimal("250000.5")  # $150.0003 at PRICE
SEAT_CREDITS = Decimal("12500000")  # 500 seats' credits on one row: $7,500 at PRICE
COMPONENTS = tuple(column for column, _ in CREDIT_SERVICES)


def large_rows() -> list[GeneratedRow]:
    """A generated October in which one run used GPU_JOB_CREDITS of compute and was run again
    an hour later (a rerun as costly), and another run carries SEAT_CREDITS of seats; each
    row's total is the sum of its components."""
    generator = UsageGenerator(seed=11, jobs_per_project_per_day=1)
    rows = generator.rows(GENERATED_ORG, OCTOBER.start, OCTOBER.end)
    runs = [row for row in rows if row.values["JOB_ID"] is not None]
    runs[0].values["COMPUTE_CREDITS"] = GPU_JOB_CREDITS
    runs[-1].values["USER_CREDITS"] = SEAT_CREDITS
    for row in (runs[0], runs[-1]):
        row.values["TOTAL_CREDITS"] = row_credits(row)
    rerun = dataclasses.replace(runs[0], values=dict(runs[0].values))
    started = runs[0].values["JOB_RUN_STARTED_AT"]
    assert isinstance(started, datetime)
    rerun.values["JOB_ID"] = "7d9a0c3e-0b1f-4c6a-9e2d-5f8b1a4c7e60"
    rerun.values["JOB_RUN_STARTED_AT"] = started + timedelta(hours=1)
    return [*rows, rerun]


def row_credits(row: GeneratedRow) -> Decimal:
    return sum((Decimal(str(row.values[column] or 0)) for column in COMPONENTS), Decimal(0))


def first_run_order(row: GeneratedRow) -> tuple[bool, datetime, str]:
    started = row.values["JOB_RUN_STARTED_AT"]
    return (
        started is None,
        started if isinstance(started, datetime) else datetime.min,
        str(row.values["JOB_ID"]),
    )


def rerun_usd_by_project(runs: list[GeneratedRow]) -> dict[Any, Decimal]:
    """What the later runs of a job in the same pipeline and workflow cost, per project: every
    run of such a group but its first (earliest start, then smallest job id)."""
    groups: dict[tuple[Any, ...], list[GeneratedRow]] = defaultdict(list)
    for row in runs:
        if row.values["PIPELINE_ID"] is not None:
            key = ("PIPELINE_ID", "WORKFLOW_NAME", "JOB_NAME")
            groups[tuple(row.values[name] for name in key)].append(row)
    wasted: dict[Any, Decimal] = defaultdict(Decimal)
    for group in groups.values():
        group.sort(key=first_run_order)
        for later in group[1:]:
            wasted[later.values["PROJECT_NAME"]] += row_credits(later) * PRICE
    return dict(wasted)


@pytest.fixture(params=engines.ENGINES)
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Store, list[GeneratedRow]]:
    rows = large_rows()
    part = tmp_path / "part.csv.gz"
    part.write_bytes(gzip.compress((HEADER_LINE + "".join(r.render() for r in rows)).encode()))
    store = engines.new_store(request, request.param, tmp_path, owner="ana")
    integration = store.insert_integration(
        GENERATED_ORG.id, "sha256:large", base_price=PRICE, organization_name=GENERATED_ORG.name
    )
    store.plan_windows(integration.id, [OCTOBER])
    store.replace_window_rows(integration.id, OCTOBER, None, [part])
    return store, rows


def test_the_costs_view_and_the_focus_export_price_large_line_items_exactly(
    loaded: tuple[Store, list[GeneratedRow]], tmp_path: Path
) -> None:
    store, rows = loaded
    total = sum((row_credits(row) for row in rows), Decimal(0)) * PRICE
    output = tmp_path / "focus.parquet"
    with store.reader() as con:
        largest = con.execute("SELECT max(amount_usd), sum(amount_usd) FROM costs").fetchone()
        focus.export(con, OCTOBER_PERIOD.start, OCTOBER_PERIOD.end, output)
        exported = duckdb.sql(
            f"SELECT max(BilledCost), sum(BilledCost), sum(ListCost) FROM '{output}'"
        ).fetchone()
        report = reports.build_report(con, reports.ReportRequest(OCTOBER_PERIOD, group_by=()))
    assert largest == (SEAT_CREDITS * PRICE, total)
    assert exported == (SEAT_CREDITS * PRICE, total, total)  # the list price is PRICE too
    assert report.total["amount_usd"] == total


def test_insights_price_a_run_of_more_than_a_hundred_dollars(
    loaded: tuple[Store, list[GeneratedRow]],
) -> None:
    store, rows = loaded
    runs = [row for row in rows if row.values["JOB_ID"] is not None]
    gpu = runs[0].values
    gpu_job = (gpu["PROJECT_NAME"], gpu["JOB_NAME"])
    job_credits = sum(
        (row_credits(row) for row in runs if (row.values["PROJECT_NAME"], row.values["JOB_NAME"])
         == gpu_job),
        Decimal(0),
    )  # fmt: skip
    request = insights.InsightRequest(OCTOBER_PERIOD)
    with store.reader() as con:
        durations = insights.build_insight(con, "durations", request).sections[0]
        rightsizing = insights.build_insight(con, "rightsizing", request).sections[0]
        waste = insights.build_insight(con, "waste", request)
    by_job = {(row["project"], row["job"]): row for row in durations.rows}
    assert by_job[gpu_job]["credits"] == job_credits
    assert by_job[gpu_job]["amount_usd"] == job_credits * PRICE
    assert sum(row["amount_usd"] for row in durations.rows) == (
        sum((row_credits(row) for row in runs), Decimal(0)) * PRICE
    )
    assert max(row["compute_credits"] for row in rightsizing.rows) >= GPU_JOB_CREDITS
    sections = {section.name: section.rows for section in waste.sections}
    assert {row["project"]: row["amount_usd"] for row in sections["reruns"]} == (
        rerun_usd_by_project(runs)
    )
    assert sum(row["default_usd"] + row["other_usd"] for row in sections["branches"]) == (
        sum((row_credits(row) for row in runs), Decimal(0)) * PRICE
    )
