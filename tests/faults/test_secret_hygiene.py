"""A recognisable token goes through every CLI command and service operation, the failing ones
included, with DEBUG logs on, and through one real `pulumi up` of the reference stack. Then
every place it could leak to is scanned: logs, error texts and tracebacks, the store files,
reports, FOCUS exports, the audit log, Pulumi's exported state and its output. It is in none."""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from circlecost import service
from circlecost.cli import main
from circlecost.errors import CirclecostError
from circlecost.models import WorkspaceInputs
from circlecost_emulator import Emulator, default_organizations
from tests.e2e.stack_support import reference_stack
from tests.faults.support import (
    SCOREBOARD,
    cli_env,
    integration_inputs,
    run_cli,
    store_file,
)
from tests.pulumi_support import export_state_without_secrets, state_files_text
from tests.support import emulator_settings

pytestmark = pytest.mark.e2e  # it also drives `pulumi up`

SEED = 31
MARKER = "SECRETHYGIENE"


@dataclass
class Scan:
    """Every place looked at, and those where the token (or a piece of it) turned up."""

    secret: str
    places: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    @property
    def needles(self) -> tuple[str, ...]:
        return (self.secret, self.secret.rsplit("_", 1)[-1], MARKER)

    def text(self, place: str, text: str) -> None:
        self.places.append(place)
        if any(needle in text for needle in self.needles):
            self.leaks.append(place)

    def data(self, place: str, data: bytes) -> None:
        self.places.append(place)
        if any(needle.encode() in data for needle in self.needles):
            self.leaks.append(place)

    def files(self, place: str, folder: Path) -> None:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.data(f"{place}: {path.relative_to(folder)}", path.read_bytes())

    def error(self, place: str, error: BaseException) -> None:
        self.text(f"{place} (message)", f"{error}\n{error!r}")
        self.text(f"{place} (traceback)", "".join(traceback.format_exception(error)))


@pytest.fixture
def secret_emulator() -> Iterator[tuple[Emulator, str, str]]:
    org_id = default_organizations(SEED)[0].id
    token = f"CCIPAT_{MARKER}_{secrets.token_hex(20)}"
    with Emulator(seed=SEED, quota_per_hour=None, org_admin_tokens={org_id: token}) as running:
        yield running, org_id, token


