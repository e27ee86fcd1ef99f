"""`integrations list` shows ids that `integrations remove` takes: unique prefixes, as in git."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from circlecost.store import Store

from .conftest import run

# Two ids that share their first 8 characters, and one that shares nothing.
TWINS = ("0b7c1e2f-aaaa-4d37-b2a7-4de452e6b438", "0b7c1e2f-bbbb-4a52-9b0e-2a7d4c1e9f00")
LONER = "9d3a5c71-0c4e-4f8e-8a55-1c7b2d9e6f13"


@pytest.fixture
def three_integrations(tmp_path: Path) -> Path:
    path = tmp_path / "costs.duckdb"
    store = Store(path)
    store.migrate()
    store.ensure_first_owner("ana")
    for number, (integration_id, name) in enumerate(
        [(TWINS[0], "initech"), (TWINS[1], "acme corporation of america"), (LONER, "globex")]
    ):
        store.insert_integration(
            f"6513270e-269e-4d37-b2a7-4de452e6b43{number}",
            f"sha256:000000000000000{number}",
            organization_name=name,
            integration_id=integration_id,
        )
    return path


def listed_ids(store: Path) -> list[str]:
    listing = run("--store", str(store), "integrations", "list", env={"COLUMNS": "60"})
    assert listing.exit_code == 0, listing.output
    body = listing.stdout.splitlines()[2:]  # header and rule
    return [line.split("│")[0].strip() for line in body if line.split("│")[0].strip()]


def remove(store: Path, given: str) -> tuple[int, str, str]:
    result = run("--store", str(store), "--actor", "ana", "integrations", "remove", given)
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_ids_as_long_as_needed_to_tell_them_apart(three_integrations: Path) -> None:
    # "0b7c1e2f" names two integrations; one more character is the dash, one more tells them apart
    assert listed_ids(three_integrations) == ["0b7c1e2f-a", "0b7c1e2f-b", "9d3a5c71-0"]


def test_list_shows_8_characters_when_they_are_enough(tmp_path: Path) -> None:
    store = Store(tmp_path / "costs.duckdb")
    store.migrate()
    store.insert_integration(
        "6513270e-269e-4d37-b2a7-4de452e6b438", "sha256:0", integration_id=LONER
    )

    assert listed_ids(store.path) == ["9d3a5c71"]


def test_list_keeps_ids_whole_and_columns_aligned_in_a_narrow_terminal(
    three_integrations: Path,
) -> None:
    listing = run("--store", str(three_integrations), "integrations", "list", env={"COLUMNS": "60"})

    lines = [line for line in listing.stdout.splitlines() if line.strip()]
    header, rows = lines[0], [line for line in lines[2:] if "│" in line]
    separators = [index for index, char in enumerate(header) if char == "┃"]
    for line in rows:
        assert [index for index, char in enumerate(line) if char == "│"] == separators, line
    # the organization name wraps onto a second line; ids and the imported range never do
    assert any(line.split("│")[0].strip() == "" for line in rows)
    assert "- .. -" in listing.stdout


@pytest.mark.parametrize("shown", ["0b7c1e2f-a", "0b7c1e2f-aa", TWINS[0], TWINS[0].upper()])
def test_remove_takes_the_listed_id_a_longer_prefix_or_the_whole_id(
    three_integrations: Path, shown: str
) -> None:
    code, out, err = remove(three_integrations, shown)

    assert (code, err) == (0, "")
    assert out == f"removed {TWINS[0]} (initech) and purged its costs\n"
    assert listed_ids(three_integrations) == ["0b7c1e2f", "9d3a5c71"]


def test_every_listed_id_removes_its_own_integration(three_integrations: Path) -> None:
    for shown in listed_ids(three_integrations):
        assert remove(three_integrations, shown)[0] == 0, shown

    status = run("--store", str(three_integrations), "status")
    assert status.stdout.startswith("no integrations in")


def test_an_ambiguous_prefix_names_the_candidates_and_removes_nothing(
    three_integrations: Path,
) -> None:
    code, out, err = remove(three_integrations, "0b7c")

    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"error: '0b7c' matches 2 integrations: {TWINS[0]} (initech), "
        f"{TWINS[1]} (acme corporation of america)",
        "hint: give more characters of the id",
    ]
    assert len(listed_ids(three_integrations)) == 3


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ("ffff", "error: no integration id starts with 'ffff'"),
        ("9d3a5c71-x", "error: no integration id starts with '9d3a5c71-x'"),
        ("0b7", "error: '0b7' is too short to name an integration"),
        ("", "error: '' is too short to name an integration"),
    ],
)
def test_an_unknown_or_too_short_prefix_is_an_error_that_removes_nothing(
    three_integrations: Path, given: str, error: str
) -> None:
    code, out, err = remove(three_integrations, given)

    assert (code, out) == (1, "")
    assert err.splitlines()[0] == error
    assert "circlecost integrations list" in err.splitlines()[1]
    assert len(listed_ids(three_integrations)) == 3


def test_json_lists_whole_ids(three_integrations: Path) -> None:
    listing = run("--store", str(three_integrations), "integrations", "list", "--format", "json")

    assert [row["id"] for row in json.loads(listing.stdout)] == [*TWINS, LONER]
