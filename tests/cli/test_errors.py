"""Errors the CLI prints: one `error:` line, one `hint:` line in the CLI's own words, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from circlecost.cli import cli_hint
from circlecost.errors import CirclecostError
from circlecost.importer import TokenRejectedError
from circlecost_emulator import Emulator

from .conftest import run

ORG = "6513270e-269e-4d37-b2a7-4de452e6b438"


def error_and_hint(stderr: str) -> tuple[str, str]:
    lines = stderr.splitlines()
    assert len(lines) == 2, stderr
    assert lines[0].startswith("error: "), stderr
    assert lines[1].startswith("hint: "), stderr
    return lines[0].removeprefix("error: "), lines[1].removeprefix("hint: ")


# --- a missing store ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["integrations", "list"],
        ["integrations", "list", "--format", "json"],
        ["integrations", "remove", "0b7c1e2f"],
        ["report", "--period", "last_month"],
        ["export", "--from", "2026-10-01", "--to", "2026-10-31", "--output", "focus.csv"],
        ["access", "list"],
        ["audit"],
    ],
    ids=" ".join,
)
def test_a_missing_store_exits_1_saying_where_the_cli_looked(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "elsewhere" / "costs.duckdb"

    result = run("--store", str(missing), "--actor", "ana", *command)

    assert (result.exit_code, result.stdout) == (1, "")
    error, hint = error_and_hint(result.stderr)
    assert error == f"there is no store at {missing}"
    assert hint == (
        "give the store's path with --store or CIRCLECOST_STORE; "
        "`circlecost integrations add` (or `pulumi up`) creates a new one"
    )
    assert not missing.exists()  # reading never creates a store


def test_status_of_an_empty_store_says_there_are_no_integrations(tmp_path: Path) -> None:
    store = str(tmp_path / "costs.duckdb")
    assert run("--store", store, "--actor", "ana", "access", "grant", "bo", "Viewer").exit_code == 0

    result = run("--store", store, "status")

    assert result.exit_code == 0
    assert result.stdout.startswith("no integrations in")


# --- hints name the CLI's flags and variables ---------------------------------------------------


def test_no_actor_is_answered_with_the_actor_flag_and_variable(sample_store: Path) -> None:
    result = run("--store", str(sample_store), "access", "grant", "bob", "Viewer")

    assert result.exit_code == 1
    error, hint = error_and_hint(result.stderr)
    assert error == "cannot grant roles: no actor is set"
    assert hint == "run `circlecost --actor <you> …` or set CIRCLECOST_ACTOR"


def test_an_unwritable_store_is_answered_with_the_store_flag_and_variable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    store = tmp_path / "a-file" / "costs.duckdb"

    result = run("--store", str(store), "--actor", "ana", "access", "grant", "bob", "Viewer")

    assert result.exit_code == 1
    error, hint = error_and_hint(result.stderr)
    assert error.startswith("cannot create the folder of the store")
    assert hint == "choose a writable path with `circlecost --store PATH …` (or CIRCLECOST_STORE)"


def test_a_plain_http_circleci_url_is_answered_with_the_url_flag(tmp_path: Path) -> None:
    result = run(
        "--store",
        str(tmp_path / "costs.duckdb"),
        "--actor",
        "ana",
        "integrations",
        "add",
        "--org",
        ORG,
        "--circleci-url",
        "http://circleci.example.com/api/v2",
        env={"CIRCLECI_TOKEN": "CCIPAT_x"},
    )

    assert result.exit_code == 1
    error, hint = error_and_hint(result.stderr)
    assert error.startswith("circleciUrl: base_url http://circleci.example.com/api/v2 must be")
    assert hint.startswith("set `--circleci-url` (or CIRCLECI_URL) to an https URL")


def test_a_rejected_token_is_answered_with_circleci_token(
    emulator: Emulator, tmp_path: Path
) -> None:
    result = run(
        "--store",
        str(tmp_path / "costs.duckdb"),
        "--actor",
        "ana",
        "integrations",
        "add",
        "--org",
        emulator.organizations[0]["id"],
        env={"CIRCLECI_TOKEN": "CCIPAT_not-a-token", "CIRCLECI_URL": emulator.base_url},
    )

    assert result.exit_code == 1
    error, hint = error_and_hint(result.stderr)
    assert error.startswith("token: CircleCI rejected the token (401)")
    assert "put it in CIRCLECI_TOKEN" in hint
    assert "pulumi" not in result.stderr


# Hints as the service layer writes them for Pulumi users, and as the CLI prints them.
TRANSLATED = [
    (
        "run `pulumi config set circlecost:actor <you>` or set CIRCLECOST_ACTOR",
        "run `circlecost --actor <you> …` or set CIRCLECOST_ACTOR",
    ),
    (
        "run `pulumi config set circlecost:actor <you>`",
        "run `circlecost --actor <you> …` (or CIRCLECOST_ACTOR)",
    ),
    (
        "choose a writable path with `pulumi config set circlecost:store PATH`",
        "choose a writable path with `circlecost --store PATH …` (or CIRCLECOST_STORE)",
    ),
    (
        "set `circlecost:circleciUrl` (or CIRCLECI_URL) to an https URL",
        "set `--circleci-url` (or CIRCLECI_URL) to an https URL",
    ),
    (
        "run `pulumi config set circlecost:circleciUrl https://circleci.com/api/v2`",
        "pass `--circleci-url https://circleci.com/api/v2` (or CIRCLECI_URL)",
    ),
    # no CLI equivalent, or nothing to translate: left as written
    (
        "run `pulumi config set circlecost:bindingTimeoutSeconds 300`",
        "run `pulumi config set circlecost:bindingTimeoutSeconds 300`",
    ),
    ("see `circlecost integrations list`", "see `circlecost integrations list`"),
    ("", ""),
]


@pytest.mark.parametrize(("written", "printed"), TRANSLATED)
def test_hints_for_stack_config_are_printed_with_the_clis_flags(written: str, printed: str) -> None:
    assert cli_hint(CirclecostError("failed", hint=written)) == printed


def test_a_rejected_token_hint_points_at_circleci_token_not_the_stack() -> None:
    rejected = TokenRejectedError(
        "CircleCI rejected the token (401)",
        hint="create a new personal API token in CircleCI, store it with "
        "`pulumi config set --secret`, then run `pulumi up`",
    )

    hint = cli_hint(rejected)

    assert "CIRCLECI_TOKEN" in hint
    assert "pulumi" not in hint
