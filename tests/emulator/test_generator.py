"""The seeded generator: deterministic, realistic, and priced like CircleCI."""

import math
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from circlecost.usage_columns import COLUMN_NAMES, CREDIT_SERVICES
from circlecost_emulator import (
    EXECUTOR_PROFILES,
    GeneratedRow,
    Organization,
    UsageGenerator,
    default_organizations,
)
from circlecost_emulator.dialect import iter_records, typed_row
from circlecost_emulator.generator import HEADER_LINE

from .helpers import credit

ORG = default_organizations(3)[0]
COMPONENTS = [column for column, _ in CREDIT_SERVICES]


def month_rows(generator: UsageGenerator, org: Organization, first: date) -> list[GeneratedRow]:
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    start = datetime.combine(first, time.min, UTC)
    return generator.rows(org, start, datetime.combine(last, time.max, UTC))


@pytest.fixture(scope="module")
def october() -> list[GeneratedRow]:
    return month_rows(UsageGenerator(3), ORG, date(2026, 10, 1))


def test_a_day_is_the_same_whatever_window_asks_for_it(october: list[GeneratedRow]) -> None:
    day = date(2026, 10, 14)
    alone = UsageGenerator(3).day_rows(ORG, day)
    in_month = [r for r in october if r.at.date() == day]
    assert [r.render() for r in alone] == [r.render() for r in in_month]
    assert alone


def test_another_seed_gives_other_rows() -> None:
    day = date(2026, 10, 14)
    first = [r.render() for r in UsageGenerator(3).day_rows(ORG, day)]
    second = [r.render() for r in UsageGenerator(4).day_rows(ORG, day)]
    assert first != second


def test_default_organizations_have_fixed_ids_per_seed() -> None:
    assert default_organizations(3) == default_organizations(3)
    assert [o.name for o in default_organizations(3)] == ["acme", "globex"]
    assert default_organizations(3)[0].id != default_organizations(4)[0].id
    assert default_organizations(3)[0].slug == "gh/acme"


def test_rows_fall_inside_a_window_that_ends_mid_day() -> None:
    start = datetime(2026, 10, 10, 6, 30, tzinfo=UTC)
    end = datetime(2026, 10, 12, 13, 15, tzinfo=UTC)
    rows = UsageGenerator(3).rows(ORG, start, end)
    assert rows
    for row in rows:
        assert start.replace(tzinfo=None) <= row.at <= end.replace(tzinfo=None)
        run_date = row.values["JOB_RUN_DATE"]
        if run_date is not None:
            assert isinstance(run_date, date)
            assert date(2026, 10, 10) <= run_date <= date(2026, 10, 12)


def test_a_month_has_a_few_hundred_rows_by_default(october: list[GeneratedRow]) -> None:
    assert 200 <= len(october) <= 800


def test_no_jobs_leaves_only_the_seat_rows() -> None:
    rows = month_rows(UsageGenerator(3, jobs_per_project_per_day=0), ORG, date(2026, 10, 1))
    assert rows
    assert all(r.values["JOB_ID"] is None for r in rows)
    assert all(r.values["USER_CREDITS"] == Decimal(25000) for r in rows)


def test_branches_cover_the_edge_cases(october: list[GeneratedRow]) -> None:
    branches = Counter(r.values["VCS_BRANCH"] for r in october)
    assert {"main", "feature,comma", "déploiement-été", None} <= set(branches)
    assert any(isinstance(b, str) and b.startswith("release/") for b in branches)


def test_executors_and_resource_classes_vary(october: list[GeneratedRow]) -> None:
    kinds = {(r.values["OPERATING_SYSTEM"], r.values["EXECUTOR"]) for r in october}
    assert {("linux", "docker"), ("linux", "machine"), ("macos", "machine")} <= kinds
    assert ("windows", "machine") in kinds
    classes = {r.values["RESOURCE_CLASS"] for r in october}
    assert any(isinstance(c, str) and c.startswith("arm.") for c in classes)


def test_compute_credits_follow_the_rate_of_the_resource_class(
    october: list[GeneratedRow],
) -> None:
    rates = {
        (p.executor, p.resource_class.format(org=ORG.name)): p.credits_per_minute
        for p in EXECUTOR_PROFILES
    }
    jobs = [r.values for r in october if r.values["JOB_ID"] is not None]
    for row in jobs:
        executor, resource_class = row["EXECUTOR"], row["RESOURCE_CLASS"]
        assert isinstance(executor, str)
        assert isinstance(resource_class, str)
        rate = rates[(executor, resource_class)]
        seconds, parallelism = row["JOB_RUN_SECONDS"], row["PARALLELISM"]
        assert isinstance(seconds, float)
        assert isinstance(parallelism, int)
        expected = math.ceil(seconds * rate * parallelism / 60)
        assert row["COMPUTE_CREDITS"] == Decimal(expected)
        assert row["DLC_CREDITS"] in (Decimal(0), Decimal(200))
        short = seconds < 15
        assert (row["MEDIAN_CPU_UTILIZATION_PCT"] is None) == short


