"""The export dialect: both escaping styles, NULLs, and typed values."""

import gzip
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from circlecost.usage_columns import COLUMN_NAMES, CREDIT_SERVICES
from circlecost_emulator.dialect import (
    DialectError,
    EscapeStyle,
    escape_field,
    iter_records,
    parse_record,
    typed_row,
    typed_value,
)
from tests.support import DATA

from .helpers import credit


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("a,b,c\n", ["a", "b", "c"]),
        ("feature\\,x,b\n", ["feature,x", "b"]),
        ('"feature,x",b\n', ["feature,x", "b"]),
        ('"integration ""slow""",x\n', ['integration "slow"', "x"]),
        ('integration "slow",x\n', ['integration "slow"', "x"]),
        ("\\N,,x\n", [None, None, "x"]),
        ("a,\n", ["a", None]),
        ('"multi\nline",b\n', ["multi\nline", "b"]),
        ("a\\\\,b\n", ["a\\", "b"]),
        ('"",x\n', ["", "x"]),
        ("a,b\r\n", ["a", "b"]),
        ("déploiement-été,\\N", ["déploiement-été", None]),
        ('"back\\slash",x\n', ["back\\slash", "x"]),
    ],
)
def test_parse_record_reads_both_escaping_styles(line: str, fields: list[str | None]) -> None:
    parsed, end = parse_record(line)
    assert parsed == fields
    assert end == len(line)


def test_parse_record_rejects_text_after_a_closing_quote() -> None:
    with pytest.raises(DialectError):
        parse_record('"a"b,c\n')


def test_iter_records_keeps_multiline_records_whole_and_skips_blank_lines() -> None:
    text = 'h1,h2\r\n"two\nlines",x\r\n\nlast,\\N'
    records = list(iter_records(text))
    assert [raw for raw, _ in records] == ["h1,h2\r\n", '"two\nlines",x\r\n', "last,\\N"]
    assert records[1][1] == ["two\nlines", "x"]


@given(st.text(min_size=1), st.sampled_from(["backslash", "quote"]))
def test_any_text_survives_escaping_in_either_style(text: str, style: EscapeStyle) -> None:
    line = escape_field(text, style) + ",tail\n"
    assert parse_record(line)[0] == [text, "tail"]


@pytest.mark.parametrize("style", ["backslash", "quote"])
def test_null_is_written_as_backslash_n(style: EscapeStyle) -> None:
    assert escape_field(None, style) == "\\N"


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("BOOLEAN", "Y", True),
        ("BOOLEAN", "false", False),
        ("BOOLEAN", "N", False),
        ("BOOLEAN", "TRUE", True),
        ("TIMESTAMP", "2026-10-28 00:59:54.817", datetime(2026, 10, 28, 0, 59, 54, 817000)),
        ("TIMESTAMP", "2026-10-28 00:59:54", datetime(2026, 10, 28, 0, 59, 54)),
        ("DATE", "2026-10-28", date(2026, 10, 28)),
        ("DECIMAL(18,6)", "12.5", Decimal("12.5")),
        ("BIGINT", "4214", 4214),
        ("DOUBLE", "96.1", 96.1),
        ("VARCHAR", "", None),
        ("DOUBLE", None, None),
    ],
)
def test_typed_value_converts_by_column_type(kind: str, text: str | None, value: object) -> None:
    assert typed_value(kind, text) == value


def test_typed_value_refuses_a_word_that_is_not_a_boolean() -> None:
    with pytest.raises(DialectError):
        typed_value("BOOLEAN", "maybe")


def test_the_sample_export_parses_to_the_documented_totals(expected: dict[str, Any]) -> None:
    rows = []
    for path in sorted(DATA.glob("*.csv.gz")):
        records = list(iter_records(gzip.decompress(path.read_bytes()).decode()))
        assert tuple(records[0][1]) == COLUMN_NAMES
        rows += [typed_row(COLUMN_NAMES, fields) for _, fields in records[1:]]
    assert len(rows) == expected["usage_rows"]
    for column, service in CREDIT_SERVICES:
        total = sum(credit(r, column) for r in rows)
        assert total == expected["credits_by_service"][service], service
    branches = {r["VCS_BRANCH"] for r in rows}
    assert {"feature,comma", "déploiement-été", None} <= branches
