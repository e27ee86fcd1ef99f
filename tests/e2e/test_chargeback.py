"""Chargeback through the reference stack and the real Pulumi CLI.

Virtual tags: `pulumi up` stores the rules and shows what they do to the imported costs; the
preview of a rule change shows the cost that moves between values, before anything changes; the
change re-tags without an import; each change is audited under its actor. Budgets: one below
the spend is over, the advisory policy says so in a preview, and its alert channel (a webhook
on loopback) hears of it once across refreshes; the webhook URL stays secret."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from circlecost import reports
from circlecost.store import Store
from circlecost_emulator import Emulator
from tests.e2e.stack_support import POLICY_PACK, ReferenceStack, reference_stack
from tests.e2e.test_resources import bot_token, entry
from tests.pulumi_support import export_state_without_secrets, state_files_text
from tests.webhooks import Receiver

pytestmark = pytest.mark.emulator(seed=21)


def team(payments: list[str]) -> list[dict[str, Any]]:
    quoted = ", ".join(f"'{project}'" for project in payments)
    return [
        {
            "key": "team",
            "rules": [{"value": "payments", "filter": f"costs.account IN ({quoted})"}],
            "defaultValue": "platform",
        }
    ]


def set_virtual_tags(stack: ReferenceStack, entries: list[dict[str, Any]]) -> None:
    stack.set("circlecost:virtualTags", json.dumps(entries))


def usd_by_project(store: Path) -> dict[str, Decimal]:
    """Every imported cost by project, from a report that knows nothing of virtual tags."""
    with Store(store).reader() as connection:
        span = connection.execute("SELECT min(usage_date), max(usage_date) FROM usage_daily")
        first, last = span.fetchone() or (None, None)
        report = reports.build_report(
            connection,
            reports.ReportRequest(reports.Period(first, last), group_by=("account",)),
            virtual={},
        )
    return {row["account"]: row["amount_usd"] for row in report.rows}


def this_month_usd(store: Path, exclude: tuple[str, ...]) -> Decimal:
    """November so far (the suite's month) without the projects `exclude` names."""
    with Store(store).reader() as connection:
        report = reports.build_report(
            connection,
            reports.ReportRequest(
                reports.Period(date(2026, 11, 1), date(2026, 11, 25)), group_by=("account",)
            ),
            virtual={},
        )
    return sum((r["amount_usd"] for r in report.rows if r["account"] not in exclude), Decimal(0))


def cents(amount: Decimal) -> float:
    return float(round(amount, 2))


def usage_fingerprint(store: Path) -> tuple[Any, ...]:
    with Store(store).reader() as connection:
        row = connection.execute("SELECT count(*), max(loaded_at) FROM usage").fetchone()
    assert row is not None
    return tuple(row)


def test_a_virtual_tag_splits_costs_and_a_rule_change_shows_the_cost_it_moves_in_preview(
    emulator: Emulator, tmp_path: Path
) -> None:
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[entry(emulator, 0)],
        tokens={"acme": bot_token(emulator, 0)},
    )
    set_virtual_tags(stack, team(["api", "billing"]))

    effect = stack.up().outputs["virtual_tags"].value["team"]

    projects = usd_by_project(stack.store)
    payments = projects["api"] + projects["billing"]
    assert effect["by_value"] == {
        "payments": cents(payments),
        "platform": cents(sum(projects.values(), Decimal(0)) - payments),
    }
    assert effect["moved_usd"] == 0
    before = usage_fingerprint(stack.store)

    set_virtual_tags(stack, team(["api", "billing", "docs"]))
    preview = stack.preview(policy_packs=[POLICY_PACK])

    moved = cents(projects["docs"])
    assert preview.change_summary.get(auto.OpType.UPDATE) == 1
    assert f"moved_usd: 0 => {moved}" in preview.stdout, "the preview shows the cost moved"
    with Store(stack.store).reader() as connection:
        (rules,) = connection.execute("SELECT rules FROM virtual_tags").fetchone() or ("",)
    assert "docs" not in rules, "a preview changes nothing"

    effect = stack.up().outputs["virtual_tags"].value["team"]

    assert effect["moved_usd"] == moved
    assert effect["moves"] == [{"from": "platform", "to": "payments", "amount_usd": moved}]
    assert effect["by_value"]["payments"] == cents(payments + projects["docs"])
    assert usage_fingerprint(stack.store) == before, "re-tagged without an import"
    changes = [
        (entry.actor, entry.action)
        for entry in Store(stack.store).list_audit(object_type="virtual_tag")
    ]
    assert changes == [("ana", "update"), ("ana", "create")]


def test_a_bad_rule_stops_the_preview_naming_the_entry_rule_and_field(
    emulator: Emulator, tmp_path: Path
) -> None:
    stack = reference_stack(tmp_path, emulator.base_url)
    bad = [{"key": "team", "rules": [{"value": "payments", "filter": "costs.acount = 'api'"}]}]
    set_virtual_tags(stack, bad)

    with pytest.raises(auto.CommandError) as failure:
        stack.preview()

    text = str(failure.value)
    assert "circlecost:virtualTags[0].rules[0].filter" in text
    assert "unknown field 'costs.acount'" in text


def test_a_budget_below_the_spend_is_over_the_policy_warns_and_one_webhook_arrives(
    emulator: Emulator, tmp_path: Path
) -> None:
    receiver = Receiver()
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[entry(emulator, 0)],
        tokens={"acme": bot_token(emulator, 0)},
    )
    stack.set("circlecost:finops-webhook", receiver.url, secret=True)
    stack.set("circlecost:alertChannels", json.dumps([{"name": "finops"}]))
    # The budget counts a virtual tag declared in the same change.
    set_virtual_tags(stack, team(["api", "billing"]))
    over = {
        "name": "platform-monthly",
        "amountUsd": 1,
        "alertChannels": ["finops"],
        "filter": "vtags.team = 'platform'",
    }
    stack.set("circlecost:budgets", json.dumps([over]))
    try:
        first = stack.up().outputs["budgets"].value["platform-monthly"]
        sent_by_up = len(receiver.bodies)
        stack.refresh()
        stack.refresh()
        preview = stack.preview(policy_packs=[POLICY_PACK])
    finally:
        receiver.close()

    assert first["status"] == "over"
    assert first["spent_usd"] == cents(this_month_usd(stack.store, exclude=("api", "billing")))
    assert sent_by_up == 0, "the channel was made before the budget that names it"
    assert len(receiver.bodies) == 1, "one crossing, one webhook, however many refreshes"
    assert "budget 'platform-monthly' reached 100%" in receiver.bodies[0]["text"]
    budget = resource_outputs(stack, "Budget", "budget-platform-monthly")
    assert budget["status"] == "over"
    assert budget["as_of"] == "2026-11-25"
    assert "circlecost-budget-status" in preview.stdout
    assert "budget 'platform-monthly' is over" in preview.stdout
    secret_part = receiver.url.rsplit("/", 1)[1]
    assert secret_part not in state_files_text(stack.project)
    assert secret_part.encode() not in stack.store.read_bytes()


def resource_outputs(stack: ReferenceStack, kind: str, name: str) -> dict[str, Any]:
    state = export_state_without_secrets(stack.project)
    resource = next(
        r
        for r in state["deployment"]["resources"]
        if r["type"] == f"pulumi-python:dynamic/circlecost:{kind}"
        and r["urn"].endswith(f"::{name}")
    )
    return resource["outputs"]  # type: ignore[no-any-return]
