"""`--wait` on `integrations add` and `sync`: it ends, says why, and shows progress in CI logs.

Every test runs the real command (click's CliRunner, whose stderr is no terminal, as in CI)
against the emulator on loopback and a real store. Times come from the emulator's clock.
"""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from circlecost.cli import main
from circlecost.windows import Window, backfill_windows
from circlecost_emulator import Emulator
from circlecost_emulator.request_log import DOWNLOAD, USAGE_EXPORT_CREATE

BACKFILL_MONTHS = 3
# Well under any --timeout these tests pass: an end for a reason comes at once, not at the end.
PROMPTLY = 30.0


# Export jobs take a second of the emulator's clock: many polls, same status.
SLOW = pytest.mark.emulator(job_delay=1.0)


def environment(emulator: Emulator, *, allow_loopback: bool = True) -> dict[str, str]:
    env = {
        "CIRCLECI_TOKEN": admin_token(emulator),
        "CIRCLECI_URL": emulator.base_url,
        "CIRCLECOST_ACTOR": "ana",
        "CIRCLECOST_FIRST_POLL_SECONDS": "0",
        "CIRCLECOST_POLL_SECONDS": "0.05",
        "CIRCLECOST_RETRY_SECONDS": "0.05",
        # The emulator has no quota here; circlecost's own budget must not end the wait either.
        "CIRCLECOST_QUOTA_PER_HOUR": "10000",
    }
    if allow_loopback:
        env["CIRCLECOST_ALLOW_LOOPBACK_DOWNLOADS"] = "1"
    return env


def admin_token(emulator: Emulator) -> str:
    return emulator.org_admin_tokens[emulator.organizations[0]["id"]]


def run(store: Path, *args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, ["--store", str(store), *args], env=env, catch_exceptions=False)


def add(store: Path, emulator: Emulator, *options: str, env: dict[str, str]) -> Result:
    org_id = emulator.organizations[0]["id"]
    return run(
        store,
        "integrations",
        "add",
        "--org",
        org_id,
        "--backfill-months",
        str(BACKFILL_MONTHS),
        *options,
        env=env,
    )


def windows(emulator: Emulator) -> list[Window]:
    return backfill_windows(emulator.clock.now(), BACKFILL_MONTHS)


def progress_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("acme: ")]


def test_a_refused_loopback_link_ends_the_wait_at_once_naming_the_link_and_the_opt_in(
    emulator: Emulator, tmp_path: Path
) -> None:
    store = tmp_path / "costs.duckdb"
    started = time.monotonic()

    refused = add(
        store,
        emulator,
        "--wait",
        "--timeout",
        "600",
        env=environment(emulator, allow_loopback=False),
    )

    assert time.monotonic() - started < PROMPTLY
    assert refused.exit_code == 1, refused.output
    error = next(line for line in refused.stderr.splitlines() if line.startswith("error: "))
    assert "refused: Refusing download link http://127.0.0.1:" in error
    assert "(loopback)" in error
    hint = next(line for line in refused.stderr.splitlines() if line.startswith("hint: "))
    assert "CIRCLECOST_ALLOW_LOOPBACK_DOWNLOADS=1" in hint
    assert "circlecost sync --wait" in hint
    assert "pulumi" not in refused.stderr
    status = run(store, "status", env={}).stdout
    assert "Refusing download link" in status
    assert "CircleCI is preparing" not in status
    assert emulator.requests.count(kind=DOWNLOAD) == 0
    requested = emulator.requests.count(kind=USAGE_EXPORT_CREATE)
    assert requested == len(windows(emulator))

    allowed = run(store, "sync", "--wait", env=environment(emulator))

    assert allowed.exit_code == 0, allowed.output
    assert f"acme: Stable: all {len(windows(emulator))} window(s) imported" in allowed.stdout
    assert emulator.requests.count(kind=USAGE_EXPORT_CREATE) == requested  # the same jobs


