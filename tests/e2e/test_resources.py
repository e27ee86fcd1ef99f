"""Integration, Workspace and WorkspaceBinding through `pulumi up/refresh/destroy` of the
reference stack, against the emulator on loopback and a real DuckDB store."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pulumi import automation as auto

from circlecost.settings import Settings
from circlecost.store import Store
from circlecost.usage_columns import CREDIT_SERVICES
from circlecost_emulator import Emulator
from tests.clock import child_env
from tests.e2e.stack_support import ReferenceStack, reference_stack
from tests.emulator.helpers import credit
from tests.pulumi_support import export_state_without_secrets, state_files_text

pytestmark = pytest.mark.emulator(seed=21)

CREDITS = tuple(column for column, _service in CREDIT_SERVICES)  # the 8 components


def entry(emulator: Emulator, index: int, **extra: object) -> dict[str, object]:
    org = emulator.organizations[index]
    return {
        "name": org["name"],
        "organization_id": org["id"],
        "backfill_months": 1,
        "token_expires_on": "2027-01-15",
        **extra,
    }


def bot_token(emulator: Emulator, index: int) -> str:
    return emulator.org_admin_tokens[emulator.organizations[index]["id"]]


def rows_in_store(store: Path, organization_name: str | None = None) -> tuple[int, Decimal]:
    with Store(store).reader() as con:
        row = con.execute(
            "SELECT count(*), sum(" + " + ".join(f"coalesce({c}, 0)" for c in CREDITS) + ") "
            "FROM usage WHERE ? IS NULL OR ORGANIZATION_NAME = ?",
            [organization_name, organization_name],
        ).fetchone()
    assert row is not None
    count, credits = row
    return int(count), Decimal(credits or 0)


def rows_served(emulator: Emulator, store: Path, organization_name: str) -> tuple[int, Decimal]:
    s = Store(store)
    record = next(r for r in s.list_integrations() if r.organization_name == organization_name)
    rows, credits = 0, Decimal(0)
    for planned in s.list_windows(record.id):
        for row in emulator.expected_rows(
            record.organization_id, planned.window.start, planned.window.end
        ):
            rows += 1
            credits += sum((credit(row, c) for c in CREDITS), Decimal(0))
    return rows, credits


def integration_outputs(stack: ReferenceStack, name: str) -> dict:  # type: ignore[type-arg]
    state = export_state_without_secrets(stack.project)
    resource = next(
        r
        for r in state["deployment"]["resources"]
        if r["type"] == "pulumi-python:dynamic/circlecost:Integration"
        and r["urn"].endswith(f"::{name}")
    )
    return resource["outputs"]  # type: ignore[no-any-return]


def test_up_creates_a_stable_integration_and_keeps_the_token_secret(
    emulator: Emulator, tmp_path: Path
) -> None:
    token = bot_token(emulator, 0)
    stack = reference_stack(
        tmp_path, emulator.base_url, integrations=[entry(emulator, 0)], tokens={"acme": token}
    )
    result = stack.up()
    acme = result.outputs["integrations"].value["acme"]
    assert acme["status"] == "Stable"
    assert acme["organization"] == "acme"
    assert rows_in_store(stack.store) == rows_served(emulator, stack.store, "acme")
    outputs = integration_outputs(stack, "acme")
    assert (
        outputs["token"]["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    )
    assert outputs["token_fingerprint"].startswith("sha256:")
    for text in (
        state_files_text(stack.project),
        stack.text(),
        json.dumps(result.outputs, default=str),
    ):
        assert token not in text
    assert token.encode() not in stack.store.read_bytes()


def test_binding_waits_for_stable_and_workspace_reports_show_only_bound_costs(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.faults.set(null_urls_polls=1000)  # CircleCI keeps preparing the export
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[entry(emulator, 0), entry(emulator, 1)],
        workspaces=[{"name": "platform", "integrations": ["acme"]}],
        tokens={"acme": bot_token(emulator, 0), "globex": bot_token(emulator, 1)},
    )
    stack.set("circlecost:createTimeoutSeconds", "1")
    stack.set("circlecost:bindingTimeoutSeconds", "1")
    with pytest.raises(auto.CommandError) as failure:
        stack.up()
    assert "is Importing, not Stable" in str(failure.value)
    assert "run `pulumi up` again later" in str(failure.value)
    emulator.faults.clear()
    stack.set("circlecost:createTimeoutSeconds", "60")
    stack.up()  # the unfinished import makes the Integration's diff report an update
    from circlecost import reports, service
    from circlecost.store import Store as S

    settings = Settings(store_location=stack.store)
    bound = service.workspace_integration_ids(settings, "platform")
    acme = next(r for r in S(stack.store).list_integrations() if r.organization_name == "acme")
    assert bound == [acme.id]
    with S(stack.store).reader() as con:
        span = con.execute("SELECT min(date), max(date) FROM costs").fetchone()
        assert span is not None
        start, end = span
        period = reports.Period(start, end)
        workspace = reports.build_report(
            con, reports.ReportRequest(period=period, integration_ids=tuple(bound))
        )
        acme_row = con.execute(
            "SELECT sum(amount_usd) FROM costs "
            "WHERE billing_account = 'acme' AND date BETWEEN ? AND ?",
            [start, end],
        ).fetchone()
        assert acme_row is not None
        (acme_usd,) = acme_row
    assert Decimal(str(workspace.total["amount_usd"])) == pytest.approx(acme_usd)


def test_price_change_reprices_and_token_rotation_revalidates(
    emulator: Emulator, tmp_path: Path
) -> None:
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[entry(emulator, 0)],
        tokens={"acme": bot_token(emulator, 0)},
    )
    first = stack.up().outputs["integrations"].value["acme"]
    rotated_before = integration_outputs(stack, "acme")["token_rotated_at"]
    stack.set("circlecost:integrations[0].price_per_credit", "0.0003")
    second = stack.up().outputs["integrations"].value["acme"]
    assert Decimal(str(second["total_cost_usd"])) == pytest.approx(
        Decimal(str(first["total_cost_usd"])) / 2, abs=Decimal("0.01")
    )

    stack.set("circlecost:acme-token", emulator.tokens["admin"], secret=True)
    stack.up()
    rotated_after = integration_outputs(stack, "acme")["token_rotated_at"]
    assert rotated_after > rotated_before

    rows = rows_in_store(stack.store)
    stack.set("circlecost:acme-token", emulator.tokens["expired"], secret=True)
    with pytest.raises(auto.CommandError) as failure:
        stack.up()
    assert "token: CircleCI rejected the token (401)" in str(failure.value)
    assert rows_in_store(stack.store) == rows
    assert integration_outputs(stack, "acme")["token_rotated_at"] == rotated_after


def test_changing_the_organization_replaces_and_purges_the_old_costs(
    emulator: Emulator, tmp_path: Path
) -> None:
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[entry(emulator, 0)],
        tokens={"acme": bot_token(emulator, 0)},
    )
    stack.up()
    assert rows_in_store(stack.store, "acme")[0] > 0
    stack.set("circlecost:integrations[0].organization_id", emulator.organizations[1]["id"])
    stack.set("circlecost:acme-token", bot_token(emulator, 1), secret=True)
    result = stack.up()
    assert result.summary is not None
    assert result.summary.resource_changes is not None
    assert result.summary.resource_changes.get(auto.OpType.REPLACE) == 1
    assert rows_in_store(stack.store, "acme")[0] == 0
    assert rows_in_store(stack.store, "globex") == rows_served(emulator, stack.store, "globex")


def test_refresh_imports_the_new_day_and_an_expired_token_turns_status_to_error(
    emulator: Emulator, tmp_path: Path
) -> None:
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[entry(emulator, 0)],
        tokens={"acme": bot_token(emulator, 0)},
    )
    stack.up()
    before = rows_in_store(stack.store)[0]
    emulator.clock.advance(86_400)
    stack.project.env.update(child_env(later=timedelta(days=1)))
    stack.stack.workspace.env_vars = {**stack.stack.workspace.env_vars, **stack.project.env}
    stack.refresh()
    assert rows_in_store(stack.store) == rows_served(emulator, stack.store, "acme")
    assert rows_in_store(stack.store)[0] > before

    stack.project.env.update(child_env(later=timedelta(days=2)))
    stack.stack.workspace.env_vars = {**stack.stack.workspace.env_vars, **stack.project.env}
    emulator.revoke_token(bot_token(emulator, 0))  # the token expired in CircleCI
    stack.refresh()
    outputs = integration_outputs(stack, "acme")
    assert outputs["status"] == "Error"
    assert "401" in outputs["status_detail"]


def test_destroy_purges_the_integration_and_keeps_other_integrations(
    emulator: Emulator, tmp_path: Path
) -> None:
    shared_store = tmp_path / "shared" / "costs.duckdb"
    other = reference_stack(
        tmp_path / "other",
        emulator.base_url,
        integrations=[entry(emulator, 1)],
        tokens={"globex": bot_token(emulator, 1)},
        store=shared_store,
    )
    other.up()
    globex_rows = rows_in_store(shared_store, "globex")
    stack = reference_stack(
        tmp_path / "main",
        emulator.base_url,
        integrations=[entry(emulator, 0)],
        tokens={"acme": bot_token(emulator, 0)},
        store=shared_store,
    )
    stack.up()
    assert rows_in_store(shared_store, "acme")[0] > 0
    stack.destroy()
    assert rows_in_store(shared_store, "acme") == (0, Decimal(0))
    assert rows_in_store(shared_store, "globex") == globex_rows
