"""Insights (right-sizing, waste, durations) against an independent reading of the exports.

The expected figures come from tests/reports/samples.py (the export read character by character)
and the standard library's `statistics`, never from circlecost's SQL. The right-sizing rule is
written out again here with its own small table, so a wrong rate or threshold in the code shows.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from circlecost import insights, reports
from circlecost.errors import CirclecostError
from circlecost.store import Store
from tests.reports.conftest import OCTOBER_PERIOD
from tests.reports.samples import SERVICES, usage_date, usage_rows
from tests.support import generated_store

PRICE = Decimal("0.0006")
Row = dict[str, Any]
Build = Callable[..., insights.Insight]


@pytest.fixture
def build_insight(reader: duckdb.DuckDBPyConnection) -> Build:
    def run(name: str, period: reports.Period = OCTOBER_PERIOD, **fields: Any) -> insights.Insight:
        return insights.build_insight(reader, name, insights.InsightRequest(period, **fields))

    return run


def job_runs(rows: Iterable[Row] | None = None) -> list[Row]:
    return [row for row in (usage_rows() if rows is None else rows) if row["JOB_ID"] is not None]


def run_credits(row: Row) -> Decimal:
    return sum((Decimal(row[column] or 0) for column in SERVICES), Decimal(0))


def grouped(runs: Iterable[Row], *keys: str) -> dict[tuple[Any, ...], list[Row]]:
    groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for row in runs:
        groups[tuple(row[key] for key in keys)].append(row)
    return dict(groups)


def rows_by(section: insights.Section, *keys: str) -> dict[tuple[Any, ...], Row]:
    found = {tuple(row[key] for key in keys): row for row in section.rows}
    assert len(found) == len(section.rows), "one row per key"
    return found


# --- durations ----------------------------------------------------------------------------------


def expected_durations(runs: list[Row]) -> Row:
    seconds = sorted(float(row["JOB_RUN_SECONDS"]) for row in runs if row["JOB_RUN_SECONDS"])
    p95 = statistics.quantiles(seconds, n=20, method="inclusive")[18] if len(seconds) > 1 else None
    credits = sum((run_credits(row) for row in runs), Decimal(0))
    return {
        "runs": len(runs),
        "avg_seconds": round(statistics.fmean(seconds), 3),
        "p50_seconds": round(statistics.median(seconds), 3),
        "p95_seconds": round(p95 if p95 is not None else seconds[0], 3),
        "max_seconds": max(seconds),
        "total_seconds": sum(seconds),
        "credits": credits,
        "amount_usd": credits * PRICE,
    }


def test_durations_per_job_equal_the_statistics_of_the_export(build_insight: Build) -> None:
    section = build_insight("durations").sections[0]
    expected = grouped(job_runs(), "PROJECT_NAME", "JOB_NAME")
    found = rows_by(section, "project", "job")
    assert set(found) == set(expected)
    for key, runs in expected.items():
        row = found[key]
        assert {name: row[name] for name in expected_durations(runs)} == expected_durations(runs)
    credits = [row["credits"] for row in section.rows]
    assert credits == sorted(credits, reverse=True), "costliest jobs first"


def test_durations_by_week_split_each_job_into_its_weeks(build_insight: Build) -> None:
    period = reports.Period(date(2026, 10, 7), date(2026, 10, 31))  # starts on a Wednesday
    section = build_insight("durations", period, bin="week").sections[0]
    runs = [row for row in job_runs() if usage_date(row) >= period.start]
    for row in runs:
        day = usage_date(row)
        row["week"] = max(day - timedelta(days=day.weekday()), period.start).isoformat()
    expected = grouped(runs, "PROJECT_NAME", "JOB_NAME", "week")
    found = rows_by(section, "project", "job", "bin")
    assert set(found) == set(expected)
    for key, group in expected.items():
        assert found[key]["credits"] == expected_durations(group)["credits"]
        assert found[key]["p95_seconds"] == expected_durations(group)["p95_seconds"]
    first_bins = {key[:2]: min(k[2] for k in found if k[:2] == key[:2]) for key in found}
    for key, row in found.items():
        if key[2] == first_bins[key[:2]]:
            assert row["avg_change_pct"] is None


def test_a_filter_and_an_empty_workspace_narrow_the_runs(build_insight: Build) -> None:
    section = build_insight("durations", filter="costs.account = 'api'").sections[0]
    assert {row["project"] for row in section.rows} == {"api"}
    branch = "tags.name = 'circleci:vcs_branch' AND tags.value = 'main'"
    on_main = build_insight("durations", filter=branch).sections[0]
    expected = sum(
        (run_credits(row) for row in job_runs() if row["VCS_BRANCH"] == "main"), Decimal(0)
    )
    assert sum(row["credits"] for row in on_main.rows) == expected
    assert build_insight("durations", integration_ids=()).sections[0].rows == []


def test_insights_refuse_a_service_filter_and_a_report_only_bin(build_insight: Build) -> None:
    with pytest.raises(CirclecostError, match=r"costs\.service"):
        build_insight("waste", filter="costs.service = 'Compute'")
    with pytest.raises(CirclecostError, match=r"costs\.service"):
        build_insight("durations", filter="costs.service = 'DLC' AND costs.account = 'api'")
    with pytest.raises(CirclecostError, match="--bin"):
        build_insight("durations", bin="cumulative")


# --- waste --------------------------------------------------------------------------------------


def test_failed_and_cancelled_runs_cost_what_the_export_says(build_insight: Build) -> None:
    section = build_insight("waste").sections[0]
    wasted = [row for row in job_runs() if row["JOB_BUILD_STATUS"] in ("failed", "canceled")]
    expected = grouped(wasted, "PROJECT_NAME", "JOB_BUILD_STATUS")
    found = rows_by(section, "project", "status")
    assert set(found) == set(expected)
    for key, runs in expected.items():
        credits = sum((run_credits(row) for row in runs), Decimal(0))
        assert (found[key]["runs"], found[key]["credits"]) == (len(runs), credits)
        assert found[key]["amount_usd"] == credits * PRICE


@pytest.mark.parametrize("default", [("main", "master"), ("develop",)])
def test_default_branch_against_the_others(build_insight: Build, default: tuple[str, ...]) -> None:
    section = build_insight("waste", default_branches=default).sections[2]
    found = rows_by(section, "project")
    for (project,), runs in grouped(job_runs(), "PROJECT_NAME").items():
        on_default = sum((run_credits(r) for r in runs if r["VCS_BRANCH"] in default), Decimal(0))
        others = sum((run_credits(r) for r in runs if r["VCS_BRANCH"] not in default), Decimal(0))
        row = found[(project,)]
        assert (row["default_credits"], row["other_credits"]) == (on_default, others)
        assert row["other_share_pct"] == float(round(others / (on_default + others) * 100, 1))


# --- stores built from the emulator's generator -------------------------------------------------


def generated_insight(store: Store, name: str) -> insights.Insight:
    with store.reader() as connection:
        request = insights.InsightRequest(OCTOBER_PERIOD)
        return insights.build_insight(connection, name, request)


def test_reruns_are_later_runs_of_a_job_in_the_same_workflow(tmp_path: Path) -> None:
    store, part = generated_store(tmp_path, "mixed")
    runs = job_runs(usage_rows([part]))
    expected_reruns: dict[str, list[Row]] = defaultdict(list)
    for group in grouped(runs, "PIPELINE_ID", "WORKFLOW_NAME", "JOB_NAME").values():
        for later in sorted(group, key=lambda row: row["JOB_RUN_STARTED_AT"])[1:]:
            expected_reruns[later["PROJECT_NAME"]].append(later)
    assert expected_reruns, "the generator re-runs some failed workflows"
    found = rows_by(generated_insight(store, "waste").sections[1], "project")
    assert set(found) == {(project,) for project in expected_reruns}
    for project, reruns in expected_reruns.items():
        credits = sum((run_credits(row) for row in reruns), Decimal(0))
        assert (found[(project,)]["reruns"], found[(project,)]["credits"]) == (len(reruns), credits)


# The rule, written out again: (executor, class) -> (next smaller class, vCPU and RAM ratio of
# the current class to the smaller one, credits per minute of each), for the classes the
# generator uses.
SMALLER: dict[tuple[str, str], tuple[str, Decimal, Decimal, int, int]] = {
    ("docker", "medium"): ("small", Decimal(2), Decimal(2), 10, 5),
    ("docker", "medium+"): ("medium", Decimal(3) / 2, Decimal(6) / 4, 15, 10),
    ("docker", "large"): ("medium+", Decimal(4) / 3, Decimal(8) / 6, 20, 15),
    ("docker", "xlarge"): ("large", Decimal(2), Decimal(2), 40, 20),
    ("machine", "large"): ("medium", Decimal(2), Decimal(15) / Decimal("7.5"), 20, 10),
    ("machine", "xlarge"): ("large", Decimal(2), Decimal(32) / 15, 40, 20),
    ("machine", "arm.large"): ("arm.medium", Decimal(2), Decimal(2), 20, 10),
    ("machine", "windows.large"): ("windows.medium", Decimal(2), Decimal(2), 120, 40),
    ("machine", "macos.m1.large.gen1"): ("macos.m1.medium.gen1", Decimal(2), Decimal(2), 250, 150),
}


def expected_suggestion(runs: list[Row]) -> tuple[str | None, Decimal]:
    """(smaller class or None, monthly saving in credits) by the rule in the README."""
    measured = [row for row in runs if row["MEDIAN_CPU_UTILIZATION_PCT"] is not None]
    key = (runs[0]["EXECUTOR"], runs[0]["RESOURCE_CLASS"])
    if not measured or key not in SMALLER:
        return None, Decimal(0)
    smaller, cpu_ratio, ram_ratio, rate, smaller_rate = SMALLER[key]
    column = {
        name: [Decimal(row[name]) for row in measured] for name in measured[0] if "PCT" in name
    }
    if not (
        statistics.median(column["MEDIAN_CPU_UTILIZATION_PCT"]) < 40
        and statistics.median(column["MEDIAN_RAM_UTILIZATION_PCT"]) < 40
        and max(column["MAX_CPU_UTILIZATION_PCT"]) * cpu_ratio <= 80
        and max(column["MAX_RAM_UTILIZATION_PCT"]) * ram_ratio <= 80
    ):
        return None, Decimal(0)
    compute = sum((Decimal(row["COMPUTE_CREDITS"] or 0) for row in runs), Decimal(0))
    saving = compute * (1 - Decimal(smaller_rate) / rate) * 30 / 31
    return smaller, saving.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def test_overprovisioned_jobs_get_the_next_smaller_class_and_its_saving(tmp_path: Path) -> None:
    store, part = generated_store(tmp_path, "overprovisioned")
    rows = usage_rows([part])
    section = generated_insight(store, "rightsizing").sections[0]
    found = rows_by(section, "project", "job", "executor", "resource_class")
    groups = grouped(job_runs(rows), "PROJECT_NAME", "JOB_NAME", "EXECUTOR", "RESOURCE_CLASS")
    assert set(found) == set(groups)
    suggested = 0
    for key, runs in groups.items():
        row = found[key]
        smaller, saving = expected_suggestion(runs)
        assert (row["suggested_class"], row["monthly_saving_credits"] or 0) == (smaller, saving)
        compute = sum((Decimal(r["COMPUTE_CREDITS"] or 0) for r in runs), Decimal(0))
        assert row["compute_credits"] == compute
        assert row["runs"] == len(runs)
        suggested += smaller is not None
        if smaller is not None:
            assert key[1] in ("build", "lint"), "only the idle jobs are over-provisioned"
    assert suggested >= 5, "the over-provisioned profile gives right-sizing something to find"
    savings = [row["monthly_saving_usd"] or 0 for row in section.rows]
    assert savings == sorted(savings, reverse=True), "biggest saving first"


def test_a_busy_organization_gets_no_suggestion(tmp_path: Path) -> None:
    store, _part = generated_store(tmp_path, "flat")
    section = generated_insight(store, "rightsizing").sections[0]
    assert section.rows
    assert [row for row in section.rows if row["suggested_class"]] == []
    reasons = {row["reason"] for row in section.rows}
    assert "sized right" in reasons
    assert reasons <= {
        "sized right",
        "no utilisation data",
        "no size known for this class",
        "smallest class of its kind",
    }


def test_utilisation_figures_of_the_sample_equal_the_export(build_insight: Build) -> None:
    section = build_insight("rightsizing").sections[0]
    found = rows_by(section, "project", "job", "executor", "resource_class")
    groups = grouped(job_runs(), "PROJECT_NAME", "JOB_NAME", "EXECUTOR", "RESOURCE_CLASS")
    assert set(found) == set(groups)
    for key, runs in groups.items():
        row = found[key]
        for name, pick in (("cpu", "CPU"), ("ram", "RAM")):
            medians = [
                float(r[f"MEDIAN_{pick}_UTILIZATION_PCT"])
                for r in runs
                if r[f"MEDIAN_{pick}_UTILIZATION_PCT"]
            ]
            peaks = [
                float(r[f"MAX_{pick}_UTILIZATION_PCT"])
                for r in runs
                if r[f"MAX_{pick}_UTILIZATION_PCT"]
            ]
            assert row[f"median_{name}_pct"] == (
                round(statistics.median(medians), 3) if medians else None
            )
            assert row[f"max_{name}_pct"] == (max(peaks) if peaks else None)
        compute = sum((Decimal(r["COMPUTE_CREDITS"] or 0) for r in runs), Decimal(0))
        assert (row["runs"], row["compute_credits"]) == (len(runs), compute)
        smaller, saving = expected_suggestion(runs)
        assert (row["suggested_class"], row["monthly_saving_credits"] or 0) == (smaller, saving)
        if all(r["MEDIAN_CPU_UTILIZATION_PCT"] is None for r in runs):
            assert row["reason"] == "no utilisation data"
