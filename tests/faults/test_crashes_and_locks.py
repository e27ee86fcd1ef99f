"""A real `circlecost` process killed (SIGKILL) at each step of an import, and a second process
holding the store's write lock: nothing is lost, nothing is loaded twice, no export job is
requested twice, and a locked store says who holds it.

The crashes run on an embedded store at every point, and on a shared (DuckLake) store at the
points inside and around its transactions, where a killed runner leaves uncommitted Parquet
files and a claim behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from circlecost import faultpoints, service
from circlecost.engine import SharedStore
from circlecost.settings import Settings, load_settings
from circlecost.store import Store, StoreLockedError
from circlecost_emulator import Emulator
from circlecost_emulator.request_log import USAGE_EXPORT_CREATE
from tests.engines import store_location as new_location
from tests.faults.support import (
    NO_ROWS,
    SCOREBOARD,
    Snapshot,
    assert_exactly_once,
    cli_env,
    integration_inputs,
    run_cli,
    served,
    store_file,
    stored,
    table_counts,
    total,
)
from tests.support import org_and_token

REPO = Path(__file__).resolve().parents[2]
SHARED_POINTS = ("after_job_recorded", "mid_insert", "before_mark_loaded")
CRASHES = [("embedded", point) for point in faultpoints.POINTS] + [
    ("shared", point) for point in SHARED_POINTS
]


def crash_store(request: pytest.FixtureRequest, engine: str, tmp_path: Path) -> Path | SharedStore:
    """A new store's place; a shared one is created by its owner first (`store init`)."""
    location = new_location(request, engine, tmp_path)
    if isinstance(location, SharedStore):
        Store(location).initialize("ana")
    return location


HOLDERS = {
    # A bare DuckDB connection: the lock error names its process id.
    "duckdb": "import duckdb, sys, time\n"
    "connection = duckdb.connect(sys.argv[1])\n"
    "print('holding', flush=True)\n"
    "time.sleep(120)\n",
    # Another circlecost writer: it records itself, so the error names what it is.
    "circlecost": "import sys, time\n"
    "from circlecost.store import Store\n"
    "with Store(sys.argv[1], writer_kind='pulumi up').transaction():\n"
    "    print('holding', flush=True)\n"
    "    time.sleep(120)\n",
}


def posts(emulator: Emulator, org_id: str) -> int:
    return emulator.requests.count(org_id=org_id, kind=USAGE_EXPORT_CREATE)


def assert_nothing_half_loaded(emulator: Emulator, store: Store, integration_id: str) -> None:
    """Every window holds either exactly what CircleCI serves (loaded) or no rows at all."""
    windows = store.list_windows(integration_id)
    loaded = [w.window.start for w in windows if w.state == "loaded"]
    assert_exactly_once(emulator, store, integration_id, loaded)
    rows = stored(store, integration_id)
    assert all(rows[w.window.start] == NO_ROWS for w in windows if w.state != "loaded")


@pytest.mark.parametrize(("engine", "point"), CRASHES)
def test_add_killed_at_each_step_resumes_on_sync_with_exact_rows_and_no_duplicate_job(
    emulator: Emulator, tmp_path: Path, request: pytest.FixtureRequest, engine: str, point: str
) -> None:
    org_id, token = org_and_token(emulator)
    store_location = crash_store(request, engine, tmp_path)
    env = cli_env(emulator, store_location, token)
    add = ("integrations", "add", "--org", org_id, "--backfill-months", "1", "--wait")

    killed = run_cli(*add, env={**env, "CIRCLECOST_CRASH_AT": point})

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = Store(store_location)
    (record,) = store.list_integrations()
    assert record.status == "Importing"
    assert_nothing_half_loaded(emulator, store, record.id)
    recorded_jobs = {
        w.window.start: w.current_job_id
        for w in store.list_windows(record.id)
        if w.current_job_id is not None
    }
    assert recorded_jobs  # every crash point comes after the first job was recorded
    assert any(e.action == "create" for e in store.list_audit(object_id=record.id))

    resumed = run_cli("sync", "--wait", env=env)

    assert resumed.returncode == 0, resumed.stderr
    got = assert_exactly_once(emulator, store, record.id)
    windows = store.list_windows(record.id)
    SCOREBOARD.fault(
        f"SIGKILL at {point} (add, {engine}), then sync",
        f"(a) {resumed.stdout.split(': ')[1]}, exact rows, {posts(emulator, org_id)} POSTs",
        total(served(emulator, store, record.id)),
        got,
    )
    assert "Stable" in resumed.stdout
    assert posts(emulator, org_id) == len(windows)
    assert len(store.list_jobs(record.id)) == len(windows)
    for window in windows:
        if window.window.start in recorded_jobs:
            assert window.current_job_id == recorded_jobs[window.window.start]


