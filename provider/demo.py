"""`make demo`: the reference stack's real `pulumi up` against the bundled CircleCI emulator.

Starts the emulator on a free loopback port (seed 7: two organizations, a month and more of
usage), copies the reference stack into .demo/project (so the committed Pulumi.demo.yaml stays
clean), sets the emulator's URL and one dedicated token per organization as secret config, runs
`pulumi preview` then `pulumi up`, both with the policy pack, through the real CLI, prints a cost
report and writes an HTML report. Everything it leaves is under .demo/ (`make demo-clean`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from circlecost.gitops import preview_then_up
from circlecost.settings import read_sources
from circlecost.toolchain import policy_pack, require_pulumi_root
from circlecost_emulator import Emulator

# The reference stack to run: `__main__.py`, `Pulumi.yaml` and `Pulumi.demo.yaml` of this folder
# (a circlecost checkout, where `make demo` runs), or of CIRCLECOST_DEMO_PROJECT.
REPO = Path(os.environ.get("CIRCLECOST_DEMO_PROJECT") or Path.cwd()).resolve()
DEMO = Path(os.environ.get("CIRCLECOST_DEMO_DIR") or REPO / ".demo").resolve()
VENV = Path(sys.prefix)
SEED = 7
STACK = "demo"
PASSPHRASE = "circlecost-demo"  # protects only the demo's emulator tokens


def demo_token(org_name: str) -> str:
    """Fixed per organization, so a second `make demo` sees no token change."""
    digest = hashlib.sha256(f"circlecost-demo:{SEED}:{org_name}".encode()).hexdigest()
    return f"CCIPAT_demo{org_name}_{digest[:40]}"


def prepare_project() -> Path:
    missing = [
        name
        for name in ("__main__.py", "Pulumi.yaml", f"Pulumi.{STACK}.yaml")
        if not (REPO / name).exists()
    ]
    if missing:
        raise SystemExit(
            f"error: {REPO} has no {', '.join(missing)}: run the demo in a circlecost checkout, "
            "or set CIRCLECOST_DEMO_PROJECT to a folder with the reference stack"
        )
    project = DEMO / "project"
    project.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "__main__.py", project / "__main__.py")
    (project / "Pulumi.yaml").write_text(
        (REPO / "Pulumi.yaml").read_text().replace("virtualenv: .venv", f"virtualenv: {VENV}")
    )
    stack_file = project / f"Pulumi.{STACK}.yaml"
    if not stack_file.exists():  # later runs keep the encryption salt and secrets
        shutil.copy2(REPO / f"Pulumi.{STACK}.yaml", stack_file)
    return project


def environment(base_url: str) -> dict[str, str]:
    home = DEMO / "pulumi-home"
    state = DEMO / "pulumi-state"
    home.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    return {
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_PYTHON_CMD": python,
        "CIRCLECOST_PYTHON": python,
        # The emulator finishes an export in seconds; poll it accordingly.
        "CIRCLECOST_FIRST_POLL_SECONDS": "1",
        "CIRCLECOST_POLL_SECONDS": "1",
        "CIRCLECOST_RETRY_SECONDS": "1",
        "PATH": os.pathsep.join(
            [
                str(require_pulumi_root() / "bin"),
                str(Path(sys.executable).parent),
                os.environ.get("PATH", ""),
            ]
        ),
    }


def run_up(emulator: Emulator, quiet: bool = False) -> dict[str, object]:
    from pulumi import automation as auto

    project = prepare_project()
    env = environment(emulator.base_url)
    options = auto.LocalWorkspaceOptions(
        work_dir=str(project),
        pulumi_command=auto.PulumiCommand(root=str(require_pulumi_root())),
        env_vars=env,
        pulumi_home=env["PULUMI_HOME"],
    )
    stack = auto.create_or_select_stack(STACK, work_dir=str(project), opts=options)
    stack.set_config("circlecost:circleciUrl", auto.ConfigValue(emulator.base_url))
    stack.set_config("circlecost:store", auto.ConfigValue(str(DEMO / "costs.duckdb")))
    expires = (emulator.clock.now().date() + timedelta(days=60)).isoformat()
    for org in emulator.organizations:
        stack.set_config(
            f"circlecost:{org['name']}-token",
            auto.ConfigValue(demo_token(org["name"]), secret=True),
        )
    # The integrations as the committed Pulumi.demo.yaml has them (a stack file kept from an
    # earlier demo may hold older spellings), with tokens that expire within the policy's limit.
    committed = yaml.safe_load((REPO / f"Pulumi.{STACK}.yaml").read_text())["config"]
    integrations = [
        {**entry, "tokenExpiresOn": expires} for entry in committed["circlecost:integrations"]
    ]
    stack.set_config("circlecost:integrations", auto.ConfigValue(json.dumps(integrations)))
    for key in ("workspaces", "virtualTags", "budgets"):
        entries = committed[f"circlecost:{key}"]
        stack.set_config(f"circlecost:{key}", auto.ConfigValue(json.dumps(entries)))
    outputs = preview_then_up(
        stack,
        policy_pack(),
        None if quiet else lambda line: print(line, end="" if line.endswith("\n") else "\n"),
    )
    return {name: output.value for name, output in outputs.items()}


def print_reports(store_location: Path) -> Path:
    from circlecost import render, reports
    from circlecost.store import Store

    store = Store(store_location)
    summaries = [store.integration_summary(record.id) for record in store.list_integrations()]
    start = min(s["imported_from"] for s in summaries if s["imported_from"])
    end = max(s["imported_through"] for s in summaries if s["imported_through"])
    period = reports.Period(start, end)
    html_path = DEMO / "report.html"
    with store.reader() as connection:
        for dimension in ("service", "billing_account", "vtag:team"):
            report = reports.build_report(
                connection, reports.ReportRequest(period=period, group_by=(dimension,))
            )
            render.print_report(report)
        detailed = reports.build_report(
            connection,
            reports.ReportRequest(
                period=period, group_by=("service", "billing_account"), bin="week"
            ),
        )
    html_path.write_text(render.as_html(detailed), encoding="utf-8")
    return html_path


def run() -> int:
    started = time.monotonic()
    DEMO.mkdir(exist_ok=True)
    tokens = {org.name: demo_token(org.name) for org in _organizations()}
    with Emulator(
        seed=SEED, job_delay=2.0, org_admin_tokens={o.id: tokens[o.name] for o in _organizations()}
    ) as emulator:
        # The emulator keeps circlecost's clock (CIRCLECOST_CLOCK_OFFSET_SECONDS moves it, as it
        # does the provider's and the policy pack's), so the demo can run on any day.
        emulator.clock.set(read_sources().clock()())
        print(
            f"circlecost demo: CircleCI emulator at {emulator.base_url} (seed {SEED})", flush=True
        )
        outputs = run_up(emulator)
    print("\ncirclecost demo: integrations")
    for name, details in dict(outputs.get("integrations") or {}).items():  # type: ignore[call-overload]
        print(f"  {name}: {details['organization']} {details['status']} — {details['detail']}")
    html_path = print_reports(DEMO / "costs.duckdb")
    print("\ncirclecost demo: budgets (this month so far)")
    for name, figures in dict(outputs.get("budgets") or {}).items():  # type: ignore[call-overload]
        print(
            f"  {name}: {figures['status']} — ${figures['spent_usd']:,.2f} spent, "
            f"forecast ${figures['forecast_usd']:,.2f}"
        )
    print(f"\nHTML report: {html_path}")
    store = DEMO / "costs.duckdb"
    print(
        f"Try: .venv/bin/circlecost --store {store} report --period last_3_months "
        "--group-by account"
    )
    elapsed = time.monotonic() - started
    print(f"circlecost demo finished in {elapsed:.0f} s at {datetime.now(UTC):%H:%M:%S} UTC")
    return 0


def _organizations() -> list:  # type: ignore[type-arg]
    from circlecost_emulator.organizations import default_organizations

    return default_organizations(SEED)


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"]:
        return run()
    print("usage: python -m circlecost.demo run", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
