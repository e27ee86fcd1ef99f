"""The report query sums usage before splitting it into line items; it must equal the view.

The reference below is the plain reading of the `costs` view: filter its line items, group
them, sum. The report query must give exactly the same figures for every dimension, bin and
filter, including line items whose credits cancel out, NULL credits, dates taken from the
fallback columns, fractional credits and dated prices.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from circlecost import reports
from circlecost.store import Store
from circlecost.vocabulary import TAG_COLUMNS
from circlecost.vql import compile_filter

from .conftest import load_samples, new_store

SEPTEMBER_TO_NOVEMBER = reports.Period(date(2026, 9, 20), date(2026, 11, 3))
# Calendar periods: compared with the month before (September has edge rows on its 1st, 25th and
# 27th) and with 1..20 September, which leaves the 25th and 27th out.
PERIODS = [
    SEPTEMBER_TO_NOVEMBER,
    reports.Period(date(2026, 10, 1), date(2026, 10, 31), "month"),
    reports.Period(date(2026, 10, 1), date(2026, 10, 20), "month_to_date"),
]
GROUPINGS = [(name,) for name in reports.DIMENSIONS] + [(f"tag:{key}",) for key in TAG_COLUMNS]
FILTERS = [
    "costs.service = 'Compute'",
    "costs.service != 'Users' AND tags.name = 'circleci:vcs_branch' AND tags.value != 'main'",
    "costs.category = 'macos machine' OR costs.account IN ('api', 'edge')",
    "tags.value = 'main'",
    "tags.name != 'circleci:vcs_branch'",
    "costs.resource NOT LIKE '%smoke%' AND costs.charge_type = 'Usage'",
    "costs.subcategory IN ('large', 'medium') OR costs.billing_account = 'edge-org'",
]

# Hand-made usage rows around the samples' edge cases (all columns not named are NULL).
EDGE_ROWS = """
INSERT INTO usage BY NAME
SELECT ? AS integration_id, TIMESTAMP '2026-09-01' AS window_start,
       TIMESTAMP '2026-11-01' AS loaded_at, 'edge' AS PROJECT_NAME, 'p-edge' AS PROJECT_ID,
       'initech' AS ORGANIZATION_NAME, 'org' AS ORGANIZATION_ID, * FROM (VALUES
    -- credits that cancel out: two line items, zero credits in total
    ('main', 'linux', 'docker', 'build', DATE '2026-10-20', NULL, NULL, 5.0, NULL, NULL),
    ('main', 'linux', 'docker', 'build', DATE '2026-10-20', NULL, NULL, -5.0, NULL, 2.5),
    -- NULL credits mean no line item; fractional credits stay exact
    ('develop', 'macos', 'machine', 'test', DATE '2026-09-25', NULL, NULL, NULL, 0.123456, 0),
    -- dates from the fallback columns: started at, pipeline created at, window start
    (NULL, NULL, NULL, NULL, NULL, TIMESTAMP '2026-09-27 23:59:59', NULL, 7.0, NULL, NULL),
    (NULL, 'linux', NULL, 'lint', NULL, NULL, TIMESTAMP '2026-10-02 00:00:01', 11.0, 3, NULL),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 25000)
) AS edge(VCS_BRANCH, OPERATING_SYSTEM, EXECUTOR, JOB_NAME, JOB_RUN_DATE, JOB_RUN_STARTED_AT,
          PIPELINE_CREATED_AT, COMPUTE_CREDITS, STORAGE_CREDITS, USER_CREDITS)
"""


@pytest.fixture(scope="module")
def connection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    store = new_store(tmp_path_factory.mktemp("query"))
    integration = load_samples(
        store,
        schedule=[(date(2026, 10, 1), Decimal("0.00055")), (date(2026, 10, 21), Decimal("0.0004"))],
    )
    add_edge_rows(store, integration.id)
    with store.reader() as reader:
        yield reader


def add_edge_rows(store: Store, integration_id: str) -> None:
    with store.transaction() as con:
        con.execute(EDGE_ROWS, [integration_id])
    store.rebuild_daily_usage()  # written around the loader, which keeps the rollup itself


def reference(
    con: duckdb.DuckDBPyConnection, request: reports.ReportRequest
) -> tuple[reports.Sums, reports.Sums]:
    """Figures straight from the costs view, the previous period moved onto the current days,
    the first bin starting on the period's first day."""
    period = request.period
    return (
        view_sums(con, request, period, (0, 0)),
        view_sums(con, request, period.previous(), period.previous_shift()),
    )


