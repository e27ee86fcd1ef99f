"""The `circlecost` command: every subcommand against a real store and the emulator."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from circlecost import chargeback
from circlecost.models import BudgetInputs
from circlecost.store import Store
from circlecost_emulator import Emulator
from tests.support import EXPECTED

from .conftest import run


def test_report_json_matches_the_sample_totals(sample_store: Path) -> None:
    result = run(
        "--store",
        str(sample_store),
        "report",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--group-by",
        "service",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    by_service = {row["service"]: row["credits"] for row in report["rows"]}
    assert by_service == EXPECTED["credits_by_service"]
    assert Decimal(str(report["total"]["amount_usd"])) == Decimal(str(EXPECTED["usd_at_0.0006"]))


def test_report_csv_table_and_html_outputs(sample_store: Path, tmp_path: Path) -> None:
    base = ["--store", str(sample_store), "report", "--from", "2026-10-01", "--to", "2026-10-31"]
    csv_result = run(*base, "--group-by", "account", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(csv_result.stdout)))
    assert {row["account"] for row in rows} >= set(EXPECTED["credits_by_project"])
    table = run(*base, "--group-by", "tag:circleci:vcs_branch")
    assert table.exit_code == 0
    assert "feature,comma" in table.stdout
    assert "$476.09" in table.stdout
    html_file = tmp_path / "r.html"
    html = run(
        *base,
        "--group-by",
        "service",
        "--bin",
        "week",
        "--format",
        "html",
        "--output",
        str(html_file),
    )
    assert html.exit_code == 0
    assert "<svg" in html_file.read_text()


def test_report_filter_errors_point_at_the_column_and_exit_1(sample_store: Path) -> None:
    result = run(
        "--store",
        str(sample_store),
        "report",
        "--period",
        "last_month",
        "--filter",
        "costs.service = 'Compute",
    )
    assert result.exit_code == 1
    assert "column 17" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_usage_exits_2(sample_store: Path) -> None:
    assert run("--store", str(sample_store), "report", "--from", "yesterday").exit_code == 2
    assert run("--store", str(sample_store), "report", "--bin", "fortnight").exit_code == 2


def test_export_focus_writes_csv_and_parquet(sample_store: Path, tmp_path: Path) -> None:
    for name in ("focus.csv", "focus.parquet"):
        result = run(
            "--store",
            str(sample_store),
            "export",
            "--format",
            "focus",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
            "--output",
            str(tmp_path / name),
        )
        assert result.exit_code == 0, result.output
        assert f"wrote {EXPECTED['cost_line_items']} FOCUS rows" in result.stdout


def test_access_grant_list_revoke_and_audit(sample_store: Path) -> None:
    store = ["--store", str(sample_store)]
    assert (
        run(*store, "--actor", "ana", "access", "grant", "bob", "Integration Owner").exit_code == 0
    )
    listing = run(*store, "access", "list").stdout
    assert "bob\tIntegration Owner" in listing
    denied = run(*store, "--actor", "bob", "access", "grant", "eve", "Viewer")
    assert denied.exit_code == 1
    assert "needs Organization Owner" in denied.stderr
    assert run(*store, "--actor", "ana", "access", "revoke", "bob").exit_code == 0
    audit = run(*store, "audit").stdout
    assert "grant principal bob" in audit
    assert "revoke principal bob" in audit


def test_status_and_integrations_list(sample_store: Path) -> None:
    status = run("--store", str(sample_store), "status")
    assert "initech" in status.stdout
    listing = run("--store", str(sample_store), "integrations", "list", "--format", "json")
    assert json.loads(listing.stdout)[0]["organization_name"] == "initech"


def test_integrations_add_sync_and_remove_against_the_emulator(
    emulator: Emulator, tmp_path: Path
) -> None:
    org = emulator.organizations[0]
    token = emulator.org_admin_tokens[org["id"]]
    env = {
        "CIRCLECI_TOKEN": token,
        "CIRCLECI_URL": emulator.base_url,
        "CIRCLECOST_ALLOW_LOOPBACK_DOWNLOADS": "1",
        "CIRCLECOST_FIRST_POLL_SECONDS": "0",
        "CIRCLECOST_POLL_SECONDS": "0.1",
        "CIRCLECOST_ACTOR": "ana",
    }
    store = ["--store", str(tmp_path / "costs.duckdb")]
    added = run(
        *store,
        "integrations",
        "add",
        "--org",
        org["id"],
        "--backfill-months",
        "0",
        "--wait",
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert "Stable" in added.stdout
    tiny = BudgetInputs.model_validate({"name": "platform", "amountUsd": "0.01"})
    Store(tmp_path / "costs.duckdb").put_budget(chargeback.as_budget(tiny, "b"))
    synced = run(*store, "sync", "--wait", env=env)
    assert synced.exit_code == 0, synced.output
    assert "Stable" in synced.stdout
    assert "budget platform: over — $" in synced.stdout, "sync ends with the budgets' figures"
    integration_id = added.stdout.split()[0]
    removed = run(*store, "integrations", "remove", integration_id, env=env)
    assert removed.exit_code == 0
    assert "no integrations" in run(*store, "status").stdout
    assert token not in added.output + synced.output + removed.output


def test_integrations_add_with_a_bad_org_id_names_the_field(tmp_path: Path) -> None:
    result = run(
        "--store",
        str(tmp_path / "c.duckdb"),
        "integrations",
        "add",
        "--org",
        "acme",
        env={"CIRCLECI_TOKEN": "CCIPAT_x", "CIRCLECOST_ACTOR": "ana"},
    )
    assert result.exit_code == 1
    assert "organization_id: 'acme' is not a UUID" in result.stderr


def test_every_command_has_help_with_an_example() -> None:
    for command in (
        ["report"],
        ["export"],
        ["sync"],
        ["access", "grant"],
        ["audit"],
        ["emulator"],
        ["integrations", "add"],
        ["integrations", "remove"],
        ["vtags", "list"],
        ["budgets"],
        ["anomalies"],
    ):
        result = run(*command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.stdout, command


def test_the_console_script_runs_and_reports_errors_in_one_line(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "circlecost"
    result = subprocess.run(
        [str(script), "--store", str(tmp_path / "none.duckdb"), "report", "--period", "last_month"],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: there is no store at")
    assert "hint:" in result.stderr
