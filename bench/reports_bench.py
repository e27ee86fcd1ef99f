"""Query speed: every report shape (bins, tag and virtual tag group-bys, VQL filters, a
workspace's report), each insight, a budget's figures, a virtual tag rule's effect and the FOCUS
export over ~10M cost line items, each against a plain baseline, on both store engines: embedded
(one DuckDB file) and shared (DuckLake: a PostgreSQL catalog and Parquet files).

    .venv/bin/python -m bench.reports_bench [--rows-millions 10]

Each store is filled straight from DuckDB's `range()` (no CSV), half the usage rows for each of
two integrations, every row with two non-zero credit columns, so that the `costs` view yields
about `rows_millions` million line items over one year. One integration has a dated price
change, so the price join is exercised. Each report is timed after one warm-up run (median of
five); its baseline is a plain `sum(...) GROUP BY` over the usage table with the same keys, the
floor any report query over the same rows could reach. The FOCUS export (best of three) is
compared with copying the costs view's line items to Parquet unchanged. The shared store's
catalog is a fresh database on a throwaway PostgreSQL server (the caller's; run alone, this
module starts its own); without PostgreSQL only the embedded store is measured.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

from bench.import_bench import new_store, postgres_server
from circlecost import chargeback, focus, insights, reports, service
from circlecost.models import BudgetInputs, VirtualTagInputs
from circlecost.store import Store, TagRule

FIRST_DAY = date(2025, 11, 1)
LAST_DAY = date(2026, 10, 31)
TARGET_MS = 300.0
RUNS = 5

# Every usage row has compute credits and one of these: two line items per row.
_FILL_USAGE = """
INSERT INTO usage BY NAME
SELECT
    CASE WHEN (i // 4) % 2 = 0 THEN $first ELSE $second END AS integration_id,
    date_trunc('month', day)::TIMESTAMP AS window_start,
    'bench-job' AS export_job_id,
    TIMESTAMP '2026-11-01 00:00:00' AS loaded_at,
    CASE WHEN (i // 4) % 2 = 0 THEN 'org-a' ELSE 'org-b' END AS ORGANIZATION_ID,
    CASE WHEN (i // 4) % 2 = 0 THEN 'initech' ELSE 'globex' END AS ORGANIZATION_NAME,
    'project-' || ((i // 4) % 7) AS PROJECT_ID,
    ['api', 'web', 'billing', 'docs', 'data-pipeline', 'mobile', 'infra'][(i // 4) % 7 + 1]
        AS PROJECT_NAME,
    'github' AS VCS_NAME,
    ['main', 'develop', 'release/2026.11', NULL, 'feature,comma'][i % 5 + 1] AS VCS_BRANCH,
    -- Pipelines of four jobs, one workflow each; every tenth pipeline re-runs lint.
    'pipeline-' || (i // 4) AS PIPELINE_ID,
    'job-' || i AS JOB_ID,
    ['build', 'test', 'lint', 'deploy'][CASE WHEN i % 40 = 3 THEN 3 ELSE i % 4 + 1 END]
        AS JOB_NAME,
    i AS JOB_RUN_NUMBER,
    day AS JOB_RUN_DATE,
    ['success', 'success', 'success', 'success', 'success', 'success', 'success', 'success',
        'failed', 'canceled'][i % 10 + 1] AS JOB_BUILD_STATUS,
    ['build-and-test', 'deploy'][(i // 4) % 2 + 1] AS WORKFLOW_NAME,
    day + to_seconds(i % 86400) AS JOB_RUN_STARTED_AT,
    (30 + i % 1770)::DOUBLE AS JOB_RUN_SECONDS,
    CASE WHEN i % 50 = 0 THEN NULL ELSE (5 + (i * 7) % 60)::DOUBLE END
        AS MEDIAN_CPU_UTILIZATION_PCT,
    CASE WHEN i % 50 = 0 THEN NULL ELSE (10 + (i * 7) % 85)::DOUBLE END
        AS MAX_CPU_UTILIZATION_PCT,
    CASE WHEN i % 50 = 0 THEN NULL ELSE (5 + (i * 11) % 60)::DOUBLE END
        AS MEDIAN_RAM_UTILIZATION_PCT,
    CASE WHEN i % 50 = 0 THEN NULL ELSE (10 + (i * 11) % 85)::DOUBLE END
        AS MAX_RAM_UTILIZATION_PCT,
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
    store.rebuild_daily_usage()  # the loader would have kept it; this fill goes around it
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


# The virtual tag every measured store has, and the same split written by hand for baselines.
TEAM_RULES = (
    ("payments", "costs.account IN ('api', 'billing')"),
    ("platform", "costs.account IN ('web', 'data-pipeline', 'infra')"),
    ("product", "costs.account = 'mobile'"),
)
_TEAM_SQL = (
    "CASE WHEN PROJECT_NAME IN ('api', 'billing') THEN 'payments' "
    "WHEN PROJECT_NAME IN ('web', 'data-pipeline', 'infra') THEN 'platform' "
    "WHEN PROJECT_NAME = 'mobile' THEN 'product' ELSE '(untagged)' END"
)


# Each user-facing query: (name, the request's options or "focus", the plain baseline). A
# baseline is the same data summed (or copied) by a plain query over the stored rows, the floor
# any version of that query could reach.
_SUM_BY = "SELECT {keys}, sum(COMPUTE_CREDITS), sum(DLC_CREDITS), sum(USER_CREDITS) FROM usage "
SHAPES: tuple[tuple[str, dict[str, Any], str], ...] = (
    (
        "report service × month",
        {"group_by": ("service",), "bin": "month"},
        _BASELINE,
    ),
    (
        "report account × day",
        {"group_by": ("account",), "bin": "day"},
        _SUM_BY.format(keys="PROJECT_NAME, JOB_RUN_DATE") + "GROUP BY ALL",
    ),
    (
        "report resource × week",
        {"group_by": ("resource",), "bin": "week"},
        _SUM_BY.format(keys="JOB_NAME, date_trunc('week', JOB_RUN_DATE)") + "GROUP BY ALL",
    ),
    (
        "report service, cumulative",
        {"group_by": ("service",), "bin": "cumulative"},
        _SUM_BY.format(keys="JOB_RUN_DATE") + "GROUP BY ALL",
    ),
    (
        "report tag:circleci:vcs_branch",
        {"group_by": ("tag:circleci:vcs_branch",)},
        _SUM_BY.format(keys="VCS_BRANCH") + "GROUP BY ALL",
    ),
    (
        "report category × subcategory, VQL filter",
        {
            "group_by": ("category", "subcategory"),
            "filter": "costs.service = 'Compute' AND costs.account IN ('api', 'web')",
        },
        _SUM_BY.format(keys="OPERATING_SYSTEM, EXECUTOR, RESOURCE_CLASS")
        + "WHERE PROJECT_NAME IN ('api', 'web') GROUP BY ALL",
    ),
    (
        "report vtag:team × month (3 rules)",
        {"group_by": ("vtag:team",), "bin": "month"},
        _SUM_BY.format(keys=f"{_TEAM_SQL}, date_trunc('month', JOB_RUN_DATE)") + "GROUP BY ALL",
    ),
    (
        "report account, filter vtags.team",
        {"group_by": ("account",), "filter": "vtags.team = 'payments'"},
        _SUM_BY.format(keys="PROJECT_NAME") + "WHERE PROJECT_NAME IN ('api', 'billing') "
        "GROUP BY ALL",
    ),
    (
        "workspace report (one integration)",
        {"group_by": ("account",), "bin": "month", "workspace": True},
        _SUM_BY.format(keys="PROJECT_NAME, date_trunc('month', JOB_RUN_DATE)")
        + "WHERE integration_id = $first GROUP BY ALL",
    ),
)
FOCUS_TARGET_MS = 3000.0

# Each insight over the whole year: (name, insight, bin, the plain baseline: the same groups
# and statistics over the job rows, without pricing, filters or the rule).
_RUN_STATS = (
    "SELECT {keys}, count(*), {stats}, sum(COMPUTE_CREDITS) FROM usage "
    "WHERE JOB_ID IS NOT NULL GROUP BY ALL"
)
_DURATION_STATS = (
    "avg(JOB_RUN_SECONDS), quantile_cont(JOB_RUN_SECONDS, [0.5, 0.95]), max(JOB_RUN_SECONDS), "
    "sum(JOB_RUN_SECONDS)"
)
INSIGHT_SHAPES: tuple[tuple[str, str, str | None, str], ...] = (
    (
        "insights rightsizing",
        "rightsizing",
        None,
        _RUN_STATS.format(
            keys="PROJECT_NAME, JOB_NAME, EXECUTOR, RESOURCE_CLASS",
            stats="quantile_cont(MEDIAN_CPU_UTILIZATION_PCT, 0.5), max(MAX_CPU_UTILIZATION_PCT), "
            "quantile_cont(MEDIAN_RAM_UTILIZATION_PCT, 0.5), max(MAX_RAM_UTILIZATION_PCT)",
        ),
    ),
    (
        "insights waste",
        "waste",
        None,
        # the failed/branch sums, and finding the (pipeline, workflow, job) keys that repeat
        _RUN_STATS.format(keys="PROJECT_NAME, JOB_BUILD_STATUS, VCS_BRANCH", stats="1")
        + " UNION ALL SELECT NULL, NULL, NULL, count(*), NULL, NULL FROM usage "
        "WHERE PIPELINE_ID IS NOT NULL GROUP BY integration_id, PIPELINE_ID, WORKFLOW_NAME, "
        "JOB_NAME HAVING count(*) > 1",
    ),
    (
        "insights durations",
        "durations",
        None,
        _RUN_STATS.format(keys="PROJECT_NAME, JOB_NAME", stats=_DURATION_STATS),
    ),
    (
        "insights durations × week",
        "durations",
        "week",
        _RUN_STATS.format(
            keys="PROJECT_NAME, JOB_NAME, date_trunc('week', JOB_RUN_DATE)", stats=_DURATION_STATS
        ),
    ),
)


def run_report_benchmark(rows_millions: float = 10.0, catalog: str | None = None) -> dict[str, Any]:
    """Times every query shape over the whole year on an embedded store and, given a catalog
    (the libpq string of an empty PostgreSQL database), on a shared one; prints one table per
    engine (figure, target, baseline, ratio) and returns the figures by engine."""
    figures = {"embedded": measure_engine(rows_millions, None)}
    _print_engine("embedded", figures["embedded"])
    if catalog is not None:
        figures["shared"] = measure_engine(rows_millions, catalog)
        _print_engine("shared", figures["shared"])
    return figures


def measure_engine(rows_millions: float, catalog: str | None) -> dict[str, Any]:
    """Builds one store (shared, given its catalog) and times every shape and its baseline."""
    period = reports.Period(FIRST_DAY, LAST_DAY)
    with tempfile.TemporaryDirectory(prefix="circlecost-bench-") as folder:
        started = time.perf_counter()
        store, line_items = build_store(Path(folder), rows_millions, catalog)
        fill_s = time.perf_counter() - started
        first = store.list_integrations()[0].id
        store.create_virtual_tag("team", [TagRule(value, rule) for value, rule in TEAM_RULES])
        rows: list[dict[str, Any]] = []
        rows += chargeback_rows(store)
        with store.reader() as con:
            for name, options, baseline in SHAPES:
                request = reports.ReportRequest(
                    period,
                    group_by=options["group_by"],
                    bin=options.get("bin"),
                    filter=options.get("filter"),
                    integration_ids=(first,) if options.get("workspace") else None,
                )
                params = {"first": first} if "$first" in baseline else None
                report_ms = median_ms(partial(reports.build_report, con, request))
                with _without_rollup():
                    rows_ms = median_ms(partial(reports.build_report, con, request))
                baseline_ms = median_ms(partial(_fetch_all, con, baseline, params))
                rows.append(_row(name, TARGET_MS, report_ms, baseline_ms, rows_ms))
            for name, insight, bin_name, baseline in INSIGHT_SHAPES:
                asked = insights.InsightRequest(period, bin=bin_name)
                insight_ms = median_ms(partial(insights.build_insight, con, insight, asked))
                baseline_ms = median_ms(partial(_fetch_all, con, baseline, None))
                rows.append(_row(name, TARGET_MS, insight_ms, baseline_ms))
            rows.append(_focus_row(con, Path(folder)))
    return {"line_items": line_items, "fill_s": round(fill_s, 1), "rows": rows}


def chargeback_rows(store: Store) -> list[dict[str, Any]]:
    """A budget's figures for the last month (the report of the month so far, filtered by the
    virtual tag) and a rule change's effect on every cost (the costs grouped by the old and the
    new rule), each against the plain sums they are made of."""
    budget = chargeback.as_budget(
        BudgetInputs.model_validate(
            {"name": "payments", "amountUsd": "100000", "filter": "vtags.team = 'payments'"}
        ),
        "bench",
    )
    old = VirtualTagInputs.model_validate(
        {"key": "team", "rules": [{"value": v, "filter": f} for v, f in TEAM_RULES]}
    )
    moved = [(value, rule.replace("'mobile'", "'mobile' OR costs.account = 'docs'"))
             for value, rule in TEAM_RULES]  # fmt: skip
    new = VirtualTagInputs.model_validate(
        {"key": "team", "rules": [{"value": v, "filter": f} for v, f in moved]}
    )
    month_sum = (
        _SUM_BY.format(keys="1")
        + f"WHERE PROJECT_NAME IN ('api', 'billing') AND JOB_RUN_DATE >= DATE '{LAST_DAY:%Y-%m}-01'"
    )
    moved_sum = _SUM_BY.format(keys=f"{_TEAM_SQL}, PROJECT_NAME = 'docs'") + "GROUP BY ALL"
    with store.reader() as con:
        month_ms = median_ms(partial(_fetch_all, con, month_sum, None))
        effect_base_ms = median_ms(partial(_fetch_all, con, moved_sum, None))
    return [
        _row(
            "budget figures (month so far, vtag filter)",
            TARGET_MS,
            median_ms(partial(chargeback.evaluate, store, budget, LAST_DAY)),
            month_ms,
        ),
        _row(
            "virtual tag rule effect (all costs)",
            FOCUS_TARGET_MS,
            median_ms(partial(service.rule_effect, store, old, new)),
            effect_base_ms,
        ),
    ]


class _NoColumns(frozenset[str]):
    """A set of rollup columns that covers no report, not even one that needs no column."""

    def issuperset(self, other: Iterable[object]) -> bool:
        return False


def _without_rollup() -> Any:
    """Reports read the usage rows, as they did before the daily rollup (the "rows" column)."""
    return mock.patch.object(reports, "DAILY_COST_COLUMNS", _NoColumns())


def _fetch_all(con: Any, sql: str, params: dict[str, Any] | None) -> list[Any]:
    return list(con.execute(sql, params).fetchall())


def _focus_row(con: Any, folder: Path) -> dict[str, Any]:
    """The FOCUS export of the whole year to Parquet, against copying the costs view's line
    items to Parquet as they are, with the same compression (best of three each: a run takes
    seconds). The row's name carries the export's size."""
    output = folder / "focus.parquet"
    options = focus.FORMATS[".parquet"][1]

    def export() -> None:
        focus.export(con, FIRST_DAY, LAST_DAY, output)

    def copy() -> None:
        con.execute(f"COPY (SELECT * FROM costs) TO '{folder / 'plain.parquet'}' ({options})")

    export_ms = best_ms(export, 3)
    name = f"FOCUS export to Parquet ({output.stat().st_size / 1e6:.0f} MB)"
    return _row(name, FOCUS_TARGET_MS, export_ms, best_ms(copy, 3))


def best_ms(action: Callable[[], Any], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return min(timings)


def _row(
    name: str,
    target_ms: float,
    figure_ms: float,
    baseline_ms: float,
    rows_ms: float | None = None,
) -> dict[str, Any]:
    return {
        "query": name,
        "ms": round(figure_ms, 1),
        "rows_ms": None if rows_ms is None else round(rows_ms, 1),
        "target_ms": target_ms,
        "baseline_ms": round(baseline_ms, 1),
        "ratio": round(figure_ms / baseline_ms, 2) if baseline_ms else None,
        "within_target": figure_ms <= target_ms,
    }


def _print_engine(engine: str, figures: dict[str, Any]) -> None:
    print(
        f"\nqueries, {engine} store ({figures['line_items']:,} line items, filled in "
        f"{figures['fill_s']:.1f} s); report figures are medians of {RUNS} after a warm-up"
    )
    print(
        "figure: as circlecost runs it; rows: the same report read from the usage rows "
        "(without the daily rollup)"
    )
    print(f"{'query':44}{'figure':>10}{'rows':>10}{'target':>10}{'baseline':>10}{'ratio':>8}")
    for row in figures["rows"]:
        missed = "" if row["within_target"] else "  MISSED"
        rows_ms = "-" if row["rows_ms"] is None else f"{row['rows_ms']:.0f}ms"
        print(
            f"{row['query']:44}{row['ms']:>8.0f}ms{rows_ms:>10}{row['target_ms']:>8.0f}ms"
            f"{row['baseline_ms']:>8.0f}ms{row['ratio']:>7.1f}×{missed}"
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
