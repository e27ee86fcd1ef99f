"""What the CLI tests share: a store holding the two sample parts, and running the command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from circlecost.cli import main
from circlecost.store import Store
from circlecost.windows import Window

DATA = Path(__file__).resolve().parent.parent / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text())
OCTOBER = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))


@pytest.fixture
def sample_store(tmp_path: Path) -> Path:
    """The two sample parts loaded for one integration, owner 'ana'."""
    path = tmp_path / "costs.duckdb"
    store = Store(path)
    store.migrate()
    store.ensure_first_owner("ana")
    record = store.insert_integration(
        EXPECTED["organization_id"], "sha256:0123456789abcdef", organization_name="initech"
    )
    store.plan_windows(record.id, [OCTOBER])
    store.replace_window_rows(
        record.id,
        OCTOBER,
        None,
        [DATA / "usage-export-part-1.csv.gz", DATA / "usage-export-part-2.csv.gz"],
    )
    return path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