def test_the_token_never_reaches_logs_errors_files_reports_exports_audit_or_pulumi_state(
    secret_emulator: tuple[Emulator, str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator, org_id, token = secret_emulator
    other_org = emulator.organizations[1]["id"]
    scan = Scan(token)
    caplog.set_level(logging.DEBUG)

    # --- one real `pulumi up` of the reference stack -----------------------------------------
    stack = reference_stack(
        tmp_path / "pulumi",
        emulator.base_url,
        integrations=[
            {
                "name": "acme",
                "organization_id": org_id,
                "backfill_months": 1,
                "token_expires_on": "2027-01-15",
            }
        ],
        tokens={"acme": token},
    )
    result = stack.up()
    assert result.outputs["integrations"].value["acme"]["status"] == "Stable"
    scan.text("pulumi up output", stack.text())
    scan.text("pulumi stack outputs", json.dumps(result.outputs, default=str))
    scan.text("pulumi stack export", json.dumps(export_state_without_secrets(stack.project)))
    scan.text("pulumi state backend (secrets encrypted)", state_files_text(stack.project))
    scan.files("pulumi project", stack.project.work_dir)
    scan.files("pulumi stack's store", stack.store.parent)

    # --- every service operation, with faults on the way -------------------------------------
    settings = emulator_settings(
        emulator,
        tmp_path / "service" / "costs.duckdb",
        binding_timeout=timedelta(seconds=5),
        lock_timeout=5.0,
    )
    inputs = integration_inputs(org_id, token)
    emulator.faults.set(server_errors=1, null_urls_polls=1, expire_links_now=1, non_gzip_part=1)
    integration_id, outputs = service.create_integration(settings, inputs)
    scan.text("create outputs", json.dumps(outputs))
    repriced = integration_inputs(org_id, token, price_per_credit="0.0005", description="ci")
    scan.text(
        "update outputs",
        json.dumps(service.update_integration(settings, integration_id, inputs, repriced)),
    )
    tomorrow = replace(settings, clock=lambda: emulator.clock.now() + timedelta(days=1))
    scan.text("read outputs", json.dumps(service.read_integration(tomorrow, integration_id, token)))
    workspace_id = service.create_workspace(settings, WorkspaceInputs(name="platform"))
    service.create_binding(settings, workspace_id, integration_id)
    service.workspace_integration_ids(settings, "platform")
    service.grant(settings, "bob", "Editor")
    emulator.faults.set(truncate_gzip=1, rate_limit_storm=1, storm_retry_after=0)
    scan.text("sync outputs (faults)", json.dumps(service.sync_integrations(settings, token)))
    emulator.faults.set(wrong_columns=1)
    scan.text("sync outputs (bad part)", json.dumps(service.sync_integrations(settings, token)))
    service.revoke(settings, "bob")

    failures: list[tuple[str, Callable[[], Any]]] = [
        ("create twice", lambda: service.create_integration(settings, inputs)),
        (
            "shared token",
            lambda: service.create_integration(settings, integration_inputs(other_org, token)),
        ),
        (
            "update to an invalid token",
            lambda: service.update_integration(
                settings,
                integration_id,
                repriced,
                integration_inputs(org_id, emulator.tokens["expired"]),
            ),
        ),
        (
            "unreachable CircleCI",
            lambda: service.create_integration(
                replace(settings, circleci_url="http://127.0.0.1:9/api/v2"),
                integration_inputs(other_org, token),
            ),
        ),
        (
            "viewer creates",
            lambda: service.create_integration(replace(settings, actor="eve"), inputs),
        ),
    ]
    for place, attempt in failures:
        with pytest.raises(CirclecostError) as failure:
            attempt()
        scan.error(place, failure.value)

    # --- every CLI command: imports in subprocesses with --debug, reads in this process ------
    cli_store = tmp_path / "cli" / "costs.duckdb"
    env = cli_env(emulator, cli_store, token)
    outputs_of: list[tuple[str, str]] = []

    def cli(*args: str, **extra: str) -> str:
        completed = run_cli("--debug", *args, env={**env, **extra})
        outputs_of.append((f"circlecost {' '.join(args)}", completed.stdout + completed.stderr))
        return completed.stdout

    def in_process(*args: str) -> str:
        outcome = CliRunner().invoke(main, ["--store", str(cli_store), *args], env=env)
        outputs_of.append((f"circlecost {' '.join(args)}", outcome.output))
        if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
            scan.error(f"circlecost {' '.join(args)}", outcome.exception)
        return outcome.stdout

    added = cli("integrations", "add", "--org", org_id, "--backfill-months", "1", "--wait")
    cli_integration = added.split()[0]
    emulator.faults.set(server_errors=2, truncate_gzip=1)
    cli("sync", "--wait")
    period = ["--from", "2025-12-01", "--to", emulator.clock.now().date().isoformat()]
    reports = tmp_path / "reports"
    reports.mkdir()
    in_process("integrations", "list")
    in_process("integrations", "list", "--format", "json")
    in_process("status")
    in_process("report", *period, "--group-by", "service,tag:circleci:vcs_branch")
    for fmt in ("json", "csv", "html"):
        in_process("report", *period, "--format", fmt, "--output", str(reports / f"r.{fmt}"))
    for name in ("focus.csv", "focus.parquet"):
        in_process("export", *period, "--output", str(reports / name))
    in_process("access", "grant", "bob", "Viewer")
    in_process("access", "list")
    in_process("access", "revoke", "bob")
    in_process("audit")
    in_process("audit", "--format", "json")
    cli("integrations", "add", "--org", org_id, "--wait")  # fails: the org has one
    cli("integrations", "add", "--org", other_org, CIRCLECI_URL="http://127.0.0.1:9/api/v2")
    cli("report", "--filter", "costs.service = 'Compute", *period)

    # --- the token is revoked: 401 everywhere ------------------------------------------------
    emulator.revoke_token(token)
    cli("sync", "--wait")
    cli("integrations", "add", "--org", other_org, "--wait")
    scan.text("sync outputs (401)", json.dumps(service.sync_integrations(settings, token)))
    with pytest.raises(CirclecostError) as rejected:
        service.create_integration(settings, integration_inputs(other_org, token))
    scan.error("create with a revoked token", rejected.value)
    audit = settings.store().list_audit(limit=1000)
    service.delete_integration(settings, integration_id)
    in_process("integrations", "remove", cli_integration)

    # --- scan everything ---------------------------------------------------------------------
    for place, text in outputs_of:
        scan.text(place, text)
    scan.text("audit log (service store)", json.dumps([e.__dict__ for e in audit], default=str))
    records = caplog.records
    scan.text(
        f"DEBUG log messages ({len(records)} records)",
        "\n".join(record.getMessage() + (record.exc_text or "") for record in records),
    )
    scan.text("DEBUG log as formatted", caplog.text)
    scan.files("service store", store_file(settings).parent)
    scan.files("CLI store", cli_store.parent)
    scan.files("reports and FOCUS exports", reports)

    SCOREBOARD.secret_places += len(scan.places)
    SCOREBOARD.secret_hits += len(scan.leaks)
    assert scan.leaks == []
    assert len(scan.places) > 50
    assert {"r.json", "r.csv", "r.html", "focus.csv", "focus.parquet"} <= {
        p.name for p in reports.iterdir()
    }
    assert any(record.levelno == logging.DEBUG for record in records)
    assert any("DEBUG:circlecost.circleci" in text for _, text in outputs_of)
    assert any("Traceback" in text for _, text in outputs_of)  # --debug showed its tracebacks