def view_sums(
    con: duckdb.DuckDBPyConnection,
    request: reports.ReportRequest,
    period: reports.Period,
    shift: tuple[int, int],
) -> reports.Sums:
    day = f"CAST(date + to_months({shift[0]}) + to_days({shift[1]}) AS DATE)"
    first_day = request.period.start.isoformat()
    keys = (
        [f"greatest({reports.BIN_SQL[request.bin].replace('day', day)}, DATE '{first_day}')"]
        if request.bin
        else []
    )
    keys += [reports.dimension_column(name) for name in request.group_by]
    compiled = compile_filter(request.filter) if request.filter else None
    where = f" AND {compiled.sql}" if compiled else ""
    select = "".join(f"{key}, " for key in keys)
    sql = (
        f"SELECT {select}sum(credits), sum(amount_usd) FROM costs WHERE date BETWEEN ? AND ?{where}"
    )
    sql += f" GROUP BY {', '.join(keys)}" if keys else " HAVING count(*) > 0"
    params: list[Any] = [period.start, period.end, *(compiled.params if compiled else ())]
    return {
        tuple(row[:-2]): (Decimal(row[-2]), Decimal(row[-1] or 0))
        for row in con.execute(sql, params).fetchall()
    }


@pytest.mark.parametrize("period", PERIODS, ids=lambda period: period.kind)
@pytest.mark.parametrize("bin_name", [None, *reports.BINS])
@pytest.mark.parametrize("group_by", GROUPINGS, ids="-".join)
def test_every_dimension_and_bin_equals_the_view(
    connection: duckdb.DuckDBPyConnection,
    group_by: tuple[str, ...],
    bin_name: str | None,
    period: reports.Period,
) -> None:
    request = reports.ReportRequest(period, group_by=group_by, bin=bin_name)

    assert reports.aggregate(connection, request) == reference(connection, request)


@pytest.mark.parametrize("text", FILTERS)
@pytest.mark.parametrize("group_by", [(), ("account", "service"), ("tag:circleci:vcs_branch",)])
def test_every_filter_equals_the_view(
    connection: duckdb.DuckDBPyConnection, group_by: tuple[str, ...], text: str
) -> None:
    request = reports.ReportRequest(
        SEPTEMBER_TO_NOVEMBER, group_by=group_by, bin="week", filter=text
    )

    assert reports.aggregate(connection, request) == reference(connection, request)


def test_cancelling_credits_keep_their_zero_line(connection: duckdb.DuckDBPyConnection) -> None:
    request = reports.ReportRequest(
        reports.Period(date(2026, 10, 20), date(2026, 10, 20)),
        group_by=("account", "service"),
        filter="costs.account = 'edge'",
    )

    current, _ = reports.aggregate(connection, request)

    assert current == {
        ("edge", "Compute"): (Decimal(0), Decimal(0)),
        ("edge", "Users"): (Decimal("2.5"), Decimal("2.5") * Decimal("0.00055")),
    }


def test_reports_read_the_daily_rollup_unless_a_column_needs_the_rows() -> None:
    period = SEPTEMBER_TO_NOVEMBER
    by_account, _ = reports.report_query(reports.ReportRequest(period, group_by=("account",)))
    by_pipeline, _ = reports.report_query(
        reports.ReportRequest(period, group_by=("tag:circleci:pipeline_id",))
    )
    tag_filter, _ = reports.report_query(
        reports.ReportRequest(period, filter="tags.value = 'main'")
    )

    assert "FROM usage_daily" in by_account
    assert "FROM usage\n" in by_pipeline
    assert "FROM usage\n" in tag_filter
