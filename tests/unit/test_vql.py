"""The cost filter language: parsing, error positions, compiled SQL semantics, injection."""

from __future__ import annotations

import duckdb
import pytest

from circlecost.vql import VQLError, compile_filter

ROWS = [
    # service, account, category, subcategory, resource, branch, status
    ("Compute", "api", "linux docker", "medium", "build", "main", "success"),
    ("Compute", "web", "linux docker", "large", "test", "feature,comma", "failed"),
    ("DLC", "api", "linux docker", "medium", "build", "main", "success"),
    ("Users", "billing", "linux machine", "xlarge", "deploy", None, "success"),
    (
        "Compute",
        "docs",
        "macos machine",
        "macos.m1.medium.gen1",
        "e2e, smoke",
        "déploiement-été",
        "canceled",
    ),
    ("Storage", "o'brien", "windows machine", "windows.medium", "it's", "release/2026.11", None),
]


@pytest.fixture
def costs() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE costs (billing_account VARCHAR, account VARCHAR, service VARCHAR, "
        "category VARCHAR, subcategory VARCHAR, resource VARCHAR, charge_type VARCHAR, "
        "tag_organization_id VARCHAR, tag_project_id VARCHAR, tag_vcs_name VARCHAR, "
        "tag_vcs_url VARCHAR, tag_vcs_branch VARCHAR, tag_pipeline_id VARCHAR, "
        "tag_job_build_status VARCHAR, n INTEGER)"
    )
    for n, (service, account, category, sub, resource, branch, status) in enumerate(ROWS):
        connection.execute(
            "INSERT INTO costs VALUES ('initech', ?, ?, ?, ?, ?, 'Usage', 'org', 'proj', "
            "'github', 'url', ?, 'pipe', ?, ?)",
            [account, service, category, sub, resource, branch, status, n],
        )
    return connection


def matching(connection: duckdb.DuckDBPyConnection, text: str) -> list[int]:
    compiled = compile_filter(text)
    rows = connection.execute(
        f"SELECT n FROM costs WHERE {compiled.sql} ORDER BY n", list(compiled.params)
    ).fetchall()
    return [row[0] for row in rows]


