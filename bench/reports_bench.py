"""Report speed: a service × month report over ~10M cost line items, against a plain baseline,
on both store engines: embedded (one DuckDB file) and shared (DuckLake: a PostgreSQL catalog
and Parquet files), with the ratio shared/embedded.

    .venv/bin/python -m bench.reports_bench [--rows-millions 10]

Each store is filled straight from DuckDB's `range()` (no CSV), half the usage rows for each of
two integrations, every row with two non-zero credit columns, so that the `costs` view yields
about `rows_millions` million line items over one year. One integration has a dated price
change, so the price join is exercised. The report is timed after one warm-up run (median of
five); the baseline is a plain `sum(...) GROUP BY` over the usage table, the floor any report
query over the same rows could reach. The shared store's catalog is a fresh database on a
throwaway PostgreSQL server (the caller's; run alone, this module starts its own); without
PostgreSQL only the embedded store is measured.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.import_bench import new_store, postgres_server
from circlecost import reports
from circlecost.store import Store

FIRST_DAY = date(2025, 11, 1)
LAST_DAY = date(2026, 10, 31)
TARGET_MS = 300.0
RUNS = 5

# Every usage row has compute credits and one of these: two line items per row.
_FILL_USAGE = """
INSERT INTO usage BY NAME
SELECT
    CASE WHEN i % 2 = 0 THEN $first ELSE $second END AS integration_id,
    date_trunc('month', day)::TIMESTAMP AS window_start,
    'bench-job' AS export_job_id,
    TIMESTAMP '2026-11-01 00:00:00' AS loaded_at,
    CASE WHEN i % 2 = 0 THEN 'org-a' ELSE 'org-b' END AS ORGANIZATION_ID,
    CASE WHEN i % 2 = 0 THEN 'initech' ELSE 'globex' END AS ORGANIZATION_NAME,
    'project-' || (i % 7) AS PROJECT_ID,
    ['api', 'web', 'billing', 'docs', 'data-pipeline', 'mobile', 'infra'][i % 7 + 1]
        AS PROJECT_NAME,
    'github' AS VCS_NAME,
    ['main', 'develop', 'release/2026.11', NULL, 'feature,comma'][i % 5 + 1] AS VCS_BRANCH,
    'pipeline-' || (i // 20) AS PIPELINE_ID,
    'job-' || i AS JOB_ID,
    ['build', 'test', 'lint', 'deploy'][i % 4 + 1] AS JOB_NAME,
    i AS JOB_RUN_NUMBER,
    day AS JOB_RUN_DATE,
    'success' AS JOB_BUILD_STATUS,
    ['small', 'medium', 'large', 'macos.m1.medium.gen1'][i % 4 + 1] AS RESOURCE_CLASS,
    CASE WHEN i % 4 = 3 THEN 'macos' ELSE 'linux' END AS OPERATING_SYSTEM,
    CASE WHEN i % 4 = 3 THEN 'machine' ELSE 'docker' END AS EXECUTOR,
    (10 + i % 500)::DECIMAL(18, 6) AS COMPUTE_CREDITS,
    CASE WHEN i % 6 = 0 THEN 200 ELSE 0 END::DECIMAL(18, 6) AS DLC_CREDITS,
    CASE WHEN i % 6 = 1 THEN 25 ELSE 0 END::DECIMAL(18, 6) AS USER_CREDITS,
    CASE WHEN i % 6 = 2 THEN 3 ELSE 0 END::DECIMAL(18, 6) AS STORAGE_CREDITS,
    CASE WHEN i % 6 = 3 THEN 7 ELSE 0 END::DECIMAL(18, 6) AS NETWORK_CREDITS,
    CASE WHEN i % 6 = 4 THEN 40 ELSE 0 END::DECIMAL(18, 6) AS LEASE_CREDITS,
    CASE WHEN i % 6 = 5 THEN 5 ELSE 0 END::DECIMAL(18, 6) AS IPRANGES_CREDITS,
    0::DECIMAL(18, 6) AS LEASE_OVERAGE_CREDITS
FROM (
    SELECT i, $first_day::DATE + CAST(i % $days AS INTEGER) AS day FROM range($rows) AS t(i)
)
"""

_BASELINE = """
SELECT date_trunc('month', JOB_RUN_DATE) AS month,
       sum(COMPUTE_CREDITS), sum(DLC_CREDITS), sum(USER_CREDITS), sum(STORAGE_CREDITS),
       sum(NETWORK_CREDITS), sum(LEASE_CREDITS), sum(LEASE_OVERAGE_CREDITS),
       sum(IPRANGES_CREDITS)
FROM usage GROUP BY ALL
"""


def build_store(folder: Path, rows_millions: float, catalog: str | None) -> tuple[Store, int]:
    """A store in `folder` (shared, given its catalog) whose costs view holds about
    `rows_millions` million line items; and their count."""
    store = new_store(folder, catalog)
    first = store.insert_integration("org-a", "sha256:bench-a", organization_name="initech")
    second = store.insert_integration(
        "org-b",
        "sha256:bench-b",
        organization_name="globex",
        base_price=Decimal("0.0005"),
        price_schedule=[(date(2026, 4, 1), Decimal("0.00045"))],
    )
    usage_rows = int(rows_millions * 1_000_000 / 2)
    with store.transaction() as con:
        con.execute(
            _FILL_USAGE,
            {
                "first": first.id,
                "second": second.id,
                "first_day": FIRST_DAY,
                "days": (LAST_DAY - FIRST_DAY).days + 1,
                "rows": usage_rows,
            },
        )
    with store.reader() as con:
        row = con.execute("SELECT count(*) FROM costs").fetchone()
    return store, int(row[0]) if row else 0


def median_ms(action: Callable[[], Any]) -> float:
    action()  # warm-up: the first run reads the data into DuckDB's buffer pool (or page cache)
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def run_report_benchmark(rows_millions: float = 10.0, catalog: str | None = None) -> dict[str, Any]:
    """Times a service × month report over the whole year on an embedded store and, given a
    catalog (the libpq string of an empty PostgreSQL database), on a shared one; prints the
    figures and returns them by engine."""
    figures = {"embedded": measure_engine(rows_millions, None)}
    _print_engine("embedded", figures["embedded"])
    if catalog is not None:
        figures["shared"] = measure_engine(rows_millions, catalog)
        _print_engine("shared", figures["shared"])
        shared, embedded = figures["shared"], figures["embedded"]
        print(
            f"shared/embedded: report {shared['report_ms'] / embedded['report_ms']:.2f}×, "
            f"baseline {shared['baseline_ms'] / embedded['baseline_ms']:.2f}×"
        )
    return figures


def measure_engine(rows_millions: float, catalog: str | None) -> dict[str, Any]:
    """Builds one store (shared, given its catalog) and times the report and the baseline."""
    request = reports.ReportRequest(
        reports.Period(FIRST_DAY, LAST_DAY), group_by=("service",), bin="month"
    )
    with tempfile.TemporaryDirectory(prefix="circlecost-bench-") as folder:
        started = time.perf_counter()
        store, line_items = build_store(Path(folder), rows_millions, catalog)
        fill_s = time.perf_counter() - started
        with store.reader() as con:
            report_ms = median_ms(lambda: reports.build_report(con, request))
            baseline_ms = median_ms(lambda: con.execute(_BASELINE).fetchall())
    return {
        "line_items": line_items,
        "fill_s": round(fill_s, 1),
        "report_ms": round(report_ms, 1),
        "baseline_ms": round(baseline_ms, 1),
        "target_ms": TARGET_MS,
        "within_target": report_ms <= TARGET_MS,
    }


def _print_engine(engine: str, figures: dict[str, Any]) -> None:
    report_ms = figures["report_ms"]
    print(
        f"report, {engine} (service × month, {figures['line_items']:,} line items): "
        f"{report_ms:.0f} ms median (target ≤ {TARGET_MS:.0f} ms"
        f"{'' if figures['within_target'] else ', MISSED'}); baseline sum over usage: "
        f"{figures['baseline_ms']:.0f} ms; store filled in {figures['fill_s']:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-millions", type=float, default=10.0)
    args = parser.parse_args()
    with postgres_server() as server:
        catalog = server.fresh_database("bench_reports") if server is not None else None
        run_report_benchmark(args.rows_millions, catalog)


if __name__ == "__main__":
    main()
