"""Both store engines for the tests: `engine` is a parameter, the store's place follows from it.

A shared store needs the suite's throwaway PostgreSQL server, which starts only when a test asks
for one (`request.getfixturevalue`), so a run of embedded tests alone never starts it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from circlecost.engine import LAKE_PREFIX, SharedStore
from circlecost.store import Store
from tests.services import find_postgres_bin

ENGINES = ("embedded", "shared")


def store_location(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path
) -> Path | SharedStore:
    """A new, empty store's place for `engine`: a file in tmp_path, or a fresh catalog database
    with its data in tmp_path."""
    if engine == "embedded":
        return tmp_path / "store" / "costs.duckdb"
    server = request.getfixturevalue("postgres_server")
    return SharedStore(server.fresh_database("store"), str(tmp_path / "lake") + "/")


def store_env(location: Path | SharedStore) -> dict[str, str]:
    """The variables that name the store `location` to a circlecost process (CLI, provider)."""
    if isinstance(location, SharedStore):
        return {
            "CIRCLECOST_STORE": LAKE_PREFIX + location.catalog,
            "CIRCLECOST_STORE_DATA_PATH": location.data_path or "",
        }
    return {"CIRCLECOST_STORE": str(location)}


def new_store(
    request: pytest.FixtureRequest,
    engine: str,
    tmp_path: Path,
    *,
    owner: str | None = None,
    writer_kind: str = "pytest",
    lock_timeout: float = 2.0,
) -> Store:
    """A migrated store; a shared one is created as `circlecost store init` does, with `owner`
    as its Organization Owner (the embedded store adopts its first actor instead)."""
    store = Store(
        store_location(request, engine, tmp_path),
        writer_kind=writer_kind,
        lock_timeout=lock_timeout,
    )
    if store.shared is not None and owner is not None:
        store.initialize(owner)
    elif store.shared is not None:
        store._migrate()
    else:
        store.migrate()
    return store


def stored_bytes(location: Path | SharedStore) -> bytes:
    """Every byte a store keeps, for secret scans: the embedded file, or a shared store's data
    files and a dump of its PostgreSQL catalog."""
    if isinstance(location, Path):
        return location.read_bytes()
    data = b"".join(
        path.read_bytes() for path in Path(location.data_path or "").rglob("*") if path.is_file()
    )
    bin_dir = find_postgres_bin()
    assert bin_dir is not None
    dump = subprocess.run(
        [str(bin_dir / "pg_dump"), "--data-only", "-d", location.catalog],
        capture_output=True,
        check=True,
    )
    assert b"ducklake_table" in dump.stdout  # the dump really holds the catalog
    return data + dump.stdout