VALID = [
    ("costs.service = 'Compute'", [0, 1, 4]),
    ("costs.service != 'Compute'", [2, 3, 5]),
    ("costs.service <> 'Compute'", [2, 3, 5]),
    ("costs.account IN ('api', 'web')", [0, 1, 2]),
    ("costs.account NOT IN ('api', 'web')", [3, 4, 5]),
    ("costs.account in ('api')", [0, 2]),
    ("costs.resource LIKE 'e2e%'", [4]),
    ("costs.resource NOT LIKE '%e%'", [0, 2, 5]),
    ("costs.category = 'linux docker'", [0, 1, 2]),
    ("costs.subcategory LIKE 'windows%'", [5]),
    ("costs.charge_type = 'Usage'", [0, 1, 2, 3, 4, 5]),
    ("costs.billing_account = 'initech'", [0, 1, 2, 3, 4, 5]),
    ("costs.billing_account = 'globex'", []),
    ("costs.account = 'o''brien'", [5]),
    ("costs.resource = 'it''s'", [5]),
    ("costs.resource = 'e2e, smoke'", [4]),
    ("costs.service = 'Compute' AND costs.account = 'api'", [0]),
    ("costs.service = 'Compute' OR costs.service = 'DLC'", [0, 1, 2, 4]),
    ("costs.service = 'DLC' OR costs.service = 'Users' AND costs.account = 'api'", [2]),
    ("(costs.service = 'DLC' OR costs.service = 'Users') AND costs.account = 'billing'", [3]),
    ("((costs.account = 'api'))", [0, 2]),
    ("tags.name = 'circleci:vcs_branch' AND tags.value = 'main'", [0, 2]),
    ("tags.name = 'circleci:vcs_branch' AND tags.value != 'main'", [1, 3, 4, 5]),
    (
        "tags.name = 'circleci:vcs_branch' AND tags.value IN ('feature,comma', 'déploiement-été')",
        [1, 4],
    ),
    ("tags.name = 'circleci:vcs_branch' AND tags.value LIKE 'release/%'", [5]),
    ("tags.name = 'circleci:job_build_status' AND tags.value = 'failed'", [1]),
    (
        "costs.service = 'Compute' AND tags.name = 'circleci:vcs_branch' AND tags.value = 'main'",
        [0],
    ),
    ("tags.name = 'circleci:job_build_status'", [0, 1, 2, 3, 4]),
    ("tags.name != 'circleci:job_build_status'", [5]),
    ("tags.value = 'failed'", [1]),
    ("costs.service = 'Compute' and costs.account = 'web'", [1]),
    ("costs.account = '''; DROP TABLE costs; --'", []),
    ("costs.account = 'api'' OR ''1''=''1'", []),
    ("costs.service   =   'Compute'   ", [0, 1, 4]),
    ("costs.service = ''", []),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_filters_select_exactly_the_expected_rows(
    costs: duckdb.DuckDBPyConnection, text: str, expected: list[int]
) -> None:
    assert matching(costs, text) == expected


INVALID = [
    ("", 1, "empty"),
    ("   ", 1, "empty"),
    ("costs.service", 14, "expected an operator"),
    ("costs.service =", 16, "expected a quoted value"),
    ("costs.service = Compute", 17, "unknown field"),
    ("costs.colour = 'red'", 1, "unknown field"),
    ("service = 'Compute'", 1, "unknown field"),
    ("costs.service = 'Compute", 17, "no closing quote"),
    ("costs.service = 'Compute' AND", 30, "expected a field"),
    ("costs.service = 'Compute' costs.account = 'api'", 27, "expected AND, OR"),
    ("(costs.service = 'Compute'", 27, "expected ')'"),
    ("costs.service = 'Compute')", 26, "expected AND, OR"),
    ("costs.account IN 'api'", 18, "'(' to start the list"),
    ("costs.account IN ('api' 'web')", 25, "')' to close the list"),
    ("costs.account IN ()", 19, "expected a quoted value"),
    ("costs.service == 'Compute'", 16, "expected a quoted value"),
    ("costs.service > 'Compute'", 15, "unexpected character"),
    ('costs.service = "Compute"', 17, "unexpected character"),
    ("costs.service NOT = 'x'", 19, "expected an operator"),
    ("tags.name = 'circleci:colour' AND tags.value = 'x'", 1, "unknown tag"),
    ("tags.name LIKE 'circleci:%'", 1, "tags.name takes"),
    ("AND costs.service = 'x'", 1, "expected a field"),
    ("costs.service = 'x'; DROP TABLE costs", 20, "unexpected character"),
]


@pytest.mark.parametrize(("text", "column", "words"), INVALID)
def test_invalid_filters_point_at_the_column_of_the_problem(
    text: str, column: int, words: str
) -> None:
    with pytest.raises(VQLError) as error:
        compile_filter(text)
    assert error.value.column == column
    assert words in error.value.message
    assert "^" in str(error.value)


def test_injection_attempts_leave_the_table_unchanged(costs: duckdb.DuckDBPyConnection) -> None:
    for text in [
        "costs.account = 'x''; DROP TABLE costs; --'",
        "costs.account = '; DELETE FROM costs",
    ]:
        try:
            matching(costs, text)
        except VQLError:
            pass
    assert costs.execute("SELECT count(*) FROM costs").fetchone() == (len(ROWS),)


def test_values_never_appear_in_the_sql_text() -> None:
    compiled = compile_filter("costs.account IN ('api', 'x); DROP TABLE costs; --')")
    assert "DROP" not in compiled.sql
    assert compiled.params == ("api", "x); DROP TABLE costs; --")


def test_a_very_long_filter_is_refused() -> None:
    with pytest.raises(VQLError):
        compile_filter("costs.service = '" + "x" * 20_000 + "'")
