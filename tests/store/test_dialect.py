"""CircleCI's CSV dialect: every spelling in the table loads to exactly the expected value."""

from datetime import date
from decimal import Decimal

import pytest

from circlecost.csvload import split_fields
from circlecost.store import Integration, Store
from tests.support import NOVEMBER

from .conftest import WritePart

# (column, raw field as written in the file, value in the usage table)
DIALECT = [
    ("VCS_BRANCH", "feature\\,comma", "feature,comma"),
    ("VCS_BRANCH", '"feature,comma"', "feature,comma"),
    ("VCS_BRANCH", "déploiement-été", "déploiement-été"),
    ("VCS_BRANCH", '"déploiement,été"', "déploiement,été"),
    ("JOB_NAME", '"integration ""slow"""', 'integration "slow"'),
    ("JOB_NAME", 'integration "slow"', 'integration "slow"'),
    ("JOB_NAME", 'say "a,b"', None),  # a bare quote does not open a quoted field: see below
    ("JOB_NAME", "C:\\\\build\\\\out", "C:\\build\\out"),
    ("JOB_NAME", 'escaped \\"quote\\"', 'escaped "quote"'),
    ("JOB_NAME", "tab\\there", "tab\there"),
    ("JOB_NAME", '"back\\slash"', "back\\slash"),
    ("JOB_NAME", "\\N", None),
    ("JOB_NAME", "N", "N"),
    ("JOB_NAME", "", None),
    ("JOB_NAME", '""', ""),
    ("JOB_NAME", '"\\N"', "\\N"),
    ("JOB_NAME", "a\\Nb", "aNb"),
    ("JOB_NAME", "emoji 🚀 ünïcödé", "emoji 🚀 ünïcödé"),
    ("IS_UNREGISTERED_USER", "true", True),
    ("IS_UNREGISTERED_USER", "FALSE", False),
    ("IS_UNREGISTERED_USER", "Y", True),
    ("IS_UNREGISTERED_USER", "n", False),
    ("IS_UNREGISTERED_USER", "t", True),
    ("IS_UNREGISTERED_USER", "F", False),
    ("IS_UNREGISTERED_USER", "1", True),
    ("IS_UNREGISTERED_USER", "0", False),
    ("IS_UNREGISTERED_USER", "\\N", None),
    ("IS_WORKFLOW_SUCCESSFUL", "yes", True),
    ("IS_WORKFLOW_SUCCESSFUL", '"N"', False),
    ("IS_WORKFLOW_SUCCESSFUL", "", None),
    ("COMPUTE_CREDITS", "\\N", None),
    ("COMPUTE_CREDITS", "", None),
    ("COMPUTE_CREDITS", "12.5", Decimal("12.5")),
    ("COMPUTE_CREDITS", '"7"', Decimal(7)),
    ("PIPELINE_NUMBER", '""', None),
    ("JOB_RUN_DATE", "2026-11-03", date(2026, 11, 3)),
    ("JOB_RUN_SECONDS", "1e3", 1000.0),
]
LOADABLE = [case for case in DIALECT if case[1] != 'say "a,b"']


@pytest.mark.parametrize(("column", "raw", "value"), LOADABLE)
def test_dialect_spelling_loads_to_the_exact_value(
    store: Store,
    integration: Integration,
    write_part: WritePart,
    column: str,
    raw: str,
    value: object,
) -> None:
    part = write_part({column: raw})

    result = store.replace_window_rows(integration.id, NOVEMBER, None, [part])

    with store.reader() as con:
        loaded = con.execute(f"SELECT {column} FROM usage").fetchall()
    assert result.rows == 1
    assert loaded == [(value,)]


def test_a_quote_inside_an_unquoted_field_is_only_a_character() -> None:
    assert split_fields('a,say "a,b",c') == ["a", 'say "a', 'b"', "c"]


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("a,b", ["a", "b"]),
        (",", [None, None]),
        ("\\N,N", [None, "N"]),
        ('"x,y",z', ["x,y", "z"]),
        ('"",""""', ["", '"']),
        ("a\\,b\\\\,c", ["a,b\\", "c"]),
        ("line\\\nbreak", ["line\nbreak"]),
        ('"line\nbreak"', ["line\nbreak"]),
    ],
)
def test_split_fields_decodes_each_field(text: str, fields: list[str | None]) -> None:
    assert split_fields(text) == fields


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('"open', "field 1 opens a quote that is never closed"),
        ('a,"x"y', "field 2 has text after its closing quote"),
        ("a,b\\", "field 2 ends with a lone backslash"),
    ],
)
def test_split_fields_names_the_malformed_field(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        split_fields(text)
