"""`make demo`'s steps in a temp folder: the report equals the emulator's usage at the prices."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from circlecost import render, reports
from circlecost.store import Store
from circlecost.usage_columns import CREDIT_SERVICES
from circlecost_emulator import Emulator
from tests.clock import SUITE_NOW, child_env
from tests.emulator.helpers import credit
from tests.pulumi_support import REPO

PRICES = {"acme": Decimal("0.0006"), "globex": Decimal("0.0005")}  # as in Pulumi.demo.yaml
CREDITS = tuple(column for column, _service in CREDIT_SERVICES)  # the 8 components


def run_demo(demo_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **child_env(), "CIRCLECOST_DEMO_DIR": str(demo_dir)}
    return subprocess.run(
        [sys.executable, "-m", "circlecost.demo", "run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_demo_report_equals_the_emulators_usage_priced_at_the_configured_prices(
    tmp_path: Path,
) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "HTML report:" in first.stdout
    assert (tmp_path / "report.html").stat().st_size > 1000

    store = Store(tmp_path / "costs.duckdb")
    expected = Decimal(0)
    with Emulator(seed=7) as emulator:
        for record in store.list_integrations():
            assert record.status == "Stable"
            windows = store.list_windows(record.id)
            # The demo ran on the suite's day, not on the day the suite runs.
            assert windows[-1].window.end.date() == SUITE_NOW.date()
            for planned in windows:
                for row in emulator.expected_rows(
                    record.organization_id, planned.window.start, planned.window.end
                ):
                    credits = sum((credit(row, c) for c in CREDITS), Decimal(0))
                    expected += credits * PRICES[str(record.organization_name)]
    with store.reader() as con:
        span = con.execute("SELECT min(date), max(date) FROM costs").fetchone()
        assert span is not None
        start, end = span
        report = reports.build_report(
            con, reports.ReportRequest(period=reports.Period(start, end), group_by=("service",))
        )
    assert Decimal(str(report.total["amount_usd"])) == pytest.approx(
        expected, abs=Decimal("0.000001")
    )
    assert render.usd(expected) in first.stdout
    assert "vtag:team" in first.stdout, "the demo reports by its virtual tag"
    assert "platform-monthly: " in first.stdout, "and shows its budget"

    second = run_demo(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "10 unchanged" in second.stdout