@pytest.mark.parametrize(("engine", "point"), CRASHES)
def test_a_refresh_killed_at_each_step_keeps_the_previous_rows_and_resumes_its_job(
    emulator: Emulator, tmp_path: Path, request: pytest.FixtureRequest, engine: str, point: str
) -> None:
    org_id, token = org_and_token(emulator)
    store_location = crash_store(request, engine, tmp_path)
    env = cli_env(emulator, store_location, token)
    added = run_cli(
        "integrations", "add", "--org", org_id, "--backfill-months", "1", "--wait", env=env
    )
    assert added.returncode == 0, added.stderr
    store = Store(store_location)
    (record,) = store.list_integrations()
    before = Snapshot.of(store, record.id)
    jobs_before = current_jobs(store, record.id)
    # An hour later the refresh asks CircleCI for the current month again.
    emulator.clock.advance(3600)
    later = cli_env(emulator, store_location, token)  # on the emulator's clock, now an hour on

    killed = run_cli("sync", "--wait", env={**later, "CIRCLECOST_CRASH_AT": point})

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    kept = before.assert_intact(store, record.id)
    open_at_crash = [w for w in store.list_windows(record.id) if w.state != "loaded"]
    recorded = {w.window.start: w.current_job_id for w in open_at_crash if w.current_job_id}
    posts_at_crash = posts(emulator, org_id)

    resumed = run_cli("sync", "--wait", env=later)

    assert resumed.returncode == 0, resumed.stderr
    got = assert_exactly_once(emulator, store, record.id)
    new_posts = posts(emulator, org_id) - posts_at_crash
    SCOREBOARD.fault(
        f"SIGKILL at {point} (refresh, {engine}), then sync",
        f"(b) {kept.count} rows kept; then (a) exact, {new_posts} new POST(s)",
        total(served(emulator, store, record.id)),
        got,
    )
    assert "Stable" in resumed.stdout
    assert open_at_crash  # the refresh was under way
    assert new_posts == len(open_at_crash) - len(recorded)
    jobs_after = current_jobs(store, record.id)
    assert all(jobs_after[start] == job for start, job in recorded.items())
    refreshed = [start for start, job in jobs_after.items() if job != jobs_before.get(start)]
    assert refreshed
    assert all(row_jobs(store, record.id, start) == {jobs_after[start]} for start in refreshed)


def current_jobs(store: Store, integration_id: str) -> dict[datetime, str | None]:
    return {w.window.start: w.current_job_id for w in store.list_windows(integration_id)}


def row_jobs(store: Store, integration_id: str, window_start: datetime) -> set[str]:
    """The export jobs the rows of one window came from."""
    with store.reader() as con:
        found = con.execute(
            "SELECT DISTINCT export_job_id FROM usage "
            "WHERE integration_id = ? AND window_start = ?",
            [integration_id, window_start.replace(tzinfo=None)],
        ).fetchall()
    return {job for (job,) in found}


@pytest.mark.parametrize("holder", sorted(HOLDERS))
def test_a_second_writer_holding_the_store_gets_a_clear_locked_error_and_changes_nothing(
    emulator: Emulator, settings: Settings, holder: str
) -> None:
    org_id, token = org_and_token(emulator)
    integration_id, _ = service.create_integration(settings, integration_inputs(org_id, token))
    store = settings.store()
    before = Snapshot.of(store, integration_id)
    counts_before = table_counts(store)
    impatient = replace(settings, lock_timeout=0.5)
    env = cli_env(emulator, store_file(settings), token, CIRCLECOST_LOCK_TIMEOUT_SECONDS="0.5")

    holding = subprocess.Popen(
        [sys.executable, "-c", HOLDERS[holder], str(store_file(settings))],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holding.stdout is not None
        assert holding.stdout.readline().strip() == "holding"
        with pytest.raises(StoreLockedError) as in_process:
            service.sync_integrations(impatient, token)
        from_cli = run_cli("sync", "--wait", env=env)
    finally:
        holding.kill()
        holding.communicate()  # reaps it and closes the pipe

    got = before.assert_intact(store, integration_id)
    SCOREBOARD.fault(
        f"second writer ({holder}) holds the store",
        f"(b) StoreLockedError names pid {holding.pid}; data intact",
        total(before.rows),
        got,
    )
    message = in_process.value.message
    assert f"is being written by {'`pulumi up` ' if holder == 'circlecost' else ''}" in message
    assert f"pid {holding.pid}" in message
    assert "wait for it to finish or stop it" in in_process.value.hint
    assert from_cli.returncode == 1
    assert from_cli.stderr.startswith(f"error: the store {store_file(settings)} is being written")
    assert f"pid {holding.pid}" in from_cli.stderr
    assert "Traceback" not in from_cli.stderr
    assert table_counts(store) == counts_before

    assert service.sync_integrations(settings, token)["status"] == "Stable"
    assert_exactly_once(emulator, store, integration_id)


def test_the_lock_timeout_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CIRCLECOST_LOCK_TIMEOUT_SECONDS", "0.25")
    monkeypatch.setenv("CIRCLECOST_STORE", str(tmp_path / "costs.duckdb"))

    settings = load_settings()

    assert settings.lock_timeout == 0.25
    assert settings.store().lock_timeout == 0.25
    assert settings.reader().lock_timeout == 0.25