def test_docker_medium_costs_ten_credits_a_minute() -> None:
    medium = next(
        p for p in EXECUTOR_PROFILES if (p.executor, p.resource_class) == ("docker", "medium")
    )
    macos = next(p for p in EXECUTOR_PROFILES if p.resource_class == "macos.m1.medium.gen1")
    windows = next(p for p in EXECUTOR_PROFILES if p.resource_class == "windows.medium")
    assert (medium.credits_per_minute, macos.credits_per_minute, windows.credits_per_minute) == (
        10,
        150,
        40,
    )


@pytest.mark.parametrize("month", [date(2026, m, 1) for m in range(1, 13)])
def test_every_month_has_a_seat_row_without_a_job(month: date) -> None:
    rows = month_rows(UsageGenerator(3), ORG, month)
    seat_rows = [r.values for r in rows if r.values["JOB_ID"] is None]
    assert seat_rows
    for row in seat_rows:
        assert row["JOB_RUN_DATE"] is None
        assert row["PIPELINE_CREATED_AT"] is not None
        assert row["USER_CREDITS"] == Decimal(25000)


def test_seat_credits_come_in_whole_seats_and_some_ride_on_job_rows() -> None:
    rows = [
        r.values for m in range(1, 7) for r in month_rows(UsageGenerator(3), ORG, date(2026, m, 1))
    ]
    seats = [r for r in rows if r["USER_CREDITS"]]
    assert all(r["USER_CREDITS"] == Decimal(25000) for r in seats)
    assert any(r["JOB_ID"] is not None for r in seats)


def test_total_credits_mostly_equal_the_parts_but_not_always() -> None:
    rows = [
        r.values for m in range(1, 7) for r in month_rows(UsageGenerator(3), ORG, date(2026, m, 1))
    ]
    mismatched = [r for r in rows if r["TOTAL_CREDITS"] != sum(credit(r, c) for c in COMPONENTS)]
    assert 0 < len(mismatched) < len(rows) / 50


def test_rendered_rows_use_both_escaping_styles_and_boolean_spellings(
    october: list[GeneratedRow],
) -> None:
    text = "".join(r.render() for r in october)
    assert "feature\\,comma" in text
    assert '"feature,comma"' in text
    assert '"integration ""slow"""' in text or '"fix/""quoted""-name"' in text
    assert ",Y," in text
    assert ",true," in text
    assert ",\\N," in text


def test_rendered_rows_parse_back_to_the_typed_rows(october: list[GeneratedRow]) -> None:
    text = HEADER_LINE + "".join(r.render() for r in october)
    records = list(iter_records(text))
    assert tuple(records[0][1]) == COLUMN_NAMES
    assert [typed_row(COLUMN_NAMES, f) for _, f in records[1:]] == [r.values for r in october]


UTILIZATION = (
    "MEDIAN_CPU_UTILIZATION_PCT",
    "MAX_CPU_UTILIZATION_PCT",
    "MEDIAN_RAM_UTILIZATION_PCT",
    "MAX_RAM_UTILIZATION_PCT",
)


@pytest.mark.parametrize("profile", ["overprovisioned", "flat"])
def test_a_utilisation_profile_changes_only_the_utilisation_columns(
    october: list[GeneratedRow], profile: str
) -> None:
    other = month_rows(UsageGenerator(3, utilization=profile), ORG, date(2026, 10, 1))
    assert len(other) == len(october)
    for mixed, changed in zip(october, other, strict=True):
        rest = [c for c in COLUMN_NAMES if c not in UTILIZATION]
        assert [mixed.values[c] for c in rest] == [changed.values[c] for c in rest]
        cpu, cpu_max, ram, ram_max = (changed.values[c] for c in UTILIZATION)
        if cpu is None:
            continue  # a job under 15 seconds has none
        assert isinstance(cpu, float)
        assert isinstance(cpu_max, float)
        assert isinstance(ram, float)
        assert isinstance(ram_max, float)
        assert cpu <= cpu_max
        assert ram <= ram_max
        idle = profile == "overprovisioned" and changed.values["JOB_NAME"] in ("build", "lint")
        low, high = (5.0, 25.0) if idle else (60.0, 95.0)
        assert all(low <= value <= high for value in (cpu, cpu_max, ram, ram_max))


def test_a_spike_multiplies_one_project_on_one_day() -> None:
    day, next_day = date(2026, 10, 14), date(2026, 10, 15)
    spiked_project = UsageGenerator(3).projects(ORG)[0].name
    spiking = UsageGenerator(3, spikes={(day, spiked_project): 12})

    def jobs(rows: list[GeneratedRow], project: str) -> int:
        return sum(1 for r in rows if r.values["PROJECT_NAME"] == project and r.values["JOB_ID"])

    assert jobs(spiking.day_rows(ORG, day), spiked_project) >= 12 * 3  # an average day's, × 12
    after = [row.render() for row in spiking.day_rows(ORG, next_day)]
    assert after == [row.render() for row in UsageGenerator(3).day_rows(ORG, next_day)]
    with pytest.raises(ValueError, match="factor"):
        UsageGenerator(3, spikes={(day, spiked_project): 0})
