"""`anomalies.find`: a spike the emulator injects is found with the project, job and branch that
cost the most that day; a flat series has none. Expected figures come from the export itself."""

from __future__ import annotations

import gzip
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from circlecost import anomalies, reports
from circlecost.store import Store
from tests.reports.samples import SERVICES, usage_date, usage_rows
from tests.support import HEADER, OCTOBER, generated_store, plain_line_fields

LATE_OCTOBER = reports.Period(date(2026, 10, 15), date(2026, 10, 31))
SPIKE_DAY = date(2026, 10, 22)


def find(store: Store, group_by: str | None) -> list[dict[str, Any]]:
    with store.reader() as connection:
        found = anomalies.find(connection, anomalies.AnomalyRequest(LATE_OCTOBER, group_by))
    return found.sections[0].rows


def costliest(rows: list[dict[str, str | None]], column: str) -> str | None:
    """The value of `column` whose rows cost the most (credits; one price for all)."""
    credits: dict[str | None, Decimal] = defaultdict(Decimal)
    for row in rows:
        credits[row[column]] += sum((Decimal(row[c] or 0) for c in SERVICES), Decimal(0))
    return max(credits, key=lambda value: credits[value])


def test_an_injected_spike_is_found_with_its_top_project_job_and_branch(tmp_path: Path) -> None:
    store, part = generated_store(tmp_path, spikes={(SPIKE_DAY, "billing"): 12})
    that_day = [
        row for row in usage_rows([part])
        if usage_date(row) == SPIKE_DAY and row["PROJECT_NAME"] == "billing"
    ]  # fmt: skip

    by_project = find(store, "account")
    spike = [row for row in by_project if row["day"] == SPIKE_DAY.isoformat()]
    assert [row["group"] for row in spike] == ["billing"]
    assert spike[0]["top_project"] == "billing"
    assert spike[0]["top_job"] == costliest(that_day, "JOB_NAME")
    assert spike[0]["top_branch"] == costliest(that_day, "VCS_BRANCH")
    assert spike[0]["change_usd"] > 0
    others = [row for row in by_project if row["group"] == "billing" and row is not spike[0]]
    assert others == [], "the spiked project has no other anomaly"


def flat_store(folder: Path) -> Store:
    """Every day of October the same job line of each of three projects."""
    fields = plain_line_fields()
    lines = []
    day = date(2026, 10, 1)
    while day <= date(2026, 10, 31):
        for project in ("api", "web", "docs"):
            fields.update(
                PROJECT_NAME=project,
                JOB_ID=f"{project}-{day}",
                JOB_RUN_DATE=day.isoformat(),
                JOB_RUN_STARTED_AT=f"{day} 10:00:00",
                PIPELINE_CREATED_AT=f"{day} 09:59:00",
            )
            lines.append(",".join(fields.values()))
        day += timedelta(days=1)
    part = folder / "flat.csv.gz"
    part.write_bytes(gzip.compress(("\n".join([HEADER, *lines]) + "\n").encode()))
    store = Store(folder / "costs.duckdb")
    store.migrate()
    integration = store.insert_integration("org-flat", "sha256:flat", base_price=Decimal("0.0006"))
    store.plan_windows(integration.id, [OCTOBER])
    store.replace_window_rows(integration.id, OCTOBER, None, [part])
    return store


def test_a_flat_series_has_no_anomaly(tmp_path: Path) -> None:
    store = flat_store(tmp_path)
    assert find(store, "account") == []
    assert find(store, None) == []
