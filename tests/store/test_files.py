"""The store file: schema versions, private permissions, the writer lock, no token inside."""

import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from circlecost.store import (
    MIGRATIONS,
    Store,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    StoreOutdatedError,
)
from circlecost.usage_columns import USAGE_COLUMNS
from circlecost.vocabulary import token_fingerprint
from tests.support import OCTOBER, ORG_ID, SAMPLE_PARTS

HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from circlecost.store import Store
    with Store(sys.argv[1], writer_kind="circlecost sync").transaction():
        print("holding", flush=True)
        time.sleep(60)
    """
)
HOLD_RAW_LOCK = (
    "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('x', flush=True); "
    "time.sleep(60)"
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """These tests are about the embedded store's file: its lock, modes and damage."""
    store = Store(tmp_path / "state" / "costs.duckdb", writer_kind="pytest", lock_timeout=2.0)
    store.migrate()
    return store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def holder(store: Store, request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    """A second process that holds the store's write lock until the test ends."""
    script = HOLD_LOCK if getattr(request, "param", "store") == "store" else HOLD_RAW_LOCK
    with subprocess.Popen(
        [sys.executable, "-c", script, str(store.path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline()
        yield process
        process.kill()


def test_migrations_run_once_and_record_the_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "costs.duckdb")

    assert store.migrate() == len(MIGRATIONS)
    assert store.migrate() == len(MIGRATIONS)

    assert store.schema_version() == len(MIGRATIONS)
    with store.reader() as con:
        versions = con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
    assert versions == [(version,) for version in range(1, len(MIGRATIONS) + 1)]


def test_usage_table_types_every_csv_column_as_declared(store: Store) -> None:
    with store.reader() as con:
        columns = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'usage'"
            ).fetchall()
        )
        indexes = con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'usage' "
            "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
        ).fetchone()
    assert {name: columns[name] for name, _ in USAGE_COLUMNS} == dict(USAGE_COLUMNS)
    assert indexes == (0,)


def test_a_store_newer_than_the_code_is_refused(store: Store) -> None:
    with store.transaction() as con:
        con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [99])

    with pytest.raises(StoreOutdatedError, match="schema version 99"):
        store.migrate()


def test_store_file_its_wal_and_writer_record_are_private(tmp_path: Path) -> None:
    store = Store(tmp_path / "new" / "costs.duckdb")
    store.migrate()
    wal = store.path.with_name("costs.duckdb.wal")
    holder_record = store.path.with_name("costs.duckdb.writer.json")

    with store.transaction():
        store.record_audit("alice", "test", "store", "x", {})  # committed: the WAL exists now
        modes = {path.name: mode(path) for path in (store.path, wal, holder_record)}

    assert modes == {"costs.duckdb": 0o600, "costs.duckdb.wal": 0o600,
                     "costs.duckdb.writer.json": 0o600}  # fmt: skip
    assert mode(store.path.parent) == 0o700
    assert not holder_record.exists()
    assert os.umask(0o022) == 0o022


@pytest.mark.parametrize("holder", ["store"], indirect=True)
def test_writer_finding_the_store_locked_says_who_holds_it(
    store: Store, holder: subprocess.Popen[str]
) -> None:
    impatient = Store(store.path, lock_timeout=0.3)

    with pytest.raises(StoreLockedError) as caught:
        impatient.set_import_status("any", "Stable", "")

    message = str(caught.value)
    assert (
        f"the store {store.path} is being written by `circlecost sync` (pid {holder.pid}" in message
    )
    assert "wait for it to finish or stop it, then retry" in message


@pytest.mark.parametrize("holder", ["raw"], indirect=True)
def test_lock_held_by_an_unknown_process_names_its_pid(
    store: Store, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(StoreLockedError, match=f"pid {holder.pid}"):
        Store(store.path, lock_timeout=0.2).migrate()


def test_writer_waits_for_a_lock_released_in_time(store: Store, tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_RAW_LOCK.replace("60", "1"), str(store.path)],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline()

        assert Store(store.path, lock_timeout=20).migrate() == len(MIGRATIONS)


def test_reader_reads_and_cannot_write(store: Store) -> None:
    store.insert_integration(ORG_ID, "sha256:abc", organization_name="initech")

    with store.reader() as con:
        names = con.execute("SELECT organization_name FROM integrations").fetchall()
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM integrations")

    assert names == [("initech",)]


def test_reader_of_a_missing_store_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="run `pulumi up`"):
        Store(tmp_path / "none.duckdb").list_integrations()


def test_a_damaged_file_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "costs.duckdb"
    path.write_bytes(b"not a database" * 1000)

    with pytest.raises(StoreCorruptError) as caught:
        Store(path).migrate()
    assert caught.value.hint.startswith("restore it from a backup")


def insert_then_fail(store: Store) -> None:
    with store.transaction() as con:
        con.execute("INSERT INTO workspaces VALUES ('w', 'team', '', now()::TIMESTAMP)")
        raise RuntimeError("boom")


def test_transaction_rolls_back_on_any_error(store: Store) -> None:
    with pytest.raises(RuntimeError):
        insert_then_fail(store)

    assert store.list_workspaces() == []


def test_duckdb_errors_become_store_errors_with_a_hint(store: Store) -> None:
    with pytest.raises(StoreError) as caught, store.transaction() as con:
        con.execute("INSERT INTO integrations (id) VALUES ('x')")

    assert not isinstance(caught.value, duckdb.Error)
    assert caught.value.hint


def test_the_token_never_reaches_the_store_file(store: Store) -> None:
    token = "CCIPAT_Sup3rS3cretT0ken_c1rclec0st_8d1f"
    integration = store.insert_integration(
        ORG_ID, token_fingerprint(token), organization_name="initech", actor="alice"
    )
    store.update_integration(integration.id, token_fingerprint=token_fingerprint(token + "2"),
                             actor="alice")  # fmt: skip
    store.replace_window_rows(integration.id, OCTOBER, "job-1", SAMPLE_PARTS)
    with pytest.raises(ValueError, match="never keeps a token"):
        store.update_integration(integration.id, token=token)

    files = [path for path in store.path.parent.iterdir() if path.is_file()]
    contents = b"".join(path.read_bytes() for path in files)
    assert token.encode() not in contents
    assert token.encode("utf-16-le") not in contents
    assert token[7:].encode() not in contents
