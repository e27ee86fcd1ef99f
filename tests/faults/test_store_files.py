"""The store file is private to its owner, and reports only ever read it."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from circlecost import service
from circlecost.settings import Settings
from circlecost.store import Store, StoreError
from circlecost_emulator import Emulator
from tests.faults.support import (
    CIRCLECOST,
    cli_env,
    integration_inputs,
    run_cli,
    store_file,
    stored,
    table_counts,
    total,
)
from tests.support import org_and_token

HOLD_READ_ONLY = (
    "import duckdb, sys, time\n"
    "connection = duckdb.connect(sys.argv[1], read_only=True)\n"
    "print('reading', flush=True)\n"
    "time.sleep(120)\n"
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_new_store_and_its_folder_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    settings = Settings(store_location=tmp_path / "private" / "costs.duckdb", actor="ana")

    store = settings.store()
    with store.transaction():
        holder = store.path.with_name(store.path.name + ".writer.json")
        holder_mode = mode(holder)
    store.ensure_first_owner("ana")

    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700
    assert holder_mode == 0o600
    wal = store.path.with_name(store.path.name + ".wal")
    assert not wal.exists() or mode(wal) == 0o600
    restored = os.umask(0o022)
    os.umask(restored)
    assert restored == umask  # the process's umask is back as it was


def test_a_store_created_by_the_cli_is_private_even_under_a_permissive_umask(
    tmp_path: Path,
) -> None:
    store_location = tmp_path / "cli" / "costs.duckdb"
    grant = ("access", "grant", "bob", "Viewer")
    result = subprocess.run(
        [str(CIRCLECOST), "--store", str(store_location), "--actor", "ana", *grant],
        capture_output=True,
        text=True,
        umask=0,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert mode(store_location) == 0o600
    assert mode(store_location.parent) == 0o700


def test_reports_and_exports_read_the_store_without_ever_writing_to_it(
    emulator: Emulator, settings: Settings, tmp_path: Path
) -> None:
    org_id, token = org_and_token(emulator)
    integration_id, _ = service.create_integration(settings, integration_inputs(org_id, token))
    store = settings.store()
    rows = total(stored(store, integration_id))
    counts = table_counts(store)
    windows = store.list_windows(integration_id)
    period = ["--from", windows[0].window.first_day.isoformat()]
    period += ["--to", emulator.clock.now().date().isoformat()]
    env = cli_env(emulator, store_file(settings), token, CIRCLECOST_LOCK_TIMEOUT_SECONDS="0.5")
    os.chmod(store_file(settings), 0o400)
    before = digest(store_file(settings))

    reading = subprocess.Popen(
        [sys.executable, "-c", HOLD_READ_ONLY, str(store_file(settings))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reading.stdout is not None
        assert reading.stdout.readline().strip() == "reading"
        report = run_cli("report", *period, "--group-by", "service", "--format", "json", env=env)
        focus = tmp_path / "focus.csv"
        export = run_cli("export", *period, "--output", str(focus), env=env)
        status = run_cli("status", env=env)
        # A writer cannot get in beside another process's reader: the report did not write.
        writer = run_cli("access", "grant", "bob", "Viewer", env=env)
    finally:
        reading.kill()
        reading.communicate()

    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["total"]["credits"] == pytest.approx(float(rows.credits))
    assert export.returncode == 0, export.stderr
    assert focus.read_text(encoding="utf-8").count("\n") > rows.count
    assert status.returncode == 0, status.stderr
    assert writer.returncode == 1
    assert "is being written by another process" in writer.stderr
    assert digest(store_file(settings)) == before
    assert mode(store_file(settings)) == 0o400
    with (
        pytest.raises(StoreError, match="read-only"),
        Store(store_file(settings)).reader() as con,
    ):
        con.execute("DELETE FROM usage")
    assert table_counts(store) == counts
