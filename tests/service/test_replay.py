"""A real export, replayed by the emulator, through the whole import: expected.json exactly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from circlecost import service
from circlecost.models import IntegrationInputs
from circlecost.settings import Settings
from circlecost_emulator import Emulator
from tests.support import EXPECTED, FAST_IMPORTS, sample_replay_dir


@pytest.mark.emulator
def test_replayed_sample_export_imports_to_the_expected_totals(tmp_path: Path) -> None:
    with Emulator(replay_dir=sample_replay_dir(tmp_path), quota_per_hour=None) as emulator:
        # The sample is October 2026; a clock early in November keeps it within the backfill.
        november = datetime(2026, 11, 20, 12, tzinfo=UTC)
        emulator.clock.set(november)
        settings = Settings(
            store_location=tmp_path / "costs.duckdb",
            circleci_url=emulator.base_url,
            actor="ana",
            allow_loopback_downloads=True,
            imports=FAST_IMPORTS,
            clock=lambda: november,
        )
        inputs = IntegrationInputs.model_validate(
            {
                "token": emulator.tokens["admin"],
                "organization_id": EXPECTED["organization_id"],
                "backfill_months": 1,
            }
        )
        integration_id, outputs = service.create_integration(replace(settings), inputs)
    assert outputs["status"] == "Stable"
    assert outputs["organization_name"] == EXPECTED["organization_name"]
    assert outputs["line_items"] == EXPECTED["cost_line_items"]
    store = settings.store()
    with store.reader() as con:
        assert con.execute("SELECT count(*) FROM usage").fetchone() == (EXPECTED["usage_rows"],)
        by_service = dict(
            con.execute("SELECT service, sum(credits) FROM costs GROUP BY ALL").fetchall()
        )
        by_branch = dict(
            con.execute("SELECT tag_vcs_branch, sum(credits) FROM costs GROUP BY ALL").fetchall()
        )
        total = con.execute("SELECT sum(amount_usd) FROM costs").fetchone()
    assert total is not None
    (usd,) = total
    assert {k: int(v) for k, v in by_service.items()} == EXPECTED["credits_by_service"]
    assert {str(k): int(v) for k, v in by_branch.items()} == EXPECTED["credits_by_branch"]
    assert Decimal(usd) == Decimal(str(EXPECTED["usd_at_0.0006"]))
    windows = store.list_windows(integration_id)
    assert sum(w.total_mismatch_rows or 0 for w in windows) == EXPECTED["rows_with_total_mismatch"]
