"""The daily rollup (`usage_daily`) that reports read always equals a roll-up of the usage rows:
after loads, a reload of the same window, a purge, and a store copy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from circlecost.store import MIGRATIONS, Store
from tests.support import OCTOBER, ORG_ID, SAMPLE_PARTS, load_sample_export

OTHER_ORG_ID = "0f6c9a4e-5d0b-4a52-9b0e-2a7d4c1e9f00"


def new_store(folder: Path) -> Store:
    folder.mkdir(exist_ok=True)
    store = Store(folder / "costs.duckdb", writer_kind="pytest", lock_timeout=2.0)
    store.migrate()
    return store


def rollup(store: Store) -> list[tuple[Any, ...]]:
    with store.reader() as con:
        return sorted(
            con.execute("SELECT * FROM usage_daily").fetchall(), key=lambda row: repr(row)
        )


def rebuilt(store: Store) -> list[tuple[Any, ...]]:
    """The rollup a full rebuild gives; the store's own is put back afterwards."""
    before = rollup(store)
    store.rebuild_daily_usage()
    after = rollup(store)
    assert before == after, "the rollup differs from a rebuild from the usage rows"
    return after


def test_the_rollup_follows_loads_reloads_and_purges(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    first = store.insert_integration(ORG_ID, "sha256:first")
    second = store.insert_integration(OTHER_ORG_ID, "sha256:second")
    load_sample_export(store, first.id)
    load_sample_export(store, second.id)
    both = rebuilt(store)
    with store.reader() as con:
        rows = con.execute("SELECT count(*) FROM usage").fetchone()
        summed = con.execute("SELECT sum(usage_rows) FROM usage_daily").fetchone()
    assert rows == summed
    assert 0 < len(both) < rows[0]  # type: ignore[index]

    # Reloading a window replaces its rollup (no double count); a window of one part halves it.
    store.replace_window_rows(first.id, OCTOBER, None, SAMPLE_PARTS[:1])
    rebuilt(store)
    store.replace_window_rows(first.id, OCTOBER, None, SAMPLE_PARTS)
    assert rebuilt(store) == both

    store.purge_integration(second.id)
    with store.reader() as con:
        left = con.execute("SELECT DISTINCT integration_id FROM usage_daily").fetchall()
    assert left == [(first.id,)]
    rebuilt(store)


def test_a_store_copy_carries_the_rollup(tmp_path: Path) -> None:
    source = new_store(tmp_path / "a")
    integration = source.insert_integration(ORG_ID, "sha256:first")
    load_sample_export(source, integration.id)
    target = new_store(tmp_path / "b")

    target.copy_from(source)

    assert rollup(target) == rollup(source) != []


def tables_created_from(version: int) -> list[str]:
    """The tables that migration `version` and the ones after it create."""
    steps = [step for migration in MIGRATIONS[version - 1 :] for step in migration]
    return [name for step in steps for name in re.findall(r"CREATE TABLE (\w+)", step)]


def test_the_migration_rolls_up_a_store_that_had_no_rollup(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    integration = store.insert_integration(ORG_ID, "sha256:first")
    load_sample_export(store, integration.id)
    expected = rollup(store)
    with store.transaction() as con:  # back to schema 5, as stores written before it are
        for table in tables_created_from(6):
            con.execute(f"DROP TABLE {table}")
        con.execute("DELETE FROM schema_version WHERE version >= 6")

    store.migrate()

    assert rollup(store) == expected != []
