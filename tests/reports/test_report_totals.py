"""Report totals over the sample export agree with expected.json and with sums made by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from circlecost import reports

from .conftest import BuildReport
from .samples import Item, credits_by

PRICE = Decimal("0.0006")

# group-by name -> (its key in expected.json, the item's value for it)
GROUPINGS: dict[str, tuple[str, Callable[[Item], Any]]] = {
    "service": ("credits_by_service", lambda item: item.service),
    "account": ("credits_by_project", lambda item: item.account),
    "tag:circleci:vcs_branch": ("credits_by_branch", lambda item: item.branch),
}

# VQL filter -> the same selection written in Python
FILTERS: dict[str, Callable[[Item], bool]] = {
    "costs.service = 'Compute'": lambda item: item.service == "Compute",
    "tags.name = 'circleci:vcs_branch' AND tags.value = 'main'": lambda item: item.branch == "main",
    "tags.name = 'circleci:vcs_branch' AND tags.value != 'main'": lambda item: (
        item.branch != "main"
    ),
    "tags.name = 'circleci:vcs_branch' AND tags.value LIKE 'feature%'": lambda item: (
        item.branch is not None and item.branch.startswith("feature")
    ),
    "costs.account IN ('api', 'web') AND costs.service != 'Users'": lambda item: (
        item.account in ("api", "web") and item.service != "Users"
    ),
    "costs.service NOT IN ('Compute', 'Users') OR costs.account = 'docs'": lambda item: (
        item.service not in ("Compute", "Users") or item.account == "docs"
    ),
    "costs.category = 'macos machine'": lambda item: item.category == "macos machine",
    "costs.resource = 'e2e, smoke'": lambda item: item.resource == "e2e, smoke",
    "costs.resource = 'integration \"slow\"'": lambda item: item.resource == 'integration "slow"',
}


def by_group(report: reports.Report, name: str) -> dict[Any, Decimal]:
    return {row[name]: row["credits"] for row in report.rows}


def test_totals_match_the_expected_figures_of_the_samples(
    build: BuildReport, expected: dict[str, Any]
) -> None:
    report = build()

    assert report.total["credits"] == expected["total_credits_from_components"]
    assert report.total["amount_usd"] == Decimal(str(expected["usd_at_0.0006"]))
    assert [row["credits"] for row in report.rows] == [report.total["credits"]]


@pytest.mark.parametrize("group_by", GROUPINGS)
def test_each_grouping_matches_expected_json_and_adds_up_to_the_total(
    build: BuildReport, expected: dict[str, Any], group_by: str
) -> None:
    report = build(group_by=(group_by,))

    wanted = {
        (None if key == "None" else key): Decimal(value)
        for key, value in expected[GROUPINGS[group_by][0]].items()
    }
    assert by_group(report, group_by) == wanted
    assert {row[group_by]: row["amount_usd"] for row in report.rows} == {
        key: value * PRICE for key, value in wanted.items()
    }
    assert sum(row["amount_usd"] for row in report.rows) == report.total["amount_usd"]


@pytest.mark.parametrize("group_by", GROUPINGS)
@pytest.mark.parametrize("text", FILTERS)
def test_filtered_groupings_match_sums_made_by_hand(
    build: BuildReport, group_by: str, text: str
) -> None:
    keep = FILTERS[text]
    wanted = credits_by(GROUPINGS[group_by][1], keep)
    assert wanted, "each filter selects something"

    report = build(group_by=(group_by,), filter=text)

    assert by_group(report, group_by) == wanted
    assert report.total["credits"] == sum(wanted.values())
    assert report.total["amount_usd"] == sum(wanted.values()) * PRICE


def test_a_filter_selects_a_strict_subset(build: BuildReport) -> None:
    everything = build().total["credits"]
    compute = build(filter="costs.service = 'Compute'").total["credits"]
    others = build(filter="costs.service != 'Compute'").total["credits"]

    assert 0 < compute < everything
    assert compute + others == everything


def test_two_dimensions_group_by_their_combinations(build: BuildReport) -> None:
    report = build(group_by=("account", "service"))

    wanted = credits_by(lambda item: (item.account, item.service))
    assert {(row["account"], row["service"]): row["credits"] for row in report.rows} == wanted


def test_costs_without_a_branch_form_their_own_group(build: BuildReport) -> None:
    report = build(group_by=("tag:circleci:vcs_branch",))

    unbranched = [row for row in report.rows if row["tag:circleci:vcs_branch"] is None]
    assert [row["credits"] for row in unbranched] == [Decimal(66246)]
    assert reports.group_label(None) == "(none)"


def test_rows_are_ordered_costliest_first(build: BuildReport) -> None:
    amounts = [row["amount_usd"] for row in build(group_by=("service",)).rows]

    assert amounts == sorted(amounts, reverse=True)


def test_a_period_without_costs_has_zero_totals(build: BuildReport) -> None:
    report = build(reports.Period(date(2025, 1, 1), date(2025, 1, 31)))

    assert report.rows == []
    assert report.total["credits"] == 0
    assert report.total["amount_usd"] == 0
    assert report.total["change_pct"] is None