def test_sync_wait_with_a_revoked_token_exits_1_with_the_rejection(
    emulator: Emulator, tmp_path: Path
) -> None:
    store = tmp_path / "costs.duckdb"
    env = environment(emulator)
    assert add(store, emulator, "--wait", env=env).exit_code == 0
    emulator.revoke_token(admin_token(emulator))
    started = time.monotonic()

    synced = run(store, "sync", "--wait", env=env)

    assert time.monotonic() - started < PROMPTLY
    assert synced.exit_code == 1, synced.output
    assert "error: CircleCI rejected the token (401)" in synced.stderr
    assert "hint: create a new personal API token" in synced.stderr
    assert "CIRCLECI_TOKEN" in synced.stderr
    assert "pulumi" not in synced.stderr
    assert "Error" in run(store, "status", env={}).stdout


def test_add_wait_with_an_expired_token_exits_1_with_the_rejection(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = {**environment(emulator), "CIRCLECI_TOKEN": emulator.tokens["expired"]}

    added = add(tmp_path / "costs.duckdb", emulator, "--wait", env=env)

    assert added.exit_code == 1, added.output
    assert "error: token: CircleCI rejected the token (401)" in added.stderr
    assert "hint: create a new personal API token" in added.stderr
    assert "pulumi" not in added.stderr


@SLOW
def test_wait_on_a_pipe_prints_the_import_state_as_it_changes_and_ends_stable(
    emulator: Emulator, tmp_path: Path
) -> None:
    expected = windows(emulator)

    added = add(tmp_path / "costs.duckdb", emulator, "--wait", env=environment(emulator))

    assert added.exit_code == 0, added.output
    lines = progress_lines(added)
    assert lines, added.stderr
    assert all(
        line.startswith("acme: Importing — ") and f"of {len(expected)} window(s) imported" in line
        for line in lines
    ), lines
    assert any(f"(CircleCI is preparing {expected[0]})" in line for line in lines), lines
    assert f"Stable: all {len(expected)} window(s) imported" in added.stdout


@SLOW
def test_wait_never_prints_the_same_line_twice_in_a_row(emulator: Emulator, tmp_path: Path) -> None:
    store = tmp_path / "costs.duckdb"
    env = environment(emulator)
    # Polls every 0.05 s over a second-long job: many reports in a row read the same.
    added = add(store, emulator, "--wait", env=env)
    synced = run(store, "sync", "--wait", env=env)  # re-imports the trailing month(s)

    for result in (added, synced):
        assert result.exit_code == 0, result.output
        lines = result.stderr.splitlines()
        assert lines, result.output
        repeats = [first for first, second in pairwise(lines) if first == second]
        assert repeats == []


@pytest.mark.emulator(job_delay=600.0)
def test_a_wait_longer_than_the_timeout_ends_saying_what_is_missing_and_how_to_continue(
    emulator: Emulator, tmp_path: Path
) -> None:
    expected = windows(emulator)
    started = time.monotonic()

    added = add(
        tmp_path / "costs.duckdb", emulator, "--wait", "--timeout", "1", env=environment(emulator)
    )

    assert time.monotonic() - started < PROMPTLY
    assert added.exit_code == 1, added.output
    error = next(line for line in added.stderr.splitlines() if line.startswith("error: "))
    assert f"acme is still Importing: 0 of {len(expected)} window(s) imported" in error
    assert f"still missing {expected[0]}, {expected[1]}, {expected[2]}" in error
    assert "CircleCI is preparing" in error
    assert "after the --timeout of 1 s" in error
    assert "hint: a later `circlecost sync --wait` continues" in added.stderr


def test_quota_beyond_the_timeout_ends_the_wait_at_once(emulator: Emulator, tmp_path: Path) -> None:
    env = {**environment(emulator), "CIRCLECOST_QUOTA_PER_HOUR": "2"}
    expected = windows(emulator)
    started = time.monotonic()

    added = add(tmp_path / "costs.duckdb", emulator, "--wait", "--timeout", "600", env=env)

    assert time.monotonic() - started < PROMPTLY
    assert added.exit_code == 1, added.output
    error = next(line for line in added.stderr.splitlines() if line.startswith("error: "))
    assert "quota (2/hour)" in error
    assert str(expected[-1]) in error
    assert "after the --timeout of 600 s" in error


def test_timeout_without_wait_is_a_usage_error(emulator: Emulator, tmp_path: Path) -> None:
    result = run(tmp_path / "costs.duckdb", "sync", "--timeout", "5", env=environment(emulator))

    assert result.exit_code == 2
    assert "--timeout only applies with --wait" in result.stderr
