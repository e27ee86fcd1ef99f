"""A shared store that cannot be used says why, in words, with what to do, and never prints a
password: an unreachable catalog, a refused login, a missing database, an unwritable data path,
a password in plain configuration, a store not created yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from circlecost.engine import SharedStore, StoreUnreachableError, parse_location
from circlecost.errors import CirclecostError
from circlecost.store import Store, StoreNotFoundError
from tests.services import free_port

SECRET = "s3cr3t-pw-" + "x" * 8


def test_an_unreachable_catalog_names_host_and_port_and_what_to_check() -> None:
    port = free_port()
    store = Store(SharedStore(f"host=127.0.0.1 port={port} user=ci dbname=costs connect_timeout=2"))

    with pytest.raises(StoreUnreachableError) as caught:
        store.list_integrations()

    where = f"ducklake:postgres:host=127.0.0.1 port={port}"
    assert f"cannot reach the PostgreSQL catalog of {where}" in caught.value.message
    assert "check host and port" in caught.value.hint


def test_a_refused_login_says_so_and_never_prints_the_password(
    postgres_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres_server.create_role("ci_login", SECRET)
    catalog = postgres_server.fresh_database("login", owner="ci_login")
    without_password = " ".join(
        field for field in catalog.split() if not field.startswith("password=")
    )
    monkeypatch.setenv("PGPASSWORD", "wrong-" + SECRET)

    with pytest.raises(StoreUnreachableError) as caught:
        Store(SharedStore(without_password)).list_integrations()

    text = f"{caught.value.message} {caught.value.hint}"
    assert "PostgreSQL refused the login" in text
    assert "PGPASSWORD" in caught.value.hint
    assert SECRET not in text


def test_the_right_password_from_pgpassword_opens_the_store(
    postgres_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    postgres_server.create_role("ci_ok", SECRET)
    catalog = postgres_server.fresh_database("ok", owner="ci_ok")
    without_password = " ".join(f for f in catalog.split() if not f.startswith("password="))
    monkeypatch.setenv("PGPASSWORD", SECRET)
    store = Store(SharedStore(without_password, f"{tmp_path / 'lake'}/"))

    assert store.initialize("ana")
    assert store.get_role("ana") == "Organization Owner"


def test_a_missing_catalog_database_says_how_to_create_it(postgres_server: Any) -> None:
    catalog = postgres_server.fresh_database("gone")
    missing = catalog.replace("dbname=", "dbname=missing_")

    with pytest.raises(StoreUnreachableError) as caught:
        Store(SharedStore(missing)).list_integrations()

    assert "does not exist" in caught.value.message
    assert "createdb" in caught.value.hint


def test_a_data_path_that_cannot_be_written_is_named(postgres_server: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = Store(SharedStore(postgres_server.fresh_database("nodata"), f"{blocker}/lake/"))

    with pytest.raises(CirclecostError) as caught:
        store.initialize("ana")

    assert str(blocker) in str(caught.value)


def test_a_password_in_the_store_setting_is_refused_without_echoing_it() -> None:
    with pytest.raises(CirclecostError) as caught:
        parse_location(f"ducklake:postgres:host=db dbname=costs password={SECRET}")

    assert "carries a password in plain configuration" in caught.value.message
    assert "PGPASSWORD" in caught.value.hint
    assert SECRET not in str(caught.value)
    assert "password=***" in caught.value.message


def test_a_store_not_created_yet_says_to_run_store_init(postgres_server: Any) -> None:
    store = Store(SharedStore(postgres_server.fresh_database("empty")))

    assert not store.exists()
    with pytest.raises(CirclecostError) as caught:
        store.list_integrations()
    assert "there is no circlecost store in ducklake:postgres:" in caught.value.message
    assert "circlecost store init --owner NAME" in caught.value.hint
    with pytest.raises(StoreNotFoundError, match="there is no circlecost store"):
        store.migrate()  # what `pulumi up` does first: it never creates a shared store
