"""What the CLI tests share: the emulator's seed, a store holding the two sample parts, and
running the command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from circlecost.cli import main
from circlecost.store import Store
from tests.support import EXPECTED, load_sample_export


@pytest.fixture(scope="module")
def emulator_options(emulator_options: dict[str, Any]) -> dict[str, Any]:
    return {**emulator_options, "seed": 5}


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
    load_sample_export(store, record.id)
    return path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
