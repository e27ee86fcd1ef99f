"""`circlecost vtags list`, `circlecost budgets` and a report by a virtual tag, on the sample
store, in the suite's month (November 2026: the samples are October's, so this month is
empty and last month holds them)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from circlecost import chargeback
from circlecost.models import BudgetInputs
from circlecost.store import Store, TagRule

from .conftest import run

PAYMENTS = "costs.account IN ('api', 'billing')"


def test_a_report_groups_and_filters_by_a_virtual_tag_in_csv(sample_store: Path) -> None:
    Store(sample_store).create_virtual_tag("team", [TagRule("payments", PAYMENTS)], "shared")
    store = ["--store", str(sample_store)]

    by_team = run(*store, "report", "--period", "last_month", "--group-by", "vtag:team",
                  "--format", "csv")  # fmt: skip
    payments = run(*store, "report", "--period", "last_month", "--group-by", "account",
                   "--filter", "vtags.team = 'payments'", "--format", "json")  # fmt: skip
    listed = run(*store, "vtags", "list")

    lines = by_team.output.splitlines()
    assert lines[0].startswith("vtag:team,credits,amount_usd")
    assert {line.split(",")[0] for line in lines[1:]} == {"payments", "shared", "total"}
    rows = json.loads(payments.output)["rows"]
    assert {row["account"] for row in rows} == {"api", "billing"}
    payments_line = next(line for line in lines if line.startswith("payments,"))
    assert Decimal(payments_line.split(",")[2]) == Decimal(
        str(json.loads(payments.output)["total"]["amount_usd"])
    )
    assert listed.output.splitlines() == [
        "vtag:team",
        f"  1. payments: {PAYMENTS}",
        "  otherwise: shared",
    ]


def test_an_unknown_virtual_tag_is_one_error_line_with_the_known_ones(sample_store: Path) -> None:
    Store(sample_store).create_virtual_tag("team", [TagRule("payments", PAYMENTS)])

    result = run("--store", str(sample_store), "report", "--period", "last_month",
                 "--group-by", "vtag:owner")  # fmt: skip

    assert result.exit_code == 1
    assert "there is no virtual tag 'owner'" in result.output
    assert "vtag:team" in result.output


def test_budgets_lists_each_budget_with_its_figures(sample_store: Path) -> None:
    inputs = BudgetInputs.model_validate({"name": "platform", "amountUsd": "100"})
    Store(sample_store).put_budget(chargeback.as_budget(inputs, "b1"))

    table = run("--store", str(sample_store), "budgets")
    listed = json.loads(run("--store", str(sample_store), "budgets", "--format", "json").output)

    assert table.output.startswith(
        "platform: ok — $0.00 spent of $100.00 (2026-11-01 .. 2026-11-25)"
    )
    assert listed[0]["status"] == "ok"
    assert listed[0]["thresholds"] == [0.8, 1.0]
    assert listed[0]["period_end"] == "2026-11-30"
