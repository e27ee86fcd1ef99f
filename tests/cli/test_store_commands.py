"""`circlecost store init|copy|maintain|info`: creating a shared store, moving an embedded store
into it, and freeing the files that replaced windows leave behind.

Every test runs against the suite's throwaway PostgreSQL catalog, with the data in tmp_path.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from circlecost.engine import SharedStore
from circlecost.store import COPIED_TABLES, Store
from tests.cli.conftest import run
from tests.engines import store_env
from tests.support import EXPECTED, OCTOBER, SAMPLE_PARTS


@pytest.fixture
def shared(postgres_server: Any, tmp_path: Path) -> SharedStore:
    """A shared store's place: a new catalog database, its data in tmp_path (not created)."""
    return SharedStore(postgres_server.fresh_database("cli"), f"{tmp_path / 'lake'}/")


def env_for(store: SharedStore, actor: str = "ana") -> dict[str, str]:
    return {**store_env(store), "CIRCLECOST_ACTOR": actor}


def table_counts(store: Store) -> dict[str, int]:
    with store.reader() as con:
        counts = {}
        for table in COPIED_TABLES:
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[table] = int(row[0]) if row else -1
        return counts


def total_cost(store: Store) -> Decimal:
    with store.reader() as con:
        row = con.execute("SELECT sum(amount_usd) FROM costs").fetchone()
    return Decimal(row[0]) if row and row[0] is not None else Decimal(0)


def parquet_files(store: SharedStore) -> int:
    return sum(1 for _ in Path(store.data_path or "").rglob("*.parquet"))


def test_store_init_names_the_owner_once_and_info_names_the_engine(shared: SharedStore) -> None:
    first = run("store", "init", "--owner", "ana", env=env_for(shared))
    assert first.exit_code == 0, first.output
    assert "ana is its Organization Owner" in first.output

    again = run("store", "init", "--owner", "mallory", env=env_for(shared, "mallory"))
    assert again.exit_code == 0, again.output
    assert "already exists" in again.output
    store = Store(shared)
    assert store.get_role("ana") == "Organization Owner"
    assert store.get_role("mallory") is None  # a second init changes nothing

    info = run("store", "info", env=env_for(shared))
    assert info.exit_code == 0, info.output
    assert "shared (DuckLake)" in info.output
    assert store.identity() in info.output


def test_store_copy_moves_every_table_and_keeps_identity_and_costs(
    sample_store: Path, shared: SharedStore
) -> None:
    source = Store(sample_store)
    before = table_counts(source)
    cost = total_cost(source)
    assert before["usage"] == EXPECTED["usage_rows"]

    copied = run("store", "copy", "--from", str(sample_store), env=env_for(shared))

    assert copied.exit_code == 0, copied.output
    target = Store(shared)
    assert table_counts(target) == before
    assert target.identity() == source.identity()  # stacks recorded against it go on working
    assert total_cost(target) == cost
    assert target.get_role("ana") == "Organization Owner"
    assert f"usage\t{before['usage']}" in copied.output


def test_store_copy_into_a_store_that_holds_data_is_refused_and_changes_nothing(
    sample_store: Path, shared: SharedStore
) -> None:
    assert run("store", "copy", "--from", str(sample_store), env=env_for(shared)).exit_code == 0
    target = Store(shared)
    counts = table_counts(target)

    again = run("store", "copy", "--from", str(sample_store), env=env_for(shared))

    assert again.exit_code == 1
    assert "holds data already" in again.output
    assert "nothing was copied" in again.output
    assert table_counts(target) == counts


def test_store_maintain_frees_replaced_files_and_keeps_every_cost(shared: SharedStore) -> None:
    assert run("store", "init", "--owner", "ana", env=env_for(shared)).exit_code == 0
    store = Store(shared)
    record = store.insert_integration(EXPECTED["organization_id"], "sha256:maintain")
    store.plan_windows(record.id, [OCTOBER])
    for _ in range(3):  # each load replaces the window: old Parquet files pile up
        store.replace_window_rows(record.id, OCTOBER, None, SAMPLE_PARTS)
    cost = total_cost(store)
    piled_up = parquet_files(shared)

    done = run("store", "maintain", "--keep-days", "0", env=env_for(shared))

    assert done.exit_code == 0, done.output
    assert "snapshots expired" in done.output
    assert parquet_files(shared) < piled_up
    assert total_cost(store) == cost
    assert table_counts(store)["usage"] == EXPECTED["usage_rows"]
