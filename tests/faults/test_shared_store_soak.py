"""Concurrent runners on one shared store: windows replaced, quota taken and windows claimed by
several processes at once lose nothing, store nothing twice and never overspend the quota.

DuckLake commits optimistically and sees no conflict between two inserts; without the guard
rows, processes loading the same empty window all committed and stored its rows several times.
The soak runs SHARED_STORE_SOAK_SECONDS (default 120: "a few minutes") with
SHARED_STORE_SOAK_RUNNERS (default 4) processes.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from circlecost.store import Store
from circlecost.usage_columns import COLUMN_NAMES
from circlecost.vocabulary import token_fingerprint
from circlecost.windows import Window
from tests.engines import store_location
from tests.support import HEADER, SAMPLE_PARTS

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
PER_HOUR = 10
MONTHS = [datetime(2026, month, 1, tzinfo=UTC) for month in range(3, 9)]


def month_window(start: datetime) -> Window:
    end_month = start.replace(month=start.month + 1)
    return Window(start, end_month - timedelta(seconds=1))


def write_parts(folder: Path, org_id: str, window: Window, rows: int) -> list[str]:
    """One part with `rows` distinct job lines of the organization dated in the window."""
    with gzip.open(SAMPLE_PARTS[0], "rt", encoding="utf-8", newline="") as lines:
        next(lines), next(lines), next(lines)
        template = next(lines).rstrip("\n").split(",")  # a plain job line (as tests/store use)
    names = list(COLUMN_NAMES)
    header = HEADER
    day = window.start.date().isoformat()
    body = []
    for number in range(rows):
        fields = dict(zip(names, template, strict=True))
        fields.update(
            ORGANIZATION_ID=org_id,
            JOB_ID=f"{org_id}-{day}-{number}",
            JOB_RUN_NUMBER=str(number),
            JOB_RUN_DATE=day,
        )
        body.append(",".join(fields.values()))
    path = folder / f"{org_id}-{day}.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([header, *body]) + "\n").encode()))
    return [str(path)]


@pytest.mark.shared_store
def test_concurrent_runners_lose_nothing_duplicate_nothing_and_keep_the_quota(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    seconds = float(os.environ.get("SHARED_STORE_SOAK_SECONDS", "120"))
    runners = int(os.environ.get("SHARED_STORE_SOAK_RUNNERS", "4"))
    location = store_location(request, "shared", tmp_path)
    store = Store(location)
    store.initialize("ana")
    tasks, claim_windows, expected = [], [], {}
    for index, org_id in enumerate(["org-a", "org-b"]):
        integration = store.insert_integration(
            org_id, token_fingerprint(f"token-{org_id}"), base_price=Decimal("0.0006")
        )
        windows = [month_window(start) for start in MONTHS]
        store.plan_windows(integration.id, windows)
        for number, window in enumerate(windows):
            rows = 40 + 17 * number + 5 * index
            parts = write_parts(tmp_path, org_id, window, rows)
            if number % 2 == 0:  # half the windows hold their rows before the soak starts
                store.replace_window_rows(integration.id, window, None, [Path(p) for p in parts])
            key = (integration.id, window.start)
            expected[key] = rows
            tasks.append(
                {
                    "integration_id": integration.id,
                    "org_id": org_id,
                    "start": window.start.isoformat(),
                    "end": window.end.isoformat(),
                    "parts": parts,
                    "empty": number % 2 == 1,
                }
            )
        claim_only = [month_window(datetime(2025, month, 1, tzinfo=UTC)) for month in (1, 2, 3)]
        store.plan_windows(integration.id, claim_only)
        claim_windows += [
            {
                "integration_id": integration.id,
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
            }
            for w in claim_only
        ]
    assert store.shared is not None
    plans = [
        {
            "name": f"runner-{number}",
            "seed": number,
            "catalog": store.shared.catalog,
            "data_path": store.shared.data_path,
            "now": NOW.isoformat(),
            "per_hour": PER_HOUR,
            "seconds": seconds,
            "tasks": tasks,
            "claim_windows": claim_windows,
        }
        for number in range(runners)
    ]

    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.faults.shared_store_worker", json.dumps(plan)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for plan in plans
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=seconds + 300)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    with store.reader() as con:
        stored = {
            (integration_id, start.replace(tzinfo=UTC)): (count, distinct)
            for integration_id, start, count, distinct in con.execute(
                "SELECT integration_id, window_start, count(*), count(DISTINCT JOB_ID) "
                "FROM usage GROUP BY ALL"
            ).fetchall()
        }
        slots = dict(
            con.execute("SELECT org_id, count(*) FROM quota_requests GROUP BY ALL").fetchall()
        )
    lost = sum(max(rows - stored.get(key, (0, 0))[0], 0) for key, rows in expected.items())
    duplicated = sum(count - distinct for count, distinct in stored.values())
    loads = sum(result["loads"] for result in results)
    retries = sum(result["retries"] for result in results)
    claimed = [window for result in results for window in result["claimed"]]
    print(
        f"\nshared-store soak: {runners} runners, {seconds:.0f} s, {loads} window loads, "
        f"{sum(r['slots'] for r in results)} quota slots, {sum(r['claims'] for r in results)} "
        f"claims, {retries} commit conflicts retried, {lost} rows lost, {duplicated} duplicated"
    )
    assert loads > runners  # the runners really did overlap
    assert lost == 0
    assert duplicated == 0
    assert {key: count for key, (count, _) in stored.items()} == expected
    assert slots == {"org-a": PER_HOUR, "org-b": PER_HOUR}  # 10 per hour between all of them
    assert sum(r["slots"] for r in results) == 2 * PER_HOUR
    assert len(claimed) == len(set(claimed))  # each window claimed by one runner only
